"""`voxdistill evaluate`: the metrics JSON contract, consistency of its figures with the transcripts,
fair-timing mechanics, and the CLI's errors. Real espeak-ng speech, tiny random Whispers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.conftest import SPEECH
from voxdistill.audio import audio_duration
from voxdistill.cli import main
from voxdistill.data.manifest import Utterance, write_manifest
from voxdistill.decoding import DecodingOptions
from voxdistill.evaluation.evaluate import EvalSettings, evaluate, format_table, model_label
from voxdistill.evaluation.speed import Timings, rotated, thread_counts, time_interleaved
from voxdistill.models.loading import load_whisper
from voxdistill.models.student import StudentSpec, build_student, save_student
from voxdistill.runtime import RuntimeConfigError
from voxdistill.scoring.metrics import char_error_rate, word_error_rate

SET_KEYS = {"n", "wer", "cer", "latency_ms_p50", "latency_ms_p95", "rtf"}  # DESIGN.md's contract


def write_set(speech_dir: Path, path: Path, domains: dict[str, str]) -> Path:
    """A manifest of the test sentences, each labelled with a domain."""
    utts = [Utterance(f"{path.stem}-{name}", str(speech_dir / f"{name}.wav"), audio_duration(speech_dir / f"{name}.wav"),
                      text=SPEECH[name][1], domain=domain) for name, domain in domains.items()]
    write_manifest(path, utts)
    return path


@pytest.fixture(scope="module")
def models(tiny_random_whisper, tmp_path_factory) -> list[str]:
    """The tiny random Whisper as teacher and a 2+1-layer student copied from it."""
    teacher = load_whisper(str(tiny_random_whisper))
    folder = tmp_path_factory.mktemp("eval") / "runs" / "askd" / "model"
    student, provenance = build_student(teacher.model, StudentSpec((0, 1), (1,)))
    save_student(student, teacher.processor, provenance, str(tiny_random_whisper), teacher.fingerprint.digest, folder)
    return [str(tiny_random_whisper), str(folder)]


@pytest.fixture(scope="module")
def manifests(speech_dir, tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("sets")
    return [write_set(speech_dir, root / "test-clean.jsonl", {"fox": "clean", "report": "clean"}),
            write_set(speech_dir, root / "test-noisy.jsonl", {"fox": "pink", "report": "hum", "weather": "pink"})]


@pytest.fixture(scope="module")
def result(models, manifests, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("metrics") / "metrics.json"
    settings = EvalSettings(DecodingOptions(batch_size=2, max_new_tokens=16), latency_clips=2, warmup_clips=1, threads=2)
    evaluate(models, manifests, out, settings, progress=False)
    return json.loads(out.read_text()) | {"_path": str(out)}


def test_metrics_json_follows_the_contract(result, models):
    teacher = Path(models[0]).parent.name  # a folder named "model" is labelled by its parent
    assert result["model"] == teacher and result["reference"] == teacher
    assert set(result["sets"]) == {"test-clean", "test-noisy"}
    for record in result["models"]:
        assert {"model", "source", "role", "parameters", "disk_bytes", "fingerprint", "sets", "overall"} <= set(record)
        for name, scores in record["sets"].items():
            assert SET_KEYS <= set(scores), name
            assert scores["n"] == {"test-clean": 2, "test-noisy": 3}[name]
            assert 0 <= scores["cer"] and 0 <= scores["wer"]
            assert 0 < scores["latency_ms_p50"] <= scores["latency_ms_p95"]
            assert scores["rtf"] > 0 and scores["throughput_utt_per_s"] > 0
            assert sum(d["n"] for d in scores["domains"].values()) == scores["n"]
    assert result["sets"] == result["models"][0]["sets"]
    assert [r["role"] for r in result["models"]] == ["teacher", "student"]
    assert [r["model"] for r in result["models"]] == [teacher, "askd"]
    assert set(result["sets"]["test-noisy"]["domains"]) == {"pink", "hum"}


def test_ratios_and_sizes(result):
    teacher, student = result["models"]
    ratios = result["ratios"]["askd"]
    assert student["parameters"] < teacher["parameters"]
    assert ratios["parameters"] == pytest.approx(student["parameters"] / teacher["parameters"])
    assert ratios["disk_bytes"] == pytest.approx(student["disk_bytes"] / teacher["disk_bytes"])
    assert ratios["speedup"] == pytest.approx(teacher["overall"]["latency_ms_p50"] / student["overall"]["latency_ms_p50"])
    assert result["speed"]["threads"] == 2 and result["speed"]["interleaved"] is True
    assert result["decoding"]["batch_size"] == 2


def test_scores_agree_with_the_transcripts(result):
    """Every figure can be recomputed from the transcripts file: nothing is scored on text it did not keep."""
    lines = [json.loads(line) for line in (Path(result["_path"]).parent / result["transcripts"]).read_text().splitlines()]
    assert len(lines) == 5
    for record in result["models"]:
        label = record["model"]
        for name, scores in record["sets"].items():
            rows = [row for row in lines if row["set"] == name]
            refs, hyps = [row["reference"] for row in rows], [row["hypotheses"][label] for row in rows]
            assert scores["wer"] == pytest.approx(word_error_rate(refs, hyps))
            assert scores["cer"] == pytest.approx(char_error_rate(refs, hyps))
            teacher_label = result["models"][0]["model"]
            if label != teacher_label:  # drift: the same scoring against the teacher's transcripts
                teacher_hyps = [row["hypotheses"][teacher_label] for row in rows]
                assert scores["drift_wer"] == pytest.approx(word_error_rate(teacher_hyps, hyps))
            else:
                assert "drift_wer" not in scores
            pink = [row for row in rows if row["domain"] == "pink"]
            if pink:
                assert scores["domains"]["pink"]["wer"] == pytest.approx(
                    word_error_rate([r["reference"] for r in pink], [r["hypotheses"][label] for r in pink]))


def test_table_lists_every_set_domain_and_model(result):
    table = format_table(result)
    for text in ("test-clean", "test-noisy", "  pink", "  hum", "askd", "speedup", "2 threads", "drift"):
        assert text in table


def test_labels():
    assert model_label("bundled:whisper-tiny.en") == "whisper-tiny.en"
    assert model_label("demo-out/runs/kd/model") == "kd"
    assert model_label("students/small") == "small"


def test_interleaving_rotates_who_goes_first():
    calls = []
    runners = {name: (lambda batch, name=name: calls.append(name) or name) for name in ("a", "b", "c")}
    timings = {name: Timings() for name in runners}
    clip = [__import__("numpy").zeros(16000)]
    for turn in range(3):
        assert time_interleaved(runners, clip, timings, turn) == {"a": "a", "b": "b", "c": "c"}
    assert calls == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert all(len(t.seconds) == 3 and t.audio_seconds == [1.0] * 3 for t in timings.values())
    assert rotated([1, 2], 3) == [2, 1]


def test_latency_at_several_thread_counts_leaves_the_runtime_threads_as_set(models, manifests, tmp_path):
    """PyTorch's thread count is the process's: timing at 1 thread must not leave the accuracy pass
    of a later set, or the caller, at 1."""
    settings = EvalSettings(DecodingOptions(max_new_tokens=8), latency_clips=1, warmup_clips=0, threads=2,
                            latency_threads=(1, 2))
    result = evaluate(models, manifests, tmp_path / "m.json", settings, progress=False)
    assert torch.get_num_threads() == 2
    assert result["speed"]["latency_threads"] == [1, 2]
    for record in result["models"]:
        assert record["overall"]["latency_threads"] in (1, 2)
        assert set(record["overall"]["latency_by_threads"]) == {"1", "2"}
    assert set(result["ratios"]["askd"]["speedup_by_threads"]) == {"1", "2"}
    assert "1 thread: " in format_table(result)


@pytest.mark.parametrize("counts", [(0, 1), (2, 2)])
def test_latency_thread_counts_are_distinct_and_positive(counts):
    with pytest.raises(RuntimeConfigError, match="distinct and at least 1"):
        EvalSettings(latency_threads=counts)


def test_thread_counts_double_up_to_the_machine():
    assert [thread_counts(n) for n in (1, 2, 3, 6, 8)] == [(1,), (1, 2), (1, 2, 3), (1, 2, 4, 6), (1, 2, 4, 8)]


def test_timings_percentiles_and_rtf():
    t = Timings()
    for seconds in (0.1, 0.2, 0.3, 0.4, 1.0):
        t.add(seconds, audio_seconds=2.0)
    assert t.latency_ms(50) == pytest.approx(300.0)
    assert t.latency_ms(95) == pytest.approx(880.0)  # linear interpolation between 0.4 and 1.0
    assert t.rtf == pytest.approx(2.0 / 10.0)
    assert t.items_per_second == pytest.approx(5 / 2.0)
    assert Timings().latency_ms(50) is None


def test_cli_prints_the_table_and_writes_the_card(models, manifests, tmp_path, capsys):
    out = tmp_path / "m.json"
    code = main(["evaluate", "--model", models[0], "--model", models[1], "--label", "teacher", "--label", "student",
                 "--manifest", str(manifests[0]), "--out", str(out), "--latency-clips", "1", "--warmup", "0",
                 "--max-new-tokens", "8", "--card"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "teacher" in printed and "student" in printed and "test-clean" in printed
    assert json.loads(out.read_text())["model"] == "teacher"
    card = Path(models[1]) / "README.md"
    assert card.is_file() and "student" in card.read_text()


@pytest.mark.parametrize("case, message", [
    ("labels", "give one --label per --model"),
    ("missing", "no such manifest"),
    ("no-text", "plain.jsonl:1 [x]: no reference text"),
    ("same-name", "must differ"),
])
def test_cli_errors(case, message, models, manifests, speech_dir, tmp_path, capsys):
    args = ["evaluate", "--model", models[0], "--out", str(tmp_path / "m.json"), "--latency-clips", "0"]
    if case == "labels":
        args += ["--label", "a", "--label", "b", "--manifest", str(manifests[0])]
    elif case == "missing":
        args += ["--manifest", str(tmp_path / "nope.jsonl")]
    elif case == "no-text":
        wav = speech_dir / "fox.wav"
        write_manifest(tmp_path / "plain.jsonl", [Utterance("x", str(wav), audio_duration(wav))])
        args += ["--manifest", str(tmp_path / "plain.jsonl")]
    else:
        other = tmp_path / "other" / "test-clean.jsonl"
        other.parent.mkdir()
        other.write_text(manifests[0].read_text())
        args += ["--manifest", str(manifests[0]), str(other)]
    assert main(args) == 2
    assert message in capsys.readouterr().err
