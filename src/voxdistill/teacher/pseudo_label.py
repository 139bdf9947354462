"""Pseudo-labelling: the teacher transcribes a manifest, keeps its top-k distributions, and records
exactly which teacher and preprocessing produced them.

Layout of an output folder:

    run.json                    what identifies the run (teacher fingerprint, decoding, top-k,
                                shard size, manifest hash); a restart with other settings is refused
    shards/00000.jsonl          one line per utterance of manifest lines [0, shard_size)
    shards/00000.safetensors    the teacher's top-k token ids and log-probabilities along its own
                                transcripts and along the references, and optionally its encoder
                                states (see ``teacher.topk``)
    pseudo_labels.jsonl         the merged manifest, in input order, filtered
    dropped.jsonl               utterances the filters dropped, with their ``drop_reasons``
    metadata.json               fingerprint, decoding and preprocessing settings, filters, counts

Every record holds the teacher's confidence signals (`teacher.filters.SIGNALS`) and, where its
no-speech probability is above the filters' threshold, Silero VAD's verdict on the clip
(``vad_speech``: the decision that a transcript the teacher is sure of is of silence). The filters are
applied when the shards are merged, from those records: an utterance with a reference is judged by
its WER (``wer_threshold``), one without by the reference-free `LabelFilters`. So the filter settings
are not part of the run's identity: the same command with other thresholds merges the finished
shards again, without relabelling.

Work is committed shard by shard: the safetensors file first, then the jsonl, each written under a
temporary name and renamed, so a shard's jsonl is its completion marker. A killed run started again
with the same arguments skips finished shards; every utterance ends up exactly once. Ctrl-C or
SIGTERM stops with `errors.Interrupted`, saying how many shards are committed.

Under ``accelerate launch`` or ``torchrun`` (``RANK``/``WORLD_SIZE`` set), process r takes the shards
with index ≡ r (mod world size); rank 0 merges once all are done.

The teacher runs in either runtime (`voxdistill.runtime`): in CTranslate2 it writes the same streams
of top-k rows (see ``runtime.ct2_backend``), and its fingerprint names the runtime, so its cache is
another teacher's than the PyTorch run of the same weights.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from itertools import islice
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from tqdm import tqdm

from voxdistill.audio import SAMPLE_RATE, load_audio
from voxdistill.config import to_dict
from voxdistill.data.dataset import clip_pad_step, encoder_positions_of
from voxdistill.data.manifest import Utterance, check_duration, read_manifest, scan_manifest, write_manifest
from voxdistill.decoding import Decoded, DecodingOptions, text_tokens
from voxdistill.errors import AudioError, VoxdistillError, kept_on_interrupt
from voxdistill.files import check_writable_output, output_lock, sha256_of_files, write_text_atomic
from voxdistill.models.loading import Whisper
from voxdistill.models.student import window_positions
from voxdistill.runtime import Recogniser, Runtime, by_padded_length, check_language, text_of, window_seconds
from voxdistill.runtime.checks import holds_speech
from voxdistill.runtime.loading import as_recogniser, load_whisper_recogniser
from voxdistill.scoring.metrics import word_error_rate
from voxdistill.teacher.filters import REASONS, SIGNALS, LabelFilters, label_signals
from voxdistill.teacher.topk import CLIP_SPAN, STREAMS, TopK, write_topk_shard


# Pseudo-labels are one window's transcript: a longer clip is the manifest's to fix (no splitting here).
TOO_LONG_TO_LABEL = ("the teacher labels clips that fit its window: cut the audio into clips no longer than "
                     "that, or leave it out of the manifest (--skip-bad-audio N skips up to N such files)")


class PseudoLabelError(VoxdistillError):
    """The output folder belongs to another run, or too many files were bad."""


@dataclass(frozen=True)
class PseudoLabelConfig:
    teacher: str  # model argument (bundled name, folder or hub id)
    manifest: Path
    out: Path
    decoding: DecodingOptions = DecodingOptions()
    top_k: int = 16  # teacher log-probs kept per output position; 0 keeps none
    wer_threshold: float | None = None  # drop pseudo-labels whose WER vs the reference exceeds this
    filters: LabelFilters = LabelFilters()  # when to drop pseudo-labels of utterances without a reference
    shard_size: int = 64  # utterances committed together
    max_bad_audio: int = 0  # unreadable files to skip (logged by id) before giving up
    # Seconds of the teacher's final encoder states to cache per utterance (from the start of its
    # window), the target of encoder-state distillation for a student with a window this long;
    # 0 keeps none; "clip": the positions holding each clip, however long (the target of
    # loss.encoder_kd_span=clip). float16, d_model · 100 bytes per second (38 KB/s for tiny.en).
    encoder_state_seconds: int | Literal["clip"] = 0
    # The runtime the teacher runs in (torch float32, or CTranslate2 at a compute type): another
    # runtime is another teacher, with its own fingerprint.
    runtime: Runtime = Runtime()

    @property
    def encoder_span(self) -> int | Literal["clip"]:
        """The teacher's encoder positions to cache per clip: a fixed count (0: none), or "clip"."""
        seconds = self.encoder_state_seconds
        return seconds if seconds == CLIP_SPAN else window_positions(seconds)

    def __post_init__(self):
        if self.top_k < 0 or self.shard_size < 1 or self.max_bad_audio < 0:
            raise ValueError(f"top_k >= 0, shard_size >= 1 and max_bad_audio >= 0 required: {self}")
        seconds = self.encoder_state_seconds
        if seconds != CLIP_SPAN and (isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 0):
            raise ValueError(f"encoder_state_seconds must be a whole number of seconds >= 0 or {CLIP_SPAN!r}, "
                             f"got {seconds!r}")
        if self.wer_threshold is not None and self.wer_threshold < 0:
            raise ValueError(f"wer_threshold must be >= 0, got {self.wer_threshold}")


