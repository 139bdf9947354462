"""Ctrl-C and SIGTERM (issue 22 item 12): `pseudo-label`, `evaluate` and `demo`, each a real
subprocess stopped mid-work, exit 128 + the signal's number with one line saying what was kept and
how to resume, no traceback and no half-written file; the same command run again reuses what was
kept (an evaluation keeps nothing, and says so)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli_run import VOXDISTILL
from tests.test_pseudo_label import speech_manifest
from voxdistill.distill.checkpoint import complete_checkpoints

# The demo's command line with test_pipeline's small corpus as its demo preset.
SMALL_DEMO = [sys.executable, "-m", "tests.demo_small", "demo"]
ROOT = Path(__file__).resolve().parents[1]


def _ctrl_c_as_in_a_terminal() -> None:
    """In the child: SIGINT as a terminal's command gets it. A shell starts a background job (e.g.
    the test suite run with ``&``) with SIGINT ignored, which its children inherit and Python keeps."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interrupt_when(args: list, ready: Callable[[], bool], logs: Path, signum: int = signal.SIGINT
                   ) -> subprocess.CompletedProcess:
    """Run ``args`` (from the repository, where ``tests`` is a package), send ``signum`` once
    ``ready()`` holds, and return how it ended."""
    logs.mkdir(parents=True, exist_ok=True)
    env = os.environ.copy() | {"PYTHONUNBUFFERED": "1"}  # a test may wait for a line of stdout
    with (logs / "stdout").open("w") as stdout, (logs / "stderr").open("w") as stderr:
        proc = subprocess.Popen([*map(str, args)], stdout=stdout, stderr=stderr, env=env, cwd=ROOT,
                                preexec_fn=_ctrl_c_as_in_a_terminal)
        while proc.poll() is None and not ready():
            time.sleep(0.05)
        proc.send_signal(signum)
        proc.wait(timeout=600)
    return subprocess.CompletedProcess(args, proc.returncode, (logs / "stdout").read_text(),
                                       (logs / "stderr").read_text())


def run(args: list) -> subprocess.CompletedProcess:
    return subprocess.run([*map(str, args)], capture_output=True, text=True, env=os.environ.copy(), cwd=ROOT)


def stopped_with(result: subprocess.CompletedProcess, signum: int) -> str:
    """The one line an interrupted command ends with: exit 128 + ``signum``, no traceback."""
    assert result.returncode == 128 + signum, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"interrupted by {signal.Signals(signum).name}: "), last
    return last


def temporary_files(folder: Path) -> list[Path]:
    """What a writer leaves under a hidden temporary name when it stops halfway."""
    return [p for p in folder.rglob(".*")]


def modified(paths: list[Path]) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in paths}


def test_pseudo_label_keeps_committed_shards_and_the_same_command_resumes(tiny_random_whisper, speech_dir, tmp_path):
    # 120 utterances, 60 shards: the signal, sent once the first is committed, comes long before the
    # last one even on a busy machine (18 utterances once finished before it).
    manifest = speech_manifest(speech_dir, tmp_path / "speech.jsonl", copies=40)
    out = tmp_path / "labels"
    command = [*VOXDISTILL, "pseudo-label", "--teacher", tiny_random_whisper, "--manifest", manifest, "--out", out,
               "--shard-size", "2", "--batch-size", "2", "--max-new-tokens", "8"]
    stopped = interrupt_when(command, lambda: (out / "shards" / "00000.jsonl").is_file(), tmp_path / "logs")

    message = stopped_with(stopped, signal.SIGINT)
    committed = sorted((out / "shards").glob("*.jsonl"))
    match = re.fullmatch(rf"interrupted by SIGINT: (\d+) of 60 shards are committed in {re.escape(str(out / 'shards'))}; "
                         r"run the same command to resume", message)
    assert match, message
    assert int(match.group(1)) == len(committed) and 0 < len(committed) < 60
    # Every committed shard is whole (its rows beside it); nothing half-written, nothing merged yet.
    assert all(p.with_suffix(".safetensors").is_file() for p in committed)
    assert temporary_files(out) == [] and not (out / "pseudo_labels.jsonl").exists()
    kept = modified(committed)

    resumed = run(command)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert modified(committed) == kept  # reused, not labelled again
    labelled = [json.loads(line)["id"] for name in ("pseudo_labels.jsonl", "dropped.jsonl")
                for line in (out / name).read_text().splitlines()]
    wanted = [json.loads(line)["id"] for line in manifest.read_text().splitlines()]
    assert sorted(labelled) == sorted(wanted)  # every utterance once


