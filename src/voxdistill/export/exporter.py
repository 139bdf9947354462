"""``voxdistill export``: a model as a deployable folder.

- ``hf``: a Hugging Face Whisper folder (float32 safetensors, generation config, tokenizer, and
  ``preprocessor_config.json`` as well as transformers 5's ``processor_config.json``, so tools that
  read only the former, such as faster-whisper and CTranslate2's converter, see the model's window).
- ``ct2``: a CTranslate2 folder made by the ``ctranslate2`` package's own converter
  (``TransformersConverter``) at a chosen weight quantization, with the tokenizer, the model's
  ``preprocessor_config.json`` (its window) and the model card beside ``model.bin``.

Both carry the source's ``student.json`` when it has one, a model card (``README.md``) saying how
to run the folder, and ``voxdistill-export.json``: what was exported from what.

The converter works unchanged with transformers 5 for Whisper. The one gap is the preprocessor
file: transformers 5 saves a processor as ``processor_config.json``, so asking the converter to copy
``preprocessor_config.json`` from a student folder fails; voxdistill writes it from the model's own
feature extractor instead. (Also noted: for an English-only model the converter leaves ``lang_ids``
empty, as transformers 5 tokenizers list no ``additional_special_tokens``; CTranslate2 uses them
only to detect the language of multilingual models.)
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

from voxdistill.audio import SAMPLE_RATE
from voxdistill.data.dataset import clip_pad_step
from voxdistill.errors import VoxdistillError
from voxdistill.files import folder_written_atomically, sha256_of_files
from voxdistill.models.loading import Whisper, load_whisper, resolve_model_folder
from voxdistill.models.student import STUDENT_FILE, window_seconds
from voxdistill.paths import cache_dir

FORMATS = ("hf", "ct2", "onnx")  # onnx: CTC students (models.ctc)
QUANTIZATIONS = ("int8", "int8_float32", "float16", "float32")  # weight storage of a CTranslate2 folder
EXPORT_RECORD = "voxdistill-export.json"
# Bump when an exported folder's content changes, so cached CTranslate2 conversions are redone.
EXPORT_VERSION = 1
# The Hugging Face files whose bytes define a model for the cache of CTranslate2 conversions.
_MODEL_FILES = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
                "preprocessor_config.json", "processor_config.json")


class ExportError(VoxdistillError):
    """An export cannot be made: unknown format or quantization, or the output folder is taken."""


def check_export_options(format: str, quantization: str, out: Path) -> None:
    """Refuse bad options before any model loads."""
    if format not in FORMATS:
        raise ExportError(f"--format {format}: unknown format; choose from {', '.join(FORMATS)}")
    if quantization not in QUANTIZATIONS:
        raise ExportError(f"--quantization {quantization}: unknown quantization; choose from "
                          f"{', '.join(QUANTIZATIONS)}")
    if format in ("hf", "onnx") and quantization != "float32":
        raise ExportError(f"--quantization {quantization} applies to --format ct2; a Hugging Face or ONNX folder "
                          f"is written in float32 (what every loader runs on a CPU without being told a dtype)")
    out = Path(out)
    if out.exists() and not (out.is_dir() and not any(out.iterdir())):
        raise ExportError(f"--out {out}: already exists and is not an empty folder; choose another "
                          f"output folder or remove it")


def export_model(model: str, format: str, out: Path, quantization: str = "float32", card: bool = True) -> Path:
    """Export ``model`` (any model argument) as ``format`` into ``out`` (which must not exist or be
    empty), atomically: written under a temporary name beside it, then renamed. A CTC student
    exports only as ``onnx``; a Whisper model as ``hf`` or ``ct2``."""
    from voxdistill.models.ctc import export_onnx, is_ctc_folder, load_ctc_student, read_record

    out = Path(out)
    check_export_options(format, quantization, out)
    ctc = is_ctc_folder(model)
    if ctc != (format == "onnx"):
        raise ExportError(f"--format {format}: {model} is a {'CTC student' if ctc else 'Whisper model'}; "
                          f"export it with --format {'onnx' if ctc else 'hf or ct2'}")
    if ctc:
        student, feature_extractor, _ = load_ctc_student(model)
        provenance = read_record(Path(model) / STUDENT_FILE) if (Path(model) / STUDENT_FILE).is_file() else {}
        return export_onnx(student, feature_extractor, out, provenance, source=model)
    whisper = load_whisper(model)
    with folder_written_atomically(out) as tmp:
        if format == "hf":
            _write_hf(whisper, tmp)
        else:
            _write_ct2(whisper, tmp, quantization)
        source_folder = whisper.folder
        if source_folder is not None and (source_folder / STUDENT_FILE).is_file():
            shutil.copy2(source_folder / STUDENT_FILE, tmp / STUDENT_FILE)
        step = clip_pad_step(whisper.processor.feature_extractor)
        record = {
            "format": format, "quantization": quantization, "source": model,
            "source_fingerprint": whisper.fingerprint.to_dict(),
            "parameters": sum(p.numel() for p in whisper.model.parameters()),
            "window_seconds": window_seconds(whisper.model.config), "multilingual": whisper.multilingual,
            # A clip-length model: each clip padded to the next multiple of this (None: to the window).
            "pad_step_seconds": step and step / SAMPLE_RATE,
            "export_version": EXPORT_VERSION,
        } | ({"ctranslate2": _ctranslate2_version()} if format == "ct2" else {})
        (tmp / EXPORT_RECORD).write_text(json.dumps(record, indent=2) + "\n")
        if card:
            from voxdistill.export.model_card import write_export_card

            write_export_card(tmp, record, None if source_folder is None else source_folder / "README.md",
                              location=str(out))
    return out


def _write_hf(whisper: Whisper, folder: Path) -> None:
    whisper.model.save_pretrained(folder)
    whisper.processor.save_pretrained(folder)
    whisper.processor.feature_extractor.save_pretrained(folder)  # preprocessor_config.json


def _write_ct2(whisper: Whisper, folder: Path, quantization: str) -> None:
    import ctranslate2

    with tempfile.TemporaryDirectory(prefix=".hf-source.", dir=folder.parent) as scratch:
        source = whisper.folder
        if source is None:  # a hub model: the converter reads a local copy, never the network
            source = Path(scratch)
            whisper.model.save_pretrained(source)
            whisper.processor.save_pretrained(source)
        converter = ctranslate2.converters.TransformersConverter(str(source))
        converter.convert(str(folder), quantization=quantization, force=True)
    # Beside model.bin, config.json (CTranslate2's) and vocabulary.json: what a client needs to make
    # the model's input and read its output. The tokenizer files come from the loaded processor, so
    # a source with only vocab.json/merges.txt still gets a tokenizer.json.
    whisper.processor.tokenizer.save_pretrained(folder)
    whisper.processor.feature_extractor.save_pretrained(folder)


def _ctranslate2_version() -> str:
    import ctranslate2

    return ctranslate2.__version__


def is_ct2_folder(model: str) -> bool:
    path = Path(model).expanduser()
    return path.is_dir() and (path / "model.bin").is_file()


def ct2_folder_for(model: str, compute_type: str = "float32") -> Path:
    """A CTranslate2 folder of ``model`` to run at ``compute_type``: ``model`` itself when it is a
    CTranslate2 folder; else its export into the cache (``CACHE/ct2/``), made once per model and
    compute type through `export_model`, weights stored as the compute type (what ``export
    --quantization`` of that name deploys; float32 for a compute type that is no export option).
    The cache key is the bytes of the model's Hugging Face files (a hub model: its fingerprint)."""
    if is_ct2_folder(model):
        return Path(model).expanduser()
    quantization = compute_type if compute_type in QUANTIZATIONS else "float32"
    folder = resolve_model_folder(model)
    if isinstance(folder, Path):
        key = sha256_of_files(folder / name for name in _MODEL_FILES if (folder / name).is_file())
        label = model.split(":", 1)[1] if model.startswith("bundled:") else folder.name
        source = str(folder)
    else:  # a hub id
        key = load_whisper(model).fingerprint.digest
        label = model.replace("/", "--")
        source = model
    digest = hashlib.sha256(f"{key}|{EXPORT_VERSION}|{_ctranslate2_version()}".encode()).hexdigest()[:12]
    out = cache_dir() / "ct2" / f"{label}-{quantization}-{digest}"
    if not out.is_dir():
        try:
            export_model(source, "ct2", out, quantization, card=False)
        except (OSError, ExportError):
            if not (out / EXPORT_RECORD).is_file():  # unless a concurrent export finished first
                raise
    return out