@dataclass(frozen=True)
class PseudoLabelSummary:
    total: int
    kept: int
    dropped: int  # by the WER filter or the reference-free filters
    dropped_by: dict[str, int]  # utterances each rule dropped (one may fail several)
    skipped: int  # bad audio, skipped on request
    audio_seconds: float
    metadata_path: Path


def distributed_rank() -> tuple[int, int]:
    """(rank, world size) from the environment that ``accelerate launch`` and ``torchrun`` set;
    joins the process group (gloo: CPU-capable) when there is more than one process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world_size > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("gloo", rank=rank, world_size=world_size)
    return rank, world_size


def _barrier(world_size: int) -> None:
    if world_size > 1:
        torch.distributed.barrier()


def run_identity(config: PseudoLabelConfig, teacher: Recogniser) -> dict:
    return {
        "teacher_fingerprint": teacher.fingerprint.digest,
        # Batch size changes no output; of the checks, labelling reads only VAD's (the thresholds are
        # the filters', applied at merge, and a label is never resampled).
        "decoding": to_dict(config.decoding) | {"batch_size": None, "checks": {
            "vad": config.decoding.checks.vad, "vad_threshold": config.decoding.checks.vad_threshold}},
        "top_k": config.top_k,
        "streams": list(STREAMS),  # the cached row streams (teacher.topk)
        "signals": list(SIGNALS),  # what each record holds for the filters (teacher.filters)
        "encoder_state_seconds": config.encoder_state_seconds,
        "shard_size": config.shard_size,
        "manifest_sha256": sha256_of_files([config.manifest]),
    }


def _refuse_a_folder_of_other_files(out: Path) -> None:
    """A PseudoLabelError when ``out`` holds files but no pseudo-labelling run: the user's own
    folder, which this command would fill with its outputs."""
    if out.is_dir() and not (out / "run.json").is_file() and {p.name for p in out.iterdir()} - {"shards"}:
        raise PseudoLabelError(f"{out}: holds other files and no pseudo-labelling run; give a new or empty folder "
                               f"as --out (a run's own folder, with its run.json, resumes)")


def _claim_output(config: PseudoLabelConfig, identity: dict, rank: int, world_size: int) -> None:
    run_file = config.out / "run.json"
    if rank == 0:
        (config.out / "shards").mkdir(parents=True, exist_ok=True)
        # A folder without a finished shard holds no work to protect: a run that stopped before its
        # first shard (a mistyped option, a bad file) is started again with the settings now given.
        if not run_file.is_file() or not any((config.out / "shards").glob("*.jsonl")):
            write_text_atomic(run_file, json.dumps(identity, indent=2))
    _barrier(world_size)
    existing = json.loads(run_file.read_text())
    if "signals" not in existing:
        raise PseudoLabelError(
            f"{config.out} holds pseudo-labels of an older voxdistill, whose records lack the signals the "
            f"filters read ({', '.join(SIGNALS)}); label again into another --out, or delete that folder")
    if existing != identity:
        differing = sorted(k for k in identity if existing.get(k) != identity[k])
        raise PseudoLabelError(
            f"{config.out} holds pseudo-labels of another run (differs in: {', '.join(differing)}); "
            f"use another --out or delete that folder"
        )


def shards_of(manifest: Path, shard_size: int) -> Iterator[tuple[int, list[Utterance]]]:
    utterances = read_manifest(manifest)
    index = 0
    while chunk := list(islice(utterances, shard_size)):
        yield index, chunk
        index += 1


def shard_paths(out: Path, index: int) -> tuple[Path, Path]:
    return out / "shards" / f"{index:05d}.jsonl", out / "shards" / f"{index:05d}.safetensors"


@dataclass
class BatchLabels:
    """What the teacher writes for one batch of clips."""

    transcripts: list[Decoded]  # its transcript of each clip (token ids) with its confidence in it
    topk: list[TopK] | None  # top-k rows along each transcript (None when top_k is 0)
    reference_tokens: list[list[int] | None]  # each clip's reference as token ids, if it has one
    reference_topk: list[TopK | None]  # top-k rows teacher-forced along each reference
    encoder_states: list[torch.Tensor] | None  # per clip, (P, d_model): its final encoder states, first P positions


@torch.inference_mode()
def label_batch(model: Whisper | Recogniser, audios: list, options: DecodingOptions, top_k: int,
                references: list[str | None] | None = None, encoder_span: int | Literal["clip"] = 0) -> BatchLabels:
    """Transcribe a batch with the teacher (in any runtime) and keep, for top_k > 0, its
    distributions along its own transcripts and along the ``references`` that are given; its encoder
    states over ``encoder_span`` positions (0: none) or, for "clip", over each clip's own positions."""
    teacher = as_recogniser(model)
    references = references or [None] * len(audios)
    if clip_pad_step(teacher.feature_extractor) is None:  # a fixed window: the batch is one group
        return _label_group(teacher, audios, options, top_k, references, encoder_span)
    if encoder_span:
        raise VoxdistillError(f"{teacher.source} encodes each clip at its own length: its encoder states are not a "
                              f"fixed number of positions to cache; use a fixed-window teacher")

    def run(group: list[int]) -> list[tuple]:  # the clips padded alike, labelled together
        labels = _label_group(teacher, [audios[i] for i in group], options, top_k, [references[i] for i in group])
        return list(zip(labels.transcripts, labels.topk or [None] * len(group), labels.reference_tokens,
                        labels.reference_topk))

    transcripts, topk, reference_tokens, reference_topk = map(list, zip(*by_padded_length(teacher, audios, run)))
    return BatchLabels(transcripts, topk if top_k else None, reference_tokens, reference_topk, None)


