"""What a decoding step costs against the size of the vocabulary, in CTranslate2 at batch 1: the
model trimmed (``voxdistill prune --vocabulary``'s function, untrained) to each size, exported at the
compute type, and every size timed in one process, interleaved, at every thread count. Each round
encodes one clip's features and decodes a fixed number of steps twice (end-of-text suppressed, so
every size decodes the same count): the per-token cost is the difference over the extra steps.

    VOXDISTILL_CACHE=... .venv/bin/python benchmarks/vocabulary.py --model STUDENT \\
        --keep 32000 24000 16000 8000 [--compute-type int8] [--threads 1 2] [--rounds 30] --out vocab-bench

The untrimmed model is the first row. The trimmed and exported folders stay in OUT and are reused
by a later run for the same model (another model is refused). Only speed is measured here: what
trimming costs in WER, and what a recovery run gives back, is ``voxdistill evaluate`` on the trimmed
(and recovered) folders.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from functools import partial
from pathlib import Path

import ctranslate2
import numpy as np
from transformers import WhisperFeatureExtractor

from voxdistill.audio import SAMPLE_RATE
from voxdistill.console import quiet_transformers
from voxdistill.data.dataset import log_mel
from voxdistill.distill.prune import trim_student
from voxdistill.errors import VoxdistillError
from voxdistill.export.exporter import export_model
from voxdistill.runtime.ct2_backend import _max_length

from _common import Column, Table, run

SHORT, LONG = 4, 44  # decoding steps of the two timed calls


def timed_calls(model: ctranslate2.models.Whisper, features: ctranslate2.StorageView, prompt: list[int],
                eot: int) -> dict[str, float]:
    """Seconds of one encode and of decoding SHORT and LONG steps after ``prompt``."""
    start = time.perf_counter()
    encoded = model.encode(features, to_cpu=True)
    out = {"encode": time.perf_counter() - start}
    for steps in (SHORT, LONG):
        start = time.perf_counter()
        model.generate(encoded, [prompt], beam_size=1, max_length=_max_length(prompt, steps),
                       suppress_tokens=[eot], suppress_blank=False)
        out[steps] = time.perf_counter() - start
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a Whisper folder (a student), or bundled:whisper-tiny.en")
    parser.add_argument("--keep", type=int, nargs="+", required=True, help="ordinary tokens kept, per variant")
    parser.add_argument("--compute-type", default="int8")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seconds", type=float, default=5.0, help="audio length of the features encoded (default 5)")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    quiet_transformers()
    args.out.mkdir(parents=True, exist_ok=True)
    # The trimmed and exported folders are reused by a later run on the same OUT: only for the same model.
    made_from = args.out / "model.json"
    earlier = json.loads(made_from.read_text())["model"] if made_from.is_file() else args.model
    if earlier != args.model:
        raise VoxdistillError(f"{args.out} holds the folders of {earlier}, not {args.model}: give another --out")
    made_from.write_text(json.dumps({"model": args.model}) + "\n")
    folders = {"untrimmed": args.model}
    for keep in args.keep:
        trimmed = args.out / f"keep-{keep}"
        folders[f"keep {keep}"] = str(trimmed if trimmed.is_dir() else trim_student(args.model, keep, trimmed)[0])
    exported = {}
    for name, folder in folders.items():
        target = args.out / f"ct2-{name.replace(' ', '-')}-{args.compute_type}"
        exported[name] = target if target.is_dir() else export_model(folder, "ct2", target, args.compute_type)

    rows = []
    for threads in args.threads:
        models = {name: ctranslate2.models.Whisper(str(f), device="cpu", compute_type=args.compute_type,
                                                   intra_threads=threads) for name, f in exported.items()}
        calls = {}
        for name, model in models.items():
            ids = {token: i for i, token in enumerate(_vocabulary(exported[name]))}
            # The model's own features (its window, or a clip-length student's padding) of a quiet clip.
            extractor = WhisperFeatureExtractor.from_pretrained(exported[name])
            clip = np.random.default_rng(0).standard_normal(int(args.seconds * SAMPLE_RATE)).astype(np.float32) * 0.01
            features = ctranslate2.StorageView.from_array(np.ascontiguousarray(log_mel(extractor, [clip]).numpy()))
            prompt = [ids["<|startoftranscript|>"], ids["<|notimestamps|>"]]
            calls[name] = partial(timed_calls, model, features, prompt, ids["<|endoftext|>"])
            calls[name]()  # warm-up
        times: dict[str, list[dict]] = {name: [] for name in models}
        for turn in range(args.rounds):
            names = list(models)
            for name in names[turn % len(names):] + names[: turn % len(names)]:  # who goes first rotates
                times[name].append(calls[name]())
        for name, samples in times.items():
            encode = statistics.median(s["encode"] for s in samples)
            per_token = statistics.median((s[LONG] - s[SHORT]) / (LONG - SHORT) for s in samples)
            rows.append((name, len(_vocabulary(exported[name])), threads, 1000 * encode, 1000 * per_token))
    table = Table(Column("model", left=True), Column("vocabulary", "d"), Column("threads", "d"),
                  Column("encode ms", ".1f"), Column("ms a token", ".2f"))
    print(f"CTranslate2 {args.compute_type}, batch 1, {args.seconds:g} s of features, median of {args.rounds} "
          f"interleaved rounds\n")
    print(table.format(rows))


def _vocabulary(folder: Path) -> list[str]:
    return json.loads((folder / "vocabulary.json").read_text())


if __name__ == "__main__":
    run(main)
