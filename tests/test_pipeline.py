"""The demo/bench pipeline end to end on a tiny random teacher and a small real corpus: every stage
leaves its output, a second run reuses every finished stage, and a rerun with other settings or
other weights never reports the old results."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from safetensors.torch import load_file, save_file

from tests.conftest import decode_each_window_once
from tests.test_pseudo_label import speech_manifest
from voxdistill.config import save_config
from voxdistill.data.corpus import PRESETS, CorpusPreset
from voxdistill.data.manifest import read_manifest, write_manifest
from voxdistill.errors import VoxdistillError
from voxdistill.data.lengths import LengthMix
from voxdistill.data.real_speech import TEST_SETS, RealSpeechPreset
from voxdistill.evaluation.speed import cpu_probe_ms
from voxdistill.pipeline import (
    DEMO_REFERENCE, REAL_MIXES, SYNTHETIC_TEST_SETS, PipelineConfig, RealMix, _distill, _evaluate, eval_sets, recipe_config,
    run_pipeline, time_estimate,
)

# Two utterances per split: every engine and split of the real corpus recipe, in seconds.
SMALL = CorpusPreset("small", {"train": 8, "dev": 2, "test-clean": 2, "test-ood-voice": 2, "test-ood-noise": 2},
                     max_words=10)
# A few clips of the shipped real speech: pool, dev, one clip per test set, one packed clip, one piece.
SMALL_REAL = RealMix(RealSpeechPreset("small", pool={"kathleen": 3, "unlabelled": 2}, dev={"harvard": 1, "kathleen": 1},
                                      test_clips=1), LengthMix(packed=1, pieces=1, pack_seconds=(4.0, 28.0)))


@pytest.fixture
def small_preset(monkeypatch):
    monkeypatch.setitem(PRESETS, "small", SMALL)
    monkeypatch.setitem(REAL_MIXES, "small", SMALL_REAL)
    decode_each_window_once(monkeypatch)


def test_pipeline_runs_every_stage_then_reuses_them(small_preset, tiny_random_whisper, tmp_path, monkeypatch):
    config = PipelineConfig(out=tmp_path / "demo", teacher=str(tiny_random_whisper), recipes=("kd", "askd"),
                            preset="small", decoder_layers="1", window_seconds="auto", steps=4, latency_clips=1,
                            other_runtimes=("torch:float32",))
    first: list[str] = []
    result = run_pipeline(config, progress=False, say=first.append)

    out = config.out
    # "auto": the student's window is the longest training utterance (a packed clip here), rounded up.
    mix = [json.loads(line) for line in (out / "corpus" / "train-mix.jsonl").read_text().splitlines()]
    window = math.ceil(max(u["duration"] for u in mix))
    assert window <= 30
    # The training mix: the synthetic train split with its references, the real pool without any.
    assert sum(u["id"].startswith("train-") and "text" in u for u in mix) == 8
    real = [u for u in mix if not u["id"].startswith("train-")]
    assert len(real) == 5 + 2 and not any("text" in u for u in real)
    assert [r["model"] for r in result["models"]] == [tiny_random_whisper.parent.name, "kd", "askd"]
    # Real speech first, in every table.
    assert list(result["sets"]) == [*TEST_SETS, *SYNTHETIC_TEST_SETS]
    # The pool's transcripts never reach training: its labels are the teacher's, and only the
    # references file (which no recipe reads) holds the transcripts.
    labels = {r["id"]: r for r in map(json.loads, (out / "pseudo" / "pseudo_labels.jsonl").read_text().splitlines())}
    pool = [json.loads(line)["id"] for line in (out / "corpus" / "real-pool.jsonl").read_text().splitlines()]
    references = {json.loads(line)["id"]: json.loads(line)["text"]
                  for line in (out / "corpus" / "real-pool-references.jsonl").read_text().splitlines()}
    assert references and set(references) <= set(pool)
    for utt_id in pool:
        record = labels.get(utt_id) or json.loads(next(
            line for line in (out / "pseudo" / "dropped.jsonl").read_text().splitlines() if utt_id in line))
        assert "reference_text" not in record and "reference_tokens" not in record
        assert "reference_topk_index" not in record
    for recipe in ("kd", "askd"):
        saved = (out / "runs" / recipe / "config.yaml").read_text()
        assert "real-pool-references" not in saved
    # The best step is picked on real dev speech alone (clips that neither train nor test).
    for recipe in ("kd", "askd"):
        saved = yaml.safe_load((out / "runs" / recipe / "config.yaml").read_text())
        assert saved["data"]["dev_manifest"] == str(out / "corpus" / "real-dev.jsonl")
    dev = [json.loads(line)["id"] for line in (out / "corpus" / "real-dev.jsonl").read_text().splitlines()]
    assert len(dev) == 2 and dev[0].startswith("harvard")
    for recipe in ("kd", "askd"):
        model = out / "runs" / recipe / "model"
        assert (model / "model.safetensors").is_file()
        card = (model / "README.md").read_text()
        assert "pipeline_tag: automatic-speech-recognition" in card and recipe in card
        record = json.loads((model / "student.json").read_text())
        assert record["decoder_layers"] == [1] and record["window_seconds"]["student"] == window
    html = (out / "report.html").read_text()
    assert "askd" in html and "<svg" in html and "test-ood-noise" in html
    assert [line.split("]")[0] for line in first if line.startswith("[")] == [f"[{i}/10" for i in range(1, 11)]
    # The deployed runtime (CTranslate2 int8 by default) leads; the same models evaluated again in
    # PyTorch, side by side in the report, the cards and the printed headline.
    assert result["runtime"]["backend"] == "ct2" and result["runtime"]["compute_type"] == "int8"
    assert json.loads((out / "eval-ct2-int8" / "metrics.json").read_text())["models"] == result["models"]
    torch_metrics = json.loads((out / "eval" / "metrics.json").read_text())
    assert [r["model"] for r in torch_metrics["models"]] == [r["model"] for r in result["models"]]
    assert "Runtimes side by side" in html and "CTranslate2 int8" in html
    assert "### By runtime" in card and "CTranslate2 int8" in card and "PyTorch float32" in card
    said = "\n".join(first)
    assert "teacher vs student in CTranslate2 int8" in said and "teacher vs student in PyTorch float32" in said
    assert said.index("teacher vs student in CTranslate2 int8") < said.index("teacher vs student in PyTorch float32")
    lines = said.splitlines()
    columns = lines[lines.index("teacher vs student in CTranslate2 int8, WER per set:") + 1].split()
    assert columns[:4] == ["read", "spontaneous", "words", "longform"] and "faster" in columns

    again: list[str] = []
    second = run_pipeline(config, progress=False, say=again.append)
    notes = "\n".join(again)
    assert notes.count("reused") >= 4  # student, both distillations, evaluation
    assert second["models"] == result["models"]

    # The folder moved elsewhere (and named by a relative path) is the same run: reused, not refused.
    moved = tmp_path / "elsewhere" / "demo"
    moved.parent.mkdir()
    shutil.move(out, moved)
    monkeypatch.chdir(tmp_path)
    third: list[str] = []
    again_moved = run_pipeline(replace(config, out=Path("elsewhere/demo")), progress=False, say=third.append)
    assert "\n".join(third).count("reused") >= 4
    assert [(r["model"], r["sets"]) for r in again_moved["models"]] == [(r["model"], r["sets"]) for r in result["models"]]
    assert again_moved["models"][1]["source"] == "elsewhere/demo/runs/kd/model"  # named where it is now
    config = replace(config, out=moved)

    # Another step budget in the same folder is refused, naming the setting, not reported as done.
    with pytest.raises(VoxdistillError, match=r"optim\.max_steps: 4 -> 8"):
        run_pipeline(replace(config, steps=8), progress=False, say=lambda line: None)
    # The same folder with another student is refused, not silently mixed.
    with pytest.raises(VoxdistillError, match="holds a student of other settings"):
        run_pipeline(replace(config, window_seconds=None), progress=False, say=lambda line: None)
    with pytest.raises(VoxdistillError, match="whole number of seconds"):
        replace(config, window_seconds="10")


def test_unknown_recipe_or_preset_is_refused_before_any_work(tmp_path):
    with pytest.raises(VoxdistillError, match="no recipe"):
        PipelineConfig(out=tmp_path, recipes=("distil-everything",))
    with pytest.raises(VoxdistillError, match="unknown corpus preset"):
        PipelineConfig(out=tmp_path, preset="huge")
    with pytest.raises(VoxdistillError, match="--compute-type int4"):
        PipelineConfig(out=tmp_path, deployed_runtime="ct2:int4")
    with pytest.raises(VoxdistillError, match="--runtime tpu"):
        PipelineConfig(out=tmp_path, deployed_runtime="tpu")
    with pytest.raises(VoxdistillError, match="evaluated once"):
        PipelineConfig(out=tmp_path, other_runtimes=("ct2:int8",))
    assert not any(tmp_path.iterdir())


def test_a_run_folder_with_another_step_count_is_refused_naming_the_key(tiny_random_whisper, tmp_path):
    config = PipelineConfig(out=tmp_path / "demo", teacher=str(tiny_random_whisper), recipes=("kd",), steps=4)
    run = recipe_config(config, "kd")
    save_config(run, run.out / "config.yaml")  # what the trainer writes as the run starts
    with pytest.raises(VoxdistillError) as refused:
        _distill(replace(config, steps=8), "kd", progress=False)
    message = str(refused.value)
    assert str(run.out) in message and "optim.max_steps: 4 -> 8" in message and "use another --out" in message
    with pytest.raises(VoxdistillError, match="seed: 0 -> 1"):
        _distill(replace(config, seed=1), "kd", progress=False)
    # The settings it was started with pass: a finished run is reused.
    (run.out / "model").mkdir()
    (run.out / "model" / "config.json").write_text("{}")
    assert _distill(config, "kd", progress=False).startswith("reused")


def test_an_evaluation_is_redone_when_a_students_weights_change(tiny_random_whisper, speech_dir, tmp_path, monkeypatch):
    decode_each_window_once(monkeypatch)
    config = PipelineConfig(out=tmp_path / "demo", teacher=str(tiny_random_whisper), recipes=("kd",), steps=4,
                            latency_clips=0)
    first_utterance = list(read_manifest(speech_manifest(speech_dir, tmp_path / "speech.jsonl")))[:1]
    for name in eval_sets(config):
        write_manifest(config.out / "corpus" / f"{name}.jsonl", first_utterance)
    student = config.out / "runs" / "kd" / "model"
    shutil.copytree(tiny_random_whisper, student)  # stands in for a distilled student
    models = [config.teacher, str(student)]

    first, note = _evaluate(config, models, progress=False)
    assert not note.startswith("reused")
    again, note = _evaluate(config, models, progress=False)
    assert note.startswith("reused") and again == first

    weights = student / "model.safetensors"
    tensors = load_file(str(weights))
    tensors["model.decoder.layer_norm.bias"] += 0.5
    save_file(tensors, str(weights), metadata={"format": "pt"})
    redone, note = _evaluate(config, models, progress=False)
    assert not note.startswith("reused") and "redone: weights changed" in note
    assert redone["models"][1]["fingerprint"] != first["models"][1]["fingerprint"]
    assert redone["models"][0]["fingerprint"] == first["models"][0]["fingerprint"]
    inputs = json.loads((config.out / "eval" / "inputs.json").read_text())
    # Recorded relative to the pipeline's folder (it may move).
    assert inputs["weights"][student.relative_to(config.out).as_posix()] == hashlib.sha256(weights.read_bytes()).hexdigest()


def test_the_demo_estimates_its_time_from_a_cpu_probe():
    # A CPU twice as slow on the probe takes 2^0.42 = 1.34 times as long (fitted on three demos).
    twice = time_estimate(2 * DEMO_REFERENCE["probe_ms"])
    assert f"about {1.34 * DEMO_REFERENCE['minutes']:.0f} min" in twice and DEMO_REFERENCE["cpu"] in twice
    assert f"about {DEMO_REFERENCE['minutes']:.0f} min" in time_estimate(DEMO_REFERENCE["probe_ms"])
    assert cpu_probe_ms(rounds=1) > 0
