"""A new student folder from a teacher's own layers (`voxdistill student init`): a Whisper student
(`models.student`) or a CTC student (`models.ctc`), with the options each family takes checked
before the teacher loads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn

from voxdistill.errors import VoxdistillError
from voxdistill.files import check_new_folder, output_lock
from voxdistill.models.ctc import build_ctc_student, ctc_provenance, save_ctc_student
from voxdistill.models.loading import Whisper, load_whisper
from voxdistill.models.student import (StudentConfigError, StudentSpec, build_student, parse_layers, save_student,
                                       window_seconds)


@dataclass(frozen=True)
class StudentInit:
    """What to build. Layers are a count of maximally spaced layers ("4") or 0-based indices ("0,5");
    option names in errors are the command line's."""
    teacher: str  # model argument: folder, Hugging Face id or bundled name
    out: Path  # student folder; must not exist or be empty
    encoder_layers: str
    family: str = "whisper"  # "whisper" (encoder-decoder) or "ctc" (encoder and a CTC head)
    decoder_layers: str | None = None  # Whisper students: required
    d_model: int | None = None  # Whisper students: narrower residual width; None keeps the teacher's
    ffn_dim: int | None = None  # Whisper students: narrower feed-forward width; None keeps the teacher's
    window_seconds: int | None = None  # None: the teacher's window
    pad_step_seconds: float | None = None  # Whisper students: encode each clip padded to a multiple of this
    trailing_silence_seconds: float = 0.0  # with a pad step: at least this much silence after each clip
    head: str | None = None  # CTC students: "linear" (default) or "lstm"
    lstm_hidden: int = 256  # CTC lstm head: hidden units per direction
    lstm_layers: int = 1  # CTC lstm head: stacked layers


@dataclass(frozen=True)
class StudentMade:
    out: Path
    parameters: int
    teacher_parameters: int
    provenance: dict  # what student.json records: which teacher layers, widths and window


def init_student(request: StudentInit) -> StudentMade:
    """Build the student ``request`` asks for from its teacher's layers and save it in ``request.out``."""
    if request.family == "whisper" and request.decoder_layers is None:
        raise StudentConfigError("--decoder-layers: a Whisper student needs decoder layers (a count or indices)")
    if request.family == "ctc":
        if request.decoder_layers is not None or request.d_model is not None or request.ffn_dim is not None:
            raise StudentConfigError("--family ctc: a CTC student keeps the teacher's encoder widths and has no "
                                     "decoder; drop --decoder-layers, --d-model and --ffn-dim")
    elif request.head is not None:
        raise StudentConfigError("--head: only for --family ctc")
    check_new_folder(request.out)
    with output_lock(request.out):
        return _init_student(request)


def _init_student(request: StudentInit) -> StudentMade:
    teacher = load_whisper(request.teacher)
    encoder_layers = parse_layers(request.encoder_layers, teacher.model.config.encoder_layers, name="--encoder-layers")
    if request.family == "ctc":
        if request.pad_step_seconds is not None or request.trailing_silence_seconds:
            raise VoxdistillError("--pad-step and --trailing-silence are for Whisper students; a CTC student "
                                  "reads its whole window")
        student, provenance = _save_ctc_student(request, teacher, encoder_layers)
    else:
        student, provenance = _save_whisper_student(request, teacher, encoder_layers)
    return StudentMade(out=request.out, parameters=sum(p.numel() for p in student.parameters()),
                       teacher_parameters=sum(p.numel() for p in teacher.model.parameters()), provenance=provenance)


def _save_whisper_student(request: StudentInit, teacher: Whisper, encoder_layers: list[int]) -> tuple[nn.Module, dict]:
    spec = StudentSpec(
        encoder_layers=tuple(encoder_layers),
        decoder_layers=tuple(parse_layers(request.decoder_layers, teacher.model.config.decoder_layers,
                                          name="--decoder-layers")),
        d_model=request.d_model, ffn_dim=request.ffn_dim, window_seconds=request.window_seconds,
        pad_step_seconds=request.pad_step_seconds, trailing_silence_seconds=request.trailing_silence_seconds,
    )
    student, provenance = build_student(teacher.model, spec)
    save_student(student, teacher.processor, provenance, teacher_source=request.teacher,
                 teacher_fingerprint=teacher.fingerprint.digest, out=request.out)
    return student, provenance


def _save_ctc_student(request: StudentInit, teacher: Whisper, encoder_layers: list[int]) -> tuple[nn.Module, dict]:
    student, feature_extractor = build_ctc_student(
        teacher, encoder_layers, window_seconds=request.window_seconds or window_seconds(teacher.model.config),
        head=request.head or "linear", lstm_hidden=request.lstm_hidden, lstm_layers=request.lstm_layers)
    provenance = ctc_provenance(teacher, student, encoder_layers)
    save_ctc_student(student, feature_extractor, request.out, provenance)
    return student, provenance
