"""What ``voxdistill report`` and the model card read: distillation runs (``log.jsonl``,
``config.yaml``), evaluations (``metrics.json`` with the transcripts file it names) and student-shape
sweeps (``shapes.json``), found in the paths a user gives; plus the small formatting helpers both
pages share."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from voxdistill.distill.run_log import read_log
from voxdistill.errors import VoxdistillError
from voxdistill.files import sha256_of_files

RUN_LOG = "log.jsonl"  # what makes a folder a distillation run
METRICS_FILE = "metrics.json"  # the name `voxdistill evaluate` gives its output
SHAPES_FILE = "shapes.json"  # the WER-latency table of benchmarks/student_shapes.py
SEARCH_DEPTH = 4  # folder levels below an input folder searched for runs, metrics and shapes files


class ReportInputError(VoxdistillError):
    """A report input does not exist, cannot be read, or holds nothing a report can show."""


@dataclass(frozen=True)
class Run:
    label: str  # the folder's name (with its parent's when two runs share a name)
    folder: Path
    log: list[dict]  # one record per step, resumed steps already deduplicated
    config: dict  # the resolved config.yaml; empty when the run has none


@dataclass(frozen=True)
class Evaluation:
    path: Path  # the metrics.json
    metrics: dict
    transcripts: list[dict]  # the transcripts file it names; empty when it is missing or another evaluation's


@dataclass(frozen=True)
class ShapeSweep:
    path: Path  # the shapes.json
    # "pareto_set" (the set whose WER the front is drawn on) and "rows": per model "shape", "role",
    # "wer" {set: fraction}, "latency_ms_p50", "pareto" (on the front), and its shape and size
    table: dict


@dataclass(frozen=True)
class ReportInputs:
    paths: list[Path]  # as given
    runs: list[Run]
    evaluations: list[Evaluation]
    shape_sweeps: list[ShapeSweep]


# --- helpers shared with the model card -----------------------------------------------------------

def format_percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def format_ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"


def reference_label(metrics: Mapping) -> str:
    """The model the ratios of an evaluation are relative to: the teacher, listed first."""
    return metrics.get("reference") or metrics["models"][0]["model"]


def speedup(ratios: Mapping) -> float | None:
    """How many times faster than the reference a student is at batch 1: reference latency p50
    over the student's (``evaluate`` records it; older files only have the latency ratio)."""
    latency = ratios.get("latency_p50")
    return ratios.get("speedup") or (1 / latency if latency else None)


def same_threads_speedups(ratios: Mapping) -> str:
    """"1 thread 5.70×, 2 threads 2.60×": the speed-up with teacher and student at the same thread
    count, for each count the evaluation timed; "" when it timed one (the speed-up says it all)."""
    at = ratios.get("speedup_by_threads") or {}
    if len(at) < 2:
        return ""
    return ", ".join(f"{k} thread{'' if k == '1' else 's'} {format_ratio(v)}" for k, v in at.items())


def fastest_threads(model: Mapping) -> str:
    """"at 2 threads" when the evaluation timed several counts and took this model's fastest, else ""."""
    overall = model.get("overall", {})
    if len(overall.get("latency_by_threads") or {}) < 2:
        return ""
    threads = overall.get("latency_threads")
    return f"at {threads} thread{'' if threads == 1 else 's'}"


def format_ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f} ms"


def runtime_name(runtime: Mapping) -> str:
    """"CTranslate2 int8" for ``{"backend": "ct2", "compute_type": "int8"}``."""
    engine = {"torch": "PyTorch", "ct2": "CTranslate2", "onnx": "onnxruntime"}.get(runtime["backend"], runtime["backend"])
    return f"{engine} {runtime['compute_type']}"


def model_runtime(metrics: Mapping, model: Mapping) -> str:
    """The runtime ``model`` ran in: its own record (CTC students may run apart), else the evaluation's."""
    return runtime_name(model.get("runtime") or metrics.get("runtime", {"backend": "torch", "compute_type": "float32"}))


