"""The exported student is the best one: the checkpoint with the lowest dev WER (or the EMA
self-teacher when it scores lower still), the last step only without a dev set; student.json says
which, on the tiny random Whispers of test_distill."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from tests.test_distill import askd_sections, config_dict, final_checkpoint, setup  # noqa: F401 (fixture)
from voxdistill.config import from_dict
from voxdistill.distill.checkpoint import checkpoint_dir
from voxdistill.distill.config import DistillConfig
from voxdistill.distill.whisper_trainer import WhisperTrainer
from voxdistill.families import distill


def scored_config(setup: Path, out: Path, **sections) -> DistillConfig:
    """Dev WER on two utterances of the training speech, two steps at a constant, high learning
    rate. The tiny random student scores 100% after step 1 and far above it after step 2 (more
    wrong words than reference words), so the best step is not the last; the test checks that
    from the log before relying on it."""
    scored = {"data": {"dev_manifest": str(setup / "speech.jsonl")},
              "eval": {"every_steps": 1, "max_utterances": 2, "batch_size": 2},
              "optim": {"max_steps": 2, "lr": 1e-2, "warmup_steps": 0, "schedule": "constant"}}
    for key, value in sections.items():
        scored[key] = {**scored.get(key, {}), **value}
    return from_dict(DistillConfig, config_dict(setup, out, **scored))


def exported_record(out: Path) -> dict:
    return json.loads((out / "model" / "student.json").read_text())["distilled"]


def assert_same_weights(exported: Path, saved: Path) -> None:
    """``exported``: a save_pretrained file; ``saved``: a checkpoint's safetensors. The two keep a
    tied tensor under different names, so the shared names are compared (all but that one)."""
    a, b = load_file(str(exported)), load_file(str(saved))
    shared = a.keys() & b.keys()
    assert len(shared) >= len(a) - 1
    for key in shared:
        assert torch.equal(a[key], b[key]), key


def test_the_best_checkpoint_by_dev_wer_is_exported_not_the_last(setup, tmp_path):
    out = tmp_path / "run"
    result = distill(scored_config(setup, out), progress=False)
    log = [r for r in map(json.loads, (out / "log.jsonl").read_text().splitlines()) if r["step"] > 0]
    wers = [r["dev_wer"] for r in log]
    best = max(i for i, wer in enumerate(wers) if wer == min(wers))  # the last of equals, as the trainer keeps it
    best_step = log[best]["step"]
    assert best_step < 2 and wers[best] < wers[-1]  # this run exercises "best is not the last"

    record = exported_record(out)
    assert record["exported"] == "best" and record["steps"] == 2
    assert record["exported_step"] == best_step == result.state.best_step
    assert record["exported_dev_wer"] == wers[best] and record["last_step_dev_wer"] == wers[-1]
    assert "ema_dev_wer" not in record
    # The exported weights are the best checkpoint's (kept by pruning), not the last step's.
    exported = out / "model" / "model.safetensors"
    assert_same_weights(exported, checkpoint_dir(out, best_step) / "model.safetensors")
    last = load_file(str(final_checkpoint(out) / "model.safetensors"))
    assert any(not torch.equal(t, last[k]) for k, t in load_file(str(exported)).items() if k in last)


def test_a_lower_scoring_ema_self_teacher_is_exported(setup, tmp_path, monkeypatch):
    """The EMA is scored at the end; here it is made to score 0 so that the choice is not luck."""
    scored = WhisperTrainer.dev_wer
    monkeypatch.setattr(WhisperTrainer, "dev_wer",
                        lambda self, model: 0.0 if model is self.self_teacher else scored(self, model))
    sections = askd_sections()
    sections["self_distill"]["start_step"] = 1
    sections["loss"]["kd_decay"]["decay_steps"] = 1
    out = tmp_path / "run"
    distill(scored_config(setup, out, eval={"every_steps": 0}, **sections), progress=False)

    record = exported_record(out)
    assert record["exported"] == "ema" and record["exported_step"] == 2
    assert record["exported_dev_wer"] == record["ema_dev_wer"] == 0.0
    assert record["last_step_dev_wer"] is not None
    assert_same_weights(out / "model" / "model.safetensors", final_checkpoint(out) / "self_teacher.safetensors")


def test_when_no_trained_step_beats_the_starting_student_it_is_exported(setup, tmp_path, monkeypatch):
    """Step 0 has no checkpoint; when it scores lowest, the student folder's own weights come out.
    The starting student is made to score 0 (the model under test has not been updated yet) so that
    the choice is not luck."""
    scored = WhisperTrainer.dev_wer
    monkeypatch.setattr(WhisperTrainer, "dev_wer",
                        lambda self, model: 0.0 if self.state.step == 0 else max(scored(self, model), 0.5))
    out = tmp_path / "run"
    distill(scored_config(setup, out), progress=False)

    record = exported_record(out)
    assert record["exported"] == "best" and record["exported_step"] == 0 and record["exported_dev_wer"] == 0.0
    assert record["last_step_dev_wer"] >= 0.5 and "starting student" in record["exported_because"]
    assert_same_weights(out / "model" / "model.safetensors", setup / "student" / "model.safetensors")
    trained = load_file(str(final_checkpoint(out) / "model.safetensors"))
    assert any(not torch.equal(t, trained[k]) for k, t in load_file(str(setup / "student" / "model.safetensors")).items()
               if k in trained)


def test_on_equal_dev_wer_the_later_step_is_exported(setup, tmp_path, monkeypatch):
    """Every step, the untrained student included, is made to score the same: the last one wins."""
    monkeypatch.setattr(WhisperTrainer, "dev_wer", lambda self, model: 0.25)
    out = tmp_path / "run"
    distill(scored_config(setup, out), progress=False)
    record = exported_record(out)
    assert record["exported_step"] == 2 and record["exported_dev_wer"] == 0.25
    assert "latest of equals" in record["exported_because"]
    assert_same_weights(out / "model" / "model.safetensors", final_checkpoint(out) / "model.safetensors")


def test_without_a_dev_manifest_the_last_step_is_exported_and_said_so(setup, tmp_path):
    out = tmp_path / "run"
    distill(from_dict(DistillConfig, config_dict(setup, out, optim={"max_steps": 2})), progress=False)
    record = exported_record(out)
    assert record["exported"] == "last" and record["exported_step"] == 2
    assert record["exported_dev_wer"] is None and "no dev manifest" in record["exported_because"]
    assert_same_weights(out / "model" / "model.safetensors", final_checkpoint(out) / "model.safetensors")


def test_a_paused_and_resumed_run_exports_what_a_straight_run_does(setup, tmp_path):
    """The best step and the last step's WER live in the checkpoints, so a resumed run chooses alike."""
    distill(scored_config(setup, tmp_path / "straight"), progress=False)
    split = scored_config(setup, tmp_path / "split")
    distill(split, progress=False, steps_this_run=1)
    assert not (tmp_path / "split" / "model").exists()
    distill(split, progress=False)
    straight, resumed = exported_record(tmp_path / "straight"), exported_record(tmp_path / "split")
    assert {**straight, "run": None} == {**resumed, "run": None}
    a, b = (load_file(str(tmp_path / run / "model" / "model.safetensors")) for run in ("straight", "split"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
