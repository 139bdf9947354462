"""The whole job in one call: corpus, pseudo-labels, student, distillation, evaluation, model card,
report. ``voxdistill demo`` runs it with the ASKD recipe; ``voxdistill bench`` with the CE, KD and
ASKD recipes side by side (same student, data and step budget) and the teacher-ft baseline (the
teacher itself fine-tuned on the same labels for the same steps), each once per distillation seed.

Every stage is resumable, so a second run (or a run after Ctrl-C) reuses what is finished: the
corpus build keeps files that are still wanted, pseudo-labelling skips committed shards, a
distillation run resumes from its last checkpoint and is skipped once its model is exported, and the
evaluation is skipped when its metrics cover the same models. Nothing is reused on trust: a
distillation run folder made with another resolved config is refused, naming the keys, and the
evaluation is redone unless the models' weights, the manifests and the settings are the same.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from voxdistill.config import load_config, run_differences, to_dict
from voxdistill.data.corpus import PRESETS, build_corpus
from voxdistill.data.importers import import_folder
from voxdistill.data.lengths import LengthMix, build_length_mix
from voxdistill.data.manifest import concatenate_manifests, read_manifest
from voxdistill.data.real_speech import REAL_PRESETS, RealSpeechPreset, build_real_speech
from voxdistill.data.real_speech import TEST_SETS as REAL_TEST_SETS
from voxdistill.distill.config import DistillConfig
from voxdistill.errors import VoxdistillError, kept_on_interrupt
from voxdistill.evaluation.evaluate import EvalSettings, evaluate, format_table
from voxdistill.evaluation.report import build_report
from voxdistill.evaluation.report_inputs import (fastest_threads, format_ms, format_percent, format_ratio,
                                                 runtime_name, same_threads_speedups, speedup)
from voxdistill.evaluation.seeds import aggregate_over_seeds, format_over_seeds
from voxdistill.evaluation.speed import cpu_probe_ms, set_threads, thread_counts
from voxdistill.export.model_card import write_model_card
from voxdistill.families import distill
from voxdistill.files import check_writable_output, output_lock, sha256_of_files, write_text_atomic
from voxdistill.models.loading import load_whisper, resolve_model_folder
from voxdistill.models.student import (
    StudentSpec, after_silence, build_student, pad_step_samples, parse_layers, read_student_record, recorded_teacher, save_student,
    trailing_samples, window_seconds,
)
from voxdistill.runtime import Runtime
from voxdistill.scoring.metrics import scoring_identity
from voxdistill.teacher.filters import LabelFilters
from voxdistill.teacher.pseudo_label import PseudoLabelConfig, run_pseudo_label

# The recipe YAMLs, which the pipeline points at its own folders: package data, so that they are found
# in an installed wheel as in a checkout (where configs/ links to them).
CONFIGS = Path(__file__).resolve().parent / "recipes"
REAL_POOL, REAL_DEV = "real-pool.jsonl", "real-dev.jsonl"  # written by data.real_speech
SYNTHETIC_TEST_SETS = ("test-clean", "test-ood-voice", "test-ood-noise")
# A folder of the user's own real speech (``--real-speech``), scored as one more set.
REAL_SPEECH_SET = "real-speech"
# What the pipeline trains on: the corpus's synthetic split, and, when the preset has real speech,
# the real pool (which the teacher labels), its packed clips and pieces.
TRAIN_MIX = "train-mix.jsonl"


# The demo (preset demo, default settings) timed from nothing on one of the developers' machines,
# and what `cpu_probe_ms` measured there at the demo's start.
DEMO_REFERENCE = {"minutes": 15.7, "probe_ms": 11.0, "cpu": "2-core Intel Xeon with AMX"}
# The demo's time grows more slowly than the probe's: the probe is a float32 product, where a wide
# vector unit counts most, and over half of the demo runs CTranslate2 int8. Three demos of 100 steps
# from nothing, on a Xeon with AMX (probe 11 ms, 15.7 min) and twice on an AMD EPYC with AVX-512
# (23 ms, 21.2 min; 29 ms, 23.7 min), give time ∝ probe^0.42 (0.41 and 0.43 from the Xeon to
# each run on the EPYC); a straight proportion said 33 and 41 min on the EPYC.
DEMO_TIME_EXPONENT = 0.42


def time_estimate(probe_ms: float) -> str:
    minutes = DEMO_REFERENCE["minutes"] * (probe_ms / DEMO_REFERENCE["probe_ms"]) ** DEMO_TIME_EXPONENT
    return (f"this CPU ran the speed probe in {probe_ms:.0f} ms, against {DEMO_REFERENCE['probe_ms']:.0f} ms on a "
            f"{DEMO_REFERENCE['cpu']} where the demo takes {DEMO_REFERENCE['minutes']:.0f} min from nothing: expect "
            f"about {minutes:.0f} min here (less for the stages a previous run finished)")


@dataclass(frozen=True)
class RealMix:
    """The real speech a corpus preset adds: which shipped clips train (unlabelled: the teacher labels
    them), which pick the best step, and the packed clips and pieces made from the training pool."""

    speech: RealSpeechPreset
    lengths: LengthMix


# Whisper's filters, with the no-speech rule on its own: a piece cut from a pause may hold a breath,
# which the teacher confidently hears as "you"; kept, it teaches the student to invent words.
PIPELINE_LABEL_FILTERS = LabelFilters(no_speech_alone=True)

# Corpus preset -> its real speech; a preset without an entry is synthetic only.
REAL_MIXES = {
    "demo": RealMix(REAL_PRESETS["demo"], LengthMix(packed=40, pieces=60, short_pieces=60)),
    "full": RealMix(REAL_PRESETS["full"], LengthMix(packed=400, pieces=600, short_pieces=600)),
}
# The folders under ``out`` that recipes train from: the pipeline's student, except for the
# teacher-ft baseline, which fine-tunes a full copy of the teacher (every layer, its own window).
STUDENT_FOLDER, TEACHER_COPY_FOLDER = "student", "teacher-student"
TRAINS_FROM = {"teacher-ft": TEACHER_COPY_FOLDER}


@dataclass(frozen=True)
class PipelineConfig:
    out: Path  # everything goes here: corpus/, pseudo/, student/, runs/<recipe>/, eval/, report.html
    teacher: str = "bundled:whisper-tiny.en"
    recipes: tuple[str, ...] = ("encoder-kd",)  # configs/<recipe>.yaml, trained in this order
    preset: str = "demo"  # corpus size (data.corpus.PRESETS)
    encoder_layers: str | None = None  # student encoder: count or indices; None = all
    # Student decoder: count or indices. All 4 of tiny.en's: on real speech the 4-layer student
    # distilled by the demo is closer to its teacher than the 3-layer one (6.6% against 8.7% on
    # accented read speech, teacher 4.0%), at a cost in speed: its decoding costs what the teacher's
    # does, so only its encoder (each clip at its own length) is cheaper: 3.03x in CTranslate2 int8 in
    # the demo; fewer layers trade real-speech accuracy for speed (see docs/measurements.md).
    decoder_layers: str = "4"
    # The student's audio window in seconds; None = the teacher's 30; "auto" = the longest training
    # utterance, rounded up (every clip fits, and no more padding than that is computed).
    window_seconds: int | Literal["auto"] | None = "auto"
    # Each clip encoded at its own length, padded to the next multiple of this many seconds (not to
    # the window): the encoder's work follows the clip. None = padded to the window.
    pad_step_seconds: float | None = 1.0
    # ... after at least this many seconds of zeros. tiny.en's own encoder, read at a clip's bare
    # length, has 18% WER on accented read speech (4% at its 30 s window); untrained, it needs 8 s
    # after the clip to keep its accuracy, 2 s once the encoder-kd recipe has trained it to read
    # short padding (docs/measurements.md). 0 pads only to the step.
    trailing_silence_seconds: float = 2.0
    steps: int = 100  # optimizer steps per recipe; ASKD's phase boundary sits at 3/4 of them
    seed: int = 0  # the corpus's seed, and the distillation seed of runs/<recipe>/
    # Distillation seeds: each recipe is trained once per seed (runs/<recipe>-seed<k>/ for the seeds
    # other than ``seed``) on the same corpus, pseudo-labels and student; None = ``seed`` alone.
    seeds: tuple[int, ...] | None = None
    latency_clips: int = 20  # per evaluation set, timed at batch 1
    # Thread counts batch-1 latency is timed at, each model at each, its fastest leading the tables
    # (on a 2-core CPU the teacher's 30 s encoder wants both cores, a small decoder one: the two
    # threads' hand-offs cost CTranslate2 more per token than the work). None: 1 and every doubling
    # up to the runtime's threads.
    latency_threads: tuple[int, ...] | None = None
    # A folder of the user's own real speech with .txt transcripts (``corpus import`` layout), scored
    # as one more set, ``real-speech``, beside the shipped real-speech test sets.
    real_speech: Path | None = None
    # The runtime the student is deployed in, "backend[:compute_type]": teacher and students are
    # evaluated in it (eval-<backend>-<type>/; eval/ for PyTorch float32), and that evaluation is the
    # one the model cards, the bench summary and the headline lead with.
    deployed_runtime: str = "ct2:int8"
    # More runtimes to evaluate the same models in, side by side in the report, cards and headline
    # (e.g. ("torch:float32",) for PyTorch as it trains).
    other_runtimes: tuple[str, ...] = ()

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
        if self.pad_step_seconds is not None:
            pad_step_samples(self.pad_step_seconds)  # a StudentConfigError now, not after the corpus
            trailing_samples(self.trailing_silence_seconds, self.pad_step_seconds)  # (ignored without a step)
        if self.seeds is not None and (not self.seeds or len(set(self.seeds)) != len(self.seeds)):
            raise VoxdistillError(f"seeds must be one or more different numbers, got {list(self.seeds)}")
        runtimes = self.runtimes()  # validates
        if len(set(runtimes)) != len(runtimes):
            raise VoxdistillError(f"each runtime is evaluated once: {', '.join(map(str, runtimes))}")

    def runtimes(self) -> list[Runtime]:
        """The deployed runtime, then the others."""
        def parse(text: str) -> Runtime:
            backend, _, compute_type = text.partition(":")
            return Runtime.of(backend, compute_type or None)

        return [parse(self.deployed_runtime), *map(parse, self.other_runtimes)]

    def distill_seeds(self) -> tuple[int, ...]:
        return (self.seed,) if self.seeds is None else tuple(self.seeds)


RESUME_PIPELINE = "run the same command to reuse the finished stages and resume the stopped one"


class Stages:
    """Numbered stage headers and their wall-clock times, printed as the pipeline goes. Ctrl-C or
    SIGTERM in a stage stops with `errors.Interrupted`, saying which stages are finished and what
    the stopped one kept."""

    def __init__(self, total: int, say: Callable[[str], None]):
        self.total, self.say = total, say
        self.number = 0
        self.seconds: dict[str, float] = {}

    def run(self, name: str, work: Callable[[], str | None]):
        self.number += 1
        self.say(f"[{self.number}/{self.total}] {name}")
        start = time.perf_counter()
        with kept_on_interrupt(lambda: self.stopped_in(name), RESUME_PIPELINE):
            note = work()
        self.seconds[name] = time.perf_counter() - start
        self.say(f"      {note + '; ' if note else ''}{self.seconds[name]:.0f} s")

    def stopped_in(self, name: str) -> str:
        """What an interruption in stage ``name`` leaves: the stages before it, finished."""
        done = self.number - 1
        finished = ("no stage is finished" if done == 0 else f"stage 1 of {self.total} is finished" if done == 1
                    else f"stages 1–{done} of {self.total} are finished")
        return f"{finished}; stage {self.number} ({name}) stopped"


def student_folder(config: PipelineConfig, recipe: str) -> Path:
    """The folder ``recipe`` trains from."""
    return config.out / TRAINS_FROM.get(recipe, STUDENT_FOLDER)


def run_folder(config: PipelineConfig, recipe: str, seed: int) -> Path:
    """runs/<recipe>/ for the pipeline's own seed (so bench reuses the demo's run), else runs/<recipe>-seed<k>/."""
    return config.out / "runs" / (recipe if seed == config.seed else f"{recipe}-seed{seed}")


def recipe_config(config: PipelineConfig, recipe: str, seed: int | None = None) -> DistillConfig:
    out = config.out
    seed = config.seed if seed is None else seed
    boundary = config.steps * 3 // 4
    overrides = [
        f"student={student_folder(config, recipe)}", f"out={run_folder(config, recipe, seed)}", f"seed={seed}",
        f"data.train_manifest={out / 'pseudo' / 'pseudo_labels.jsonl'}",
        f"data.dev_manifest={dev_manifest(config)}", f"optim.max_steps={config.steps}",
        f"eval.every_steps={max(config.steps // 4, 1)}", f"checkpoint.every_steps={max(config.steps // 4, 1)}",
    ]
    if recipe == "askd":
        overrides += [f"loss.kd_decay.decay_steps={boundary}", f"self_distill.start_step={boundary}"]
    distill_config = load_config(DistillConfig, CONFIGS / f"{recipe}.yaml", overrides)
    if distill_config.teacher.mode != "online":
        return distill_config
    # A teacher in the loop is the pipeline's own.
    return replace(distill_config, teacher=replace(distill_config.teacher, model=config.teacher))


def _make_student(config: PipelineConfig) -> str:
    folder = config.out / "student"
    teacher = load_whisper(config.teacher)
    c = teacher.model.config
    full = window_seconds(c)
    encoder = parse_layers(config.encoder_layers, c.encoder_layers) if config.encoder_layers else range(c.encoder_layers)
    window = config.window_seconds
    if window == "auto":
        longest = max((u.duration for u in read_manifest(config.out / "corpus" / TRAIN_MIX)), default=0.0)
        window = min(max(math.ceil(longest), 1), full)
    spec = StudentSpec(tuple(encoder), tuple(parse_layers(config.decoder_layers, c.decoder_layers)),
                       window_seconds=window, pad_step_seconds=config.pad_step_seconds,
                       trailing_silence_seconds=config.trailing_silence_seconds if config.pad_step_seconds else 0.0)
    if (existing := read_student_record(folder)) is not None:
        wanted = {"encoder_layers": list(spec.encoder_layers), "decoder_layers": list(spec.decoder_layers),
                  "window_seconds": {"teacher": full, "student": spec.window_seconds or full},
                  "pad_step_seconds": spec.pad_step_seconds,
                  "trailing_silence_seconds": spec.trailing_silence_seconds}
        # Students recorded before windows (or clip-length padding) existed had the teacher's.
        existing.setdefault("window_seconds", {"teacher": full, "student": full})
        existing.setdefault("trailing_silence_seconds", 0.0)
        if {key: existing.get(key) for key in wanted} != wanted:
            raise VoxdistillError(f"{folder} holds a student of other settings ({existing.get('encoder_layers')}, "
                                  f"{existing.get('decoder_layers')}, {existing.get('window_seconds')}, pad step "
                                  f"{existing.get('pad_step_seconds')}, trailing silence "
                                  f"{existing.get('trailing_silence_seconds')}); use another --out, or delete that folder "
                                  f"and what was trained from it")
        return "reused"
    student, provenance = build_student(teacher.model, spec)
    save_student(student, teacher.processor, provenance, config.teacher, teacher.fingerprint.digest, folder)
    padding = ("to the window" if spec.pad_step_seconds is None else
               f"to the next {spec.pad_step_seconds:g} s{after_silence(provenance)}")
    return (f"encoder layers {provenance['encoder_layers']}, decoder layers {provenance['decoder_layers']}, "
            f"{provenance['window_seconds']['student']} s window, clips padded {padding}")


def _make_teacher_copy(config: PipelineConfig) -> str:
    """The teacher-ft baseline's starting point: the teacher as a student folder, every layer kept
    and its own window, so that it trains (and is evaluated and carded) like any student."""
    folder = config.out / TEACHER_COPY_FOLDER
    teacher = load_whisper(config.teacher)
    if (existing := recorded_teacher(folder)) is not None:
        if existing["fingerprint"] != teacher.fingerprint.digest:
            raise VoxdistillError(f"{folder} holds a copy of another teacher ({existing['source']}, fingerprint "
                                  f"{existing['fingerprint']}; {config.teacher} is {teacher.fingerprint.digest}); "
                                  f"use another --out, or delete that folder and what was trained from it")
        return "reused"
    c = teacher.model.config
    spec = StudentSpec(tuple(range(c.encoder_layers)), tuple(range(c.decoder_layers)))
    student, provenance = build_student(teacher.model, spec)
    save_student(student, teacher.processor, provenance, config.teacher, teacher.fingerprint.digest, folder)
    return (f"all {c.encoder_layers} encoder and {c.decoder_layers} decoder layers, "
            f"{provenance['window_seconds']['student']} s window")


# What builds each folder that recipes train from: (stage title, builder).
STARTING_POINTS = {
    STUDENT_FOLDER: ("student from {teacher}'s layers", _make_student),
    TEACHER_COPY_FOLDER: ("full copy of {teacher} for the teacher-ft baseline", _make_teacher_copy),
}


def _distill(config: PipelineConfig, recipe: str, progress: bool, seed: int | None = None) -> str:
    run = recipe_config(config, recipe, seed)
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
    changes = run_differences(DistillConfig, to_dict(load_config(DistillConfig, saved)), to_dict(run))
    if changes:
        raise VoxdistillError(f"{run.out} holds a distillation run of other settings ({'; '.join(map(str, changes))}); "
                              f"use another --out, or delete that folder to train it again")


def eval_folder(config: PipelineConfig, runtime: Runtime = Runtime()) -> Path:
    """eval/ for PyTorch float32, eval-<backend>-<compute type>/ for another runtime."""
    return config.out / ("eval" if runtime == Runtime() else f"eval-{runtime.backend}-{runtime.compute_type}")


def _evaluate(config: PipelineConfig, models: list[str], progress: bool,
              runtime: Runtime = Runtime()) -> tuple[dict, str]:
    folder = eval_folder(config, runtime)
    metrics_path, inputs_path = folder / "metrics.json", folder / "inputs.json"
    manifests = eval_manifests(config)
    settings = EvalSettings(latency_clips=config.latency_clips, runtime=runtime,
                            latency_threads=config.latency_threads or thread_counts(set_threads(None)))
    inputs = _evaluation_inputs(models, manifests, settings, config.out)
    previous = json.loads(inputs_path.read_text()) if inputs_path.is_file() else None
    if previous == inputs and metrics_path.is_file():
        result = json.loads(metrics_path.read_text())
        # The same models, in the same order, perhaps at another path (a moved folder): named as now.
        for record, source in zip(result["models"], models):
            record["source"] = source
        return result, f"reused {metrics_path}"
    # No record may vouch for the old metrics once the new evaluation has begun to replace them.
    inputs_path.unlink(missing_ok=True)
    result = evaluate(models, manifests, metrics_path, settings, progress=progress)
    write_text_atomic(inputs_path, json.dumps(inputs, indent=2) + "\n")
    changed = [key for key in inputs if previous is not None and previous.get(key) != inputs[key]]
    return result, f"-> {metrics_path}" + (f" (redone: {', '.join(changed)} changed)" if changed else "")


def _evaluation_inputs(models: list[str], manifests: list[Path], settings: EvalSettings, root: Path) -> dict:
    """What the metrics are a function of. Corpus audio file names carry a hash of their content
    (data.corpus), so a manifest's bytes stand for its audio too. Paths inside the pipeline's
    folder ``root`` are recorded relative to it: the folder moved elsewhere holds the same inputs."""
    def named(source: str | Path) -> str:
        path = Path(source).resolve()
        return path.relative_to(root.resolve()).as_posix() if path.is_relative_to(root.resolve()) else str(source)

    return {
        "models": [named(source) for source in models],  # in order: the first is the reference of the ratios
        "weights": {named(source): _weights_sha256(source) for source in models},
        "manifests": {named(m): sha256_of_files([m]) for m in manifests},
        "settings": to_dict(settings),  # plain data, as read back from JSON (tuples as lists)
        "scoring": scoring_identity(),
    }


def _weights_sha256(source: str) -> str:
    """The sha256 of a model folder's weight files; a hub id (no local files) stands for itself."""
    folder = resolve_model_folder(source)
    if not isinstance(folder, Path):
        return folder
    return sha256_of_files(sorted(p for p in folder.iterdir() if p.suffix in (".safetensors", ".bin")))


