"""``voxdistill export``: a model as a deployable folder, written atomically.

The model's family (`families`) says which formats it has and writes them: for Whisper models
``hf``, a Hugging Face folder, and ``ct2``, a CTranslate2 folder at a chosen weight quantization
(`formats.ctranslate2`); for CTC students ``onnx`` (`formats.onnx`). Each folder carries the
source's ``student.json`` when it has one and ``voxdistill-export.json``: what was exported from
what; a Hugging Face or CTranslate2 folder also a model card (``README.md``) saying how to run it.
"""

from __future__ import annotations

from pathlib import Path

from voxdistill.errors import VoxdistillError
from voxdistill.export.model_card import write_export_card
from voxdistill.families import FAMILIES, family_of
from voxdistill.files import check_new_folder, folder_written_atomically, output_lock
from voxdistill.formats.ctranslate2 import QUANTIZATIONS

FORMATS = tuple(dict.fromkeys(format for family in FAMILIES for format in family.export_formats))  # of every family


class ExportError(VoxdistillError):
    """An export cannot be made: unknown format or quantization."""


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
    check_new_folder(out)


def export_model(model: str, format: str, out: Path, quantization: str = "float32", card: bool = True) -> Path:
    """Export ``model`` (any model argument) as ``format``, one its family has, into ``out`` (which
    must not exist or be empty), atomically: written under a temporary name beside it, then renamed;
    a second export to the same ``out`` meanwhile is refused (`files.output_lock`).
    ``card``: write the model card its family has for the format."""
    out = Path(out)
    check_export_options(format, quantization, out)
    family = family_of(model)
    if format not in family.export_formats:
        raise ExportError(f"--format {format}: {model} is a {family.title}; "
                          f"export it with --format {' or '.join(family.export_formats)}")
    with output_lock(out), folder_written_atomically(out) as tmp:
        exported = family.export(model, format, tmp, quantization)
        usage = family.export_card_usage(exported.record) if card else None
        if usage is not None:
            write_export_card(tmp, exported.record, usage, exported.source_card, location=str(out))
    return out
