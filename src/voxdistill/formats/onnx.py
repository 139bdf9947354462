"""A CTC student (`models.ctc`) as an ONNX graph, for onnxruntime: exported with PyTorch's
TorchScript exporter, checked against the PyTorch model in onnxruntime before it is kept, beside the
files that describe the student; and the export the ``onnx`` runtime keeps in the cache for a
student saved without one (`onnx_folder_for`)."""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from transformers import WhisperFeatureExtractor

from voxdistill.files import OutputError, check_new_folder, folder_written_atomically, sha256_of_files
from voxdistill.formats import EXPORT_RECORD
from voxdistill.models.ctc import (
    CTC_CONFIG_FILE, ONNX_FILE, PREPROCESSOR_FILE, WEIGHTS_FILE, CTCConfigError, CTCLoadError, CTCStudent,
    load_ctc_student, read_ctc_folder, read_record, write_ctc_description, write_ctc_provenance,
)
from voxdistill.models.fingerprint import fingerprint
from voxdistill.models.student import STUDENT_FILE
from voxdistill.paths import cache_dir

ONNX_OPSET = 17  # the first with LayerNormalization as one operator
# Bump when an exported ONNX folder's content changes, so cached exports are redone.
ONNX_EXPORT_VERSION = 1


class _LogitsGraph(nn.Module):
    """What `export_onnx` traces: features in, logits out (the encoder states stay inside)."""

    def __init__(self, model: CTCStudent):
        super().__init__()
        self.model = model

    def forward(self, input_features: Tensor) -> Tensor:
        return self.model(input_features).logits


def _write_onnx_graph(model: CTCStudent, path: Path) -> None:
    """Trace ``model`` (in eval mode; its mode is restored after) into ``path`` and check the graph
    in onnxruntime against PyTorch, at another batch size than the traced one."""
    import onnxruntime

    config = model.config
    features = torch.randn(2, config.encoder["num_mel_bins"], 2 * config.frames,
                           generator=torch.Generator().manual_seed(0))  # (B, n_mels, frames)
    graph, training = _LogitsGraph(model), model.training
    graph.eval()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # The tracer warns that shapes become constants (they are: a window has fixed frames),
            # and that an LSTM traced at batch 2 may fail at other sizes (checked below at batch 1).
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", message="Exporting a model to ONNX with a batch_size other than 1")
            warnings.filterwarnings("ignore", category=DeprecationWarning)  # of the TorchScript exporter
            # The TorchScript exporter: it needs only the onnx package, and the graph is static.
            torch.onnx.export(graph, (features,), str(path), input_names=["input_features"],
                              output_names=["logits"], opset_version=ONNX_OPSET, dynamo=False,
                              dynamic_axes={"input_features": {0: "batch"}, "logits": {0: "batch"}})
            expected = graph(features[:1]).numpy()
    finally:
        model.train(training)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    error = float(np.abs(session.run(["logits"], {"input_features": features[:1].numpy()})[0] - expected).max())
    if error > 1e-3:
        raise CTCConfigError(f"the ONNX graph's logits differ from PyTorch's by up to {error:.2g}: torch "
                             f"{torch.__version__} exported it wrongly; deploy the safetensors folder instead")


def write_onnx_folder(model: CTCStudent, feature_extractor: WhisperFeatureExtractor, folder: Path,
                      provenance: dict, source: str) -> dict:
    """Write into the existing, empty ``folder``: ``model.onnx`` (input ``input_features``
    (B, n_mels, frames) -> output ``logits`` (B, T, n_labels), any batch size), checked against the
    PyTorch model in onnxruntime, beside the files `models.ctc.save_ctc_student` writes but the
    weights, and the export record naming ``source`` and the fingerprint of the float32 weights
    exported; return the record. Not atomic by itself: `export_onnx` is."""
    config = model.config
    _write_onnx_graph(model, folder / ONNX_FILE)
    write_ctc_provenance(folder, config, provenance)
    write_ctc_description(folder, model, feature_extractor)
    record = {
        "format": "onnx", "quantization": "float32", "source": source, "family": "ctc",
        "source_fingerprint": fingerprint(model, feature_extractor).to_dict(),
        "parameters": sum(p.numel() for p in model.parameters()),
        "window_seconds": config.window_seconds, "multilingual": False, "opset": ONNX_OPSET,
        "torch": torch.__version__, "export_version": ONNX_EXPORT_VERSION,
    }
    (folder / EXPORT_RECORD).write_text(json.dumps(record, indent=2) + "\n")
    return record


def export_onnx(model: CTCStudent, feature_extractor: WhisperFeatureExtractor, out: Path, provenance: dict,
                source: str) -> Path:
    """Write ``out`` (which must not exist, or be empty) atomically, as `write_onnx_folder` does: the
    graph is checked before the folder is renamed into place."""
    out = Path(out)
    check_new_folder(out)
    with folder_written_atomically(out) as tmp:
        write_onnx_folder(model, feature_extractor, tmp, provenance, source)
    return out


def onnx_folder_for(folder: str | Path) -> Path:
    """A folder with ``model.onnx`` for the CTC student ``folder``: ``folder`` itself when it has one;
    else its export into the cache (``CACHE/onnx/``), made once. The cache key is the bytes of the
    saved files, the export version and torch's version (the exporter)."""
    folder = Path(folder).expanduser()
    if (folder / ONNX_FILE).is_file():
        return folder
    read_ctc_folder(folder)  # a typed error for a missing or damaged config before anything is hashed
    files = [folder / name for name in (WEIGHTS_FILE, CTC_CONFIG_FILE, PREPROCESSOR_FILE, STUDENT_FILE)]
    missing = [path for path in files if not path.is_file()]
    if missing:
        raise CTCLoadError(f"{missing[0]}: missing; the folder is neither a complete CTC student nor an ONNX "
                           f"export of one; save or export the model again")
    key = sha256_of_files(files)
    digest = hashlib.sha256(f"{key}|{ONNX_EXPORT_VERSION}|{torch.__version__}".encode()).hexdigest()[:12]
    out = cache_dir() / "onnx" / f"{folder.resolve().name}-{digest}"
    if not out.is_dir():
        model, feature_extractor, _ = load_ctc_student(folder)
        try:
            export_onnx(model, feature_extractor, out, read_record(folder / STUDENT_FILE), source=str(folder))
        except (OSError, CTCConfigError, OutputError):
            if not (out / ONNX_FILE).is_file():  # unless a concurrent export finished first
                raise
    return out
