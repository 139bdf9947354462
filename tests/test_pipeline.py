"""The demo/bench pipeline end to end on a tiny random teacher and a small real corpus: every stage
leaves its output, and a second run reuses every finished stage."""

from __future__ import annotations

import json
import math

import pytest

from voxdistill.data.corpus import PRESETS, CorpusPreset
from voxdistill.errors import VoxdistillError
from voxdistill.pipeline import EVAL_SETS, PipelineConfig, run_pipeline

# Two utterances per split: every engine and split of the real corpus recipe, in seconds.
SMALL = CorpusPreset("small", {"train": 8, "dev": 2, "test-clean": 2, "test-ood-voice": 2, "test-ood-noise": 2},
                     max_words=10)


@pytest.fixture
def small_preset(monkeypatch):
    monkeypatch.setitem(PRESETS, "small", SMALL)


def test_pipeline_runs_every_stage_then_reuses_them(small_preset, tiny_random_whisper, tmp_path):
    config = PipelineConfig(out=tmp_path / "demo", teacher=str(tiny_random_whisper), recipes=("kd", "askd"),
                            preset="small", decoder_layers="1", window_seconds="auto", steps=4, latency_clips=1)
    first: list[str] = []
    result = run_pipeline(config, progress=False, say=first.append)

    out = config.out
    # "auto": the student's window is the longest training utterance, rounded up.
    longest = max(json.loads(line)["duration"] for line in (out / "corpus" / "train.jsonl").read_text().splitlines())
    window = math.ceil(longest)
    assert window < 30
    assert [r["model"] for r in result["models"]] == [tiny_random_whisper.parent.name, "kd", "askd"]
    assert set(result["sets"]) == set(EVAL_SETS)
    for recipe in ("kd", "askd"):
        model = out / "runs" / recipe / "model"
        assert (model / "model.safetensors").is_file()
        card = (model / "README.md").read_text()
        assert "pipeline_tag: automatic-speech-recognition" in card and recipe in card
        record = json.loads((model / "student.json").read_text())
        assert record["decoder_layers"] == [1] and record["window_seconds"]["student"] == window
    html = (out / "report.html").read_text()
    assert "askd" in html and "<svg" in html and "test-ood-noise" in html
    assert [line.split("]")[0] for line in first if line.startswith("[")] == [f"[{i}/8" for i in range(1, 9)]

    again: list[str] = []
    second = run_pipeline(config, progress=False, say=again.append)
    notes = "\n".join(again)
    assert notes.count("reused") >= 4  # student, both distillations, evaluation
    assert second["models"] == result["models"]

    # The same folder with another student is refused, not silently mixed.
    from dataclasses import replace

    with pytest.raises(VoxdistillError, match="holds a student of other settings"):
        run_pipeline(replace(config, window_seconds=None), progress=False, say=lambda line: None)
    with pytest.raises(VoxdistillError, match="whole number of seconds"):
        replace(config, window_seconds="10")


def test_unknown_recipe_or_preset_is_refused_before_any_work(tmp_path):
    with pytest.raises(VoxdistillError, match="no recipe"):
        PipelineConfig(out=tmp_path, recipes=("distil-everything",))
    with pytest.raises(VoxdistillError, match="unknown corpus preset"):
        PipelineConfig(out=tmp_path, preset="huge")
    assert not any(tmp_path.iterdir())