def test_sigterm_in_evaluate_leaves_earlier_results_as_they_were(tiny_random_whisper, speech_dir, tmp_path):
    """SIGTERM (what a scheduler sends) stops a command as Ctrl-C does; the demo's test below stops an
    evaluation with Ctrl-C."""
    manifest = speech_manifest(speech_dir, tmp_path / "speech.jsonl", copies=2)
    out = tmp_path / "eval" / "metrics.json"
    earlier = {out: '{"earlier": true}\n', out.parent / "transcripts.jsonl": '{"id": "earlier"}\n'}
    for path, text in earlier.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    command = [*VOXDISTILL, "evaluate", "--model", tiny_random_whisper, "--manifest", manifest, "--out", out,
               "--latency-clips", "0", "--warmup", "0", "--batch-size", "2", "--max-new-tokens", "32"]
    # Once the transcripts are being written, under a temporary name.
    stopped = interrupt_when(command, lambda: bool(temporary_files(out.parent)), tmp_path / "logs", signal.SIGTERM)

    assert stopped_with(stopped, signal.SIGTERM) == (
        f"interrupted by SIGTERM: an evaluation keeps no partial results: {out} and the transcripts beside it are "
        f"as they were before it; run the same command to evaluate from the start")
    assert {path: path.read_text() for path in earlier} == earlier
    assert temporary_files(out.parent) == []


def test_demo_says_which_stages_are_kept_and_the_same_command_reuses_them(tiny_random_whisper, tmp_path):
    out = tmp_path / "demo"
    command = [*SMALL_DEMO, "--out", out, "--teacher", tiny_random_whisper, "--steps", "8", "--decoder-layers", "1",
               "--latency-clips", "1", "--deployed-runtime", "torch:float32"]
    run_folder = out / "runs" / "encoder-kd"
    # Stopped in training, once it has checkpointed: the trainer finishes its step and saves.
    first = interrupt_when(command, lambda: bool(complete_checkpoints(run_folder)), tmp_path / "first")
    message = stopped_with(first, signal.SIGINT)
    match = re.fullmatch(r"interrupted by SIGINT: stages 1–4 of 8 are finished; stage 5 \(distill: encoder-kd recipe, 8 "
                         rf"steps\) stopped: the run stopped after step (\d+), saved in {re.escape(str(run_folder))}/"
                         r"checkpoints/step-0*(\d+); run the same command to reuse the finished stages and resume "
                         r"the stopped one", message)
    assert match and match.group(1) == match.group(2), message
    assert 0 < int(match.group(1)) < 8
    assert not (run_folder / "model").exists()
    earlier_stages = modified([*(out / "pseudo" / "shards").glob("*.jsonl"), out / "student" / "model.safetensors"])

    # The same command reuses stages 1-4, resumes the run, and is stopped again while evaluating
    # (writing transcripts under a temporary name).
    metrics = out / "eval" / "metrics.json"
    second = interrupt_when(command, lambda: metrics.parent.is_dir() and bool(temporary_files(metrics.parent)),
                            tmp_path / "second")
    assert stopped_with(second, signal.SIGINT) == (
        "interrupted by SIGINT: stages 1–5 of 8 are finished; stage 6 (evaluate teacher and student in the deployed "
        "runtime, torch float32: test-real-read, test-real-spontaneous, test-real-words, test-real-longform, "
        "test-clean, test-ood-voice, test-ood-noise) stopped: an evaluation keeps no partial results: "
        f"{metrics} and the transcripts beside it are as they were before it; run the same command to reuse the "
        "finished stages and resume the stopped one")
    assert modified(list(earlier_stages)) == earlier_stages
    assert "reused" in second.stdout.split("[4/8]")[1].split("[5/8]")[0]
    log = [json.loads(line) for line in (run_folder / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "total" in r] == list(range(1, 9))  # resumed from the checkpoint: every step once
    assert (run_folder / "model" / "model.safetensors").is_file()
    assert not metrics.exists() and temporary_files(out / "eval") == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_that_lands_in_a_finaliser_is_sent_again_not_lost(signum):
    # Python ignores an exception raised in __del__ (garbage collection runs finalisers anywhere):
    # the CI failure this keeps was an evaluate that ran on and exited 0 after its SIGTERM.
    from voxdistill.cli import _raise_interrupt
    from voxdistill.errors import Terminated

    class Finalised:
        def __del__(self):
            os.kill(os.getpid(), signum)
            for _ in range(10000):  # the handler runs here, inside the finaliser
                pass

    previous = signal.signal(signum, _raise_interrupt)
    try:
        with pytest.raises(KeyboardInterrupt) as raised:
            Finalised()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                time.sleep(0.01)
        assert isinstance(raised.value, Terminated) == (signum == signal.SIGTERM)
    finally:
        signal.signal(signum, previous)
