"""Pseudo-labelling speed on this machine: utterances/s and real-time factor of `pseudo-label` for
both bundled teachers at several batch sizes, against a plain loop that transcribes one utterance
at a time with the same model; where the time goes; disk cost of the top-k cache.

    .venv/bin/python benchmarks/pseudo_label.py [--corpus DIR] [--utterances 48]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from itertools import islice
from pathlib import Path

import torch

from voxdistill.audio import SAMPLE_RATE, load_audio
from voxdistill.console import quiet_transformers
from voxdistill.data.corpus import PRESETS, build_corpus
from voxdistill.data.manifest import read_manifest, write_manifest
from voxdistill.decoding import DecodingOptions, decode_tokens, encode, log_mel
from voxdistill.models.loading import BUNDLED, load_whisper
from voxdistill.paths import cache_dir
from voxdistill.teacher.pseudo_label import PseudoLabelConfig, label_batch, run_pseudo_label
from voxdistill.transcribe import transcribe_audio

BATCH_SIZES = (1, 4, 8, 16)


def plain_loop(whisper, utts, manifest_dir) -> float:
    """One utterance at a time, Hugging Face generate with the model's defaults (no step cap)."""
    options = DecodingOptions(batch_size=1, max_tokens_per_second=None)
    start = time.perf_counter()
    for u in utts:
        transcribe_audio(whisper, [load_audio(u.audio_path(manifest_dir))], options)
    return time.perf_counter() - start


def time_split(whisper, audios, batch_size) -> dict[str, float]:
    """Seconds in feature extraction, encoder, decoding steps and the top-k teacher-forced pass."""
    parts = dict.fromkeys(("features", "encoder", "decoding", "top-k pass"), 0.0)
    options = DecodingOptions(batch_size=batch_size)
    for i in range(0, len(audios), batch_size):
        batch = audios[i : i + batch_size]
        t0 = time.perf_counter()
        features = log_mel(whisper, batch)
        t1 = time.perf_counter()
        enc = encode(whisper, features)
        t2 = time.perf_counter()
        decode_tokens(whisper, enc, options, max(len(a) for a in batch) / SAMPLE_RATE)
        t3 = time.perf_counter()
        parts["features"] += t1 - t0
        parts["encoder"] += t2 - t1
        parts["decoding"] += t3 - t2
    total_forward = time.perf_counter()
    for i in range(0, len(audios), batch_size):
        label_batch(whisper, audios[i : i + batch_size], options, top_k=16)
    labelled = time.perf_counter() - total_forward
    # label_batch = features + encoder + decoding + top-k pass
    parts["top-k pass"] = max(labelled - parts["features"] - parts["encoder"] - parts["decoding"], 0.0)
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=cache_dir() / "corpus" / "demo")
    parser.add_argument("--utterances", type=int, default=48)
    args = parser.parse_args()
    quiet_transformers()
    build_corpus(PRESETS["demo"], args.corpus, seed=0, progress=False)
    work = Path(tempfile.mkdtemp(prefix="voxdistill-pl-bench-"))
    utts = list(islice(read_manifest(args.corpus / "train.jsonl"), args.utterances))
    manifest = work / "subset.jsonl"
    write_manifest(manifest, [u.resolved(args.corpus) for u in utts])
    audio_s = sum(u.duration for u in utts)
    print(f"{len(utts)} utterances of the demo train split, {audio_s:.0f} s of audio, "
          f"{torch.get_num_threads()} threads, greedy, top-k 16")

    for name in BUNDLED:
        model = f"bundled:{name}"
        whisper = load_whisper(model)
        transcribe_audio(whisper, [load_audio(utts[0].audio_path(args.corpus))])  # warm-up
        baseline = plain_loop(whisper, utts, args.corpus)
        print(f"\n{model}\n{'method':28} {'utt/s':>6} {'RTF':>6} {'speed-up':>8}")
        print(f"{'plain loop, batch 1':28} {len(utts) / baseline:6.2f} {baseline / audio_s:6.3f} {1:8.2f}")
        for batch_size in BATCH_SIZES:
            config = PseudoLabelConfig(model, manifest, work / f"{name}-b{batch_size}",
                                       DecodingOptions(batch_size=batch_size), shard_size=64)
            start = time.perf_counter()
            run_pseudo_label(config, progress=False)
            elapsed = time.perf_counter() - start
            print(f"{'pseudo-label, batch ' + str(batch_size):28} {len(utts) / elapsed:6.2f} "
                  f"{elapsed / audio_s:6.3f} {baseline / elapsed:8.2f}")
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
    main()