def set_stats(model: Mapping, set_name: str, domain: str | None = None) -> dict:
    """A model's figures on one test set, or on one domain of it; empty when not measured."""
    stats = model.get("sets", {}).get(set_name, {})
    return stats.get("domains", {}).get(domain, {}) if domain is not None else stats


# Settings named only where they act (where the setting after them is true or non-zero): their
# defaults do nothing, and would crowd every run's line.
ACTS_WITH = {"encoder_kd_span": "encoder_kd_weight", "freeze_encoder_stem": "freeze_encoder_stem",
             "frozen_encoder_layers": "frozen_encoder_layers", "lora_rank": "lora_rank", "lora_alpha": "lora_rank"}


def config_summary(config: Mapping) -> list[tuple[str, str]]:
    """The settings that tell distillation runs apart, as (name, "key=value, ...") pairs. Keys the
    config lacks are left out, so configs of older versions still summarise."""
    sections = (
        ("teacher", config.get("teacher"), ("mode", "model")),
        ("loss", config.get("loss"), ("ce_weight", "kd_weight", "temperature", "encoder_kd_weight", "encoder_kd_span")),
        ("kd decay", (config.get("loss") or {}).get("kd_decay"), ("kind", "floor", "decay_steps")),
        ("self-distillation", config.get("self_distill"), ("start_step", "teacher", "ema_decay", "kd_weight")),
        ("optimiser", config.get("optim"), ("lr", "max_steps", "warmup_steps", "schedule", "freeze_encoder",
                                               "freeze_encoder_stem", "frozen_encoder_layers", "freeze_decoder",
                                               "freeze_embeddings", "lora_rank", "lora_alpha")),
        ("train manifest", config.get("data"), ("train_manifest",)),
    )
    summary = []
    for name, section, keys in sections:
        if not isinstance(section, Mapping):
            continue
        if name == "self-distillation" and section.get("start_step") is None:
            summary.append((name, "off"))  # its other keys are defaults that never act
            continue
        values = [f"{key}={section[key]}" for key in keys
                  if section.get(key) is not None and (key not in ACTS_WITH or section.get(ACTS_WITH[key]))]
        if values:
            summary.append((name, ", ".join(values)))
    return summary


# --- collecting inputs ----------------------------------------------------------------------------

def collect(paths: Sequence[Path]) -> ReportInputs:
    """Read every run, evaluation and shape sweep that ``paths`` name or hold (folders are searched
    ``SEARCH_DEPTH`` levels deep). A file reached through two paths counts once."""
    runs: dict[Path, Run] = {}
    evaluations: dict[Path, Evaluation] = {}
    sweeps: dict[Path, ShapeSweep] = {}
    for path in map(Path, paths):
        if not path.exists():
            raise ReportInputError(f"{path}: no such file or folder; give a run folder (with {RUN_LOG}), "
                                   f"a {METRICS_FILE} from `voxdistill evaluate`, a {SHAPES_FILE}, "
                                   f"or a folder holding them")
        run_folders, metrics_files, shapes_files = _locate(path)
        found_runs = [run for run in map(_read_run, run_folders) if run.log]
        found_evaluations = [_read_evaluation(file) for file in metrics_files]
        found_sweeps = [_read_shapes(file) for file in shapes_files]
        if not found_runs and not found_evaluations and not found_sweeps:
            raise ReportInputError(
                f"{path}: nothing to report: no run folder with a non-empty {RUN_LOG}, no "
                f"{METRICS_FILE} and no {SHAPES_FILE} within {SEARCH_DEPTH} folder levels"
            )
        runs |= {run.folder.resolve(): run for run in found_runs}
        evaluations |= {e.path.resolve(): e for e in found_evaluations}
        sweeps |= {s.path.resolve(): s for s in found_sweeps}
    return ReportInputs(list(map(Path, paths)), _unique_labels(list(runs.values())), list(evaluations.values()),
                        list(sweeps.values()))