def _label_group(teacher: Recogniser, audios: list, options: DecodingOptions, top_k: int,
                 references: list[str | None], encoder_span: int | Literal["clip"] = 0) -> BatchLabels:
    """`label_batch` for clips the teacher pads alike, encoded together."""
    encoded = teacher.encode(audios)
    transcripts = teacher.decode_scored(encoded, options, max(len(a) for a in audios) / SAMPLE_RATE)
    tokens = [t.tokens for t in transcripts]
    limit = teacher.max_target_positions - len(teacher.prompt(options.language)) - 1
    reference_tokens = [None if r is None else text_tokens(teacher.tokenizer, r)[:limit] for r in references]
    labels = BatchLabels(transcripts, None, reference_tokens, [None] * len(audios),
                         _encoder_states(teacher, encoded, audios, encoder_span) if encoder_span else None)
    if top_k == 0:
        return labels
    labels.topk = teacher.teacher_forced_topk(encoded, tokens, top_k, options.language)
    if any(r is not None for r in reference_tokens):
        labels.reference_topk = teacher.teacher_forced_topk(encoded, reference_tokens, top_k, options.language)
    return labels


def _encoder_states(teacher: Recogniser, encoded, audios: list, span: int | Literal["clip"]) -> list[torch.Tensor]:
    """Per clip, the teacher's final encoder states over its first ``span`` positions, or over the
    positions holding the clip (the last partly) for "clip"."""
    fe = teacher.feature_extractor
    window = encoder_positions_of(fe, fe.n_samples)
    sizes = [min(encoder_positions_of(fe, len(a)), window) if span == CLIP_SPAN else span for a in audios]
    states = teacher.encoder_states(encoded, max(sizes))  # (B, max, d)
    return [row[:n] for row, n in zip(states, sizes)]


