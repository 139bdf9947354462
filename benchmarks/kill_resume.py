"""Kill -9 at random moments, resume, and check that nothing was lost or repeated: pseudo-labelling
(`voxdistill pseudo-label`, a tiny random-weight Whisper teacher, real short speech, small shards)
and distillation (`voxdistill distill`, a student of that teacher, a checkpoint every few steps).

Each workload runs once uninterrupted (the reference, which also measures how long start-up and one
unit of work -- a shard, a checkpoint interval -- take), then again into a fresh folder with the same
command, SIGKILLed --kills times and started again after each kill, and once more to finish. A kill
comes either early (at a random moment of start-up: imports, model loading, resume bookkeeping) or
after the run has committed new work (a random part of 1.5 units later, so that it lands anywhere:
mid-batch, mid-save, mid-merge). The work is sized at 3 units per kill, more than a killed run
commits, so the runs do not finish before the last kill (one that does is reported). Which kills
are early, and every moment, is drawn from --seed. Then it checks:

- pseudo-label: every utterance exactly once in pseudo_labels.jsonl, and the records and the top-k
  rows identical to the reference's;
- distill: every step exactly once in log.jsonl and in the TensorBoard events, the losses and the
  final weights identical (bit for bit) to the reference's.

    .venv/bin/python benchmarks/kill_resume.py [--kills 10] [--seed 0] [--speech DIR] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from statistics import median

import torch
import yaml
from safetensors.torch import load_file

from voxdistill.console import quiet_transformers
from voxdistill.data.importers import folder_utterances
from voxdistill.data.manifest import read_manifest, write_manifest
from voxdistill.data.real_speech import PACK
from voxdistill.distill.checkpoint import complete_checkpoints
from voxdistill.models.debug import make_tiny_whisper
from voxdistill.models.loading import load_whisper, resolve_model_folder
from voxdistill.models.student import StudentSpec, build_student, save_student

from _common import Column, Stopwatch, Table, run

VOXDISTILL = [sys.executable, "-m", "voxdistill.cli"]
SHARD_SIZE = 2
CHECKPOINT_EVERY = 3  # steps
EARLY_KILLS = 0.25  # share of the kills aimed at start-up rather than at work in progress
LATE_SPAN = 1.5  # a late kill comes up to this many units of work after new work is committed


class BenchmarkError(RuntimeError):
    """A run failed for another reason than our kill; the benchmark cannot go on."""


@dataclass
class Workload:
    name: str
    command: list[str]
    progress: Callable[[], int]  # units of work committed so far (shards, checkpoint steps / interval)
    logs: Path  # each run's stderr goes to logs/<name>-<n>.txt


@dataclass
class Timing:
    startup: float  # seconds from launch to the first committed unit
    unit: float  # median seconds between committed units


@dataclass
class Tally:
    kills: int = 0
    early: int = 0  # of the kills, those aimed at start-up
    resumes: int = 0  # runs started again on a folder that held committed work
    checks: dict[str, bool] = field(default_factory=dict)


def launch(workload: Workload, number: int) -> subprocess.Popen:
    with (workload.logs / f"{workload.name}-{number:02d}.txt").open("w") as stderr:
        return subprocess.Popen(workload.command, stdout=subprocess.DEVNULL, stderr=stderr, env=os.environ.copy())


def finish(workload: Workload, proc: subprocess.Popen, number: int) -> None:
    if proc.wait() != 0:
        log = (workload.logs / f"{workload.name}-{number:02d}.txt").read_text()[-3000:]
        raise BenchmarkError(f"{workload.name} run {number} exited with {proc.returncode}:\n{log}")


def reference_run(workload: Workload) -> Timing:
    """Run to the end, noting when each unit of work is committed."""
    watch = Stopwatch()
    proc = launch(workload, 0)
    seen, times = 0, []
    while proc.poll() is None:
        done = workload.progress()
        if done > seen:
            times += [watch.elapsed()] * (done - seen)
            seen = done
        time.sleep(0.02)
    finish(workload, proc, 0)
    if len(times) < 2:
        raise BenchmarkError(f"{workload.name}: the reference run committed {len(times)} units; need more work")
    return Timing(startup=times[0], unit=median(b - a for a, b in zip(times, times[1:])))


def killed_runs(workload: Workload, timing: Timing, kills: int, rng: random.Random) -> Tally:
    """Start, SIGKILL, start again ... ``kills`` times, then run to the end."""
    tally = Tally()
    early_kills = set(rng.sample(range(1, kills + 1), round(EARLY_KILLS * kills)))
    for number in range(1, kills + 1):
        before = workload.progress()
        tally.resumes += before > 0
        proc = launch(workload, number)
        watch = Stopwatch()
        early = number in early_kills
        if early:
            delay = rng.uniform(0, timing.startup)
        else:
            while proc.poll() is None and workload.progress() <= before:
                time.sleep(0.02)
            delay = rng.uniform(0, LATE_SPAN * timing.unit)
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        else:
            finish(workload, proc, number)
            print(f"  {workload.name} run {number} finished before its kill; work too small for {kills} kills")
            return tally
        tally.kills += 1
        tally.early += early
        print(f"  {workload.name} kill {number:2}: {'early' if early else 'late '} at "
              f"{watch.elapsed():5.1f} s, units {before} -> {workload.progress()}", flush=True)
    tally.resumes += workload.progress() > 0
    proc = launch(workload, kills + 1)
    finish(workload, proc, kills + 1)
    return tally


def committed_shards(out: Path) -> int:
    return len(list((out / "shards").glob("[0-9]*.jsonl")))


def checkpoint_intervals(out: Path) -> int:
    checkpoints = complete_checkpoints(out)
    return int(checkpoints[-1].name.removeprefix("step-")) // CHECKPOINT_EVERY if checkpoints else 0


def records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "pseudo_labels.jsonl").read_text().splitlines()]


def same_tensors(a: Path, b: Path) -> bool:
    x, y = load_file(str(a)), load_file(str(b))
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def event_steps(folder: Path) -> dict[str, Counter]:
    """How often each (tag, step) occurs over all TensorBoard event files, as TensorBoard reads them."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    steps: dict[str, Counter] = {}
    for path in sorted(folder.glob("events.out.tfevents.*")):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                steps.setdefault(value.tag, Counter())[event.step] += 1
    return steps