def _locate(path: Path) -> tuple[list[Path], list[Path], list[Path]]:
    """The run folders, metrics files and shapes files ``path`` is or holds."""
    if path.is_file():
        if path.name == RUN_LOG:
            return [path.parent], [], []
        return ([], [], [path]) if path.name == SHAPES_FILE else ([], [path], [])
    if (path / RUN_LOG).is_file():
        return [path], [], []
    runs: list[Path] = []
    metrics: list[Path] = []
    shapes: list[Path] = []
    _search(path, 0, runs, metrics, shapes)
    return runs, metrics, shapes


def _search(folder: Path, depth: int, runs: list[Path], metrics: list[Path], shapes: list[Path]) -> None:
    if (folder / RUN_LOG).is_file():
        runs.append(folder)
    if (folder / METRICS_FILE).is_file():
        metrics.append(folder / METRICS_FILE)
    if (folder / SHAPES_FILE).is_file():
        shapes.append(folder / SHAPES_FILE)
    if depth < SEARCH_DEPTH:
        for child in sorted(folder.iterdir()):
            # Hidden folders are temporaries of atomic writes (.model.*) or tool state (.git, .venv).
            if child.is_dir() and not child.name.startswith("."):
                _search(child, depth + 1, runs, metrics, shapes)


def _read_run(folder: Path) -> Run:
    log = read_log(folder)
    config_path = folder / "config.yaml"
    config = {}
    if config_path.is_file():
        try:
            config = yaml.safe_load(config_path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ReportInputError(f"{config_path}: not valid YAML: {err}") from err
    return Run(folder.resolve().name, folder, log, config)  # resolved: "." has no name


def _unique_labels(runs: list[Run]) -> list[Run]:
    """Runs keep their folder's name as label unless another run has the same name."""
    names = [run.label for run in runs]
    return [run if names.count(run.label) == 1 else
            Run(f"{run.folder.resolve().parent.name}/{run.label}", run.folder, run.log, run.config) for run in runs]


def _read_evaluation(path: Path) -> Evaluation:
    metrics = _parse_json(path.read_text(), str(path))
    models = metrics.get("models") if isinstance(metrics, dict) else None
    if not (isinstance(models, list) and models and all("model" in m and "sets" in m for m in models)):
        raise ReportInputError(f"{path}: not an output of `voxdistill evaluate`: it needs a 'models' list "
                               f"whose entries have 'model' and 'sets'")
    transcripts: list[dict] = []
    jsonl = path.parent / metrics["transcripts"] if metrics.get("transcripts") else None
    # A digest that differs: the file was since written by another evaluation (older ones record none).
    if jsonl is not None and jsonl.is_file() and metrics.get("transcripts_sha256") in (None, sha256_of_files([jsonl])):
        transcripts = [_parse_json(line, f"{jsonl}, line {n}")
                       for n, line in enumerate(jsonl.read_text().splitlines(), start=1) if line.strip()]
    return Evaluation(path, metrics, transcripts)


def _read_shapes(path: Path) -> ShapeSweep:
    table = _parse_json(path.read_text(), str(path))
    rows = table.get("rows") if isinstance(table, dict) else None
    keys = ("shape", "role", "wer", "latency_ms_p50", "pareto")
    if not (isinstance(rows, list) and rows and isinstance(table.get("pareto_set"), str)
            and all(isinstance(row, dict) and all(key in row for key in keys) for row in rows)):
        raise ReportInputError(f"{path}: not an output of benchmarks/student_shapes.py: it needs 'pareto_set' "
                               f"and a 'rows' list whose entries have {', '.join(map(repr, keys))}")
    return ShapeSweep(path, table)


def _parse_json(text: str, where: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ReportInputError(f"{where}: not valid JSON: {err}") from err
