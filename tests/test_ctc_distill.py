"""CTC students in the distillation loop, on a tiny random Whisper teacher and real speech: the
family is picked from the student folder, training resumes exactly in a new process, the cached
frozen encoder gives the same steps as a live one, ASKD's phase 2 adds a frame-level KL, and
settings a CTC student cannot honour are refused by name."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from tests.test_distill import cli, config_dict, final_checkpoint, write_config
from tests.test_pseudo_label import speech_manifest
from voxdistill.audio import load_audio
from voxdistill.config import from_dict
from voxdistill.data.manifest import read_manifest
from voxdistill.distill.config import DistillConfig
from voxdistill.distill.ctc_trainer import CTCConfigError
from voxdistill.families import distill, load_recogniser
from voxdistill.families.ctc import is_ctc_folder
from voxdistill.models.ctc import load_ctc_student
from voxdistill.runtime import Runtime
from voxdistill.transcribe import transcribe_audio


@pytest.fixture(scope="module")
def ctc_setup(tiny_random_whisper, speech_dir, tmp_path_factory):
    """A manifest of 12 utterances with references, and a CTC student (LSTM head) of the tiny teacher."""
    root = tmp_path_factory.mktemp("ctc-distill")
    speech_manifest(speech_dir, root / "speech.jsonl", copies=4)
    assert cli("student", "init", "--family", "ctc", "--teacher", str(tiny_random_whisper), "--encoder-layers", "1",
               "--head", "lstm", "--lstm-hidden", "16", "--out", str(root / "student")).returncode == 0
    return root


def ctc_config(root, out, **sections) -> dict:
    """`test_distill.config_dict`'s run, on the references of ``root/speech.jsonl`` without a teacher."""
    ctc = {"data": {"train_manifest": str(root / "speech.jsonl"), "labels": "reference"},
           "teacher": {"mode": "none"}, "loss": {"kd_weight": 0.0}}
    for key, value in sections.items():
        ctc[key] = {**ctc.get(key, {}), **value}
    return config_dict(root, out, **ctc)


def test_init_cli_refuses_whisper_only_options(ctc_setup, tiny_random_whisper, tmp_path):
    bad = cli("student", "init", "--family", "ctc", "--teacher", str(tiny_random_whisper), "--encoder-layers", "1",
              "--decoder-layers", "1", "--out", str(tmp_path / "s"))
    assert bad.returncode == 2 and "--decoder-layers" in bad.stderr
    missing = cli("student", "init", "--teacher", str(tiny_random_whisper), "--encoder-layers", "1",
                  "--out", str(tmp_path / "w"))
    assert missing.returncode == 2 and "--decoder-layers" in missing.stderr
    assert is_ctc_folder(ctc_setup / "student")


def test_ctc_student_trains_and_resumes_exactly(ctc_setup, tmp_path):
    """Self-distillation from step 4 on: the resumed run crosses the phase boundary too."""
    sections = {"self_distill": {"start_step": 4, "teacher": "ema", "ema_decay": 0.9, "kd_weight": 0.5},
                "optim": {"freeze_encoder": False}}
    straight = write_config(ctc_config(ctc_setup, tmp_path / "straight", **sections), tmp_path / "straight.yaml")
    split = write_config(ctc_config(ctc_setup, tmp_path / "split", **sections), tmp_path / "split.yaml")
    run = cli("distill", "--config", str(straight))
    assert run.returncode == 0, run.stderr[-2000:]
    assert cli("distill", "--config", str(split), "--steps-this-run", "3").returncode == 0
    assert cli("distill", "--config", str(split)).returncode == 0
    a, b = final_checkpoint(tmp_path / "straight"), final_checkpoint(tmp_path / "split")
    assert a.name == b.name == "step-00000006"
    for name in ("model.safetensors", "self_teacher.safetensors"):
        x, y = load_file(str(a / name)), load_file(str(b / name))
        assert x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x), name
    logs = [[json.loads(line) for line in (tmp_path / r / "log.jsonl").read_text().splitlines()]
            for r in ("straight", "split")]
    assert [r["total"] for r in logs[0]] == [r["total"] for r in logs[1]]
    # Phase 2 from step 5: its first KL is 0 (the self-teacher is the student at that moment), then not.
    # Two forward passes of equal weights need not agree to the last bit on every CPU (AVX2 kernels
    # differ from AVX-512 ones), so "0" is 1e-6: a wrong self-teacher gives a KL many orders larger.
    assert all(r["kd"] == pytest.approx(0, abs=1e-6) for r in logs[0][:5])
    assert logs[0][5]["kd"] > 1e-6 and logs[0][5]["phase"] == 2
    # The exported student is a CTC folder that records its training, and transcribes.
    model = tmp_path / "straight" / "model"
    record = json.loads((model / "student.json").read_text())
    assert record["family"] == "ctc" and record["distilled"]["steps"] == 6
    trained, _, _ = load_ctc_student(model)
    initial, _, _ = load_ctc_student(ctc_setup / "student")
    changed = [k for k, v in trained.state_dict().items() if not torch.equal(v, initial.state_dict()[k])]
    assert any(k.startswith(("lstm", "output")) for k in changed) and any(k.startswith("encoder") for k in changed)
    clip = next(read_manifest(ctc_setup / "speech.jsonl"))
    texts = transcribe_audio(load_recogniser(str(model), Runtime("torch")), [load_audio(clip.audio_filepath)])
    assert len(texts) == 1 and isinstance(texts[0], str)