def pseudo_label_checks(manifest: Path, killed: Path, reference: Path) -> dict[str, bool]:
    ids = Counter(r["id"] for r in records(killed))
    shards = sorted(p.name for p in (reference / "shards").glob("*.safetensors"))
    killed_shards = sorted(p.name for p in (killed / "shards").glob("*.safetensors"))
    return {
        "every utterance exactly once": ids == Counter(u.id for u in read_manifest(manifest)) == Counter(set(ids)),
        "records equal the uninterrupted run's": records(killed) == records(reference),
        "top-k rows equal the uninterrupted run's": shards == killed_shards and all(
            same_tensors(killed / "shards" / s, reference / "shards" / s) for s in shards),
    }


def distill_checks(killed: Path, reference: Path, steps: int) -> dict[str, bool]:
    log = [json.loads(line) for line in (killed / "log.jsonl").read_text().splitlines()]
    straight = [json.loads(line) for line in (reference / "log.jsonl").read_text().splitlines()]
    events = event_steps(killed / "tensorboard")
    return {
        "log.jsonl: every step exactly once": [r["step"] for r in log] == list(range(1, steps + 1)),
        "TensorBoard: every step exactly once": bool(events) and all(
            c == Counter(range(1, steps + 1)) for c in events.values()),
        "losses equal the uninterrupted run's": [r["total"] for r in log] == [r["total"] for r in straight],
        "final weights equal the uninterrupted run's": same_tensors(killed / "model" / "model.safetensors",
                                                                    reference / "model" / "model.safetensors"),
    }


