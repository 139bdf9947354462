"""Reliability of `voxdistill distill` through the command line (killed in a real subprocess): honest logs
after a kill -9 (RELIABILITY 14), no silent config drift on resume (15), the student's own teacher
holding pseudo-labels to the consistency rule (8), and `--print-config`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
import torch
import yaml

from tests.cli_run import VOXDISTILL, voxdistill
from tests.conftest import make_tiny_whisper
from tests.test_distill import config_dict, setup, write_config  # noqa: F401  (setup is a fixture)
from voxdistill.config import describe_fields, from_dict, load_config, to_dict
from voxdistill.distill.checkpoint import complete_checkpoints
from voxdistill.distill.config import DistillConfig
from voxdistill.models.loading import load_whisper
from voxdistill.models.student import StudentSpec, build_student, save_student

def logged_steps(out: Path) -> list[int]:
    path = out / "log.jsonl"
    lines = path.read_text().splitlines() if path.is_file() else []
    return [json.loads(line)["step"] for line in lines if line.endswith("}")]


def event_steps(out: Path) -> dict[str, Counter]:
    """How often each (tag, step) occurs over every TensorBoard event file of the run, read with
    TensorBoard's own loader (no purging of out-of-order steps, so duplicates would show)."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    steps: dict[str, Counter] = {}
    for path in sorted((out / "tensorboard").glob("events.out.tfevents.*")):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                steps.setdefault(value.tag, Counter())[event.step] += 1
    return steps


def latest_checkpoint_step(out: Path) -> int:
    checkpoints = complete_checkpoints(out)
    return int(checkpoints[-1].name.removeprefix("step-")) if checkpoints else 0


def test_kill_9_then_resume_logs_every_step_once(setup, tmp_path):
    out = tmp_path / "run"
    config = write_config(config_dict(setup, out, optim={"max_steps": 14}, checkpoint={"every_steps": 3}),
                          tmp_path / "c.yaml")
    with (tmp_path / "stderr.txt").open("w") as stderr:
        proc = subprocess.Popen([*VOXDISTILL, "distill", "--config", str(config)], stdout=subprocess.DEVNULL,
                                stderr=stderr, env=os.environ.copy())
        # Kill once a checkpoint exists and at least two steps after it are logged.
        deadline = time.monotonic() + 600
        while proc.poll() is None and time.monotonic() < deadline:
            checkpoint = latest_checkpoint_step(out)
            if checkpoint and max(logged_steps(out), default=0) >= checkpoint + 2:
                break
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait() == -signal.SIGKILL, (tmp_path / "stderr.txt").read_text()[-2000:]
    checkpoint = latest_checkpoint_step(out)
    assert 3 <= checkpoint < 14
    # The scene of the old bug: steps after the checkpoint are on disk, and will be trained again.
    assert max(logged_steps(out)) > checkpoint
    assert max(event_steps(out)["total"]) > checkpoint

    resumed = voxdistill("distill", "--config", config)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads((out / "run.json").read_text())["resumed_from"].endswith(f"step-{checkpoint:08d}")
    assert logged_steps(out) == list(range(1, 15))
    events = event_steps(out)
    for tag in ("total", "ce", "kd", "lr", "grad_norm", "epoch"):
        assert events[tag] == Counter(range(1, 15)), tag


def test_resuming_with_another_config_is_refused_unless_allowed(setup, tmp_path):
    out = tmp_path / "run"
    config = write_config(config_dict(setup, out), tmp_path / "c.yaml")  # lr 1e-3, 6 steps
    # --steps-this-run is a per-invocation option, not a setting of the run.
    for steps in (2, 4):
        paused = voxdistill("distill", "--config", config, "--steps-this-run", 2)
        assert paused.returncode == 0, paused.stderr[-2000:]
        assert latest_checkpoint_step(out) == steps

    changed = ("--set", "optim.lr=5e-4", "--set", "optim.max_steps=8")
    refused = voxdistill("distill", "--config", config, *changed)
    assert refused.returncode == 2
    assert str(out) in refused.stderr and str(out / "config.yaml") in refused.stderr
    assert "optim.lr: 0.001 -> 0.0005" in refused.stderr and "optim.max_steps: 6 -> 8" in refused.stderr
    assert "--allow-config-change" in refused.stderr
    assert load_config(DistillConfig, out / "config.yaml").optim.lr == 1e-3  # nothing was overwritten
    assert latest_checkpoint_step(out) == 4 and logged_steps(out) == [1, 2, 3, 4]

    allowed = voxdistill("distill", "--config", config, *changed, "--allow-config-change")
    assert allowed.returncode == 0, allowed.stderr[-2000:]
    assert latest_checkpoint_step(out) == 8
    expected = [{"step": 4, "key": "optim.lr", "old": 0.001, "new": 0.0005},
                {"step": 4, "key": "optim.max_steps", "old": 6, "new": 8}]
    assert json.loads((out / "run.json").read_text())["config_changes"] == expected
    assert load_config(DistillConfig, out / "config.yaml").optim.lr == 5e-4
    # The new settings are now the run's own: the same command passes, and the record stays.
    again = voxdistill("distill", "--config", config, *changed)
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads((out / "run.json").read_text())["config_changes"] == expected


