"""What the decoding loop costs: transformers' ``generate`` (dynamic and static key-value cache)
against voxdistill's greedy loop (``decoding.greedy_decode``), for a teacher and a student, at
batch 1, in one process, interleaved clip by clip. Only decoding is timed (the encoder states are
computed once per clip); every way must give the same tokens, which is checked on every clip.

    .venv/bin/python benchmarks/decoding_loop.py --model bundled:whisper-tiny.en --model STUDENT \\
        --manifest demo-out/corpus/test-clean.jsonl [--clips 20] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from voxdistill.audio import SAMPLE_RATE
from voxdistill.console import quiet_transformers
from voxdistill.decoding import DecodingOptions, encode, greedy_decode, log_mel, prompt_tokens
from voxdistill.evaluation.speed import Timings, set_threads, time_interleaved
from voxdistill.models.loading import load_whisper

from _common import Column, Table, first_clips, run

WAYS = ("generate", "generate, static cache", "greedy loop")


def decoders(whisper, max_new_tokens: int) -> dict:
    """The three ways to decode one clip's encoder states, each returning the text tokens."""
    gen = whisper.model.generation_config

    def text(row: list[int]) -> list[int]:
        return [t for t in row if t != gen.eos_token_id and t < gen.decoder_start_token_id]

    def generate(states, **kwargs):
        out = whisper.model.generate(encoder_outputs=states, num_beams=1, do_sample=False, max_new_tokens=max_new_tokens,
                                     return_timestamps=False, force_unique_generate_call=True, **kwargs)
        return text(out[0].tolist())

    prompt = prompt_tokens(whisper)
    return {
        "generate": lambda states: generate(states),
        "generate, static cache": lambda states: generate(states, cache_implementation="static"),
        "greedy loop": lambda states: text(greedy_decode(whisper, states.last_hidden_state, prompt, max_new_tokens)[0]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True, help="a model, repeated (teacher first)")
    parser.add_argument("--manifest", type=Path, nargs="+", required=True)
    parser.add_argument("--clips", type=int, default=20, help="clips per manifest (default 20)")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    quiet_transformers()
    threads = set_threads(args.threads)
    clips = [clip for manifest in args.manifest for clip in first_clips(manifest, args.clips)]
    models = {name: load_whisper(name) for name in args.model}
    budget = DecodingOptions().token_budget
    timings = {(m, way): Timings() for m in models for way in WAYS}
    mismatches = 0
    for turn, clip in enumerate(clips):
        runners = {}
        for name, whisper in models.items():
            states = encode(whisper, log_mel(whisper, [clip]))
            for way, decode in decoders(whisper, budget(len(clip) / SAMPLE_RATE)).items():
                runners[(name, way)] = (lambda d, s: lambda _batch: d(s))(decode, states)
        if turn == 0:  # warm-up: first calls pay for allocation and kernel choice
            for run in runners.values():
                run(None)
        step = {key: Timings() for key in runners}
        outputs = time_interleaved(runners, [clip], step, turn)
        for key, t in step.items():
            timings[key].extend(t)
        for name in models:
            mismatches += len({tuple(outputs[(name, way)]) for way in WAYS}) != 1
    print(f"{len(clips)} clips at batch 1, {threads} threads; decoding only (encoder states computed once)\n")
    table = Table(Column("model", left=True), Column("way", left=True), Column("p50 ms", ".0f", 8),
                  Column("mean ms", ".0f", 8))
    print(table.format((name, way, t.latency_ms(50), 1000 * statistics.mean(t.seconds))
                       for (name, way), t in timings.items()))
    if len(models) > 1:
        first, *others = models
        for way in WAYS:
            for other in others:
                ratio = sum(timings[(first, way)].seconds) / sum(timings[(other, way)].seconds)
                print(f"{way}: {other[-42:]} decodes {ratio:.2f}x as fast as {first}")
    print(f"\nclips where the three ways gave different tokens: {mismatches}")


if __name__ == "__main__":
    run(main)