def real_speech_manifest(config: PipelineConfig) -> Path:
    return config.out / REAL_SPEECH_SET / f"{REAL_SPEECH_SET}.jsonl"


def eval_sets(config: PipelineConfig) -> tuple[str, ...]:
    """The evaluation sets' names, real speech first: what decides whether a student can replace its teacher."""
    real = tuple(REAL_TEST_SETS) if config.preset in REAL_MIXES else ()
    return real + SYNTHETIC_TEST_SETS + ((REAL_SPEECH_SET,) if config.real_speech is not None else ())


def eval_manifests(config: PipelineConfig) -> list[Path]:
    """The manifests of `eval_sets`: the shipped real-speech test sets, the corpus's held-out
    synthetic sets, and the user's own real-speech folder when the run has one."""
    return [real_speech_manifest(config) if name == REAL_SPEECH_SET else config.out / "corpus" / f"{name}.jsonl"
            for name in eval_sets(config)]


def dev_manifest(config: PipelineConfig) -> Path:
    """What the recipes pick their exported step by: real dev speech when the preset has it (clips
    that neither train nor test: two Harvard speakers and held-out clips of the pool's own speakers).
    Scored on synthetic dev as well, a run's best step followed its gains
    on synthetic voices while it lost real speech (docs/measurements.md); the synthetic dev split
    serves only a synthetic-only preset."""
    corpus = config.out / "corpus"
    return corpus / (REAL_DEV if config.preset in REAL_MIXES else "dev.jsonl")


