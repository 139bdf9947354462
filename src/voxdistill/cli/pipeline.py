"""voxdistill demo and voxdistill bench: the whole pipeline, one recipe or several over seeds."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from voxdistill.cli.options import MODEL_HELP, pad_step, trailing_silence, window


# The demo's encoder-kd recipe trains the encoder to read 2 s of silence; the bench's recipes keep
# the teacher's encoder, which needs 8 s to keep its accuracy on real speech (docs/measurements.md).
# 100 steps: a run of 50 was as good at its last step, but the demo's real dev (every 12 steps) chose
# its step 24, which lost read and spontaneous speech (docs/measurements.md, how long to train).
DEMO_DEFAULTS = {"trailing_silence": 2.0, "steps": 100,
                 "why_silence": "the demo's recipe trains the encoder to read that little"}
BENCH_DEFAULTS = {"trailing_silence": 8.0, "steps": 300,
                  "why_silence": "the teacher's encoder, untrained, keeps its accuracy on real speech"}


def register(sub) -> None:
    pipeline_parser(
        sub, "demo", run_demo, DEMO_DEFAULTS,
        "the whole pipeline on a bundled teacher, the shipped real speech and the demo corpus (about 16 min on "
        "2 Intel Xeon cores with AMX; it first estimates the time on yours)",
        "Synthesise the demo corpus, lay out the shipped real speech (an unlabelled training pool, real "
        "dev, real test sets by speakers who never train, packed clips and pieces of the pool), "
        "pseudo-label the training mix with the teacher, build a student from the teacher's layers, "
        "distil its encoder with the encoder-kd recipe (configs/encoder-kd.yaml), evaluate teacher and student side by side in "
        "the deployed runtime (real speech first), write the student's model card and an HTML report. "
        "Run again to reuse finished stages.")
    p = pipeline_parser(
        sub, "bench", run_bench, BENCH_DEFAULTS,
        "teacher vs CE-only, KD and ASKD students and the teacher fine-tuned on the same labels, over seeds",
        "The demo pipeline with several recipes of configs/ trained from the same student on the "
        "same pseudo-labels for the same number of steps, evaluated together, with one report. The "
        "teacher-ft recipe is the baseline that makes the comparison honest: the teacher itself "
        "(a full copy, teacher-student/ under --out) fine-tuned on the same labels for the same steps. With "
        "--seeds, every recipe is trained once per seed and each set gets a table of WER mean ± "
        "standard deviation over seeds (also bench.json in the deployed runtime's evaluation folder). Run again "
        "to reuse finished stages.")
    p.add_argument("--recipes", nargs="+", default=["ce", "kd", "askd", "teacher-ft"], metavar="RECIPE",
                   help="recipes of configs/ to compare (default: ce kd askd teacher-ft)")
    p.add_argument("--seeds", type=int, nargs="+", default=None, metavar="K",
                   help="distillation seeds (data order): every recipe is trained once per seed, into "
                        "runs/RECIPE-seedK/ under --out (the run of --seed keeps runs/RECIPE/, the demo's), "
                        "and each set gets WER mean ± standard deviation over them (bench.json beside the "
                        "evaluation). The corpus seed does not change: corpus, pseudo-labels and student stay "
                        "those of --seed, so the spread is training noise on fixed data (default: --seed alone)")


def pipeline_parser(sub, name: str, func, defaults: dict, help: str, description: str) -> argparse.ArgumentParser:
    """The options demo and bench share: corpus, student shape, training length, runtimes.
    ``defaults``: the trailing silence and steps of the command's recipes."""
    p = sub.add_parser(name, help=help, description=description)
    p.set_defaults(func=func)
    default_out = f"{name}-out"
    p.add_argument("--out", type=Path, default=Path(default_out), help=f"output folder (default {default_out})")
    p.add_argument("--teacher", default="bundled:whisper-tiny.en", help=f"{MODEL_HELP} (default bundled:whisper-tiny.en)")
    p.add_argument("--preset", choices=["demo", "full"], default="demo", help="corpus size (default demo)")
    p.add_argument("--decoder-layers", default="4", metavar="N|I,J,...",
                   help="student decoder layers (default 4, all of tiny.en's: closest to the teacher on real "
                        "speech; fewer are maximally spaced, first and last kept); the student keeps the "
                        "teacher's encoder layers")
    p.add_argument("--window-seconds", type=window, default="auto", metavar="S|auto|teacher",
                   help="the student's audio window: seconds, 'auto' (default: the longest training "
                        "utterance, rounded up) or 'teacher' (the teacher's 30 s)")
    p.add_argument("--pad-step", type=pad_step, default=1.0, metavar="S|none",
                   help="the student encodes each clip at its own length, zero-padded to the next multiple of S "
                        "seconds (default 1); 'none' pads every clip to the whole window")
    p.add_argument("--trailing-silence", type=trailing_silence, default=defaults["trailing_silence"], metavar="S",
                   help=f"with a pad step, at least S seconds of zeros follow each clip before it is rounded up "
                        f"(default {defaults['trailing_silence']:g}: {defaults['why_silence']}; 0 pads only to the "
                        f"step, faster)")
    p.add_argument("--steps", type=int, default=defaults["steps"],
                   help=f"optimizer steps per recipe (default {defaults['steps']})")
    p.add_argument("--seed", type=int, default=0, help="corpus, data order and initialisation seed (default 0)")
    p.add_argument("--latency-clips", type=int, default=20, metavar="N",
                   help="clips per test set timed at batch 1 (default 20)")
    p.add_argument("--deployed-runtime", default="ct2:int8", metavar="BACKEND:TYPE",
                   help="the runtime the student ships in, where teacher and students are evaluated and "
                        "compared (default ct2:int8, CTranslate2 as faster-whisper runs it; torch:float32 "
                        "for PyTorch)")
    p.add_argument("--also-runtime", action="append", default=[], metavar="BACKEND:TYPE",
                   help="evaluate the same models in this runtime too, side by side (repeatable; e.g. "
                        "torch:float32, PyTorch as it trains)")
    p.add_argument("--real-speech", default=None, metavar="DIR|none",
                   help="a folder of your own real speech with .txt transcripts beside each clip, scored as "
                        "one more set, real-speech, beside the shipped real-speech test sets (default: none)")
    return p


