"""The distillation trainer on tiny random Whispers and real speech: exact resume in a subprocess,
golden losses, the non-finite guard, teacher-mismatch refusal, two-process DDP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from tests.conftest import ACCELERATE_2_PROCESSES, make_tiny_whisper
from tests.test_pseudo_label import speech_manifest
from voxdistill.cli import main
from voxdistill.config import ConfigError, from_dict
from voxdistill.decoding import DecodingOptions
from voxdistill.distill.config import DistillConfig
from voxdistill.distill.trainer import FrozenLayersError, NonFiniteError, lr_factor
from voxdistill.families import distill
from voxdistill.models.loading import load_whisper
from voxdistill.models.student import StudentSpec, build_student, save_student
from voxdistill.teacher.pseudo_label import PseudoLabelConfig, run_pseudo_label

GOLDEN = Path(__file__).parent / "golden" / "distill_tiny.json"


@pytest.fixture(scope="module")
def setup(tiny_random_whisper, speech_dir, tmp_path_factory):
    """Pseudo-labels of 12 utterances by the tiny random teacher (top-8 cache) and a 2+1-layer student."""
    root = tmp_path_factory.mktemp("distill")
    manifest = speech_manifest(speech_dir, root / "speech.jsonl", copies=4)
    run_pseudo_label(PseudoLabelConfig(str(tiny_random_whisper), manifest, root / "pl",
                                       DecodingOptions(batch_size=4, max_new_tokens=12), top_k=8, shard_size=4),
                     progress=False)
    teacher = load_whisper(str(tiny_random_whisper))
    student, provenance = build_student(teacher.model, StudentSpec((0, 1), (1,)))
    save_student(student, teacher.processor, provenance, str(tiny_random_whisper), teacher.fingerprint.digest,
                 root / "student")
    return root


def config_dict(setup: Path, out: Path, **sections) -> dict:
    base = {
        "student": str(setup / "student"), "out": str(out), "seed": 7,
        "data": {"train_manifest": str(setup / "pl" / "pseudo_labels.jsonl"), "batch_size": 2, "bucket_size": 4,
                 "shuffle_buffer": 4},
        "teacher": {"mode": "offline"},
        "optim": {"max_steps": 6, "warmup_steps": 2, "lr": 1e-3},
        "eval": {"every_steps": 0},
        "checkpoint": {"every_steps": 100, "keep_last": 2},
    }
    for key, value in sections.items():
        base[key] = {**base.get(key, {}), **value}
    return base


def write_config(data: dict, path: Path) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "voxdistill.cli", *args], capture_output=True, text=True,
                          env=os.environ.copy())


def final_checkpoint(out: Path) -> Path:
    return sorted((out / "checkpoints").glob("step-*"))[-1]


def test_lr_schedule_is_a_pure_function_of_the_step():
    assert [lr_factor(s, 2, 6, "linear", 0.0) for s in range(6)] == pytest.approx([0.5, 1, 1, 0.75, 0.5, 0.25])
    assert lr_factor(5, 0, 10, "cosine", 0.1) == pytest.approx(0.1 + 0.9 * 0.5)
    assert lr_factor(99, 2, 6, "constant", 0.0) == 1.0


def test_exact_resume_in_a_new_process(setup, tmp_path):
    straight = write_config(config_dict(setup, tmp_path / "straight"), tmp_path / "straight.yaml")
    split = write_config(config_dict(setup, tmp_path / "split"), tmp_path / "split.yaml")
    assert cli("distill", "--config", str(straight)).returncode == 0
    first = cli("distill", "--config", str(split), "--steps-this-run", "3")
    assert first.returncode == 0, first.stderr[-2000:]
    assert [p.name for p in (tmp_path / "split" / "checkpoints").glob("step-*")] == ["step-00000003"]
    assert cli("distill", "--config", str(split)).returncode == 0

    a, b = final_checkpoint(tmp_path / "straight"), final_checkpoint(tmp_path / "split")
    assert a.name == b.name == "step-00000006"
    model_a, model_b = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert all(torch.equal(model_a[k], model_b[k]) for k in model_a)
    opt_a = torch.load(a / "optimizer.pt", weights_only=True)
    opt_b = torch.load(b / "optimizer.pt", weights_only=True)
    for key, state in opt_a["state"].items():
        for name, value in state.items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(opt_b["state"][key][name])), (key, name)
    rng_a, rng_b = torch.load(a / "rng-0.pt", weights_only=True), torch.load(b / "rng-0.pt", weights_only=True)
    assert torch.equal(rng_a["torch"], rng_b["torch"]) and rng_a["python"] == rng_b["python"]
    state_a, state_b = (json.loads((c / "trainer_state.json").read_text()) for c in (a, b))
    assert state_a == state_b and (state_a["epoch"], state_a["batches_done"]) != (0, 0)
    log_a = [json.loads(x)["total"] for x in (tmp_path / "straight" / "log.jsonl").read_text().splitlines()]
    log_b = [json.loads(x)["total"] for x in (tmp_path / "split" / "log.jsonl").read_text().splitlines()]
    assert log_a == log_b
    # The trained student is a Hugging Face folder that records where it came from.
    for run in ("straight", "split"):
        record = json.loads((tmp_path / run / "model" / "student.json").read_text())
        assert record["decoder_layers"] == [1] and record["distilled"]["steps"] == 6


def test_golden_first_losses(setup, tmp_path):
    """With a fixed seed the first losses of this tiny run are stored; a change needs a commit
    saying why (regenerate with VOXDISTILL_UPDATE_GOLDEN=1)."""
    # On the teacher's pseudo-labels: the path these losses were stored for.
    config = from_dict(DistillConfig, config_dict(setup, tmp_path / "run", optim={"max_steps": 4},
                                                  data={"labels": "pseudo_label"}))
    losses = distill(config, progress=False).losses
    if os.environ.get("VOXDISTILL_UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps({"losses": losses}, indent=2) + "\n")
    golden = json.loads(GOLDEN.read_text())["losses"]
    assert losses == pytest.approx(golden, rel=1e-5)
    assert losses[-1] < losses[0]  # and it learns


def test_non_finite_loss_stops_before_the_update(setup, tmp_path):
    broken = tmp_path / "broken-student"
    student = load_whisper(str(setup / "student"), frozen=False)
    with torch.no_grad():
        student.model.model.decoder.layer_norm.weight[0] = float("nan")
    student.model.save_pretrained(broken)
    student.processor.save_pretrained(broken)
    config = from_dict(DistillConfig, config_dict(setup, tmp_path / "run") | {"student": str(broken)})
    with pytest.raises(NonFiniteError, match=r"non-finite loss at step 1 \(batch of .+-\d\); the step was not applied"):
        distill(config, progress=False)
    assert not list((tmp_path / "run" / "checkpoints").glob("step-*")) if (tmp_path / "run" / "checkpoints").exists() else True


def test_teacher_mismatch_is_refused_through_the_cli(setup, tmp_path, tiny_en_folder, capsys):
    other = make_tiny_whisper(tmp_path / "other-teacher", tiny_en_folder, seed=1)
    path = write_config(config_dict(setup, tmp_path / "run", teacher={"mode": "online", "model": str(other)}),
                        tmp_path / "c.yaml")
    assert main(["distill", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    made_by = json.loads((setup / "pl" / "metadata.json").read_text())["fingerprint"]["digest"]
    assert f"made by teacher {made_by}" in err and load_whisper(str(other)).fingerprint.digest in err
    assert "teacher.allow_mismatch=true" in err
    assert main(["distill", "--config", str(path), "--set", "teacher.allow_mismatch=true",
                 "--set", "optim.max_steps=1"]) == 0
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["teacher_mode"] == "online" and "made by teacher" in run["allowed_teacher_mismatches"][0]


def test_bad_config_fails_before_training(setup, tmp_path, capsys):
    path = write_config(config_dict(setup, tmp_path / "run", optim={"learning_rate": 1}), tmp_path / "c.yaml")
    assert main(["distill", "--config", str(path)]) == 2
    assert "unknown key 'optim.learning_rate'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_two_processes_equal_one_with_gradient_accumulation(setup, tmp_path):
    """DDP over 2 processes (gloo) at batch 2 == one process accumulating 2 micro-batches of 2."""
    one = write_config(config_dict(setup, tmp_path / "one", optim={"max_steps": 3, "grad_accum": 2}),
                       tmp_path / "one.yaml")
    two = write_config(config_dict(setup, tmp_path / "two", optim={"max_steps": 3}), tmp_path / "two.yaml")
    assert cli("distill", "--config", str(one)).returncode == 0
    result = subprocess.run(ACCELERATE_2_PROCESSES + ["distill", "--config", str(two)],
                            capture_output=True, text=True, env=os.environ.copy())
    assert result.returncode == 0, result.stderr[-3000:]
    a = load_file(str(final_checkpoint(tmp_path / "one") / "model.safetensors"))
    b = load_file(str(final_checkpoint(tmp_path / "two") / "model.safetensors"))
    for key in a:
        # Summation order differs (all-reduce vs accumulation); Adam turns that into ~1e-6 steps.
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)
    assert len(list(final_checkpoint(tmp_path / "two").glob("rng-*.pt"))) == 2


@pytest.mark.parametrize("recipe", sorted((Path(__file__).parents[1] / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_recipes_are_valid_configs(recipe):
    from voxdistill.config import load_config

    config = load_config(DistillConfig, recipe)
    assert config.optim.max_steps > 0


def askd_sections():
    return dict(loss={"kd_weight": 1.0, "kd_decay": {"kind": "linear", "floor": 0.2, "decay_steps": 3}},
                self_distill={"start_step": 3, "teacher": "ema", "ema_decay": 0.5, "kd_weight": 0.5})


def test_askd_phases_are_logged_and_resume_in_phase_2_keeps_the_self_teacher(setup, tmp_path):
    straight = write_config(config_dict(setup, tmp_path / "straight", **askd_sections()), tmp_path / "s.yaml")
    split = write_config(config_dict(setup, tmp_path / "split", **askd_sections()), tmp_path / "p.yaml")
    assert cli("distill", "--config", str(straight)).returncode == 0
    log = [json.loads(x) for x in (tmp_path / "straight" / "log.jsonl").read_text().splitlines()]
    assert [r["phase"] for r in log] == [1, 1, 1, 2, 2, 2]
    assert [r["active_teacher"] for r in log] == ["offline"] * 3 + ["ema"] * 3
    assert [r["kd_weight"] for r in log] == pytest.approx([1.0, 1.0 - 0.8 / 3, 1.0 - 1.6 / 3, 0.5, 0.5, 0.5])

    # Stop inside phase 2 (after step 4), resume in a new process: same self-teacher, same result.
    assert cli("distill", "--config", str(split), "--steps-this-run", "4").returncode == 0
    paused = final_checkpoint(tmp_path / "split")
    state = json.loads((paused / "trainer_state.json").read_text())
    assert state["phase"] == "self-distill" and state["extra"]["self_teacher"]["from_step"] == 3
    assert (paused / "self_teacher.safetensors").is_file()
    assert cli("distill", "--config", str(split)).returncode == 0
    a, b = final_checkpoint(tmp_path / "straight"), final_checkpoint(tmp_path / "split")
    for name in ("model.safetensors", "self_teacher.safetensors"):
        x, y = load_file(str(a / name)), load_file(str(b / name))
        assert all(torch.equal(x[k], y[k]) for k in x), name


def test_frozen_parts_do_not_move(setup, tmp_path):
    data = config_dict(setup, tmp_path / "frozen", optim={"max_steps": 2, "freeze_encoder": True,
                                                          "freeze_embeddings": True})
    distill(from_dict(DistillConfig, data), progress=False)
    before = load_file(str(setup / "student" / "model.safetensors"))
    after = load_file(str(tmp_path / "frozen" / "model" / "model.safetensors"))
    frozen = [k for k in before if k.startswith("model.encoder.") or "embed_" in k]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)
    trained = [k for k in before if k.startswith("model.decoder.layers.")]
    assert any(not torch.equal(before[k], after[k]) for k in trained)


def test_a_frozen_decoder_leaves_what_it_knows_and_trains_the_encoder(setup, tmp_path):
    data = config_dict(setup, tmp_path / "enc", optim={"max_steps": 2, "freeze_decoder": True, "lr": 1e-3})
    distill(from_dict(DistillConfig, data), progress=False)
    before = load_file(str(setup / "student" / "model.safetensors"))
    after = load_file(str(tmp_path / "enc" / "model" / "model.safetensors"))
    decoder = [k for k in before if k.startswith("model.decoder.") or k.startswith("proj_out")]
    assert decoder and all(torch.equal(before[k], after[k]) for k in decoder)
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("model.encoder.layers."))


def test_a_partly_frozen_encoder_trains_only_its_later_layers(setup, tmp_path):
    data = config_dict(setup, tmp_path / "front", optim={"max_steps": 2, "freeze_decoder": True, "lr": 1e-3,
                                                          "freeze_encoder_stem": True, "frozen_encoder_layers": 1})
    distill(from_dict(DistillConfig, data), progress=False)
    before = load_file(str(setup / "student" / "model.safetensors"))
    after = load_file(str(tmp_path / "front" / "model" / "model.safetensors"))
    front = [k for k in before if k.startswith(("model.encoder.conv", "model.encoder.layers.0."))]
    assert front and all(torch.equal(before[k], after[k]) for k in front)
    later = [k for k in before if k.startswith("model.encoder.layers.") and not k.startswith("model.encoder.layers.0.")]
    assert later and any(not torch.equal(before[k], after[k]) for k in later)


def test_freezing_more_encoder_layers_than_there_are_is_refused(setup, tmp_path):
    layers = json.loads((setup / "student" / "config.json").read_text())["encoder_layers"]
    data = config_dict(setup, tmp_path / "many", optim={"frozen_encoder_layers": layers + 1})
    with pytest.raises(FrozenLayersError, match=f"frozen_encoder_layers is {layers + 1}.*has {layers} layers"):
        distill(from_dict(DistillConfig, data), progress=False)


def test_freezing_both_halves_is_refused(setup, tmp_path):
    with pytest.raises(ConfigError, match="nothing would train"):
        from_dict(DistillConfig, config_dict(setup, tmp_path / "none", optim={"freeze_decoder": True,
                                                                                "freeze_encoder": True}))


@pytest.mark.parametrize("mode", ["offline", "online"])
def test_a_student_with_a_shorter_window_distils(setup, tiny_random_whisper, tmp_path, mode):
    """The student reads 10 s windows; the teacher's side keeps its 30 s (cached top-k, or its own
    features in the loop), so the consistency rule holds."""
    teacher = load_whisper(str(tiny_random_whisper))
    student, provenance = build_student(teacher.model, StudentSpec((0, 1), (1,), window_seconds=10))
    save_student(student, teacher.processor, provenance, str(tiny_random_whisper), teacher.fingerprint.digest,
                 tmp_path / "student")
    data = config_dict(setup, tmp_path / "run", optim={"max_steps": 2}, teacher={"mode": mode, "model": str(tiny_random_whisper)})
    data["student"] = str(tmp_path / "student")
    result = distill(from_dict(DistillConfig, data), progress=False)
    assert len(result.losses) == 2 and all(loss == loss for loss in result.losses)  # finite, not NaN
    saved = load_whisper(str(tmp_path / "run" / "model"))
    assert saved.processor.feature_extractor.chunk_length == 10 and saved.model.config.max_source_positions == 500


def test_training_audio_longer_than_the_window_is_a_clear_error(setup, tiny_random_whisper, tmp_path):
    from voxdistill.errors import AudioError

    teacher = load_whisper(str(tiny_random_whisper))
    student, provenance = build_student(teacher.model, StudentSpec((0, 1), (1,), window_seconds=2))
    save_student(student, teacher.processor, provenance, str(tiny_random_whisper), teacher.fingerprint.digest,
                 tmp_path / "student")
    data = config_dict(setup, tmp_path / "run", optim={"max_steps": 1})
    data["student"] = str(tmp_path / "student")
    with pytest.raises(AudioError, match="longer than the model's 2 s input window"):
        distill(from_dict(DistillConfig, data), progress=False)


def test_the_anchor_holds_the_student_near_its_start_and_resumes_from_the_start(setup, tmp_path):
    """loss.anchor_weight adds Σ (θ − θ₀)² to the loss, θ₀ the student folder's weights: the trained
    weights stay closer to where they began, and a resumed run anchors to the same θ₀ (its split run
    ends where the straight one does)."""
    start = load_file(str(setup / "student" / "model.safetensors"))

    def distance_from_start(out: Path) -> float:
        end = load_file(str(final_checkpoint(out) / "model.safetensors"))
        return sum(float(((end[k] - start[k]) ** 2).sum()) for k in start if k.startswith("model.decoder.layers."))

    free = tmp_path / "free"
    distill(from_dict(DistillConfig, config_dict(setup, free)), progress=False)
    anchored = config_dict(setup, tmp_path / "anchored", loss={"anchor_weight": 100.0})
    distill(from_dict(DistillConfig, anchored), progress=False)
    assert distance_from_start(tmp_path / "anchored") < distance_from_start(free) / 2
    logged = [json.loads(x) for x in (tmp_path / "anchored" / "log.jsonl").read_text().splitlines()]
    assert logged[0]["anchor"] == 0.0 and all(r["anchor"] > 0 for r in logged[1:])
    assert "anchor" not in json.loads((free / "log.jsonl").read_text().splitlines()[0])

    split = from_dict(DistillConfig, config_dict(setup, tmp_path / "split", loss={"anchor_weight": 100.0}))
    distill(split, progress=False, steps_this_run=3)
    distill(split, progress=False)
    a, b = (load_file(str(final_checkpoint(tmp_path / run) / "model.safetensors")) for run in ("anchored", "split"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_negative_anchor_weight_is_refused():
    with pytest.raises(ConfigError, match="loss: anchor_weight must be a finite number >= 0, got -1.0"):
        from_dict(DistillConfig, {"student": "s", "out": "o", "data": {"train_manifest": "m.jsonl"},
                                  "loss": {"anchor_weight": -1.0}})