@dataclass
class ShardLabels:
    records: list[dict]  # one per utterance of the shard, in manifest order
    topk: list[TopK]  # rows along the pseudo-labels of the records not skipped, in order
    reference_topk: list[TopK]  # rows along the references of those that have one, in order
    encoder_states: list[torch.Tensor]  # (P, d_model) per record not skipped, in order


def _label_shard(teacher: Recogniser, chunk: list[Utterance], config: PseudoLabelConfig, manifest_dir: Path,
                 progress: "_Progress", bad_audio: list[str]) -> ShardLabels:
    options = config.decoding
    records: dict[str, dict] = {}
    outputs: dict[str, tuple] = {}
    # Sorted by duration: clips of a batch end at similar steps, so fewer wasted decoding steps.
    ordered = sorted(chunk, key=lambda u: u.duration)
    for start in range(0, len(ordered), options.batch_size):
        batch, audios = [], []
        for utt in ordered[start : start + options.batch_size]:
            try:
                audio = load_audio(utt.audio_path(manifest_dir), too_long_advice=TOO_LONG_TO_LABEL)
                check_duration(config.manifest, utt, len(audio) / SAMPLE_RATE)  # it is written into the labels
                audios.append(audio)
                batch.append(utt)
            except AudioError as err:
                bad_audio.append(utt.id)
                if len(bad_audio) > config.max_bad_audio:
                    raise PseudoLabelError(
                        f"{err} (bad files so far: {len(bad_audio)}; --skip-bad-audio allows {config.max_bad_audio})"
                    ) from err
                records[utt.id] = {"id": utt.id, "skipped": str(err)}
        if batch:
            labels = label_batch(teacher, audios, options, config.top_k, [u.text for u in batch],
                                 config.encoder_span)
            for i, (utt, transcript) in enumerate(zip(batch, labels.transcripts)):
                records[utt.id] = _label_record(utt, text_of(teacher, transcript.tokens), transcript,
                                                labels.reference_tokens[i]) | _vad_signal(audios[i], transcript, config)
                outputs[utt.id] = (labels.topk[i] if labels.topk else None, labels.reference_topk[i],
                                   None if labels.encoder_states is None else labels.encoder_states[i])
            progress.update(len(batch), sum(len(a) for a in audios) / SAMPLE_RATE)
    # Back to manifest order; cached rows are stored in the same order.
    ordered_records = [records[u.id] for u in chunk]
    kept = [outputs[r["id"]] for r in ordered_records if r["id"] in outputs]
    return ShardLabels(ordered_records, [o[0] for o in kept if o[0] is not None],
                       [o[1] for o in kept if o[1] is not None], [o[2] for o in kept if o[2] is not None])


class _Progress:
    """A progress bar in utterances/s that also shows the real-time factor (wall s / audio s)."""

    def __init__(self, desc: str, enabled: bool):
        self.bar = tqdm(desc=desc, unit="utt", disable=not enabled)
        self.audio_seconds = 0.0
        self.started = time.perf_counter()

    def update(self, utterances: int, audio_seconds: float) -> None:
        self.audio_seconds += audio_seconds
        self.bar.update(utterances)
        self.bar.set_postfix(rtf=f"{(time.perf_counter() - self.started) / self.audio_seconds:.3f}")

    def close(self) -> None:
        self.bar.close()


def _label_record(utt: Utterance, text: str, transcript: Decoded, reference_tokens: list[int] | None) -> dict:
    record = utt.to_json()
    record.pop("text", None)
    if utt.text is not None:
        record["reference_text"] = utt.text
        record["reference_tokens"] = reference_tokens
    record["text"] = text
    record["pseudo_label_tokens"] = transcript.tokens
    if utt.text is not None:
        record["pseudo_label_wer"] = round(word_error_rate([utt.text], [text]), 4)
    return record | label_signals(text, transcript.avg_logprob, transcript.no_speech_prob)