def speech_manifest(speech: Path, path: Path, count: int) -> Path:
    """``count`` utterances cycling through the clips of ``speech``, under distinct ids."""
    clips = list(folder_utterances(speech))
    if not clips:
        raise BenchmarkError(f"{speech}: no audio files")
    write_manifest(path, (replace(clips[i % len(clips)], id=f"{clips[i % len(clips)].id}-{i // len(clips)}")
                          for i in range(count)))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=10, help="SIGKILLs per workload (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments (default 0)")
    parser.add_argument("--speech", type=Path, default=PACK / "harvard",
                        help="a folder of short speech clips (default: the shipped Harvard sentences)")
    parser.add_argument("--work", type=Path, default=None, help="working folder (default: a new temporary one)")
    args = parser.parse_args()
    quiet_transformers()
    os.environ["HF_HUB_OFFLINE"] = "1"
    rng = random.Random(args.seed)
    work = args.work or Path(tempfile.mkdtemp(prefix="voxdistill-kill-resume-"))
    (work / "logs").mkdir(parents=True, exist_ok=True)
    # At most about 3 units of work per killed run (see the module docstring), plus some to spare.
    units = 3 * args.kills + 2
    manifest = speech_manifest(args.speech, work / "speech.jsonl", units * SHARD_SIZE)
    teacher_folder = make_tiny_whisper(work / "teacher", resolve_model_folder("bundled:whisper-tiny.en"))
    teacher = load_whisper(str(teacher_folder))
    student, provenance = build_student(teacher.model, StudentSpec((0, 1), (1,)))
    save_student(student, teacher.processor, provenance, str(teacher_folder), teacher.fingerprint.digest,
                 work / "student")
    print(f"{units * SHARD_SIZE} utterances from {args.speech}, tiny random teacher, {args.kills} kills per "
          f"workload, seed {args.seed}, work in {work}")

    def pseudo_label(out: Path) -> Workload:
        command = VOXDISTILL + ["pseudo-label", "--teacher", str(teacher_folder), "--manifest", str(manifest),
                                "--out", str(out), "--shard-size", str(SHARD_SIZE), "--batch-size", "2",
                                "--max-new-tokens", "12", "--top-k", "8"]
        return Workload("pseudo-label", command, lambda: committed_shards(out), work / "logs")

    tallies: dict[str, Tally] = {}
    timing = reference_run(pseudo_label(work / "pl-reference"))
    print(f"pseudo-label: start-up {timing.startup:.1f} s, {timing.unit:.2f} s per shard of {SHARD_SIZE}")
    tallies["pseudo-label"] = killed_runs(pseudo_label(work / "pl-killed"), timing, args.kills, rng)
    tallies["pseudo-label"].checks = pseudo_label_checks(manifest, work / "pl-killed", work / "pl-reference")

    steps = CHECKPOINT_EVERY * units

    def distill(out: Path) -> Workload:
        config = work / f"{out.name}.yaml"
        config.write_text(yaml.safe_dump({
            "student": str(work / "student"), "out": str(out), "seed": 3,
            "data": {"train_manifest": str(work / "pl-reference" / "pseudo_labels.jsonl"), "batch_size": 2,
                     "bucket_size": 8, "shuffle_buffer": 16},
            "teacher": {"mode": "offline"},
            "optim": {"max_steps": steps, "warmup_steps": 5, "lr": 1e-3},
            "eval": {"every_steps": 0},
            "checkpoint": {"every_steps": CHECKPOINT_EVERY, "keep_last": 2},
        }))
        return Workload("distill", VOXDISTILL + ["distill", "--config", str(config)],
                        lambda: checkpoint_intervals(out), work / "logs")

    timing = reference_run(distill(work / "distill-reference"))
    print(f"distill: start-up {timing.startup:.1f} s, {timing.unit:.2f} s per {CHECKPOINT_EVERY} steps and checkpoint")
    tallies["distill"] = killed_runs(distill(work / "distill-killed"), timing, args.kills, rng)
    tallies["distill"].checks = distill_checks(work / "distill-killed", work / "distill-reference", steps)

    table = Table(Column("workload", width=14, left=True), Column("kills", "d"), Column("early", "d"),
                  Column("resumes", "d"), Column("checks passed"))
    print()
    print(table.format((name, tally.kills, tally.early, tally.resumes,
                        f"{sum(tally.checks.values())}/{len(tally.checks)}") for name, tally in tallies.items()))
    print()
    for name, tally in tallies.items():
        for check, ok in tally.checks.items():
            print(f"{'pass' if ok else 'FAIL'}  {name}: {check}")
    return 0 if all(ok for tally in tallies.values() for ok in tally.checks.values()) else 1


if __name__ == "__main__":
    run(main)
