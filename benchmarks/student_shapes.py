"""Student shapes by measurement: how much accuracy each student shape costs, for how much speed.

For every shape given (encoder layers, decoder layers, audio window), a student is built from the
teacher's layers and distilled with one recipe (default ASKD) on a demo folder's pseudo-labels,
with the settings the demo gives its own student (``pipeline.recipe_config``). Then the teacher and
every student are evaluated in one process, interleaved, on the demo's test sets (and its
real-speech set when it has one). It prints a row per model: WER per set, latency p50 at batch 1,
speed-up over the teacher, and whether the model is on the Pareto front of WER on one set
(``--pareto-set``) against latency: no other model is at least as good on both and better on one.

    VOXDISTILL_CACHE=... .venv/bin/python benchmarks/student_shapes.py demo-out \\
        --shapes d1 d2 d3 d4 d2:wteacher e2:d2 [--steps 200] [--recipe askd]

DIR must be made by ``voxdistill demo --out DIR``. Written: DIR/shapes/<shape>/ (``student/``, the
distillation run and its ``model/``), DIR/shapes/eval/metrics.json with its transcripts, and
DIR/shapes/shapes.json, which ``voxdistill report DIR/shapes --out shapes.html`` draws as WER
against latency beside the runs and the evaluation. Run again, a shape whose run folder has its
model is not trained again; a run folder of other settings is refused, naming them.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from voxdistill.config import apply_overrides, from_dict, to_dict
from voxdistill.console import quiet_transformers
from voxdistill.distill.config import DistillConfig
from voxdistill.errors import VoxdistillError
from voxdistill.evaluation.evaluate import EvalSettings, evaluate, model_label
from voxdistill.evaluation.pareto import pareto_front
from voxdistill.evaluation.report_inputs import METRICS_FILE, SHAPES_FILE
from voxdistill.families import distill
from voxdistill.files import write_text_atomic
from voxdistill.models.loading import Whisper, load_whisper
from voxdistill.models.student import (
    STUDENT_FILE, StudentSpec, build_student, parse_layers, save_student, window_seconds,
)
# _refuse_other_settings is the pipeline's check that a run folder is reused only with the config
# it was started with; the sweep's run folders need the same rule, and one copy of it.
from voxdistill.pipeline import (
    PipelineConfig, Stages, _refuse_other_settings, eval_manifests, real_speech_manifest, recipe_config,
)

from _common import Column, Table, millions, run, times, wer_columns

Window = int | Literal["teacher"]  # whole seconds, or the teacher's window

SHAPE_HELP = """\
A shape is one or more fields, optionally separated by ':' --
  eN or eI,J,...  encoder layers: a count N (maximally spaced, first and last kept) or teacher
                  layer indices (a single index: e3,); default: all of the teacher's
  dN or dI,J,...  decoder layers, the same way; default: all of the teacher's
  wS or wteacher  audio window: whole seconds, or the teacher's; default: --window-seconds
