"""Pseudo-labelling: resume after a kill, two processes, WER filter, cached distributions."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import ACCELERATE_2_PROCESSES, SPEECH
from voxdistill.audio import load_audio
from voxdistill.cli import main
from voxdistill.data.manifest import Utterance, read_manifest, write_manifest
from voxdistill.decoding import log_mel, prompt_tokens
from voxdistill.models.loading import load_whisper
from voxdistill.teacher.filters import REASONS, LabelFilters
from voxdistill.teacher.topk import TopKCache

VOXDISTILL = [sys.executable, "-m", "voxdistill.cli"]


def speech_manifest(speech_dir: Path, path: Path, copies: int = 1) -> Path:
    """The test sentences, each listed ``copies`` times under distinct ids."""
    utts = []
    for c in range(copies):
        for name, (_, text) in SPEECH.items():
            audio = speech_dir / f"{name}.wav"
            utts.append(Utterance(f"{name}-{c}", str(audio), round(len(load_audio(audio)) / 16000, 3), text=text))
    write_manifest(path, utts)
    return path


def records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "pseudo_labels.jsonl").read_text().splitlines()]


def pseudo_label_args(model, manifest, out, *extra):
    return ["pseudo-label", "--teacher", str(model), "--manifest", str(manifest), "--out", str(out), *extra]


@pytest.fixture(scope="module")
def manifest(speech_dir, tmp_path_factory):
    return speech_manifest(speech_dir, tmp_path_factory.mktemp("pl") / "speech.jsonl", copies=8)


@pytest.fixture(scope="module")
def straight_run(tiny_random_whisper, manifest, tmp_path_factory):
    out = tmp_path_factory.mktemp("straight")
    assert main(pseudo_label_args(tiny_random_whisper, manifest, out, "--shard-size", "2", "--batch-size", "2")) == 0
    return out


def test_every_utterance_once_in_manifest_order(straight_run, manifest):
    assert [r["id"] for r in records(straight_run)] == [u.id for u in read_manifest(manifest)]
    metadata = json.loads((straight_run / "metadata.json").read_text())
    assert metadata["counts"] == {"total": 24, "kept": 24, "dropped": 0, "skipped_bad_audio": 0,
                                  "dropped_by": dict.fromkeys(("wer", *REASONS), 0)}
    # The random teacher's labels fail the reference-free filters, which leave referenced utterances
    # to the WER filter (off here).
    assert all(LabelFilters().reasons(r) for r in records(straight_run))


def test_metadata_fingerprint_is_the_teachers(straight_run, tiny_random_whisper):
    metadata = json.loads((straight_run / "metadata.json").read_text())
    teacher = load_whisper(str(tiny_random_whisper))
    assert metadata["fingerprint"] == teacher.fingerprint.to_dict()
    cache = TopKCache(straight_run)
    assert cache.fingerprint(records(straight_run)[0]["topk_shard"]) == teacher.fingerprint.digest


def assert_rows_are_a_fresh_teacher_forced_pass(teacher, audio_path, tokens: list[int], cached) -> None:
    """``cached`` (a TopK) equals the top-k of one forward pass at batch 1, no padding, along
    ``tokens``: the rows predicting each token and the final end-of-text."""
    prompt = prompt_tokens(teacher)
    eot = teacher.model.generation_config.eos_token_id
    assert cached.ids.shape[0] == len(tokens) + 1
    features = log_mel(teacher, [load_audio(audio_path)])
    with torch.no_grad():
        logits = teacher.model(input_features=features,
                               decoder_input_ids=torch.tensor([prompt + tokens + [eot]])).logits[0]
    log_probs = torch.log_softmax(logits, -1)[len(prompt) - 1 : len(prompt) + len(tokens)]
    # Stored as float16: 2^-11 relative, plus batch-vs-single float32 noise.
    torch.testing.assert_close(cached.log_probs, log_probs.gather(-1, cached.ids.long()), rtol=1e-3, atol=2e-3)
    # ...and they are the top k of the fresh distribution, best first: the cached best is the fresh best,
    # or ties it within the tolerance above (the batch differs, so its arithmetic may).
    best = log_probs.gather(-1, cached.ids[:, :1].long()).squeeze(-1)
    assert (best >= log_probs.max(-1).values - 2e-3).all()
    assert (torch.diff(cached.log_probs, dim=-1) <= 0).all()


def test_cached_topk_equals_teacher_forced_log_probs(straight_run, tiny_random_whisper, speech_dir):
    teacher = load_whisper(str(tiny_random_whisper))
    cache = TopKCache(straight_run)
    for record in records(straight_run)[:3]:
        cached = cache.lookup(record["topk_shard"], record["topk_index"])
        assert cached.ids.shape[1] == 16
        assert_rows_are_a_fresh_teacher_forced_pass(teacher, record["audio_filepath"], record["pseudo_label_tokens"],
                                                    cached)


def test_killed_run_resumes_without_loss_or_duplicates(tiny_random_whisper, manifest, straight_run, tmp_path):
    out = tmp_path / "killed"
    args = VOXDISTILL + pseudo_label_args(tiny_random_whisper, manifest, out, "--shard-size", "2", "--batch-size", "2")
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
    shards = out / "shards"
    while proc.poll() is None and not list(shards.glob("*.jsonl")):
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_at_kill = len(list(shards.glob("*.jsonl")))
    assert 0 < done_at_kill < 12, "the kill must land mid-run for this test to mean anything"
    assert not (out / "pseudo_labels.jsonl").exists()

    assert subprocess.run(args, capture_output=True, env=os.environ.copy()).returncode == 0
    resumed, straight = records(out), records(straight_run)
    assert [r["id"] for r in resumed] == [r["id"] for r in straight]
    assert [r["pseudo_label_tokens"] for r in resumed] == [r["pseudo_label_tokens"] for r in straight]


def test_restart_with_other_settings_is_refused(tiny_random_whisper, manifest, straight_run, capsys):
    assert main(pseudo_label_args(tiny_random_whisper, manifest, straight_run, "--shard-size", "2",
                                  "--top-k", "4")) == 2
    assert "holds pseudo-labels of another run (differs in: top_k)" in capsys.readouterr().err


def test_wer_filter_counts(speech_dir, tmp_path, capsys):
    manifest = speech_manifest(speech_dir, tmp_path / "m.jsonl")
    out = tmp_path / "out"
    assert main(pseudo_label_args("bundled:whisper-tiny.en", manifest, out, "--wer-threshold", "0.1")) == 0
    kept, dropped = records(out), list(read_manifest(out / "dropped.jsonl"))
    assert len(kept) + len(dropped) == len(SPEECH)
    assert all(r["pseudo_label_wer"] <= 0.1 for r in kept)
    assert all(u.extra["pseudo_label_wer"] > 0.1 for u in dropped)
    assert all(r["reference_text"] == SPEECH[r["id"].rsplit("-", 1)[0]][1] for r in kept)
    metadata = json.loads((out / "metadata.json").read_text())
    assert metadata["counts"]["kept"] == len(kept) and metadata["counts"]["dropped"] == len(dropped)
    assert f"{len(kept)} kept, {len(dropped)} dropped (wer {len(dropped)})" in capsys.readouterr().out
    assert all(u.extra["drop_reasons"] == ["wer"] for u in dropped)
    # tiny.en mishears "brown fox ... dog" in the espeak clip and gets the weather sentence right.
    assert "weather-0" in {r["id"] for r in kept} and "fox-0" in {u.id for u in dropped}


def test_bad_audio_stops_the_run_unless_skipping_is_allowed(tiny_random_whisper, speech_dir, tmp_path, capsys):
    manifest = speech_manifest(speech_dir, tmp_path / "m.jsonl")
    lines = manifest.read_text().splitlines()
    lines.insert(1, json.dumps({"id": "gone", "audio_filepath": str(tmp_path / "missing.wav"), "duration": 1.0}))
    manifest.write_text("\n".join(lines) + "\n")
    assert main(pseudo_label_args(tiny_random_whisper, manifest, tmp_path / "a")) == 2
    # Found before the teacher loads (issue 22, item 14), by manifest line.
    assert f"m.jsonl:2 [gone]: audio file {tmp_path / 'missing.wav'} not found" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()
    assert main(pseudo_label_args(tiny_random_whisper, manifest, tmp_path / "b", "--skip-bad-audio", "1")) == 0
    assert "1 bad audio skipped" in capsys.readouterr().out
    assert [r["id"] for r in records(tmp_path / "b")] == ["fox-0", "report-0", "weather-0"]


def test_two_processes_equal_one(tiny_random_whisper, manifest, straight_run, tmp_path):
    out = tmp_path / "ddp"
    result = subprocess.run(
        ACCELERATE_2_PROCESSES + pseudo_label_args(tiny_random_whisper, manifest, out, "--shard-size", "2", "--batch-size", "2"),
        capture_output=True, text=True, env=os.environ.copy(),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "pseudo-label (rank 1)" in result.stderr  # two processes really ran
    two, one = records(out), records(straight_run)
    assert [r["id"] for r in two] == [r["id"] for r in one]
    assert [r["pseudo_label_tokens"] for r in two] == [r["pseudo_label_tokens"] for r in one]
    cache2, cache1 = TopKCache(out), TopKCache(straight_run)
    for r2, r1 in zip(two, one):
        a, b = cache2.lookup(r2["topk_shard"], r2["topk_index"]), cache1.lookup(r1["topk_shard"], r1["topk_index"])
        assert torch.equal(a.ids, b.ids)
        torch.testing.assert_close(a.log_probs, b.log_probs, rtol=0, atol=1e-2)
