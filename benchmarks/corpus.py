"""The built-in corpus on this machine: synthesis throughput per engine, build time of the demo
preset, the size of the full preset, and the bundled teachers' WER per split and domain of the demo
corpus (how hard each domain is).

    .venv/bin/python benchmarks/corpus.py [--corpus DIR] [--skip-wer]
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from voxdistill.audio import SAMPLE_RATE
from voxdistill.console import quiet_transformers
from voxdistill.data.corpus import HELD_OUT_VOICES, PRESETS, SPLITS, TRAIN_VOICES, build_corpus, plan_corpus
from voxdistill.data.text import sentence_pool
from voxdistill.data.tts import synthesize
from voxdistill.decoding import DecodingOptions
from voxdistill.models.loading import BUNDLED, load_whisper
from voxdistill.paths import cache_dir
from voxdistill.scoring.metrics import word_error_rate
from voxdistill.transcribe import transcribe_manifest


def synthesis_throughput(sentences_per_voice: int = 8) -> None:
    sentences = [s.text for s in sentence_pool(sentences_per_voice, seed=123, max_words=24)]
    per_engine: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])  # utts, audio s, wall s
    for voice in TRAIN_VOICES + HELD_OUT_VOICES:
        synthesize(voice, sentences[0])  # warm-up: loads Piper's model once per process
        start = time.perf_counter()
        audio_s = sum(len(synthesize(voice, text)) for text in sentences) / SAMPLE_RATE
        totals = per_engine[voice.engine]
        totals[0] += len(sentences)
        totals[1] += audio_s
        totals[2] += time.perf_counter() - start
    print("synthesis throughput, one process")
    print(f"{'engine':10} {'utts/s':>7} {'audio s per s':>14}")
    for engine, (utts, audio_s, wall) in per_engine.items():
        print(f"{engine:10} {utts / wall:7.1f} {audio_s / wall:14.1f}")


def full_preset_hours(sample: int = 120) -> None:
    specs = plan_corpus(PRESETS["full"], seed=0)
    rng = np.random.default_rng(0)
    picked = [specs[i] for i in rng.choice(len(specs), size=sample, replace=False)]
    mean_s = np.mean([len(synthesize(s.voice, s.text)) / SAMPLE_RATE for s in picked])
    print(f"\nfull preset: {len(specs)} utterances, estimated {len(specs) * mean_s / 3600:.1f} hours "
          f"(mean {mean_s:.1f} s from {sample} synthesised at random)")


def teacher_wer(corpus: Path) -> None:
    print(f"\nbundled teachers on {corpus} (greedy, batch 8, English normaliser)")
    for name in BUNDLED:
        whisper = load_whisper(f"bundled:{name}")
        print(f"\n{name}\n{'split':16} {'domain':24} {'utts':>5} {'WER':>7}")
        for split in SPLITS:
            by_domain: dict[str, tuple[list, list]] = defaultdict(lambda: ([], []))
            start = time.perf_counter()
            for utt, text in transcribe_manifest(whisper, corpus / f"{split}.jsonl", DecodingOptions(batch_size=8)):
                by_domain[utt.domain][0].append(utt.text)
                by_domain[utt.domain][1].append(text)
            refs = [r for rs, _ in by_domain.values() for r in rs]
            hyps = [h for _, hs in by_domain.values() for h in hs]
            print(f"{split:16} {'(all)':24} {len(refs):5d} {word_error_rate(refs, hyps):7.1%}"
                  f"   {time.perf_counter() - start:.0f} s")
            if len(by_domain) > 1:
                for domain, (rs, hs) in sorted(by_domain.items()):
                    print(f"{'':16} {domain:24} {len(rs):5d} {word_error_rate(rs, hs):7.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=cache_dir() / "corpus" / "demo")
    parser.add_argument("--skip-wer", action="store_true")
    args = parser.parse_args()
    quiet_transformers()
    synthesis_throughput()
    full_preset_hours()
    for attempt in ("first", "second"):
        start = time.perf_counter()
        summaries = build_corpus(PRESETS["demo"], args.corpus, seed=0, progress=False)
        print(f"demo build ({attempt}): {time.perf_counter() - start:.1f} s, "
              f"{sum(s.utterances for s in summaries)} utterances, {sum(s.hours for s in summaries):.2f} h")
    if not args.skip_wer:
        teacher_wer(args.corpus)


if __name__ == "__main__":
    main()
