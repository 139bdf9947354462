"""The student's model card: front matter the hub reads, provenance, the evaluation table, and a
folder that still loads in a transformers pipeline."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import transformers
import yaml

from tests.test_report import metrics_dict
from voxdistill.errors import VoxdistillError
from voxdistill.export.model_card import ModelCardError, is_hub_id, write_model_card
from voxdistill.models.loading import load_whisper
from voxdistill.models.student import STUDENT_FILE, StudentSpec, build_student, save_student

RECIPE = Path(__file__).parent.parent / "configs" / "askd.yaml"


@pytest.fixture(scope="module")
def student_run(tmp_path_factory, tiny_random_whisper) -> Path:
    """A run folder as the trainer leaves it: its config.yaml, and the student exported to RUN/model
    with the run recorded in student.json."""
    run = tmp_path_factory.mktemp("runs") / "askd"
    run.mkdir()
    shutil.copy(RECIPE, run / "config.yaml")
    whisper = load_whisper(str(tiny_random_whisper))
    student, provenance = build_student(whisper.model, StudentSpec((1,), (0, 1), d_model=32, ffn_dim=64))
    model = save_student(student, whisper.processor, provenance, whisper.source, whisper.fingerprint.digest,
                         run / "model")
    record = json.loads((model / STUDENT_FILE).read_text())
    record["distilled"] = {"run": str(run), "steps": 200, "teacher_mode": "offline",
                           "teacher_fingerprint": whisper.fingerprint.digest}
    (model / STUDENT_FILE).write_text(json.dumps(record, indent=2))
    return run


def front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


def test_card_describes_the_student_and_its_evaluation(student_run):
    model = student_run / "model"
    path = write_model_card(model, metrics_dict(), "askd")
    assert path == model / "README.md"
    assert not [p.name for p in model.iterdir() if p.name.startswith(".")]  # no temporary left
    card = path.read_text()

    meta = front_matter(card)
    assert meta["pipeline_tag"] == "automatic-speech-recognition"
    assert meta["library_name"] == "transformers" and meta["language"] == "en"
    assert {"whisper", "distillation", "voxdistill"} <= set(meta["tags"])
    assert "base_model" not in meta  # the teacher is a local folder, not a hub id

    # Layer provenance: teacher 2+2 layers of width 64; the student keeps encoder [1], decoder [0, 1].
    assert "| encoder layers | 2 | 1 | 1 |" in card
    assert "| decoder layers | 2 | 2 | 0, 1 |" in card
    assert "| d model | 64 | 32 |  |" in card
    assert "200 optimizer steps" in card and str(student_run) in card
    # The run's settings, from config.yaml (configs/askd.yaml).
    assert "temperature=2.0" in card and "kind=cosine" in card and "start_step=150" in card
    assert "max_steps=200" in card and "train_manifest=demo-out/pseudo/pseudo_labels.jsonl" in card

    # test-clean: askd 23.1% against the teacher's 20.8%; ratios against the teacher.
    assert "| test-clean | 4 | 23.1% | 20.8% | 11.6% | 11.6% | 10.4% | 300 ms | 460 ms |" in card  # drift: 23.1% / 2
    assert "| latency p50 (batch 1) | 0.65× (1.53× faster) |" in card
    assert f'pipeline("automatic-speech-recognition", model="{student_run / "model"}")' in card
    assert "Synthetic speech" in card and "English only" in card


def test_folder_still_loads_in_a_pipeline_after_the_card(student_run):
    write_model_card(student_run / "model", metrics_dict(), "askd")
    pipe = transformers.pipeline("automatic-speech-recognition", model=str(student_run / "model"))
    # A random student rarely says end-of-text: cap the tokens so the test does not decode 448.
    result = pipe(np.zeros(16000, dtype=np.float32), generate_kwargs={"max_new_tokens": 8})
    assert isinstance(result["text"], str)


def test_card_without_provenance_or_config_says_so(tmp_path, student_run):
    model = tmp_path / "model"
    model.mkdir()
    shutil.copy(student_run / "model" / "config.json", model)
    write_model_card(model, metrics_dict(), "kd")
    card = (model / "README.md").read_text()
    assert f"no `{STUDENT_FILE}`" in card and "| test-clean | 4 | 26.2% | 20.8% |" in card
    assert front_matter(card)["pipeline_tag"] == "automatic-speech-recognition"

    record = json.loads((student_run / "model" / STUDENT_FILE).read_text())
    record["teacher"]["source"] = "openai/whisper-tiny.en"
    record["distilled"]["run"] = str(tmp_path / "gone")
    (model / STUDENT_FILE).write_text(json.dumps(record))
    card = write_model_card(model, metrics_dict(), "kd").read_text()
    assert front_matter(card)["base_model"] == "openai/whisper-tiny.en"
    assert "`config.yaml` was not found" in card


def test_hub_ids_are_told_from_bundled_names_and_folders(tmp_path):
    assert is_hub_id("openai/whisper-tiny.en") and is_hub_id("distil-whisper/distil-small.en")
    assert not is_hub_id("bundled:whisper-tiny.en")
    assert not is_hub_id(str(tmp_path)) and not is_hub_id("runs/askd/model")
    (tmp_path / "owner").mkdir()
    (tmp_path / "owner" / "name").mkdir()
    assert not is_hub_id(str(tmp_path / "owner" / "name"))


def test_unknown_student_or_folder_is_a_typed_error(tmp_path, student_run):
    with pytest.raises(ModelCardError, match="no model 'nope'; they hold: whisper-tiny.en, askd, kd") as caught:
        write_model_card(student_run / "model", metrics_dict(), "nope")
    assert isinstance(caught.value, VoxdistillError)
    with pytest.raises(ModelCardError, match="not a Hugging Face model folder"):
        write_model_card(tmp_path, metrics_dict(), "askd")


# A label and a set name that would be a script, a table column and a link if written raw, and a
# formula matplotlib cannot parse.
HOSTILE_LABEL = "<script>alert(1)</script>|[x](http://e)"
HOSTILE_SET = "set <img src=x onerror=alert(2)> | `tick` $\\frac$"  # a file name: no slash


def test_users_text_is_shown_as_written_in_cards_reports_and_exports(student_run, tiny_random_whisper, speech_dir,
                                                                      tmp_path):
    """Issue 22 item 7, through the real commands: `evaluate --card`, `report` and `export`."""
    from markdown_it import MarkdownIt

    from tests.test_pseudo_label import speech_manifest
    from tests.test_reliability_inputs import voxdistill

    manifest = speech_manifest(speech_dir, tmp_path / f"{HOSTILE_SET}.jsonl")
    metrics = tmp_path / "eval" / "metrics.json"
    student = student_run / "model"
    evaluated = voxdistill("evaluate", "--model", tiny_random_whisper, "--model", student, "--label", "teacher",
                           "--label", HOSTILE_LABEL, "--manifest", manifest, "--out", metrics, "--latency-clips", "0",
                           "--warmup", "0", "--max-new-tokens", "8", "--card")
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    report = tmp_path / "report.html"
    reported = voxdistill("report", metrics, "--out", report)
    assert reported.returncode == 0, reported.stderr[-3000:]
    exported = voxdistill("export", student, "--format", "hf", "--out", tmp_path / "exported")
    assert exported.returncode == 0, exported.stderr[-3000:]

    # As GitHub and the hub render Markdown (CommonMark with tables, raw HTML allowed): no tag, link
    # or extra column comes from the user's text, which reads as written.
    markdown = MarkdownIt("commonmark").enable("table")
    for card in (student / "README.md", tmp_path / "exported" / "README.md"):
        text = card.read_text()
        assert HOSTILE_LABEL not in text and HOSTILE_SET not in text
        page = markdown.render(text)
        assert "<script" not in page and "<img" not in page and "<a " not in page, page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;|[x](http://e)" in page
    card = markdown.render((student / "README.md").read_text())
    assert "<td>set &lt;img src=x onerror=alert(2)&gt; | `tick` $\\frac$</td>" in card
    header = next(line for line in (student / "README.md").read_text().splitlines() if line.startswith("| Test set"))
    assert len(re.findall(r"(?<!\\)\|", header)) == 10  # nine columns, whatever the labels hold

    page = report.read_text()
    assert HOSTILE_LABEL not in page and "<img" not in page and "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;|[x](http://e)" in page
