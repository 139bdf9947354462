"""``voxdistill export``: a model as a deployable folder, written atomically.

- ``hf``: a Hugging Face Whisper folder; ``ct2``: a CTranslate2 folder at a chosen weight
  quantization (both `formats.ctranslate2`); ``onnx``: a CTC student's ONNX folder (`formats.onnx`).

Each carries the source's ``student.json`` when it has one and ``voxdistill-export.json``: what was
exported from what. A Hugging Face or CTranslate2 folder also gets a model card (``README.md``)
saying how to run it.
"""

from __future__ import annotations

from pathlib import Path

from voxdistill.errors import VoxdistillError
from voxdistill.files import folder_written_atomically
from voxdistill.formats import EXPORT_RECORD  # re-exported for the CLI until it imports from voxdistill.formats
from voxdistill.formats.ctranslate2 import QUANTIZATIONS, write_whisper_folder
from voxdistill.models.loading import load_whisper
from voxdistill.models.student import STUDENT_FILE

FORMATS = ("hf", "ct2", "onnx")  # onnx: CTC students (models.ctc)


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
    from voxdistill.formats.onnx import export_onnx
    from voxdistill.models.ctc import is_ctc_folder, load_ctc_student, read_record

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
        record = write_whisper_folder(whisper, format, tmp, quantization, source=model)
        source_folder = whisper.folder
        if card:
            from voxdistill.export.model_card import write_export_card

            write_export_card(tmp, record, None if source_folder is None else source_folder / "README.md",
                              location=str(out))
    return out