e.g. d2 (2 decoder layers), e2:d1 (2 encoder and 1 decoder layer), d0,3:w10, d2:wteacher.
Each shape is stored and labelled under its canonical name: its fields in the order e, d, w,
without separators (e2:d1 -> e2d1)."""
_FIELD = re.compile(r"(?:(?P<side>[ed])(?P<layers>[0-9][0-9,]*)|w(?P<window>[0-9]+|teacher)):?")


class ShapeError(VoxdistillError):
    """The demo folder lacks an input the sweep needs, or a shape clashes with another or with what
    its run folder already holds."""


@dataclass(frozen=True)
class Shape:
    encoder: str | None  # a parse_layers value; None: all of the teacher's encoder layers
    decoder: str | None  # a parse_layers value; None: all of the teacher's decoder layers
    window: Window | None  # None: the sweep's default window

    @property
    def name(self) -> str:
        """The canonical name: the run folder's name and the model's label."""
        return "".join(f"{key}{value}" for key, value in (("e", self.encoder), ("d", self.decoder), ("w", self.window))
                       if value is not None)


def parse_shape(text: str) -> Shape:
    """A command-line shape (see SHAPE_HELP)."""
    fields: dict[str, str] = {}
    position = 0
    while position < len(text):
        match = _FIELD.match(text, position)
        if match is None:
            raise argparse.ArgumentTypeError(f"shape {text!r}: cannot read {text[position:]!r}\n{SHAPE_HELP}")
        key = match["side"] or "w"
        if key in fields:
            raise argparse.ArgumentTypeError(f"shape {text!r}: {key} is given twice")
        fields[key] = match["layers"] or match["window"]
        position = match.end()
    if not fields:
        raise argparse.ArgumentTypeError(f"empty shape\n{SHAPE_HELP}")
    window = fields.get("w")
    return Shape(fields.get("e"), fields.get("d"), window if window in (None, "teacher") else int(window))


def _window_option(value: str) -> Window | Literal["demo"]:
    if value in ("demo", "teacher"):
        return value
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: give whole seconds, 'teacher' or 'demo'") from None


def demo_window(demo: Path) -> Window:
    """The window of the demo's own student (``voxdistill demo --window-seconds``, 'auto' resolved)."""
    record_path = demo / "student" / STUDENT_FILE
    if not record_path.is_file():
        raise ShapeError(f"{record_path}: no such file, so the demo student's window is unknown; give every "
                         f"shape a window (w10, wteacher) or set --window-seconds")
    window = json.loads(record_path.read_text()).get("window_seconds")
    return "teacher" if window is None or window["student"] == window["teacher"] else window["student"]


def student_spec(shape: Shape, teacher_config, default_window: Callable[[], Window]) -> StudentSpec:
    """``shape`` resolved against the teacher's layer counts."""
    layers = {}
    for side, value, count in (("encoder", shape.encoder, teacher_config.encoder_layers),
                               ("decoder", shape.decoder, teacher_config.decoder_layers)):
        layers[side] = (range(count) if value is None
                        else parse_layers(value, count, name=f"shape {shape.name}: {side} layers"))
    window = default_window() if shape.window is None else shape.window
    return StudentSpec(tuple(layers["encoder"]), tuple(layers["decoder"]),
                       window_seconds=None if window == "teacher" else window)


def shape_record(spec: StudentSpec, teacher_window: int) -> dict:
    """What ``student.json`` says of the shape of a student of ``spec`` (see models.student.build_student)."""
    return {"encoder_layers": list(spec.encoder_layers), "decoder_layers": list(spec.decoder_layers),
            "window_seconds": {"teacher": teacher_window, "student": spec.window_seconds or teacher_window}}


def make_student(name: str, spec: StudentSpec, teacher: Whisper, teacher_source: str, folder: Path) -> str:
    """Build the student of ``spec`` into ``folder/student``, unless the run folder already holds it
    (checked against ``student.json``: the layers, the window and the teacher)."""
    wanted = shape_record(spec, window_seconds(teacher.model.config))
    for record_path in (folder / "model" / STUDENT_FILE, folder / "student" / STUDENT_FILE):
        if record_path.is_file():
            existing = json.loads(record_path.read_text())
            found = {key: existing.get(key) for key in wanted}
            if found != wanted or existing["teacher"]["fingerprint"] != teacher.fingerprint.digest:
                raise ShapeError(f"{record_path}: shape {name} wants {wanted} of teacher {teacher.fingerprint.digest}, "
                                 f"but this folder holds {found} of teacher {existing['teacher']['fingerprint']}; "
                                 f"delete {folder} to train it again")
            return f"{name}: reused {record_path.parent}"
    student, provenance = build_student(teacher.model, spec)
    save_student(student, teacher.processor, provenance, teacher_source, teacher.fingerprint.digest,
                 folder / "student")
    return (f"{name}: encoder {provenance['encoder_layers']}, decoder {provenance['decoder_layers']}, "
            f"{provenance['window_seconds']['student']} s window")


