"""The teacher-consistency rule, enforced before training starts.

The teacher that wrote the pseudo-labels must be the teacher behind the KL term: same weights,
same preprocessing. Each pseudo-label folder records its teacher's fingerprint (metadata.json and
every top-k shard), and so does a student built by ``student init`` (student.json): when the config
names no ``teacher.model``, the student's own teacher is the one the pseudo-labels must come from.
A run that would mix teachers stops with an error naming both fingerprints, unless
``teacher.allow_mismatch`` is set, in which case the mismatch is recorded in the run.

A fingerprint names the runtime the teacher ran in (`models.fingerprint`): the same weights run in
CTranslate2 (or at another precision) are another teacher, so their pseudo-labels never meet an
online KL term from the PyTorch teacher. Offline KD from that teacher's own cache is consistent by
construction (labels and KL rows are both its own), so it is accepted when the cache's teacher is
the named or recorded teacher's weights in another runtime: nothing else of that teacher runs.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from safetensors import safe_open

from voxdistill.distill.config import DistillConfig
from voxdistill.errors import VoxdistillError
from voxdistill.models.fingerprint import Fingerprint, preprocessing_config
from voxdistill.models.loading import Whisper, load_whisper
from voxdistill.models.student import STUDENT_FILE, recorded_teacher, window_positions
from voxdistill.models.vocabulary import VocabularyMap, recorded_vocabulary
from voxdistill.teacher.topk import CLIP_SPAN, TopKCache


class TeacherMismatchError(VoxdistillError):
    """Pseudo-labels and KL targets would come from different teachers or preprocessing."""


@dataclass
class TeacherSource:
    mode: str  # none | online | offline
    whisper: Whisper | None = None  # online: the frozen teacher
    topk_cache: TopKCache | None = None  # offline
    fingerprint: str | None = None  # the teacher behind the KD term
    mismatches: list[str] = field(default_factory=list)  # allowed mismatches, for the run record
    encoder_positions: int = 0  # encoder-state KD: positions compared (the student's window), 0 = off
    # Online KD of a student with a trimmed vocabulary: its ids in the teacher's, to read the teacher along them
    vocabulary: VocabularyMap | None = None
    # The student spells its labels itself: its vocabulary is not the one the pseudo-labels' tokens are in
    own_label_tokens: bool = False


def _runtime(fingerprint: Fingerprint) -> str:
    return f"{fingerprint.runtime['backend']} {fingerprint.runtime['compute_type']}"


def pseudo_label_folder(config: DistillConfig) -> Path | None:
    if config.teacher.pseudo_labels is not None:
        return config.teacher.pseudo_labels
    folder = config.data.train_manifest.parent
    return folder if (folder / "metadata.json").is_file() else None


def resolve_teacher(config: DistillConfig, student_feature_extractor, student_vocab_size: int | None,
                    label_sources: Counter | None = None) -> TeacherSource:
    """The teacher behind the run's KD terms, checked against the pseudo-labels, the student and,
    offline, against what the cache holds for the labels (``label_sources``: utterances per stream)
    and for encoder-state KD. ``student_vocab_size`` None: the student has no token-level KL term
    (a CTC student), so no vocabulary needs to match."""
    tc = config.teacher
    source = TeacherSource(mode=tc.mode)
    folder = pseudo_label_folder(config)
    metadata = json.loads((folder / "metadata.json").read_text()) if folder else None

    def mismatch(message: str) -> None:
        if not tc.allow_mismatch:
            raise TeacherMismatchError(f"{message}; set teacher.allow_mismatch=true to distil anyway")
        source.mismatches.append(message)

    if tc.mode == "offline":
        if metadata is None:
            raise TeacherMismatchError(
                "offline KD needs a pseudo-label folder (metadata.json and top-k shards): set "
                "teacher.pseudo_labels, or train on the pseudo_labels.jsonl inside that folder")
        if not metadata.get("top_k"):
            raise TeacherMismatchError(f"{folder}: pseudo-labels were made with --top-k 0; offline KD needs top-k rows")
        source.fingerprint = metadata["fingerprint"]["digest"]
        for shard in sorted((folder / "shards").glob("*.safetensors")):
            with safe_open(str(shard), framework="pt") as f:
                digest = f.metadata().get("teacher_fingerprint")
            if digest != source.fingerprint:
                mismatch(f"top-k shard {shard} was written by teacher {digest}, metadata says {source.fingerprint}")
        source.topk_cache = TopKCache(folder)
        if (label_sources or {}).get("reference") and "reference" not in metadata.get("topk_streams", []):
            raise TeacherMismatchError(
                f"{folder}: data.labels={config.data.labels} trains {label_sources['reference']} utterances on "
                f"their references, but this cache has no teacher rows along references (made by an older "
                f"voxdistill); pseudo-label again into a new folder, or set data.labels=pseudo_label")
        preprocessing = metadata["fingerprint"]["preprocessing"]
        teacher_vocab = metadata.get("vocab_size")
    if tc.model:
        source.whisper = load_whisper(tc.model)  # frozen: eval mode, no gradients
        digest = source.whisper.fingerprint.digest
        made = None if metadata is None else Fingerprint.from_dict(metadata["fingerprint"])
        other_runtime = made is not None and made.model_digest == digest
        if made is not None and made.digest != digest and not (other_runtime and tc.mode != "online"):
            hint = ("; the same weights in another runtime are numerically another teacher: distil offline from "
                    "that teacher's cache (teacher.mode=offline), or pseudo-label again with --runtime torch"
                    if other_runtime else "")
            mismatch(f"pseudo-labels in {folder} were made by teacher {made.digest} ({metadata.get('teacher')}, "
                     f"{_runtime(made)}), but the KD teacher {tc.model} is {digest} (torch float32){hint}")
        if tc.mode == "online":
            source.fingerprint = digest
            preprocessing = source.whisper.fingerprint.preprocessing
            teacher_vocab = source.whisper.model.config.vocab_size
        elif tc.mode == "none":
            source.whisper = None  # a teacher named in a CE-only run is only checked, never run
    elif metadata is not None and (teacher := recorded_teacher(config.student)) is not None:
        made_by = metadata["fingerprint"]["digest"]
        # The student's teacher run in another runtime made them: accepted, as only its cache is read.
        same_weights = Fingerprint.from_dict(metadata["fingerprint"]).model_digest
        if teacher["fingerprint"] not in (made_by, same_weights):
            mismatch(f"pseudo-labels in {folder} were made by teacher {made_by} ({metadata.get('teacher')}), but "
                     f"the student was built from teacher {teacher['fingerprint']} ({teacher['source']}; "
                     f"{config.student / STUDENT_FILE}); pseudo-label again with the student's teacher, or set "
                     f"teacher.model to the teacher that made them if distilling from it is intended")
    trimmed = recorded_vocabulary(config.student)
    labelled_in = metadata.get("vocab_size") if metadata else None
    source.own_label_tokens = student_vocab_size is not None and (
        trimmed is not None or labelled_in not in (None, student_vocab_size))
    if tc.mode == "none":
        return source

    # The student may take a shorter window than the teacher, or pad each clip only to its own
    # length (the teacher's side is unchanged: it sees its own window, in pseudo-labelling and online
    # alike); everything else must agree.
    padding = ("chunk_seconds", "clip_pad_step_samples", "clip_trailing_samples")
    student_preprocessing = preprocessing_config(student_feature_extractor)
    student_window = student_preprocessing.pop("chunk_seconds")
    for key in padding[1:]:
        student_preprocessing.pop(key, None)
    teacher_preprocessing = {k: v for k, v in preprocessing.items() if k not in padding}
    if student_preprocessing != teacher_preprocessing:
        mismatch(f"the student's preprocessing {student_preprocessing} differs from the teacher's {teacher_preprocessing}")
    if student_window > preprocessing["chunk_seconds"]:
        mismatch(f"the student's {student_window} s window is longer than the teacher's {preprocessing['chunk_seconds']} s")
    if "clip_pad_step_samples" in preprocessing:
        # A clip-length teacher reads each clip at its own length: its batches must run in groups
        # (as pseudo-labelling does), and its encoder states are no fixed number of positions.
        if tc.mode == "online":
            raise TeacherMismatchError(
                f"the teacher {tc.model} encodes each clip at its own length; distil from it offline, from its "
                f"pseudo-labels and top-k cache (teacher.mode=offline)")
        if config.loss.encoder_kd_weight > 0:
            raise TeacherMismatchError(
                f"the teacher that made {folder} encodes each clip at its own length, so its encoder states do "
                f"not cover a fixed window; set loss.encoder_kd_weight=0")
    if config.loss.encoder_kd_weight > 0:
        source.encoder_positions = window_positions(student_window)
        cached = metadata.get("encoder_state_seconds", 0) if metadata else 0
        if tc.mode == "offline" and cached == CLIP_SPAN:
            if config.loss.encoder_kd_span != "clip":
                raise TeacherMismatchError(
                    f"{folder}: the cache holds the teacher's encoder states over each clip alone "
                    f"(--encoder-state-seconds clip), but loss.encoder_kd_span={config.loss.encoder_kd_span} compares "
                    f"the student's whole {student_window} s window; set loss.encoder_kd_span=clip, or pseudo-label "
                    f"again with --encoder-state-seconds {student_window}")
        elif tc.mode == "offline" and cached < student_window:
            raise TeacherMismatchError(
                f"{folder}: loss.encoder_kd_weight needs the teacher's encoder states over the student's "
                f"{student_window} s window, but the cache holds {cached} s; pseudo-label again with "
                f"--encoder-state-seconds {student_window}, or use teacher.mode=online")
    if teacher_vocab is not None and student_vocab_size is not None and teacher_vocab != student_vocab_size:
        if trimmed is None or trimmed.source_size != teacher_vocab:
            raise TeacherMismatchError(
                f"the student's vocabulary ({student_vocab_size}) differs from the teacher's ({teacher_vocab}); "
                f"a KL term needs the same vocabulary")
        if tc.mode == "offline":
            raise TeacherMismatchError(
                f"the student's vocabulary was trimmed to {student_vocab_size} tokens ({config.student / STUDENT_FILE}): "
                f"it learns its labels in its own tokens, which the teacher's cached rows do not follow; distil "
                f"it from the teacher online (teacher.mode=online), or with CE alone (teacher.mode=none)")
        source.vocabulary = trimmed
    return source