def _vad_signal(audio: np.ndarray, transcript: Decoded, config: PseudoLabelConfig) -> dict:
    """``vad_speech``: whether Silero VAD hears speech in a clip whose no-speech probability is above
    the filters' threshold (the filters drop it as no speech when VAD hears none); {} for the others,
    which VAD need not hear."""
    threshold = config.filters.no_speech_threshold
    if not config.decoding.checks.vad or threshold is None or transcript.no_speech_prob <= threshold:
        return {}
    return {"vad_speech": holds_speech(audio, config.decoding.checks.vad_threshold)}


def drop_reasons(record: dict, config: PseudoLabelConfig) -> list[str]:
    """Why a pseudo-label record is dropped ([]: kept). Its reference, where it has one, is the better
    judge: such a record is dropped only by ``wer_threshold``, the others by ``config.filters``."""
    if "reference_text" not in record:
        return config.filters.reasons(record)
    too_wrong = config.wer_threshold is not None and record["pseudo_label_wer"] > config.wer_threshold
    return ["wer"] if too_wrong else []


def run_pseudo_label(config: PseudoLabelConfig, progress: bool = True) -> PseudoLabelSummary | None:
    """Label every utterance of ``config.manifest`` into ``config.out`` (resuming a killed run).
    Returns the summary on rank 0 and None on other ranks. Rank 0 holds the output's lock
    (`files.output_lock`): a second run into the same folder meanwhile is refused."""
    check_writable_output(config.out, "folder")
    # A bad line, a repeated id, no utterance or more missing audio than may be skipped: before the teacher loads.
    scan = scan_manifest(config.manifest)
    scan.refuse_missing_audio(allowed=config.max_bad_audio)
    utterances = scan.utterances
    rank, world_size = distributed_rank()
    with output_lock(config.out, enabled=rank == 0):
        # Under the lock: a folder another run is filling is that run's, not "other files".
        _refuse_a_folder_of_other_files(config.out)
        return _pseudo_label(config, utterances, rank, world_size, progress)


def _pseudo_label(config: PseudoLabelConfig, utterances: int, rank: int, world_size: int,
                  progress: bool) -> PseudoLabelSummary | None:
    teacher = load_whisper_recogniser(config.teacher, config.runtime)
    if config.encoder_state_seconds and clip_pad_step(teacher.feature_extractor) is not None:
        raise PseudoLabelError(f"--encoder-state-seconds: {config.teacher} encodes each clip at its own length, so "
                               f"its encoder states cover no fixed window; leave it at 0 for this teacher")
    if config.encoder_state_seconds != CLIP_SPAN and config.encoder_state_seconds > window_seconds(teacher):
        raise PseudoLabelError(f"--encoder-state-seconds {config.encoder_state_seconds} is longer than the "
                               f"teacher's {window_seconds(teacher):g} s window")
    check_language(teacher, config.decoding.language)
    if config.top_k > teacher.vocab_size:
        raise PseudoLabelError(f"--top-k {config.top_k} is more than the {teacher.vocab_size} tokens of the teacher's "
                               f"vocabulary; give at most that (16 keeps almost all of the teacher's mass)")
    identity = run_identity(config, teacher)
    _claim_output(config, identity, rank, world_size)

    bar = _Progress(f"pseudo-label (rank {rank})" if world_size > 1 else "pseudo-label", progress)
    bad_audio: list[str] = []  # over the whole run, against max_bad_audio
    with kept_on_interrupt(lambda: committed_shards(config, utterances)):
        for index, chunk in shards_of(config.manifest, config.shard_size):
            jsonl_path = shard_paths(config.out, index)[0]
            if index % world_size == rank and not jsonl_path.is_file():
                _commit_shard(teacher, index, chunk, config, identity, bar, bad_audio)
        bar.close()
        _barrier(world_size)
        if rank != 0:
            return None
        return merge_shards(config, teacher)


def committed_shards(config: PseudoLabelConfig, utterances: int) -> str:
    """How many shards of ``config.out`` are finished, of the manifest's ``utterances``: what a
    rerun of the same command keeps."""
    done = len(list((config.out / "shards").glob("*.jsonl")))
    return f"{done} of {math.ceil(utterances / config.shard_size)} shards are committed in {config.out / 'shards'}"