def shape_run(base: PipelineConfig, recipe: str, folder: Path, overrides: list[str]) -> DistillConfig:
    """The demo's run config of ``recipe`` (paths, steps, cadence, ASKD boundary), pointed at the
    shape's student and run folder, then ``overrides`` (``--set key=value``) applied."""
    run = replace(recipe_config(base, recipe), student=folder / "student", out=folder)
    return from_dict(DistillConfig, apply_overrides(to_dict(run), overrides)) if overrides else run


def shape_rows(result: dict, shapes: dict[str, dict], pareto_set: str) -> list[dict]:
    """A row per evaluated model (the teacher first): its shape (``shapes[label]``, a
    ``shape_record``), size, WER per set, latency p50 at batch 1, speed-up over the teacher, and
    whether it is on the Pareto front of (WER on ``pareto_set``, latency p50)."""
    rows = []
    for record in result["models"]:
        label = record["model"]
        shape = shapes[label]
        rows.append({
            "shape": label, "role": record["role"], "model": record["source"], "parameters": record["parameters"],
            "encoder_layers": shape["encoder_layers"], "decoder_layers": shape["decoder_layers"],
            "window_seconds": shape["window_seconds"]["student"],
            "wer": {name: figures["wer"] for name, figures in record["sets"].items()},
            "latency_ms_p50": record["overall"]["latency_ms_p50"],
            "speedup": 1.0 if label == result["reference"] else result["ratios"][label]["speedup"],
        })
    points = [None if row["wer"][pareto_set] is None or row["latency_ms_p50"] is None
              else (row["wer"][pareto_set], row["latency_ms_p50"]) for row in rows]
    for row, on_front in zip(rows, pareto_front(points)):
        row["pareto"] = on_front
    return rows


def format_rows(rows: list[dict], sets: list[str], pareto_set: str) -> str:
    def layers(indices: list[int]) -> str:
        return ",".join(map(str, indices))

    table = Table(Column("shape", width=8, left=True), Column("params", millions, 7), Column("encoder", layers, 9),
                  Column("decoder", layers, 9), Column("window", "{}s".format, 6), *wer_columns(sets),
                  Column("p50 ms", ".0f", 7), Column("speedup", times, 7), Column(f"Pareto ({pareto_set})", left=True))
    return table.format((row["shape"], row["parameters"], row["encoder_layers"], row["decoder_layers"],
                         row["window_seconds"], *(row["wer"][name] for name in sets), row["latency_ms_p50"],
                         row["speedup"], "yes" if row["pareto"] else "") for row in rows)


