"""The built-in corpus on this machine: synthesis throughput per engine, build time of the demo
preset, the size of the full preset, and the bundled teachers' WER per split and domain of the demo
corpus (how hard each domain is).

    .venv/bin/python benchmarks/corpus.py [--corpus DIR] [--skip-wer]
"""

from __future__ import annotations

import argparse
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
from voxdistill.scoring.metrics import word_error_rate
from voxdistill.transcribe import transcribe_manifest

from _common import Column, Stopwatch, Table, add_demo_corpus_argument, run


def synthesis_throughput(sentences_per_voice: int = 8) -> None:
    sentences = [s.text for s in sentence_pool(sentences_per_voice, seed=123, max_words=24)]
    per_engine: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])  # utts, audio s, wall s
    for voice in TRAIN_VOICES + HELD_OUT_VOICES:
        synthesize(voice, sentences[0])  # warm-up: loads Piper's model once per process
        with Stopwatch() as watch:
            audio_s = sum(len(synthesize(voice, text)) for text in sentences) / SAMPLE_RATE
        totals = per_engine[voice.engine]
        totals[0] += len(sentences)
        totals[1] += audio_s
        totals[2] += watch.seconds
    print("synthesis throughput, one process")
    table = Table(Column("engine", width=10, left=True), Column("utts/s", ".1f", 7), Column("audio s per s", ".1f"))
    print(table.format((engine, utts / wall, audio_s / wall) for engine, (utts, audio_s, wall) in per_engine.items()))


def full_preset_hours(sample: int = 120) -> None:
    specs = plan_corpus(PRESETS["full"], seed=0)
    rng = np.random.default_rng(0)
    picked = [specs[i] for i in rng.choice(len(specs), size=sample, replace=False)]
    mean_s = np.mean([len(synthesize(s.voice, s.text)) / SAMPLE_RATE for s in picked])
    print(f"\nfull preset: {len(specs)} utterances, estimated {len(specs) * mean_s / 3600:.1f} hours "
          f"(mean {mean_s:.1f} s from {sample} synthesised at random)")


def teacher_wer(corpus: Path) -> None:
    print(f"\nbundled teachers on {corpus} (greedy, batch 8, English normaliser)")
    table = Table(Column("split", width=16, left=True), Column("domain", width=24, left=True), Column("utts", "d", 5),
                  Column("WER", ".1%", 7), Column("seconds", ".0f"))
    for name in BUNDLED:
        whisper = load_whisper(f"bundled:{name}")
        print(f"\n{name}\n{table.header()}")
        for split in SPLITS:
            by_domain: dict[str, tuple[list, list]] = defaultdict(lambda: ([], []))
            with Stopwatch() as watch:
                for utt, text in transcribe_manifest(whisper, corpus / f"{split}.jsonl", DecodingOptions(batch_size=8)):
                    by_domain[utt.domain][0].append(utt.text)
                    by_domain[utt.domain][1].append(text)
            refs = [r for rs, _ in by_domain.values() for r in rs]
            hyps = [h for _, hs in by_domain.values() for h in hs]
            print(table.row(split, "(all)", len(refs), word_error_rate(refs, hyps), watch.seconds))
            if len(by_domain) > 1:
                for domain, (rs, hs) in sorted(by_domain.items()):
                    print(table.row("", domain, len(rs), word_error_rate(rs, hs), ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_demo_corpus_argument(parser)
    parser.add_argument("--skip-wer", action="store_true", help="skip the bundled teachers' WER per split and domain")
    args = parser.parse_args()
    quiet_transformers()
    synthesis_throughput()
    full_preset_hours()
    for attempt in ("first", "second"):
        with Stopwatch() as watch:
            summaries = build_corpus(PRESETS["demo"], args.corpus, seed=0, progress=False)
        print(f"demo build ({attempt}): {watch.seconds:.1f} s, "
              f"{sum(s.utterances for s in summaries)} utterances, {sum(s.hours for s in summaries):.2f} h")
    if not args.skip_wer:
        teacher_wer(args.corpus)


if __name__ == "__main__":
    run(main)