def _commit_shard(teacher: Recogniser, index: int, chunk: list[Utterance], config: PseudoLabelConfig,
                  identity: dict, bar: "_Progress", bad_audio: list[str]) -> None:
    """Label one shard and write it: its top-k rows first, then its jsonl, the shard's completion marker."""
    jsonl_path, topk_path = shard_paths(config.out, index)
    labels = _label_shard(teacher, chunk, config, config.manifest.parent, bar, bad_audio)
    records = labels.records
    if config.top_k or config.encoder_span:
        write_topk_shard(topk_path, {"pseudo_label": labels.topk, "reference": labels.reference_topk},
                         config.top_k, fingerprint=identity["teacher_fingerprint"],
                         encoder_states=labels.encoder_states if config.encoder_span else None)
        with_reference = 0
        for row, record in enumerate(r for r in records if "skipped" not in r):
            record["topk_shard"] = str(topk_path.relative_to(config.out))
            record["topk_index"] = row
            if config.top_k and record.get("reference_tokens") is not None:
                record["reference_topk_index"] = with_reference
                with_reference += 1
    write_text_atomic(jsonl_path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def merge_shards(config: PseudoLabelConfig, teacher: Recogniser) -> PseudoLabelSummary:
    """Join finished shards, in manifest order, into ``pseudo_labels.jsonl`` and ``dropped.jsonl``
    (`drop_reasons`); write ``metadata.json``."""
    kept, dropped, skipped = [], [], 0
    dropped_by = dict.fromkeys(("wer", *REASONS), 0)
    audio_seconds = 0.0
    for index, _ in shards_of(config.manifest, config.shard_size):
        jsonl_path, _ = shard_paths(config.out, index)
        for line in jsonl_path.read_text().splitlines():
            record = json.loads(line)
            if "skipped" in record:
                skipped += 1
                continue
            audio_seconds += record["duration"]
            if reasons := drop_reasons(record, config):
                dropped.append(record | {"drop_reasons": reasons})
                for reason in reasons:
                    dropped_by[reason] += 1
            else:
                kept.append(record)

    # Shard paths in records are relative to the output folder; so are audio paths the input
    # manifest gave relative to its own (absolute ones stay absolute), so that the pseudo-label
    # manifest works from its new folder, and still does when a folder holding both is moved.
    def as_utterances(records: list[dict]) -> Iterator[Utterance]:
        manifest_dir, out_dir = config.manifest.parent.resolve(), config.out.resolve()
        for r in records:
            r = dict(r)
            path = Path(r["audio_filepath"])
            r["audio_filepath"] = str(path if path.is_absolute() else os.path.relpath(manifest_dir / path, out_dir))
            yield Utterance(id=r.pop("id"), audio_filepath=r.pop("audio_filepath"), duration=r.pop("duration"),
                            text=r.pop("text"), domain=r.pop("domain", None), voice=r.pop("voice", None), extra=r)

    write_manifest(config.out / "pseudo_labels.jsonl", as_utterances(kept))
    write_manifest(config.out / "dropped.jsonl", as_utterances(dropped))
    total = len(kept) + len(dropped) + skipped
    metadata = {
        "teacher": config.teacher,
        "fingerprint": teacher.fingerprint.to_dict(),
        "runtime": teacher.runtime.to_dict(),
        "decoding": asdict(config.decoding),
        "prompt_tokens": teacher.prompt(config.decoding.language),
        "top_k": config.top_k,
        "vocab_size": teacher.vocab_size,
        "topk_positions": "one row per label token plus the final end-of-text; log-probabilities over the full vocabulary",
        "topk_streams": list(STREAMS) if config.top_k else [],
        "encoder_state_seconds": config.encoder_state_seconds,
        "wer_threshold": config.wer_threshold,  # for utterances with a reference
        "filters": asdict(config.filters),  # for utterances without one
        "manifest": str(config.manifest.resolve()),
        "counts": {"total": total, "kept": len(kept), "dropped": len(dropped), "skipped_bad_audio": skipped,
                   "dropped_by": dropped_by},
        "audio_hours": round(audio_seconds / 3600, 4),
    }
    metadata_path = config.out / "metadata.json"
    write_text_atomic(metadata_path, json.dumps(metadata, indent=2))
    return PseudoLabelSummary(total, len(kept), len(dropped), dropped_by, skipped, audio_seconds, metadata_path)
