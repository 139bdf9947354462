"""The whole job in one call: corpus, pseudo-labels, student, distillation, evaluation, model card,
report. ``voxdistill demo`` runs it with the ASKD recipe; ``voxdistill bench`` with the CE, KD and
ASKD recipes side by side (same student, data and step budget).

Every stage is resumable, so a second run (or a run after Ctrl-C) reuses what is finished: the
corpus build keeps files that are still wanted, pseudo-labelling skips committed shards, a
distillation run resumes from its last checkpoint and is skipped once its model is exported, and the
evaluation is skipped when its metrics cover the same models. Nothing is reused on trust: a
distillation run folder made with another resolved config is refused, naming the keys, and the
evaluation is redone unless the models' weights, the manifests and the settings are the same.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from voxdistill.config import load_config, to_dict
from voxdistill.data.corpus import PRESETS, build_corpus
from voxdistill.data.importers import import_folder
from voxdistill.data.manifest import read_manifest
from voxdistill.distill.config import DistillConfig
from voxdistill.distill.trainer import distill
from voxdistill.errors import VoxdistillError
from voxdistill.evaluation.evaluate import EvalSettings, evaluate, format_table
from voxdistill.evaluation.report import build_report
from voxdistill.export.model_card import write_model_card
from voxdistill.files import write_text_atomic
from voxdistill.models.loading import load_whisper, resolve_model_folder
from voxdistill.models.student import (
    STUDENT_FILE, StudentSpec, build_student, parse_layers, save_student, window_seconds,
)
from voxdistill.teacher.pseudo_label import PseudoLabelConfig, run_pseudo_label

# The recipe YAMLs of the repository (configs/), which the pipeline points at its own folders.
CONFIGS = Path(__file__).resolve().parents[2] / "configs"
EVAL_SETS = ("test-clean", "test-ood-voice", "test-ood-noise")
REAL_SPEECH_SET = "real-speech"


@dataclass(frozen=True)
class PipelineConfig:
    out: Path  # everything goes here: corpus/, pseudo/, student/, runs/<recipe>/, eval/, report.html
    teacher: str = "bundled:whisper-tiny.en"
    recipes: tuple[str, ...] = ("askd",)  # configs/<recipe>.yaml, trained in this order
    preset: str = "demo"  # corpus size (data.corpus.PRESETS)
    encoder_layers: str | None = None  # student encoder: count or indices; None = all (kept frozen by the recipes)
    decoder_layers: str = "2"  # student decoder: count or indices
    # The student's audio window in seconds; None = the teacher's 30; "auto" = the longest training
    # utterance, rounded up (every clip fits, and no more padding than that is computed).
    window_seconds: int | Literal["auto"] | None = "auto"
    steps: int = 200  # optimizer steps per recipe; ASKD's phase boundary sits at 3/4 of them
    seed: int = 0
    latency_clips: int = 20  # per evaluation set, timed at batch 1
    # A folder of real human speech with .txt transcripts (``corpus import`` layout), scored as the
    # set ``real-speech``: the built-in corpus is synthetic, and a student can forget real voices.
    real_speech: Path | None = None

    def __post_init__(self):
        for recipe in self.recipes:
            if not (CONFIGS / f"{recipe}.yaml").is_file():
                raise VoxdistillError(f"no recipe {CONFIGS / f'{recipe}.yaml'}")
        if self.preset not in PRESETS:
            raise VoxdistillError(f"unknown corpus preset {self.preset!r}; choose from {sorted(PRESETS)}")
        if self.steps < 4:
            raise VoxdistillError(f"steps must be at least 4, got {self.steps}")
        if not (self.window_seconds in (None, "auto") or isinstance(self.window_seconds, int)):
            raise VoxdistillError(f"window_seconds must be a whole number of seconds, 'auto' or None, "
                                  f"got {self.window_seconds!r}")


class Stages:
    """Numbered stage headers and their wall-clock times, printed as the pipeline goes."""

    def __init__(self, total: int, say: Callable[[str], None]):
        self.total, self.say = total, say
        self.number = 0
        self.seconds: dict[str, float] = {}

    def run(self, name: str, work: Callable[[], str | None]):
        self.number += 1
        self.say(f"[{self.number}/{self.total}] {name}")
        start = time.perf_counter()
        note = work()
        self.seconds[name] = time.perf_counter() - start
        self.say(f"      {note + '; ' if note else ''}{self.seconds[name]:.0f} s")


def recipe_config(config: PipelineConfig, recipe: str) -> DistillConfig:
    out = config.out
    boundary = config.steps * 3 // 4
    overrides = [
        f"student={out / 'student'}", f"out={out / 'runs' / recipe}", f"seed={config.seed}",
        f"data.train_manifest={out / 'pseudo' / 'pseudo_labels.jsonl'}",
        f"data.dev_manifest={out / 'corpus' / 'dev.jsonl'}", f"optim.max_steps={config.steps}",
        f"eval.every_steps={max(config.steps // 4, 1)}", f"checkpoint.every_steps={max(config.steps // 4, 1)}",
    ]
    if recipe == "askd":
        overrides += [f"loss.kd_decay.decay_steps={boundary}", f"self_distill.start_step={boundary}"]
    return load_config(DistillConfig, CONFIGS / f"{recipe}.yaml", overrides)


def _make_student(config: PipelineConfig) -> str:
    folder = config.out / "student"
    teacher = load_whisper(config.teacher)
    c = teacher.model.config
    full = window_seconds(c)
    encoder = parse_layers(config.encoder_layers, c.encoder_layers) if config.encoder_layers else range(c.encoder_layers)
    window = config.window_seconds
    if window == "auto":
        longest = max((u.duration for u in read_manifest(config.out / "corpus" / "train.jsonl")), default=0.0)
        window = min(max(math.ceil(longest), 1), full)
    spec = StudentSpec(tuple(encoder), tuple(parse_layers(config.decoder_layers, c.decoder_layers)),
                       window_seconds=window)
    if (folder / STUDENT_FILE).is_file():
        wanted = {"encoder_layers": list(spec.encoder_layers), "decoder_layers": list(spec.decoder_layers),
                  "window_seconds": {"teacher": full, "student": spec.window_seconds or full}}
        existing = json.loads((folder / STUDENT_FILE).read_text())
        # Students recorded before windows existed had the teacher's.
        existing.setdefault("window_seconds", {"teacher": full, "student": full})
        if {key: existing.get(key) for key in wanted} != wanted:
            raise VoxdistillError(f"{folder} holds a student of other settings ({existing.get('encoder_layers')}, "
                                  f"{existing.get('decoder_layers')}, {existing.get('window_seconds')}); "
                                  f"use another --out, or delete that folder and what was trained from it")
        return "reused"
    student, provenance = build_student(teacher.model, spec)
    save_student(student, teacher.processor, provenance, config.teacher, teacher.fingerprint.digest, folder)
    return (f"encoder layers {provenance['encoder_layers']}, decoder layers {provenance['decoder_layers']}, "
            f"{provenance['window_seconds']['student']} s window")


def _distill(config: PipelineConfig, recipe: str, progress: bool) -> str:
    run = recipe_config(config, recipe)
    _refuse_other_settings(run)
    if (run.out / "model" / "config.json").is_file():
        return f"reused {run.out / 'model'}"
    result = distill(run, progress=progress)
    best = "" if result.state.best_wer is None else f", best dev WER {result.state.best_wer:.1%}"
    return f"{result.state.step} steps{best} -> {run.out / 'model'}"


def _refuse_other_settings(run: DistillConfig) -> None:
    """A run folder is reused or resumed only with the resolved config it was started with (the
    trainer saves it as ``config.yaml``); anything else would mix two runs or report a stale one."""
    saved = run.out / "config.yaml"
    if not saved.is_file():
        return
    changes = _differences(to_dict(load_config(DistillConfig, saved)), to_dict(run))
    if changes:
        raise VoxdistillError(f"{run.out} holds a distillation run of other settings ({'; '.join(changes)}); "
                              f"use another --out, or delete that folder to train it again")


def _differences(saved: dict, wanted: dict, prefix: str = "") -> list[str]:
    """``dotted.key: saved -> wanted`` for every setting that differs."""
    lines = []
    for key in {**saved, **wanted}:
        old, new = saved.get(key), wanted.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            lines += _differences(old, new, f"{prefix}{key}.")
        elif old != new:
            lines.append(f"{prefix}{key}: {json.dumps(old)} -> {json.dumps(new)}")
    return lines


def _evaluate(config: PipelineConfig, models: list[str], progress: bool) -> tuple[dict, str]:
    metrics_path, inputs_path = config.out / "eval" / "metrics.json", config.out / "eval" / "inputs.json"
    manifests = eval_manifests(config)
    settings = EvalSettings(latency_clips=config.latency_clips)
    inputs = _evaluation_inputs(models, manifests, settings)
    previous = json.loads(inputs_path.read_text()) if inputs_path.is_file() else None
    if previous == inputs and metrics_path.is_file():
        return json.loads(metrics_path.read_text()), f"reused {metrics_path}"
    # No record may vouch for the old metrics once the new evaluation has begun to replace them.
    inputs_path.unlink(missing_ok=True)
    result = evaluate(models, manifests, metrics_path, settings, progress=progress)
    write_text_atomic(inputs_path, json.dumps(inputs, indent=2) + "\n")
    changed = [key for key in inputs if previous is not None and previous.get(key) != inputs[key]]
    return result, f"-> {metrics_path}" + (f" (redone: {', '.join(changed)} changed)" if changed else "")


def _evaluation_inputs(models: list[str], manifests: list[Path], settings: EvalSettings) -> dict:
    """What the metrics are a function of. Corpus audio file names carry a hash of their content
    (data.corpus), so a manifest's bytes stand for its audio too."""
    return {
        "models": models,  # in order: the first is the reference of the ratios
        "weights": {source: _weights_sha256(source) for source in models},
        "manifests": {str(m): _sha256([m]) for m in manifests},
        "settings": asdict(settings),
    }