def build_training_mix(config: PipelineConfig) -> str:
    """The real-speech sets (when the preset has them), the packed clips, pieces and short pieces of
    the real pool, and ``train-mix.jsonl``, which the teacher labels and the recipes train on: the
    synthetic train split with its references, then the real pool and its clips, which have none."""
    mix = REAL_MIXES.get(config.preset)
    corpus = config.out / "corpus"
    train = [corpus / "train.jsonl"]
    if mix is not None:
        build_real_speech(corpus, mix.speech)
        lengths = build_length_mix(corpus / REAL_POOL, corpus, mix.lengths, config.seed)
        train += [corpus / REAL_POOL, lengths]
    counts = [sum(1 for _ in read_manifest(m)) for m in train]
    concatenate_manifests(corpus / TRAIN_MIX, train)
    return "training mix: " + ", ".join(f"{n} {m.stem}" for n, m in zip(counts, train))


def run_pipeline(config: PipelineConfig, progress: bool = True, say: Callable[[str], None] = print) -> dict:
    """Run (or finish) every stage; returns the evaluation result, with ``report``, ``stage_seconds``
    and ``over_seeds`` (each recipe's WER over its seeds, also written to ``bench.json`` in the deployed
    runtime's evaluation folder). A second pipeline into the same folder meanwhile is refused."""
    check_writable_output(config.out, "folder")
    with output_lock(config.out):
        return _run_pipeline(config, progress, say)