def test_an_allowed_change_of_the_optimizers_settings_takes_effect_on_resume(setup, tmp_path):
    """A checkpoint's optimizer state carries the settings its groups were saved with; a resume
    allowed to change them trains with the new ones, as run.json records."""
    out = tmp_path / "run"
    config = write_config(config_dict(setup, out, optim={"encoder_lr_scale": 0.5}), tmp_path / "c.yaml")
    paused = voxdistill("distill", "--config", config, "--steps-this-run", 2)
    assert paused.returncode == 0, paused.stderr[-2000:]
    changed = ("--set", "optim.weight_decay=0.5", "--set", "optim.betas=[0.8,0.9]",
               "--set", "optim.encoder_lr_scale=0.25")
    resumed = voxdistill("distill", "--config", config, *changed, "--allow-config-change")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    groups = torch.load(complete_checkpoints(out)[-1] / "optimizer.pt", weights_only=True)["param_groups"]
    assert [g["weight_decay"] for g in groups] == [0.5, 0.5]
    assert [tuple(g["betas"]) for g in groups] == [(0.8, 0.9), (0.8, 0.9)]
    assert sorted(g["lr_scale"] for g in groups) == [0.25, 1.0]  # the encoder's group, and the rest


@pytest.mark.parametrize("key", ["optim.freeze_encoder", "optim.quantization_aware"])
def test_changing_which_weights_train_is_refused_on_resume_even_when_changes_are_allowed(setup, tmp_path, key):
    """The checkpoint's optimizer state holds moments for the weights that trained, and its weights
    file names them as they were held (quantization-aware training parametrizes every linear
    weight): a resume that changes either is refused by name, not by torch's own error."""
    out = tmp_path / "run"
    config = write_config(config_dict(setup, out), tmp_path / "c.yaml")
    paused = voxdistill("distill", "--config", config, "--steps-this-run", 2)
    assert paused.returncode == 0, paused.stderr[-2000:]

    refused = voxdistill("distill", "--config", config, "--set", f"{key}=true",
                         "--set", "optim.lr=5e-4", "--allow-config-change")
    assert refused.returncode == 2, refused.stderr[-2000:]
    assert f"{key}: false -> true" in refused.stderr and str(out) in refused.stderr
    assert "optim.lr" not in refused.stderr  # an allowed change is not the reason
    assert "Traceback" not in refused.stderr
    assert latest_checkpoint_step(out) == 2 and logged_steps(out) == [1, 2]
    assert to_dict(load_config(DistillConfig, out / "config.yaml"))["optim"][key.split(".")[1]] is False


def test_pseudo_labels_of_another_teacher_than_the_students_are_refused(setup, tiny_random_whisper, tiny_en_folder,
                                                                         tmp_path):
    """No teacher.model in the config: the student's student.json names its teacher, and the
    pseudo-labels (made by the tiny random teacher) must come from it."""
    other = load_whisper(str(make_tiny_whisper(tmp_path / "other-teacher", tiny_en_folder, seed=1)))
    student, provenance = build_student(other.model, StudentSpec((0, 1), (1,)))
    save_student(student, other.processor, provenance, str(other.folder), other.fingerprint.digest,
                 tmp_path / "student")
    data = config_dict(setup, tmp_path / "run", optim={"max_steps": 1})
    data["student"] = str(tmp_path / "student")
    assert "model" not in data["teacher"]
    config = write_config(data, tmp_path / "c.yaml")

    refused = voxdistill("distill", "--config", config)
    assert refused.returncode == 2
    made_by = json.loads((setup / "pl" / "metadata.json").read_text())["fingerprint"]["digest"]
    assert made_by == load_whisper(str(tiny_random_whisper)).fingerprint.digest != other.fingerprint.digest
    assert f"made by teacher {made_by}" in refused.stderr
    assert f"built from teacher {other.fingerprint.digest}" in refused.stderr
    assert str(tmp_path / "student" / "student.json") in refused.stderr and str(setup / "pl") in refused.stderr
    assert not (tmp_path / "run").exists()

    allowed = voxdistill("distill", "--config", config, "--set", "teacher.allow_mismatch=true")
    assert allowed.returncode == 0, allowed.stderr[-2000:]
    mismatches = json.loads((tmp_path / "run" / "run.json").read_text())["allowed_teacher_mismatches"]
    assert len(mismatches) == 1 and other.fingerprint.digest in mismatches[0]


