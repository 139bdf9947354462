"""Structured pruning by measurement: what removing feed-forward neurons from a trained student costs
in WER and gains in speed, with and without a short recovery run.

    VOXDISTILL_CACHE=... .venv/bin/python benchmarks/prune.py demo-out/runs/askd/model \\
        --calibration demo-out/pseudo/pseudo_labels.jsonl --keep 1.0 0.75 0.5 \\
        --eval demo-out/corpus/test-clean.jsonl demo-out/corpus/test-ood-voice.jsonl \\
               demo-out/corpus/test-ood-noise.jsonl \\
        [--recover --train-manifest demo-out/pseudo/pseudo_labels.jsonl \\
                   --dev-manifest demo-out/corpus/real-dev.jsonl --steps 80] \\
        [--runtime ct2 --compute-type int8] --out prune-bench

For every keep fraction below 1 the student is pruned (``voxdistill prune``'s function) into
OUT/keep-F/pruned. With --recover each pruned student is also distilled with
configs/prune-recover.yaml (--steps, --set) into OUT/keep-F/recover, and so is the unpruned student
when 1.0 is among the fractions: that control run tells what the recovery run gains by itself apart
from what it repairs. Then the teacher, the student and every variant are evaluated in one process,
interleaved (``voxdistill evaluate``'s function, the teacher first), in the runtime given, and a row
per model is printed: feed-forward widths, parameters, WER per set, latency p50 at batch 1 and the
speed-up over the teacher and over the unpruned student. Written: OUT/eval/metrics.json with its
transcripts, and OUT/prune.json. Run again, a pruned folder or recovery run of the same settings is
reused; one of other settings is refused, naming them. The evaluation always runs again: it is the
measurement.
"""

from __future__ import annotations

import argparse
import json
from itertools import islice
from pathlib import Path

from voxdistill.config import load_config
from voxdistill.console import quiet_transformers
from voxdistill.data.manifest import read_manifest, write_manifest
from voxdistill.distill.config import DistillConfig
from voxdistill.distill.prune import calibration_utterances, prune_student
from voxdistill.errors import VoxdistillError
from voxdistill.evaluation.evaluate import EvalSettings, evaluate, model_label
from voxdistill.families import distill
from voxdistill.files import sha256_of_files, write_text_atomic
from voxdistill.models.loading import resolve_model_folder
from voxdistill.models.student import STUDENT_FILE
# _refuse_other_settings is the pipeline's check that a run folder is reused only with the config
# it was started with; the recovery runs need the same rule, and one copy of it.
from voxdistill.decoding import DecodingOptions
from voxdistill.pipeline import CONFIGS, Stages, _refuse_other_settings
from voxdistill.runtime import Runtime

from _common import Column, Table, millions, run, times, wer_columns

RECIPE = CONFIGS / "prune-recover.yaml"
STUDENT_LABEL = "student"


class PruneBenchError(VoxdistillError):
    """A folder of an earlier run holds other settings, or an option is missing."""


def keep_name(keep: float) -> str:
    return f"ffn-{keep:g}"


def prune_variant(args: argparse.Namespace, keep: float, folder: Path) -> str:
    """``args.student`` pruned to ``keep`` into ``folder``, unless ``folder`` holds that already."""
    record_path = folder / STUDENT_FILE
    wanted = {"source": args.student, "keep": keep, "sha256": sha256_of_files([args.calibration]),
              "clips": len(calibration_utterances(args.calibration, args.clips))}
    if record_path.is_file():
        pruned = json.loads(record_path.read_text())["pruned"]
        found = {"source": pruned["source"], "keep": pruned["keep"], "sha256": pruned["calibration"]["sha256"],
                 "clips": pruned["calibration"]["clips"]}
        if found != wanted:
            raise PruneBenchError(f"{folder} holds a student pruned with {found}, not {wanted}; "
                                  f"delete it to prune again")
        return f"reused {folder}"
    _, record = prune_student(args.student, args.calibration, folder, clips=args.clips, keep=keep)
    pruned = record["pruned"]
    return (f"encoder {pruned['encoder_ffn_dim']['before']} -> {pruned['encoder_ffn_dim']['after']}, decoder "
            f"{pruned['decoder_ffn_dim']['before']} -> {pruned['decoder_ffn_dim']['after']} neurons per layer")