def _run_pipeline(config: PipelineConfig, progress: bool, say: Callable[[str], None]) -> dict:
    out = config.out
    seeds = config.distill_seeds()
    starting_points = list(dict.fromkeys(student_folder(config, recipe).name for recipe in config.recipes))
    runtimes = config.runtimes()
    stages = Stages(5 + len(runtimes) + len(starting_points) + len(config.recipes) * len(seeds), say)
    corpus = out / "corpus"
    if config.preset == "demo":
        say(time_estimate(cpu_probe_ms()))

    def synthesize() -> str:
        summaries = build_corpus(PRESETS[config.preset], corpus, seed=config.seed, progress=progress)
        return f"{sum(s.utterances for s in summaries)} utterances, {sum(s.hours for s in summaries):.2f} h"

    stages.run(f"corpus ({config.preset} preset) -> {corpus}", synthesize)
    stages.run("real speech and the training mix", lambda: build_training_mix(config))
    if config.real_speech is not None:
        import_folder(config.real_speech, real_speech_manifest(config), domain="real")

    def pseudo_label() -> str:
        summary = run_pseudo_label(PseudoLabelConfig(config.teacher, corpus / TRAIN_MIX, out / "pseudo",
                                                     filters=PIPELINE_LABEL_FILTERS), progress=progress)
        return (f"{summary.kept} pseudo-labels, {summary.dropped} dropped by the filters "
                f"-> {out / 'pseudo' / 'pseudo_labels.jsonl'}")

    stages.run(f"pseudo-labels from {config.teacher}", pseudo_label)
    for folder in starting_points:
        title, build = STARTING_POINTS[folder]
        stages.run(f"{title.format(teacher=config.teacher)} -> {out / folder}", lambda b=build: b(config))
    # Seed by seed, so that an interrupted bench has whole comparisons first.
    for seed in seeds:
        for recipe in config.recipes:
            stages.run(f"distill: {recipe} recipe, {config.steps} steps" + (f", seed {seed}" if len(seeds) > 1 else ""),
                       lambda r=recipe, s=seed: _distill(config, r, progress, s))

    runs = {r: {s: str(run_folder(config, r, s) / "model") for s in seeds} for r in config.recipes}
    models = [config.teacher] + [model for by_seed in runs.values() for model in by_seed.values()]
    evaluations: list[dict] = []  # one per runtime, the deployed one first
    sets = ", ".join(eval_sets(config))
    for runtime in runtimes:
        def evaluation(runtime=runtime) -> str:
            metrics, note = _evaluate(config, models, progress, runtime)
            evaluations.append(metrics)
            return note

        where = "the deployed runtime" if not evaluations else "also"
        stages.run(f"evaluate teacher and student{'s' if len(models) > 2 else ''} in {where}, {runtime}: {sets}",
                   evaluation)
    result = evaluations[0]
    # Derived from the metrics every time, so it never outlives the evaluation it summarises.
    over_seeds = aggregate_over_seeds(result, runs)
    over_seeds_file = write_text_atomic(eval_folder(config, runtimes[0]) / "bench.json",
                                        json.dumps(over_seeds, indent=2) + "\n")

    def cards() -> str:
        written = [write_model_card(Path(r["source"]), result, r["model"], evaluations[1:]) for r in result["models"]
                   if r["role"] == "student"]
        return ", ".join(str(p) for p in written)

    stages.run("model cards", cards)
    report = out / "report.html"
    metrics_files = [eval_folder(config, runtime) / "metrics.json" for runtime in runtimes]
    stages.run("report", lambda: f"-> {build_report([out / 'runs', *metrics_files], report, title=f'voxdistill: {out.name}')}")
    for metrics in evaluations:
        say("")
        say(format_table(metrics))
    say("")
    say(headline(evaluations))
    if len(seeds) > 1:
        say("")
        say(format_over_seeds(over_seeds))
    return result | {"report": str(report), "stage_seconds": stages.seconds, "over_seeds": over_seeds,
                     "over_seeds_file": str(over_seeds_file), "evaluations": evaluations}