def run_sweep(args: argparse.Namespace) -> None:
    demo, out = args.demo, args.demo / "shapes"
    base = PipelineConfig(out=demo, teacher=args.teacher, recipes=(args.recipe,), steps=args.steps, seed=args.seed)
    manifests = eval_manifests(base) + [m for m in [real_speech_manifest(base)] if m.is_file()]
    sets = [m.stem for m in manifests]
    if args.pareto_set not in sets:
        raise ShapeError(f"--pareto-set {args.pareto_set}: not an evaluation set here; choose from {', '.join(sets)}")
    run = recipe_config(base, args.recipe)
    missing = [p for p in (*manifests, run.data.train_manifest, run.data.dev_manifest) if not p.is_file()]
    if missing:
        raise ShapeError(f"{demo} is not a finished demo folder: {', '.join(map(str, missing))} missing; "
                         f"make it with `voxdistill demo --out {demo}`")
    names = list(dict.fromkeys(shape.name for shape in args.shapes))
    runs = {name: shape_run(base, args.recipe, out / name, args.set) for name in names}
    for shape_config in runs.values():
        _refuse_other_settings(shape_config)

    stages = Stages(len(names) + 2, print)
    teacher = load_whisper(args.teacher)
    config = teacher.model.config
    teacher_window = window_seconds(config)
    default = (lambda: demo_window(demo)) if args.window_seconds == "demo" else (lambda: args.window_seconds)
    specs = {shape.name: student_spec(shape, config, default) for shape in args.shapes}
    records = {name: shape_record(spec, teacher_window) for name, spec in specs.items()}
    seen: dict[str, str] = {}
    for name, record in records.items():
        key = json.dumps(record)
        if key in seen:
            raise ShapeError(f"shapes {seen[key]} and {name} are the same student ({record}); give each once")
        seen[key] = name
    stages.run(f"students from {args.teacher}'s layers -> {out}/<shape>/student",
               lambda t=teacher: "; ".join(make_student(name, spec, t, args.teacher, out / name)
                                           for name, spec in specs.items()))
    del teacher  # the trainer and the evaluation load what they need

    def train(name: str) -> str:
        if (out / name / "model" / "config.json").is_file():
            return f"reused {out / name / 'model'}"
        result = distill(runs[name], progress=True)
        best = "" if result.state.best_wer is None else f", best dev WER {result.state.best_wer:.1%}"
        return f"{result.state.step} steps{best} -> {out / name / 'model'}"

    for name in names:
        stages.run(f"distil {name}: {args.recipe} recipe, {args.steps} steps", lambda n=name: train(n))

    metrics_path = out / "eval" / METRICS_FILE
    teacher_label = model_label(args.teacher)
    records[teacher_label] = shape_record(StudentSpec(range(config.encoder_layers), range(config.decoder_layers)),
                                          teacher_window)
    result: dict = {}

    def evaluation() -> str:
        nonlocal result
        result = evaluate([args.teacher, *(str(out / name / "model") for name in names)], manifests, metrics_path,
                          EvalSettings(latency_clips=args.latency_clips), labels=[teacher_label, *names])
        return f"-> {metrics_path}"

    stages.run(f"evaluate the teacher and {len(names)} students, interleaved, on {', '.join(sets)}", evaluation)
    rows = shape_rows(result, records, args.pareto_set)
    table = {"teacher": teacher_label, "teacher_source": args.teacher, "recipe": args.recipe, "steps": args.steps,
             "seed": args.seed, "pareto_set": args.pareto_set, "sets": sets, "metrics": str(metrics_path), "rows": rows}
    write_text_atomic(out / SHAPES_FILE, json.dumps(table, indent=2) + "\n")
    print()
    print(format_rows(rows, sets, args.pareto_set))
    print(f"\n-> {out / SHAPES_FILE}; plot: .venv/bin/voxdistill report {out} --out {out / 'report.html'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=SHAPE_HELP,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("demo", type=Path, metavar="DIR", help="a folder made by `voxdistill demo --out DIR`")
    parser.add_argument("--shapes", type=parse_shape, nargs="+", required=True, metavar="SHAPE",
                        help="student shapes to build, distil and measure (see below)")
    parser.add_argument("--teacher", default="bundled:whisper-tiny.en",
                        help="the demo's teacher (default bundled:whisper-tiny.en)")
    parser.add_argument("--recipe", default="askd", help="configs/<recipe>.yaml (default askd)")
    parser.add_argument("--steps", type=int, default=200, help="optimizer steps per shape (default 200)")
    parser.add_argument("--seed", type=int, default=0, help="data order and initialisation seed (default 0)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a recipe override for every shape, e.g. optim.freeze_encoder=false (repeatable)")
    parser.add_argument("--window-seconds", type=_window_option, default="demo", metavar="S|teacher|demo",
                        help="the window of shapes without a w field: seconds, 'teacher', or 'demo' (default: "
                             "the window of the demo's own student, DIR/student)")
    parser.add_argument("--pareto-set", default="test-ood-voice",
                        help="the evaluation set whose WER the Pareto front is drawn on (default test-ood-voice)")
    parser.add_argument("--latency-clips", type=int, default=20, metavar="N",
                        help="clips per test set timed at batch 1 (default 20)")
    args = parser.parse_args()
    quiet_transformers()
    run_sweep(args)


if __name__ == "__main__":
    run(main)
