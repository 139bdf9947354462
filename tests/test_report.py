"""`voxdistill report`: inputs found and read, the page's tables, examples and plots, and the page as
headless Chromium renders it."""

from __future__ import annotations

import json
import math
import random
import re
from pathlib import Path

import pytest
import yaml

from voxdistill.errors import VoxdistillError
from voxdistill.evaluation.report import build_report, pick_examples
from voxdistill.evaluation.report_inputs import ReportInputError, collect, config_summary, speedup
from voxdistill.scoring.metrics import align, edit_counts

TEACHER = "whisper-tiny.en"
STUDENTS = ("askd", "kd")
# set -> domains; the WER table shows a set's domains only when it has more than one.
SETS = {"test-clean": ["clean"], "test-ood-voice": ["flite-slt", "festival-kal"],
        "test-ood-noise": ["pink-snr5", "reverb-0.8", "telephone-8k"]}
WER_TABLE_ROWS = 3 + 2 + 3
SHOWN_PLOTS = ("loss-curves", "curriculum", "dev-wer", "wer-bars", "speed-bars", "size-bars")

# (id, set, domain, reference, teacher, askd, kd)
UTTERANCES = [
    ("test-clean-00001", "test-clean", "clean", "the cat sat on the mat", "the cat sat on the mat",
     "the cat sat on a mat", "the cat sat on the mat"),
    ("test-clean-00002", "test-clean", "clean", "send the weekly report", "send the weekly report",
     "send the weekly report", "Send the weekly report."),  # differs only in case and punctuation
    ("test-ood-voice-00001", "test-ood-voice", "flite-slt", "it will be cold tomorrow",
     "it will be cold tomorrow", "it will be cold tomorrow morning", "it will be old tomorrow"),
    ("test-ood-voice-00002", "test-ood-voice", "festival-kal", "bring a warm coat", "bring a warm coat",
     "bring a warm coat", "bring a warm coat"),
    ("test-ood-noise-00001", "test-ood-noise", "pink-snr5", "the quick brown fox jumps",
     "the quick brown fox jumps", "the quick fox jumps", "the quick brown fox jumps"),
    ("test-ood-noise-00002", "test-ood-noise", "reverb-0.8", "over the lazy dog", "over the lazy dog",
     "over the lazy dog", "over the lazy dog"),
    ("test-ood-noise-00003", "test-ood-noise", "telephone-8k", "Tom and Jerry run home.",
     "tom and jerry run home", "tom and jerry ran home", "tom and jerry run home"),
]
DIFFERING = {"test-clean-00001", "test-ood-voice-00001", "test-ood-noise-00001", "test-ood-noise-00003"}