def short_set_name(name: str) -> str:
    """"read" for ``test-real-read``, "ood-voice" for ``test-ood-voice``: a column heading."""
    return name.removeprefix("test-").removeprefix("real-")


def headline(evaluations: list[dict]) -> str:
    """Each student against the teacher in each evaluation's runtime, the deployed one first: WER per
    set (real speech first, as the evaluation lists them), insertions and looping, batch-1 latency
    p50 and speed-up."""
    lines = []
    for metrics in evaluations:
        names = list(metrics["models"][0]["sets"])
        width = max(14, *(len(m["model"]) for m in metrics["models"]))
        lines += [f"teacher vs student in {runtime_name(metrics['runtime'])}, WER per set:",
                  f"  {'':{width}} " + " ".join(f"{short_set_name(n):>12}" for n in names)
                  + f" {'insertions':>11} {'looping':>8} {'p50':>8} {'faster':>7}"]
        for model in metrics["models"]:
            o = model["overall"]
            faster = metrics["ratios"].get(model["model"])
            lines.append(f"  {model['model']:{width}} "
                         + " ".join(f"{format_percent(model['sets'][n]['wer']):>12}" for n in names)
                         + f" {format_percent(o.get('insertion_rate')):>11} {format_percent(o.get('repeated_ngram_rate')):>8}"
                         f" {format_ms(o.get('latency_ms_p50')):>8} {format_ratio(speedup(faster)) if faster else '':>7}")
        timed = [f"{m['model']} {fastest_threads(m).removeprefix('at ')}" for m in metrics["models"] if fastest_threads(m)]
        if timed:
            lines.append(f"  p50 at each model's fastest thread count ({', '.join(timed)}); faster with both at the same count: "
                         + "; ".join(f"{label} {same_threads_speedups(r)}" for label, r in metrics["ratios"].items()))
    return "\n".join(lines)
