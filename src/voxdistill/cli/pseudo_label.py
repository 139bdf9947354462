"""voxdistill pseudo-label: the teacher transcribes a manifest and keeps its top-k distributions."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from voxdistill.cli.options import (at_least, check_arguments, decoding, decoding_arguments, filter_arguments,
                                    label_filters, runtime, runtime_arguments, teacher_argument)


def register(sub) -> None:
    p = sub.add_parser(
        "pseudo-label", help="transcribe a manifest with the teacher, keeping its top-k distributions",
        description="The teacher transcribes every utterance (batched, sorted by length), keeps the "
                    "top-k log-probabilities along each transcript, and along each reference "
                    "transcript where the manifest has one, for offline distillation, and records its "
                    "fingerprint. Work is committed in shards: run the same command "
                    "again to resume (a second run on the same --out while one is running is refused). Runs on "
                    "several processes under accelerate launch or torchrun.")
    teacher_argument(p)
    p.add_argument("--manifest", type=Path, required=True, help="JSON Lines manifest of the audio to label")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    decoding_arguments(p, batch="utterances per forward pass")
    runtime_arguments(p)
    p.add_argument("--top-k", type=at_least(0), default=16,
                   help="teacher log-probabilities kept per output token for offline KD, at most the teacher's "
                        "vocabulary size; 0 keeps none (default 16)")
    p.add_argument("--wer-threshold", type=at_least(0.0, float), default=None,
                   help="where the manifest has reference text, drop utterances whose pseudo-label WER "
                        "exceeds this (e.g. 0.3); the counts are reported")
    filter_arguments(p)
    check_arguments(p, thresholds=False)
    p.add_argument("--shard-size", type=at_least(1), default=64, help="utterances committed together (default 64)")
    p.add_argument("--encoder-state-seconds", type=seconds_or_clip, default=0, metavar="S|clip",
                   help="also cache the teacher's encoder states over the first S seconds of its window, "
                        "the target of encoder-state KD (loss.encoder_kd_weight) for a student whose "
                        "window is S seconds, or with 'clip' over each clip's own positions (for "
                        "loss.encoder_kd_span=clip); float16, about 38 KB per second per utterance for "
                        "tiny.en (default 0: none)")
    p.add_argument("--skip-bad-audio", type=at_least(0), default=0, metavar="N",
                   help="skip up to N missing, unreadable or too long audio files, logged by id (default 0: "
                        "stop at the first; missing files are counted before the teacher loads)")
    p.set_defaults(func=run)


def seconds_or_clip(text: str) -> int | str:
    """An argparse type: whole seconds (0 or more), or 'clip'."""
    from voxdistill.teacher.topk import CLIP_SPAN

    if text == CLIP_SPAN:
        return CLIP_SPAN
    try:
        return at_least(0)(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"got {text!r}; give a whole number of seconds, 0 or more, or "
                                         f"{CLIP_SPAN!r}") from None


def run(args: argparse.Namespace) -> int:
    from voxdistill.teacher.pseudo_label import PseudoLabelConfig, run_pseudo_label

    config = PseudoLabelConfig(
        teacher=args.teacher, manifest=args.manifest, out=args.out, runtime=runtime(args),
        decoding=decoding(args), top_k=args.top_k, wer_threshold=args.wer_threshold, filters=label_filters(args),
        shard_size=args.shard_size, max_bad_audio=args.skip_bad_audio, encoder_state_seconds=args.encoder_state_seconds,
    )
    start = time.perf_counter()
    summary = run_pseudo_label(config)
    if summary is None:  # not rank 0 of a multi-process run
        return 0
    elapsed = time.perf_counter() - start
    reasons = ", ".join(f"{reason} {n}" for reason, n in summary.dropped_by.items() if n)
    print(f"{summary.total} utterances, {summary.audio_seconds / 3600:.2f} h of audio: "
          f"{summary.kept} kept, {summary.dropped} dropped{f' ({reasons})' if reasons else ''}, "
          f"{summary.skipped} bad audio skipped")
    print(f"pseudo-labels: {args.out / 'pseudo_labels.jsonl'}; metadata: {summary.metadata_path} "
          f"({elapsed:.0f} s this run)")
    return 0