def _log_records(max_steps: int, phase_two_from: int | None, kd_floor: float, seed: int) -> list[dict]:
    records = [{"step": 0, "dev_wer": 0.9}]
    for step in range(1, max_steps + 1):
        phase = 2 if phase_two_from is not None and step >= phase_two_from else 1
        kd_weight = 0.5 if phase == 2 else max(kd_floor, 1 - step / 40)
        ce = 3.0 * math.exp(-step / (20 + 5 * seed)) + 0.4 + 0.05 * math.sin(step * seed)
        kd = 1.5 * math.exp(-step / (25 + 5 * seed)) + 0.2 + 0.03 * math.cos(step * seed)
        record = {"step": step, "total": ce + kd_weight * kd, "ce": ce, "kd": kd, "lr": 3e-4, "grad_norm": 1.2,
                  "kd_weight": kd_weight, "phase": phase, "active_teacher": "ema" if phase == 2 else "offline",
                  "seconds": 0.4, "epoch": step // 20}
        if step % 20 == 0:
            record["dev_wer"] = 0.9 * math.exp(-step / (20 + 10 * seed)) + 0.15
        records.append(record)
    return records


def _set_figures(wer: float, latency: float, domains: list[str]) -> dict:
    return {"n": 4 * len(domains), "wer": wer, "cer": wer / 2, "latency_ms_p50": latency,
            "latency_ms_p95": latency * 1.3, "rtf": latency / 4000, "insertion_rate": 0.01,
            "repeated_ngram_rate": 0.0, "throughput_utt_per_s": 1000 / latency, "audio_seconds": 60.0,
            "domains": {d: {"n": 4, "wer": wer + 0.01 * k, "cer": (wer + 0.01 * k) / 2}
                        for k, d in enumerate(domains)}}


def _model(label: str, role: str, wer: float, latency: float, parameters: int) -> dict:
    sets = {name: _set_figures(wer + 0.05 * k, latency, domains) for k, (name, domains) in enumerate(SETS.items())}
    if role == "student":  # its transcripts scored against the teacher's
        for figures in sets.values():
            figures["drift_wer"] = figures["wer"] / 2
    overall = {key: value for key, value in sets["test-clean"].items() if key != "domains"}
    overall["n"] = sum(figures["n"] for figures in sets.values())
    return {"model": label, "source": f"runs/{label}/model" if role == "student" else f"bundled:{label}",
            "role": role, "parameters": parameters, "disk_bytes": parameters * 4, "fingerprint": "64d6ca8647296f40",
            "sets": sets, "overall": overall}


def metrics_dict() -> dict:
    """A metrics.json as `voxdistill evaluate` writes it: the teacher, then two students."""
    models = [_model(TEACHER, "teacher", 0.208, 460.0, 37_760_640),
              _model("askd", "student", 0.231, 300.0, 22_000_000),
              _model("kd", "student", 0.262, 310.0, 22_000_000)]
    ratios = {m["model"]: {"latency_p50": m["overall"]["latency_ms_p50"] / 460.0,
                           "throughput": 460.0 / m["overall"]["latency_ms_p50"],
                           "parameters": m["parameters"] / 37_760_640, "disk_bytes": m["disk_bytes"] / (37_760_640 * 4),
                           "speedup": 460.0 / m["overall"]["latency_ms_p50"],
                           "wer": m["overall"]["wer"] / 0.208} for m in models[1:]}
    return {"model": TEACHER, "sets": models[0]["sets"], "reference": TEACHER, "models": models, "ratios": ratios,
            "decoding": {"num_beams": 1, "max_new_tokens": 224, "batch_size": 8},
            "speed": {"threads": 2, "latency_clips_per_set": 20, "throughput_batch_size": 8, "warmup_clips": 2,
                      "torch": "2.13.0", "cpu": "test cpu"},
            "transcripts": "transcripts.jsonl"}


def write_inputs(root: Path) -> dict[str, Path]:
    """Two run folders (askd with a phase 2, kd without) and an evaluation with its transcripts."""
    runs = {}
    for label, phase_two_from, floor, seed in (("askd", 45, 0.1, 1), ("kd", None, 1.0, 2)):
        folder = root / "runs" / label
        folder.mkdir(parents=True)
        records = _log_records(60, phase_two_from, floor, seed)
        lines = [json.dumps(r) for r in records]
        lines.insert(30, json.dumps({**records[30], "total": 99.0}))  # a step repeated after a resume
        (folder / "log.jsonl").write_text("\n".join(lines) + "\n")
        config = {"student": "student", "out": str(folder),
                  "data": {"train_manifest": "pseudo/pseudo_labels.jsonl", "dev_manifest": "corpus/dev.jsonl", "batch_size": 8},
                  "teacher": {"mode": "offline", "model": None, "pseudo_labels": None},
                  "loss": {"ce_weight": 1.0, "kd_weight": 1.0, "temperature": 2.0,
                           "kd_decay": {"kind": "linear" if floor < 1 else "constant", "floor": floor, "decay_steps": 40}},
                  "self_distill": {"start_step": phase_two_from, "teacher": "ema", "ema_decay": 0.99, "kd_weight": 0.5},
                  "optim": {"lr": 3e-4, "max_steps": 60}, "seed": 0}
        (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        runs[label] = folder
    evaluation = root / "eval"
    evaluation.mkdir()
    (evaluation / "metrics.json").write_text(json.dumps(metrics_dict(), indent=2))
    rows = [{"set": s, "id": i, "domain": d, "reference": ref, "duration": 2.5,
             "hypotheses": {TEACHER: teacher, "askd": askd, "kd": kd}}
            for i, s, d, ref, teacher, askd, kd in UTTERANCES]
    (evaluation / "transcripts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {**runs, "metrics": evaluation / "metrics.json"}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    return write_inputs(tmp_path_factory.mktemp("report-inputs"))


@pytest.fixture(scope="module")
def report(inputs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    assert build_report([inputs["askd"], inputs["kd"], inputs["metrics"]], out, title="Test <report>") == out
    return out


def _tbody_rows(page: str, css_class: str) -> list[str]:
    table = re.search(rf'<table class="{css_class}">(.*?)</table>', page, re.S).group(1)
    body = re.search(r"<tbody>(.*?)</tbody>", table, re.S).group(1)
    return re.findall(r"<tr.*?</tr>", body, re.S)


# --- collecting -----------------------------------------------------------------------------------

def test_collect_searches_a_parent_folder(inputs):
    found = collect([inputs["askd"].parent.parent])
    assert sorted(run.label for run in found.runs) == ["askd", "kd"]
    assert [e.path for e in found.evaluations] == [inputs["metrics"]]
    assert len(found.evaluations[0].transcripts) == len(UTTERANCES)
    askd = next(run for run in found.runs if run.label == "askd")
    assert [r["step"] for r in askd.log] == list(range(61))  # the resumed step counted once
    assert askd.log[31]["total"] != 99.0  # and its later line wins
    assert askd.config["self_distill"]["start_step"] == 45


def test_collect_counts_a_run_named_twice_once(inputs):
    found = collect([inputs["askd"], inputs["askd"].parent])
    assert sorted(run.label for run in found.runs) == ["askd", "kd"]


def test_runs_sharing_a_name_get_their_parent_in_the_label(tmp_path, inputs):
    for parent in ("a", "b"):
        (tmp_path / parent / "askd").mkdir(parents=True)
        (tmp_path / parent / "askd" / "log.jsonl").write_text(inputs["askd"].joinpath("log.jsonl").read_text())
    assert sorted(run.label for run in collect([tmp_path]).runs) == ["a/askd", "b/askd"]


def test_missing_path_is_a_typed_error(tmp_path):
    with pytest.raises(ReportInputError, match="no such file or folder") as caught:
        collect([tmp_path / "nowhere"])
    assert isinstance(caught.value, VoxdistillError)


def test_a_folder_with_nothing_usable_is_a_typed_error(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "log.jsonl").write_text("")  # a run that has not logged a step
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ReportInputError, match="nothing to report"):
        collect([tmp_path])


def test_search_stops_at_depth_four(tmp_path, inputs):
    deep = tmp_path / "1" / "2" / "3" / "4" / "5"
    deep.mkdir(parents=True)
    (deep / "metrics.json").write_text(inputs["metrics"].read_text())
    with pytest.raises(ReportInputError, match="within 4 folder levels"):
        collect([tmp_path])
    assert len(collect([tmp_path / "1"]).evaluations) == 1


@pytest.mark.parametrize("text, message", [
    ("{not json", "not valid JSON"),
    ('{"model": "x", "sets": {}}', "not an output of `voxdistill evaluate`"),
])
def test_a_bad_metrics_file_is_a_typed_error(tmp_path, text, message):
    (tmp_path / "metrics.json").write_text(text)
    with pytest.raises(ReportInputError, match=message):
        collect([tmp_path / "metrics.json"])


def test_a_partial_last_log_line_is_skipped_and_a_broken_middle_line_is_a_typed_error(tmp_path):
    # A run killed while writing leaves half a last line: the steps before it still count.
    (tmp_path / "log.jsonl").write_text('{"step": 1, "total": 2.0}\n{"step": 2, "tot')
    assert [r["step"] for r in collect([tmp_path]).runs[0].log] == [1]
    (tmp_path / "log.jsonl").write_text('{"step": 1, "total": 2.0}\n{"step": 2, "tot\n{"step": 3, "total": 1.0}\n')
    with pytest.raises(VoxdistillError, match="log.jsonl: line 2 is not valid JSON"):
        collect([tmp_path])


# --- pieces ---------------------------------------------------------------------------------------

def test_align_marks_substitutions_deletions_and_insertions():
    ops = align("the cat sat on the mat".split(), "the cat sit on mat today".split())
    # "the mat" -> "mat today" costs two edits either way; a substitution is preferred to a
    # deletion plus an insertion, so the insertion rate counts only words the model added.
    assert [op for op, _, _ in ops if op != "ok"] == ["sub", "sub", "sub"]
    ops = align("the cat sat on the mat".split(), "cat sit on the mat today".split())
    assert ("del", "the", None) in ops and ("sub", "sat", "sit") in ops and ("ins", None, "today") in ops
    assert align([], ["a"]) == [("ins", None, "a")] and align(["a"], []) == [("del", "a", None)]


def test_align_is_a_minimum_edit_alignment():
    rng = random.Random(0)
    for _ in range(200):
        reference = rng.choices("abcd", k=rng.randint(0, 8))
        hypothesis = rng.choices("abcd", k=rng.randint(0, 8))
        ops = align(reference, hypothesis)
        assert [r for _, r, _ in ops if r is not None] == reference
        assert [h for _, _, h in ops if h is not None] == hypothesis
        assert sum(op != "ok" for op, _, _ in ops) == edit_counts(reference, hypothesis).errors


def test_examples_spread_over_sets_and_domains_largest_gap_first():
    rows = [{"set": "a", "domain": "x", "id": f"a{k}", "reference": "red green blue white",
             "hypotheses": {"t": "red green blue white", "s": " ".join(["red", "green", "blue", "white"][:4 - k])}}
            for k in range(1, 4)]
    rows += [{"set": "b", "domain": domain, "id": f"b-{domain}", "reference": "cold day",
              "hypotheses": {"t": "cold day", "s": "old day"}} for domain in ("y", "z")]
    rows.append({"set": "b", "domain": "y", "id": "same", "reference": "cold day",
                 "hypotheses": {"t": "Cold, day.", "s": "cold day"}})
    picked = [example.row["id"] for example in pick_examples(rows, "t", ["s"], limit=4)]
    assert picked == ["a3", "b-y", "b-z", "a2"]  # one per (set, domain) first; within one, the largest gap


def test_speedup_is_recorded_or_derived_from_the_latency_ratio():
    assert speedup({"speedup": 3.0, "latency_p50": 0.5}) == 3.0
    assert speedup({"latency_p50": 0.5}) == 2.0 and speedup({}) is None


def test_config_summary_names_the_distillation_settings(inputs):
    config = yaml.safe_load(inputs["askd"].joinpath("config.yaml").read_text())
    summary = dict(config_summary(config))
    assert summary["loss"] == "ce_weight=1.0, kd_weight=1.0, temperature=2.0"
    inert = {"loss": {"encoder_kd_weight": 0.0, "encoder_kd_span": "clip"},
             "optim": {"freeze_encoder_stem": False, "frozen_encoder_layers": 0, "lora_rank": 0, "lora_alpha": 16.0}}
    assert config_summary(inert) == [("loss", "encoder_kd_weight=0.0")]  # settings that do nothing are not named
    encoder_kd = {"loss": {"encoder_kd_weight": 10.0, "encoder_kd_span": "clip"},
                  "optim": {"freeze_encoder_stem": True, "frozen_encoder_layers": 2, "lora_rank": 8, "lora_alpha": 16.0}}
    assert dict(config_summary(encoder_kd)) == {
        "loss": "encoder_kd_weight=10.0, encoder_kd_span=clip",
        "optimiser": "freeze_encoder_stem=True, frozen_encoder_layers=2, lora_rank=8, lora_alpha=16.0"}
    assert summary["self-distillation"] == "start_step=45, teacher=ema, ema_decay=0.99, kd_weight=0.5"
    assert "decay_steps=40" in summary["kd decay"] and "max_steps=60" in summary["optimiser"]
    assert summary["train manifest"] == "train_manifest=pseudo/pseudo_labels.jsonl"
    assert dict(config_summary({"self_distill": {"start_step": None}})) == {"self-distillation": "off"}
    assert config_summary({}) == []


# --- the page -------------------------------------------------------------------------------------

def test_report_is_one_self_contained_file(report):
    assert [p.name for p in report.parent.iterdir()] == ["report.html"]  # no temporary left
    page = report.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert "<title>Test &lt;report&gt;</title>" in page
    for external in ('src="http', "src='http", "<link", "<script", "url(http", "@import", "<img"):
        assert external not in page, external
    for plot in SHOWN_PLOTS:
        assert re.search(rf'<figure class="plot" id="{plot}"><svg', page), plot
    assert "<?xml" not in page and "<!DOCTYPE svg" not in page


def test_report_lists_every_input_and_label(report, inputs):
    page = report.read_text()
    for label in (TEACHER, *STUDENTS):
        assert label in page
    for path in (inputs["askd"], inputs["kd"], inputs["metrics"]):
        assert str(path) in page


def test_wer_table_has_a_row_per_set_and_domain_with_percentages(report):
    rows = _tbody_rows(report.read_text(), "wer-table")
    assert len(rows) == WER_TABLE_ROWS
    assert "test-clean" in rows[0] and "clean" not in rows[1]  # one domain: no domain row
    assert 'class="domain"' in rows[2] and "flite-slt" in rows[2]
    # test-clean: teacher 20.8%, askd 23.1% (worse than the teacher; the best student, bold), kd 26.2%.
    assert re.findall(r'<td class="num([ a-z]*)">([\d.]+%)</td>', rows[0]) == [
        ("", "20.8%"), (" worse best", "23.1%"), (" worse", "26.2%")]
    cer = _tbody_rows(report.read_text(), "cer-table")
    assert len(cer) == WER_TABLE_ROWS and "10.4%" in cer[0]


def test_ratio_table_has_a_row_per_student(report):
    rows = _tbody_rows(report.read_text(), "ratio-table")
    assert [re.search(r'<th scope="row">(.*?)</th>', row).group(1) for row in rows] == list(STUDENTS)
    assert "0.65×" in rows[0] and "1.53×" in rows[0]  # latency ratio 300/460, and 460/300 faster


def test_examples_show_differing_utterances_only(report):
    page = report.read_text()
    examples = page[page.index('id="examples"'):page.index('id="training"')]
    for utterance in UTTERANCES:
        assert (utterance[0] in examples) == (utterance[0] in DIFFERING), utterance[0]
    assert '<span class="sub"><del>the</del> <ins>a</ins></span>' in examples  # askd: "the" → "a"
    assert "<ins>morning</ins>" in examples and "<del>brown</del>" in examples


def test_runs_only_draw_curves_and_say_the_evaluation_is_absent(tmp_path, inputs):
    out = build_report([inputs["askd"]], tmp_path / "runs.html")
    page = out.read_text()
    assert 'id="loss-curves"' in page and 'id="wer-bars"' not in page
    assert "No evaluation file" in page


def test_metrics_only_draw_tables_and_bars_and_say_the_runs_are_absent(tmp_path, inputs):
    page = build_report([inputs["metrics"]], tmp_path / "metrics.html").read_text()
    assert 'id="wer-bars"' in page and 'id="loss-curves"' not in page
    assert "No distillation run folder" in page


# --- the page in a browser ------------------------------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


@pytest.fixture
def browser(tmp_path):
    if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
        pytest.fail(f"{CHROMIUM} or {CHROMEDRIVER} is missing: run scripts/setup.sh (installs chromium "
                    f"and chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1280,900", f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    options.binary_location = str(CHROMIUM)
    # An explicit driver path: selenium's manager then never tries to download one.
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(15)
    yield driver
    driver.quit()


def test_report_renders_in_chromium(report, browser, tmp_path):
    browser.get(report.as_uri())
    assert browser.title == "Test <report>"
    assert browser.execute_script("return document.querySelectorAll('table.wer-table tbody tr').length") == WER_TABLE_ROWS
    ids = browser.execute_script("return [...document.querySelectorAll('figure.plot')].map(f => f.id)")
    assert set(SHOWN_PLOTS) <= set(ids)
    sizes = browser.execute_script(
        "return [...document.querySelectorAll('figure.plot svg')].map(s => {"
        " const r = s.getBoundingClientRect(); return [s.parentElement.id, r.width, r.height]; })")
    assert len(sizes) == len(ids)
    for plot, width, height in sizes:
        assert width > 100 and height > 50, (plot, width, height)
    screenshot = tmp_path / "report.png"
    assert browser.save_screenshot(str(screenshot))
    assert screenshot.read_bytes().startswith(b"\x89PNG") and screenshot.stat().st_size > 20_000


def test_a_student_cell_is_coloured_by_its_comparison_with_the_teacher():
    from voxdistill.evaluation.report import _error_row

    models = [{"model": "teacher"}, {"model": "a"}, {"model": "b"}, {"model": "c"}]
    stats = [{"wer": 0.20, "n": 5}, {"wer": 0.10}, {"wer": 0.30}, {"wer": 0.20}]
    row = _error_row("test-clean", "set", stats, models, "wer", "teacher")
    assert re.findall(r'<td class="num([ a-z]*)">([\d.]+%)</td>', row) == [
        ("", "20.0%"), (" better best", "10.0%"), (" worse", "30.0%"), ("", "20.0%")]


def test_drift_table_has_a_row_per_set_and_the_students_only(report):
    page = report.read_text()
    rows = _tbody_rows(page, "drift-table")
    assert len(rows) == len(SETS) and "Drift from" in page
    # test-clean: the teacher has no drift from itself; askd 23.1% / 2, kd 26.2% / 2.
    assert re.findall(r'<td class="num[ a-z]*">([\d.]+%|–)</td>', rows[0]) == ["–", "11.6%", "13.1%"]
