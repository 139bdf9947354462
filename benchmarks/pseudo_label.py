"""Pseudo-labelling speed on this machine: utterances/s and real-time factor of `pseudo-label` for
both bundled teachers at several batch sizes, against a plain loop that transcribes one utterance
at a time with the same model; where the time goes; disk cost of the top-k cache.

    .venv/bin/python benchmarks/pseudo_label.py [--corpus DIR] [--utterances 48]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from voxdistill.audio import SAMPLE_RATE, load_audio
from voxdistill.console import quiet_transformers
from voxdistill.data.manifest import read_manifest
from voxdistill.decoding import DecodingOptions, decode_tokens, encode, log_mel
from voxdistill.models.loading import BUNDLED, load_whisper
from voxdistill.teacher.pseudo_label import PseudoLabelConfig, label_batch, run_pseudo_label
from voxdistill.transcribe import transcribe_audio

from _common import Column, Stopwatch, Table, add_demo_corpus_argument, demo_training_subset, run

BATCH_SIZES = (1, 4, 8, 16)


def plain_loop(whisper, utts, manifest_dir) -> float:
    """One utterance at a time, Hugging Face generate with the model's defaults (no step cap)."""
    options = DecodingOptions(batch_size=1, max_tokens_per_second=None)
    with Stopwatch() as watch:
        for u in utts:
            transcribe_audio(whisper, [load_audio(u.audio_path(manifest_dir))], options)
    return watch.seconds


def time_split(whisper, audios, batch_size) -> dict[str, float]:
    """Seconds in feature extraction, encoder, decoding steps and the top-k teacher-forced pass."""
    parts = dict.fromkeys(("features", "encoder", "decoding", "top-k pass"), 0.0)
    options = DecodingOptions(batch_size=batch_size)
    for i in range(0, len(audios), batch_size):
        batch = audios[i : i + batch_size]
        watch = Stopwatch()
        features = log_mel(whisper, batch)
        parts["features"] += watch.lap()
        enc = encode(whisper, features)
        parts["encoder"] += watch.lap()
        decode_tokens(whisper, enc, options, max(len(a) for a in batch) / SAMPLE_RATE)
        parts["decoding"] += watch.lap()
    with Stopwatch() as labelling:
        for i in range(0, len(audios), batch_size):
            label_batch(whisper, audios[i : i + batch_size], options, top_k=16)
    # label_batch = features + encoder + decoding + top-k pass
    parts["top-k pass"] = max(labelling.seconds - parts["features"] - parts["encoder"] - parts["decoding"], 0.0)
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_demo_corpus_argument(parser)
    parser.add_argument("--utterances", type=int, default=48, help="training utterances labelled (default 48)")
    args = parser.parse_args()
    quiet_transformers()
    work = Path(tempfile.mkdtemp(prefix="voxdistill-pl-bench-"))
    utts, manifest = demo_training_subset(args.corpus, args.utterances, work)
    audio_s = sum(u.duration for u in utts)
    print(f"{len(utts)} utterances of the demo train split, {audio_s:.0f} s of audio, "
          f"{torch.get_num_threads()} threads, greedy, top-k 16")

    for name in BUNDLED:
        model = f"bundled:{name}"
        whisper = load_whisper(model)
        transcribe_audio(whisper, [load_audio(utts[0].audio_path(args.corpus))])  # warm-up
        baseline = plain_loop(whisper, utts, args.corpus)
        table = Table(Column("method", width=28, left=True), Column("utt/s", ".2f", 6), Column("RTF", ".3f", 6),
                      Column("speed-up", ".2f", 8))
        print(f"\n{model}\n{table.header()}")
        print(table.row("plain loop, batch 1", len(utts) / baseline, baseline / audio_s, 1.0))
        for batch_size in BATCH_SIZES:
            config = PseudoLabelConfig(model, manifest, work / f"{name}-b{batch_size}",
                                       DecodingOptions(batch_size=batch_size), shard_size=64)
            with Stopwatch() as watch:
                run_pseudo_label(config, progress=False)
            print(table.row(f"pseudo-label, batch {batch_size}", len(utts) / watch.seconds, watch.seconds / audio_s,
                            baseline / watch.seconds))
        cache_bytes = sum(p.stat().st_size for p in (work / f"{name}-b8" / "shards").glob("*.safetensors"))
        tokens = sum(len(r.extra["pseudo_label_tokens"]) + 1 for r in read_manifest(work / f"{name}-b8" / "pseudo_labels.jsonl"))
        print(f"top-k cache: {cache_bytes / len(utts) / 1024:.1f} KiB per utterance, "
              f"{cache_bytes / tokens:.0f} bytes per position")
        audios = [load_audio(u.audio_path(args.corpus)) for u in utts]
        for batch_size in (1, 8):
            parts = time_split(whisper, audios, batch_size)
            total = sum(parts.values())
            print(f"time at batch {batch_size}: " + ", ".join(f"{k} {v / total:.0%}" for k, v in parts.items())
                  + f" (of {total:.1f} s)")


if __name__ == "__main__":
    run(main)