def test_frozen_encoder_cache_gives_the_same_steps(ctc_setup, tmp_path):
    """Epoch 2 reads the cached encoder states: the losses equal a run that recomputes them."""
    def losses(cache: bool, out):
        config = from_dict(DistillConfig, ctc_config(ctc_setup, out, optim={
            "freeze_encoder": True, "cache_frozen_encoder": cache, "max_steps": 12}))
        distill(config, progress=False)
        return [json.loads(line)["total"] for line in (out / "log.jsonl").read_text().splitlines()]

    cached, live = losses(True, tmp_path / "cached"), losses(False, tmp_path / "live")
    assert len(cached) == 12 and cached == pytest.approx(live, rel=1e-5)
    assert any((tmp_path / "cached" / "encoder-cache").rglob("*.safetensors"))


def test_token_kl_is_refused_for_a_ctc_student(ctc_setup, tmp_path):
    config = from_dict(DistillConfig, ctc_config(ctc_setup, tmp_path / "kd", teacher={"mode": "online", "model": str(
        ctc_setup / "student")}, loss={"kd_weight": 1.0}))
    with pytest.raises(CTCConfigError, match="loss.kd_weight must be 0"):
        distill(config, progress=False)


def test_a_frozen_decoder_is_refused_for_a_ctc_student(ctc_setup, tmp_path):
    config = from_dict(DistillConfig, ctc_config(ctc_setup, tmp_path / "fd", optim={"freeze_decoder": True}))
    with pytest.raises(CTCConfigError, match="it has no decoder"):
        distill(config, progress=False)


def test_adapters_are_refused_for_a_ctc_student(ctc_setup, tmp_path):
    config = from_dict(DistillConfig, ctc_config(ctc_setup, tmp_path / "lora", optim={"lora_rank": 4}))
    with pytest.raises(CTCConfigError, match="must train whole.*optim.lora_rank=0"):
        distill(config, progress=False)


def test_a_ctc_students_frozen_encoder_front_does_not_move(ctc_setup, tmp_path):
    config = ctc_config(ctc_setup, tmp_path / "front", optim={"freeze_encoder": False, "freeze_encoder_stem": True,
                                                              "frozen_encoder_layers": 1, "max_steps": 2})
    distill(from_dict(DistillConfig, config), progress=False)
    trained, _, _ = load_ctc_student(tmp_path / "front" / "model")
    initial, _, _ = load_ctc_student(ctc_setup / "student")
    before, after = initial.state_dict(), trained.state_dict()
    front = [k for k in before if k.startswith(("encoder.conv", "encoder.layers.0."))]
    assert front and all(torch.equal(before[k], after[k]) for k in front)
    moved = [k for k in before if not torch.equal(before[k], after[k])]
    assert moved and not any(k in front for k in moved)


def test_a_clip_span_of_encoder_states_is_refused_for_a_ctc_student(ctc_setup, tmp_path):
    config = from_dict(DistillConfig, ctc_config(ctc_setup, tmp_path / "span", loss={"encoder_kd_span": "clip"}))
    with pytest.raises(CTCConfigError, match="encoder_kd_span=clip is for Whisper students"):
        distill(config, progress=False)


def test_ctc_student_in_export_evaluate_report_and_card(ctc_setup, tiny_random_whisper, tmp_path):
    """The family goes everywhere a Whisper student goes: exported to ONNX through `export`,
    evaluated beside its teacher (the CTC student in onnxruntime), reported, carded."""
    from voxdistill.cli import main
    from voxdistill.evaluation.evaluate import EvalSettings, evaluate
    from voxdistill.evaluation.report import build_report
    from voxdistill.export.model_card import write_model_card

    student = ctc_setup / "student"
    assert main(["export", str(student), "--format", "onnx", "--out", str(tmp_path / "onnx")]) == 0
    assert (tmp_path / "onnx" / "model.onnx").is_file()
    assert main(["export", str(student), "--format", "ct2", "--out", str(tmp_path / "ct2")]) == 2
    settings = EvalSettings(latency_clips=2, warmup_clips=1, ctc_runtime=Runtime("onnx"))
    result = evaluate([str(tiny_random_whisper), str(student)], [ctc_setup / "speech.jsonl"],
                      tmp_path / "eval" / "metrics.json", settings, progress=False)
    ctc = result["models"][1]
    assert ctc["runtime"] == {"backend": "onnx", "compute_type": "float32"}
    assert result["models"][0]["runtime"] == {"backend": "torch", "compute_type": "float32"}
    assert ctc["overall"]["wer"] is not None and ctc["overall"]["latency_ms_p50"] > 0 and ctc["role"] == "student"
    page = build_report([tmp_path / "eval" / "metrics.json"], tmp_path / "report.html").read_text()
    assert ctc["model"] in page
    card = write_model_card(student, result, ctc["model"]).read_text()
    assert "CTC student" in card and "--runtime onnx" in card and "onnxruntime float32" in card