def recovery_config(args: argparse.Namespace, student: Path, out: Path) -> DistillConfig:
    """configs/prune-recover.yaml pointed at ``student`` and ``out``, its step counts scaled to
    --steps, then the --set overrides."""
    recipe = load_config(DistillConfig, RECIPE, [f"student={student}", f"out={out}"])
    steps = args.steps or recipe.optim.max_steps

    def scaled(n: int) -> int:
        return max(1, n * steps // recipe.optim.max_steps)

    overrides = [f"student={student}", f"out={out}", f"data.train_manifest={args.train_manifest}",
                 f"data.dev_manifest={'null' if args.dev_manifest is None else args.dev_manifest}",
                 f"optim.max_steps={steps}",
                 f"optim.warmup_steps={recipe.optim.warmup_steps * steps // recipe.optim.max_steps}",
                 f"eval.every_steps={scaled(recipe.eval.every_steps)}",
                 f"checkpoint.every_steps={scaled(recipe.checkpoint.every_steps)}", *args.set]
    return load_config(DistillConfig, RECIPE, overrides)


def recover(run: DistillConfig) -> str:
    if (run.out / "model" / "config.json").is_file():
        return f"reused {run.out / 'model'}"
    result = distill(run, progress=True)
    best = "" if result.state.best_wer is None else f", best dev WER {result.state.best_wer:.1%}"
    return f"{result.state.step} steps{best} -> {run.out / 'model'}"


def eval_sets(args: argparse.Namespace) -> list[Path]:
    """The --eval manifests; with --limit, copies of their first N utterances (same set names)."""
    if args.limit is None:
        return args.eval
    sets = []
    for manifest in args.eval:
        subset = args.out / "eval" / "sets" / manifest.name
        write_manifest(subset, (u.resolved(manifest.parent) for u in islice(read_manifest(manifest), args.limit)))
        sets.append(subset)
    return sets


def ffn_widths(source: str) -> tuple[int | None, int | None]:
    folder = resolve_model_folder(source)
    if not isinstance(folder, Path):
        return None, None  # a hub id: its config is not read here
    config = json.loads((folder / "config.json").read_text())
    return config["encoder_ffn_dim"], config["decoder_ffn_dim"]


def rows(result: dict, sources: dict[str, str]) -> list[dict]:
    """A row per evaluated model, the teacher first."""
    latency = {record["model"]: record["overall"]["latency_ms_p50"] for record in result["models"]}
    student_latency = latency[STUDENT_LABEL]
    table = []
    for record in result["models"]:
        label = record["model"]
        p50 = latency[label]
        encoder_ffn, decoder_ffn = ffn_widths(sources[label])
        table.append({
            "model": label, "source": sources[label], "parameters": record["parameters"],
            "encoder_ffn_dim": encoder_ffn, "decoder_ffn_dim": decoder_ffn,
            "wer": {name: figures["wer"] for name, figures in record["sets"].items()},
            "latency_ms_p50": p50,
            "speedup": 1.0 if label == result["reference"] else result["ratios"][label]["speedup"],
            "speedup_over_student": None if p50 in (None, 0) or student_latency is None else student_latency / p50,
        })
    return table


def format_rows(table: list[dict], sets: list[str]) -> str:
    layout = Table(Column("model", width=8, left=True), Column("params", millions, 7), Column("enc ffn", "d"),
                   Column("dec ffn", "d"), *wer_columns(sets), Column("p50 ms", ".0f", 7),
                   Column("vs teacher", times, 10), Column("vs student", times, 10))
    return layout.format((row["model"], row["parameters"], row["encoder_ffn_dim"], row["decoder_ffn_dim"],
                          *(row["wer"][name] for name in sets), row["latency_ms_p50"], row["speedup"],
                          row["speedup_over_student"]) for row in table)


def run_benchmark(args: argparse.Namespace) -> None:
    if args.recover and args.train_manifest is None:
        raise PruneBenchError("--recover needs --train-manifest (a pseudo-label manifest with its top-k cache)")
    missing = [str(p) for p in (args.calibration, *args.eval, args.train_manifest, args.dev_manifest)
               if p is not None and not p.is_file()]
    if missing:
        raise PruneBenchError(f"no such manifest: {', '.join(missing)}")
    runtime = Runtime.of(args.runtime, args.compute_type)  # refused here, before any work, if unknown
    pruned = {keep: args.out / f"keep-{keep:g}" / "pruned" for keep in args.keep if keep < 1}
    recovered = {keep: recovery_config(args, pruned.get(keep, Path(args.student)),
                                       args.out / f"keep-{keep:g}" / "recover")
                 for keep in args.keep} if args.recover else {}
    for run in recovered.values():
        _refuse_other_settings(run)

    stages = Stages(len(pruned) + len(recovered) + 1, print)
    for keep, folder in pruned.items():
        stages.run(f"prune {args.student}: keep {keep:g} of the feed-forward neurons -> {folder}",
                   lambda k=keep, f=folder: prune_variant(args, k, f))
    for keep, run in recovered.items():
        stages.run(f"recover {keep_name(keep)}: {RECIPE.name}, {run.optim.max_steps} steps -> {run.out}",
                   lambda r=run: recover(r))

    sources = {model_label(args.teacher): args.teacher, STUDENT_LABEL: args.student}
    sources |= {keep_name(keep): str(folder) for keep, folder in pruned.items()}
    sources |= {f"{keep_name(keep)}+rec": str(run.out / "model") for keep, run in recovered.items()}
    manifests = eval_sets(args)
    metrics_path = args.out / "eval" / "metrics.json"
    settings = EvalSettings(decoding=DecodingOptions(batch_size=args.batch_size), latency_clips=args.latency_clips,
                            warmup_clips=args.warmup, threads=args.threads, runtime=runtime)
    result: dict = {}

    def evaluation() -> str:
        nonlocal result
        result = evaluate(list(sources.values()), manifests, metrics_path, settings, labels=list(sources))
        return f"-> {metrics_path}"

    stages.run(f"evaluate {len(sources)} models, interleaved, in {runtime} on {', '.join(m.stem for m in manifests)}",
               evaluation)
    sets = [m.stem for m in manifests]
    table = rows(result, sources)
    record = {"student": args.student, "teacher": args.teacher, "calibration": str(args.calibration),
              "clips": args.clips, "keep": args.keep, "recover": args.recover,
              "recovery_steps": {keep_name(k): run.optim.max_steps for k, run in recovered.items()},
              "runtime": runtime.to_dict(), "sets": sets, "metrics": str(metrics_path), "rows": table}
    write_text_atomic(args.out / "prune.json", json.dumps(record, indent=2) + "\n")
    print()
    print(f"runtime {runtime}, {result['speed']['threads']} threads; latency p50 at batch 1 over the first "
          f"{args.latency_clips} clips of each set")
    print(format_rows(table, sets))
    print(f"\n-> {args.out / 'prune.json'}")


def _fraction(value: str) -> float:
    try:
        keep = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: give a fraction above 0 and at most 1") from None
    if not 0 < keep <= 1:
        raise argparse.ArgumentTypeError(f"{value}: give a fraction above 0 and at most 1")
    return keep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("student", metavar="STUDENT", help="the trained student to prune, e.g. RUN/model")
    parser.add_argument("--teacher", default="bundled:whisper-tiny.en",
                        help="the reference model, evaluated first (default bundled:whisper-tiny.en)")
    parser.add_argument("--calibration", type=Path, required=True, metavar="MANIFEST",
                        help="manifest whose clips measure neuron importance (e.g. the pseudo-labels)")
    parser.add_argument("--clips", type=int, default=64, help="calibration clips (default 64)")
    parser.add_argument("--keep", type=_fraction, nargs="+", default=[1.0, 0.75, 0.5], metavar="F",
                        help="fractions of feed-forward neurons kept per layer (default 1.0 0.75 0.5)")
    parser.add_argument("--eval", type=Path, nargs="+", required=True, metavar="MANIFEST",
                        help="evaluation manifests with reference text; each is a set named after its file")
    parser.add_argument("--limit", type=int, default=None, metavar="N",
                        help="evaluate only the first N utterances of each set (a quick check, not a measurement)")
    parser.add_argument("--recover", action="store_true",
                        help="distil every variant with configs/prune-recover.yaml after pruning")
    parser.add_argument("--train-manifest", type=Path, default=None, metavar="MANIFEST",
                        help="--recover: the pseudo-label manifest (beside its top-k cache) to distil from")
    parser.add_argument("--dev-manifest", type=Path, default=None, metavar="MANIFEST",
                        help="--recover: dev set whose WER picks the exported step (default: none, the last step)")
    parser.add_argument("--steps", type=int, default=None,
                        help="--recover: optimizer steps (default: the recipe's); warm-up and cadences scale with it")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="--recover: a recipe override, e.g. optim.lr=5e-5 (repeatable)")
    parser.add_argument("--runtime", choices=["torch", "ct2"], default="torch", help="runtime of every model")
    parser.add_argument("--compute-type", default=None, metavar="TYPE",
                        help="its precision, e.g. int8 for ct2 (default float32)")
    parser.add_argument("--threads", type=int, default=None, help="runtime threads (default: torch's default)")
    parser.add_argument("--batch-size", type=int, default=8, help="throughput batch size (default 8)")
    parser.add_argument("--latency-clips", type=int, default=20, metavar="N",
                        help="clips per set timed at batch 1 (default 20)")
    parser.add_argument("--warmup", type=int, default=2, metavar="N", help="untimed clips per model (default 2)")
    parser.add_argument("--out", type=Path, required=True, help="benchmark folder")
    args = parser.parse_args()
    quiet_transformers()
    run_benchmark(args)


if __name__ == "__main__":
    run(main)