def _weights_sha256(source: str) -> str:
    """The sha256 of a model folder's weight files; a hub id (no local files) stands for itself."""
    folder = resolve_model_folder(source)
    if not isinstance(folder, Path):
        return folder
    return _sha256(sorted(p for p in folder.iterdir() if p.suffix in (".safetensors", ".bin")))


def _sha256(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for path in paths:
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def real_speech_manifest(config: PipelineConfig) -> Path:
    return config.out / REAL_SPEECH_SET / f"{REAL_SPEECH_SET}.jsonl"


def eval_manifests(config: PipelineConfig) -> list[Path]:
    """The corpus's held-out sets, and the real-speech set when the run has one."""
    manifests = [config.out / "corpus" / f"{name}.jsonl" for name in EVAL_SETS]
    return manifests + ([real_speech_manifest(config)] if config.real_speech is not None else [])


def run_pipeline(config: PipelineConfig, progress: bool = True, say: Callable[[str], None] = print) -> dict:
    """Run (or finish) every stage; returns the evaluation result, with ``report`` and ``stage_seconds``."""
    out = config.out
    stages = Stages(6 + len(config.recipes), say)
    corpus = out / "corpus"

    def synthesize() -> str:
        summaries = build_corpus(PRESETS[config.preset], corpus, seed=config.seed, progress=progress)
        return f"{sum(s.utterances for s in summaries)} utterances, {sum(s.hours for s in summaries):.2f} h"

    stages.run(f"corpus ({config.preset} preset) -> {corpus}", synthesize)
    if config.real_speech is not None:
        import_folder(config.real_speech, real_speech_manifest(config), domain="real")

    def pseudo_label() -> str:
        summary = run_pseudo_label(PseudoLabelConfig(config.teacher, corpus / "train.jsonl", out / "pseudo"),
                                   progress=progress)
        return f"{summary.kept} pseudo-labels -> {out / 'pseudo' / 'pseudo_labels.jsonl'}"

    stages.run(f"pseudo-labels from {config.teacher}", pseudo_label)
    stages.run(f"student from {config.teacher}'s layers -> {out / 'student'}", lambda: _make_student(config))
    for recipe in config.recipes:
        stages.run(f"distill: {recipe} recipe, {config.steps} steps", lambda r=recipe: _distill(config, r, progress))

    models = [config.teacher] + [str(out / "runs" / r / "model") for r in config.recipes]
    result: dict = {}

    def evaluation() -> str:
        nonlocal result
        result, note = _evaluate(config, models, progress)
        return note

    stages.run(f"evaluate teacher and student{'s' if len(config.recipes) > 1 else ''} on {', '.join(m.stem for m in eval_manifests(config))}",
               evaluation)

    def cards() -> str:
        written = [write_model_card(Path(r["source"]), result, r["model"]) for r in result["models"]
                   if r["role"] == "student"]
        return ", ".join(str(p) for p in written)

    stages.run("model cards", cards)
    report = out / "report.html"
    stages.run("report", lambda: f"-> {build_report([out / 'runs', out / 'eval' / 'metrics.json'], report, title=f'voxdistill: {out.name}')}")
    say("")
    say(format_table(result))
    return result | {"report": str(report), "stage_seconds": stages.seconds}