def test_print_config_shows_every_key_resolved(setup, tmp_path):
    defaults = voxdistill("distill", "--print-config")
    assert defaults.returncode == 0, defaults.stderr
    printed = yaml.safe_load(defaults.stdout)
    for key, _, default in describe_fields(DistillConfig):
        node = printed
        for part in key.split("."):
            assert part in node, key
            node = node[part]
        assert node == (None if default == "required" else json.loads(default)), key
    assert printed["optim"]["lr"] == 1e-4
    assert defaults.stdout.startswith("# no default, set them: student, out, data.train_manifest\n")

    config = write_config(config_dict(setup, tmp_path / "run"), tmp_path / "c.yaml")
    resolved = voxdistill("distill", "--print-config", "--config", config, "--set", "optim.lr=3e-4")
    assert resolved.returncode == 0, resolved.stderr
    assert not resolved.stdout.startswith("#")
    printed = yaml.safe_load(resolved.stdout)
    assert printed["optim"]["lr"] == 3e-4 and printed["optim"]["max_steps"] == 6  # --set, then the file
    assert printed["data"]["shuffle_buffer"] == 4 and printed["loss"]["temperature"] == 2.0  # the file, then defaults
    # The printed YAML is a config in its own right: the same run.
    assert from_dict(DistillConfig, printed) == load_config(DistillConfig, config, ["optim.lr=3e-4"])
    assert not (tmp_path / "run").exists()  # printing trains nothing

    wrong = voxdistill("distill", "--print-config", "--config", config, "--set", "optim.lrr=1")
    assert wrong.returncode == 2 and "optim.lrr" in wrong.stderr and wrong.stdout == ""
    assert "--print-config" in voxdistill("distill", "--help").stdout


def test_a_run_folder_moved_with_its_inputs_resumes(setup, tmp_path):
    """Issue 22 item 8: a project folder (student, labels, run) moved elsewhere, its config naming
    the new places by relative paths where it named the old ones absolutely, is the same run:
    resumed at its checkpoint, not refused as one of other settings."""
    import shutil

    project = tmp_path / "project"
    for part in ("student", "pl"):
        shutil.copytree(setup / part, project / part)
    first = config_dict(setup, project / "run", checkpoint={"every_steps": 3})
    first["student"], first["data"]["train_manifest"] = str(project / "student"), str(project / "pl" / "pseudo_labels.jsonl")
    paused = voxdistill("distill", "--config", write_config(first, tmp_path / "first.yaml"), "--steps-this-run", 3)
    assert paused.returncode == 0, paused.stderr[-2000:]
    assert latest_checkpoint_step(project / "run") == 3

    moved = tmp_path / "elsewhere" / "project"
    moved.parent.mkdir()
    shutil.move(project, moved)
    again = first | {"student": "student", "out": "run",
                     "data": first["data"] | {"train_manifest": "pl/pseudo_labels.jsonl"}}
    resumed = subprocess.run([*VOXDISTILL, "distill", "--config", str(write_config(again, tmp_path / "again.yaml"))],
                             capture_output=True, text=True, cwd=moved, env=os.environ.copy())
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "other settings" not in resumed.stderr
    assert latest_checkpoint_step(moved / "run") == 6 and logged_steps(moved / "run") == [1, 2, 3, 4, 5, 6]
    # A path that names other files is still a change of settings.
    other = again | {"data": again["data"] | {"train_manifest": str(setup / "pl" / "pseudo_labels.jsonl")},
                     "optim": again["optim"] | {"max_steps": 8}}
    refused = subprocess.run([*VOXDISTILL, "distill", "--config", str(write_config(other, tmp_path / "other.yaml"))],
                             capture_output=True, text=True, cwd=moved, env=os.environ.copy())
    assert refused.returncode == 2 and "data.train_manifest" in refused.stderr