def run_demo(args: argparse.Namespace) -> int:
    return run_pipeline(args, recipes=("encoder-kd",))


def run_bench(args: argparse.Namespace) -> int:
    return run_pipeline(args, recipes=tuple(args.recipes), seeds=None if args.seeds is None else tuple(args.seeds))


def run_pipeline(args: argparse.Namespace, recipes: tuple[str, ...], seeds: tuple[int, ...] | None = None) -> int:
    from voxdistill import pipeline

    config = pipeline.PipelineConfig(
        out=args.out, teacher=args.teacher, recipes=recipes, preset=args.preset, decoder_layers=args.decoder_layers,
        window_seconds=args.window_seconds, pad_step_seconds=args.pad_step,
        trailing_silence_seconds=args.trailing_silence, steps=args.steps, seed=args.seed,
        seeds=seeds, latency_clips=args.latency_clips, real_speech=real_speech_folder(args.real_speech),
        deployed_runtime=args.deployed_runtime, other_runtimes=tuple(args.also_runtime))
    start = time.perf_counter()
    result = pipeline.run_pipeline(config)
    print(f"\nreport: {result['report']}  (open it in a browser)")
    print(f"students: {', '.join(r['source'] for r in result['models'][1:])} (Hugging Face folders with a model card)")
    if len(config.distill_seeds()) > 1:
        print(f"WER over seeds: {result['over_seeds_file']}")
    print(f"total {(time.perf_counter() - start) / 60:.1f} min; run the same command again to reuse finished stages")
    return 0


def real_speech_folder(value: str | None) -> Path | None:
    """--real-speech: a folder of the user's own real speech, or none (the default, also 'none')."""
    return None if value in (None, "none") else Path(value)
