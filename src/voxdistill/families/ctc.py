"""The CTC family: students made of the teacher's encoder layers under a CTC head over characters
(`models.ctc`). A folder is one when it holds ``ctc_config.json``. It runs in PyTorch or onnxruntime
at float32 (`runtime.ctc_backend`), trains as `distill.ctc_trainer.CTCTrainer`, and is exported as
an ONNX folder (`formats.onnx`)."""

from __future__ import annotations

import shlex

from collections.abc import Mapping
from pathlib import Path

import torch

from voxdistill.distill.config import DistillConfig
from voxdistill.distill.ctc_trainer import CTCTrainer
from voxdistill.families.base import Exported, StudentFamily
from voxdistill.formats.onnx import write_onnx_folder
from voxdistill.models.ctc import CTC_CONFIG_FILE, load_ctc_student, read_record
from voxdistill.models.student import STUDENT_FILE
from voxdistill.runtime import CTC_BACKENDS, Runtime, RuntimeConfigError
from voxdistill.runtime.ctc_backend import CTCRecogniser, load_ctc_recogniser


def is_ctc_folder(model: str | Path) -> bool:
    path = Path(model).expanduser()
    return path.is_dir() and (path / CTC_CONFIG_FILE).is_file()


class CTCFamily(StudentFamily):
    name = "ctc"
    title = "CTC student"
    folder_description = f"a CTC student (no {CTC_CONFIG_FILE})"
    runtimes = CTC_BACKENDS
    runtime_option = "ctc_runtime"
    export_formats = ("onnx",)

    def recognises(self, model: str | Path) -> bool:
        return is_ctc_folder(model)

    def load_recogniser(self, model: str, runtime: Runtime, threads: int | None) -> CTCRecogniser:
        """The student in torch, or in onnxruntime (exported into the cache when it has no ONNX file)."""
        if runtime.backend not in self.runtimes or runtime.compute_type != "float32":
            raise RuntimeConfigError(f"{model}: a CTC student runs in {' or '.join(self.runtimes)} at float32, "
                                     f"not {runtime}")
        return load_ctc_recogniser(model, runtime.backend, threads or torch.get_num_threads())

    def trainer(self, config: DistillConfig, allow_config_change: bool) -> CTCTrainer:
        return CTCTrainer(config, allow_config_change)

    def export(self, model: str, format: str, folder: Path, quantization: str) -> Exported:
        student, feature_extractor, _ = load_ctc_student(model)
        provenance = read_record(Path(model) / STUDENT_FILE) if (Path(model) / STUDENT_FILE).is_file() else {}
        return Exported(write_onnx_folder(student, feature_extractor, folder, provenance, source=model), None)

    def card_kind(self, provenance: Mapping) -> str:
        return f"CTC student (teacher encoder layers under a {provenance.get('head', '?')} head over characters)"

    def card_usage(self, model_dir: Path) -> str:
        model_dir = shlex.quote(str(model_dir))
        return (
            "## How to use\n\n"
            "A CTC student: the teacher's encoder layers and a CTC head over characters, decoded greedily "
            "from one forward pass.\n\n"
            f"```\nvoxdistill transcribe {model_dir} speech.wav                 # PyTorch\n"
            f"voxdistill transcribe {model_dir} speech.wav --runtime onnx   # onnxruntime\n"
            f"voxdistill export {model_dir} --format onnx --out DIR         # an ONNX folder to deploy\n```\n"
        )

    def export_card_usage(self, record: Mapping) -> None:
        return None  # an exported ONNX folder carries no card


CTC = CTCFamily()
