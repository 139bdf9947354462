"""Issue 12, inputs: duplicate ids, empty manifests, unusable models, out-of-range options, truncated
and too-short audio, and help that matches the program. Every case runs the `voxdistill` command on
real files (in a new process where `tests.cli_run` says) and checks the exit status and that the
message names the culprit."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml
from safetensors.torch import load_file, save_file

from tests.cli_run import assert_refused, voxdistill
from voxdistill.audio import MIN_SECONDS
from voxdistill.cli import build_parser

README = Path(__file__).resolve().parents[1] / "README.md"


def write_lines(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def line(utt_id: str, audio: Path, text: str = "words") -> dict:
    return {"id": utt_id, "audio_filepath": str(audio), "duration": sf.info(str(audio)).duration, "text": text}


@pytest.fixture
def duplicated(speech_dir, tmp_path) -> Path:
    """Lines 1 and 3 share the id "a" but point at different audio."""
    return write_lines(tmp_path / "dup.jsonl", [line("a", speech_dir / "fox.wav"), line("b", speech_dir / "report.wav"),
                                                line("a", speech_dir / "weather.wav")])


def cut_wav(source: Path, out: Path) -> Path:
    """A copy of ``source`` with the second half of its bytes gone; the header still promises all."""
    data = source.read_bytes()
    out.write_bytes(data[: len(data) // 2])
    return out


def short_wav(out: Path, seconds: float = 0.001) -> Path:
    sf.write(out, np.full(max(1, round(seconds * 16000)), 0.1, np.float32), 16000)
    return out


# -- 1. duplicate ids and empty manifests ------------------------------------------------------


def manifest_command(command: str, manifest: Path, model: Path, out: Path) -> list:
    if command == "pseudo-label":
        return ["pseudo-label", "--teacher", model, "--manifest", manifest, "--out", out]
    return ["evaluate", "--model", model, "--manifest", manifest, "--out", out / "metrics.json"]


@pytest.mark.parametrize("command", ["pseudo-label", "evaluate"])
def test_duplicate_ids_are_refused_before_the_model_loads(command, duplicated, tmp_path):
    # The model folder does not exist: had it been loaded first, the error would be about it.
    result = voxdistill(*manifest_command(command, duplicated, tmp_path / "no-model", tmp_path / "out"),
                        separate=command == "pseudo-label")
    assert_refused(result, 2, f"{duplicated}:3: duplicate id 'a', first used at {duplicated}:1")
    assert "no such model folder" not in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["pseudo-label", "evaluate"])
def test_an_empty_manifest_is_refused(command, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n  \n")  # blank lines only
    result = voxdistill(*manifest_command(command, empty, tmp_path / "no-model", tmp_path / "out"))
    assert_refused(result, 2, f"error: {empty}: the manifest holds no utterances")


def distill_config(tmp_path: Path, student: Path, manifest: Path) -> Path:
    config = {"student": str(student), "out": str(tmp_path / "run"), "teacher": {"mode": "none"},
              "loss": {"kd_weight": 0.0},
              "data": {"train_manifest": str(manifest), "batch_size": 1, "bucket_size": 1, "shuffle_buffer": 0},
              "optim": {"max_steps": 1, "warmup_steps": 0}, "eval": {"every_steps": 0}}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize("case", ["duplicate", "empty"])
def test_distill_refuses_the_manifest_before_training(case, duplicated, tiny_random_whisper, tmp_path):
    manifest = duplicated if case == "duplicate" else tmp_path / "empty.jsonl"
    if case == "empty":
        manifest.touch()
    result = voxdistill("distill", "--config", distill_config(tmp_path, tiny_random_whisper, manifest))
    if case == "duplicate":
        assert_refused(result, 2, f"{duplicated}:3: duplicate id 'a', first used at {duplicated}:1")
    else:  # not "lower data.batch_size", which is what an empty manifest used to be blamed on
        assert_refused(result, 2, f"{manifest}: the manifest holds no utterances")
    assert not list((tmp_path / "run").glob("checkpoints/step-*"))


def test_corpus_check_reports_every_input_problem(speech_dir, tmp_path):
    truncated = cut_wav(speech_dir / "fox.wav", tmp_path / "cut.wav")
    short = short_wav(tmp_path / "short.wav")
    manifest = write_lines(tmp_path / "m.jsonl", [
        line("a", speech_dir / "fox.wav"), line("cut", truncated), line("a", speech_dir / "report.wav"),
        {**line("short", short), "duration": 0.001},
    ])
    result = voxdistill("corpus", "check", manifest)
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert f"problem: {manifest}:2 [cut]: {truncated}: truncated: its header promises" in out
    assert f"problem: {manifest}:3 [a]: duplicate id (first at {manifest}:1)" in out
    assert f"problem: {manifest}:4 [short]: {short}: only 1 ms of audio, too short" in out
    assert f"{manifest}: 3 problem(s)" in out


def test_corpus_check_reports_an_empty_manifest(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.touch()
    result = voxdistill("corpus", "check", empty)
    assert result.returncode == 1
    assert f"problem: {empty}: no utterances" in result.stdout


# -- 6. models that cannot be loaded -------------------------------------------------------------


class _Payload:
    """Pickled, it makes the folder ``marker`` when unpickled: code that runs on load."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def bad_model(case: str, good: Path, folder: Path) -> tuple[Path, str, str]:
    """(model folder, the path the message must name, what it must say) for one kind of damage."""
    if case == "missing":  # relative and shaped like a hub id (owner/name); commands run in folder's parent
        (folder.parent / "runs").mkdir()
        return Path("runs/student"), "runs/student", "no such model folder"
    if case == "empty":
        folder.mkdir()
        return folder, str(folder), "the model folder is empty"
    shutil.copytree(good, folder)
    weights = folder / "model.safetensors"
    if case == "truncated":
        with weights.open("r+b") as f:
            f.truncate(weights.stat().st_size // 2)
        return folder, str(weights), "corrupt or truncated safetensors file"
    if case == "corrupt":
        data = bytearray(weights.read_bytes())
        data[:64] = np.random.default_rng(0).bytes(64)
        weights.write_bytes(data)
        return folder, str(weights), "corrupt or truncated safetensors file"
    if case == "incomplete":  # a valid file without one tensor: transformers would make it up at random
        tensors = load_file(weights)
        del tensors["model.decoder.layer_norm.weight"]
        save_file(tensors, weights)
        return folder, str(folder), "the weights lack 1 tensor(s) that config.json needs"
    assert case == "pickle"
    weights.unlink()
    torch.save({"model.encoder.conv1.weight": _Payload(folder.parent / "payload-ran")}, folder / "pytorch_model.bin")
    return folder, str(folder / "pytorch_model.bin"), "voxdistill loads weights only from safetensors"


def model_command(command: str, model: Path, speech_dir: Path, tmp_path: Path) -> list:
    fox = speech_dir / "fox.wav"
    manifest = write_lines(tmp_path / "m.jsonl", [line("fox", fox)])
    return {
        "model info": ["model", "info", model],
        "transcribe": ["transcribe", model, fox],
        "evaluate": ["evaluate", "--model", model, "--manifest", manifest, "--out", tmp_path / "e.json"],
        "pseudo-label": ["pseudo-label", "--teacher", model, "--manifest", manifest, "--out", tmp_path / "pl"],
        "student init": ["student", "init", "--teacher", model, "--encoder-layers", "1", "--decoder-layers", "1",
                         "--out", tmp_path / "student"],
    }[command]


@pytest.mark.parametrize("command, case", [
    *[("model info", case) for case in ("missing", "empty", "truncated", "corrupt", "incomplete", "pickle")],
    *[(command, "pickle") for command in ("transcribe", "evaluate", "pseudo-label", "student init")],
])
def test_an_unusable_model_gets_a_message_naming_the_file(command, case, tiny_random_whisper, speech_dir, tmp_path):
    model, named, says = bad_model(case, tiny_random_whisper, tmp_path / "model")
    result = voxdistill(*model_command(command, model, speech_dir, tmp_path), cwd=tmp_path)
    assert_refused(result, 2, f"error: {named}: ", says)
    if case == "pickle":
        assert "weights_only=False" not in result.stderr  # the one thing not to do with this file
        assert "convert it" in result.stderr
        assert not (tmp_path / "payload-ran").exists()


@pytest.mark.parametrize("command", ["transcribe", "pseudo-label", "evaluate"])
@pytest.mark.parametrize("option, value", [("--batch-size", "0"), ("--max-new-tokens", "-1")])
def test_out_of_range_decoding_options_name_the_option(command, option, value, tmp_path):
    args = {"transcribe": ["transcribe", "m", "a.wav"],
            "pseudo-label": ["pseudo-label", "--teacher", "m", "--manifest", "x.jsonl", "--out", tmp_path],
            "evaluate": ["evaluate", "--model", "m", "--manifest", "x.jsonl", "--out", tmp_path / "e.json"]}[command]
    result = voxdistill(*args, option, value)
    assert_refused(result, 2, f"argument {option}: got {value}; give a whole number of 1 or more")


# -- 7. audio that is accepted but wrong ---------------------------------------------------------


@pytest.mark.parametrize("case", ["truncated", "too short"])
def test_transcribe_refuses_truncated_and_too_short_audio(case, speech_dir, tiny_random_whisper, tmp_path):
    if case == "truncated":
        bad, says = cut_wav(speech_dir / "fox.wav", tmp_path / "cut.wav"), "truncated: its header promises"
    else:
        bad = short_wav(tmp_path / "blip.wav")
        says = f"only 1 ms of audio, too short to hold speech (the minimum is {MIN_SECONDS:g} s)"
    result = voxdistill("transcribe", tiny_random_whisper, speech_dir / "fox.wav", bad)
    assert_refused(result, 2, f"error: {bad}: {says}")
    assert result.stdout == ""  # not even the good file: bad input fails before the model loads


def test_a_clip_just_over_the_minimum_is_transcribed(tiny_random_whisper, tmp_path):
    clip = short_wav(tmp_path / "ok.wav", seconds=MIN_SECONDS + 0.01)
    result = voxdistill("transcribe", tiny_random_whisper, clip, "--max-new-tokens", "4")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{clip}\t")


def test_pseudo_label_counts_a_too_short_clip_as_bad_audio(speech_dir, tiny_random_whisper, tmp_path):
    short = short_wav(tmp_path / "blip.wav")
    manifest = write_lines(tmp_path / "m.jsonl", [line("fox", speech_dir / "fox.wav"),
                                                  {**line("blip", short), "duration": 0.001}])
    args = ["pseudo-label", "--teacher", tiny_random_whisper, "--manifest", manifest, "--max-new-tokens", "4",
            "--top-k", "0"]
    assert_refused(voxdistill(*args, "--out", tmp_path / "strict"), 2, f"{short}: only 1 ms of audio")
    allowed = voxdistill(*args, "--out", tmp_path / "lenient", "--skip-bad-audio", "1")
    assert allowed.returncode == 0, allowed.stderr
    assert "1 bad audio skipped" in allowed.stdout
    kept = [json.loads(x)["id"] for x in (tmp_path / "lenient" / "pseudo_labels.jsonl").read_text().splitlines()]
    assert kept == ["fox"]


# -- 8. help that matches the program ------------------------------------------------------------


def parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from parsers(sub, (*path, name))


def test_every_positional_argument_is_explained():
    walked = list(parsers(build_parser()))
    assert {("corpus", "check"), ("report",), ("model", "info"), ("transcribe",)} <= {p for p, _ in walked}
    unexplained = [(" ".join(path) or "voxdistill", action.metavar or action.dest)
                   for path, parser in walked for action in parser._actions
                   if not action.option_strings and not action.help]
    assert unexplained == []


def test_distill_help_says_when_config_is_required():
    result = voxdistill("distill", "--help")
    assert result.returncode == 0
    assert "required to train" in " ".join(result.stdout.split())


def test_top_level_help_gives_the_demo_time_the_readme_measured():
    result = voxdistill("--help")
    said = re.search(r"about (\d+) min", " ".join(result.stdout.split()))
    measured = re.search(r"\((\d+(?:\.\d+)?) minutes from nothing", README.read_text())
    assert said and measured
    assert round(float(measured.group(1))) == int(said.group(1))
