"""Issue 22, inputs: manifest numbers and durations, model folders missing files or damaged, ``--set``
of a whole section, out-of-range options, and bad audio paths found before the long work. Every
case runs the `voxdistill` command on real files (one per item in a new process, `tests.cli_run`)
and checks the exit status, the message, and that nothing was lost, clobbered or left half-written."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from tests.cli_run import assert_refused, voxdistill
from tests.test_reliability_inputs import distill_config, line, write_lines


@pytest.fixture(scope="module")
def ctc_student(tiny_random_whisper, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ctc") / "student"
    made = voxdistill("student", "init", "--family", "ctc", "--teacher", tiny_random_whisper, "--encoder-layers", "1",
                      "--out", out)
    assert made.returncode == 0, made.stderr
    return out


@pytest.fixture(scope="module")
def ct2_folder(tiny_random_whisper, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ct2") / "model"
    made = voxdistill("export", tiny_random_whisper, "--format", "ct2", "--out", out)
    assert made.returncode == 0, made.stderr
    return out


def fox_manifest(speech_dir: Path, path: Path, **changes) -> Path:
    """Two lines (fox, report) with their true durations; ``changes`` replace fields of line 2."""
    return write_lines(path, [line("fox", speech_dir / "fox.wav"), {**line("report", speech_dir / "report.wav"),
                                                                     **changes}])


def files_under(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# -- 4. manifest fields trusted blindly -----------------------------------------------------------


@pytest.mark.parametrize("written", ["NaN", "Infinity", "1e999"])
def test_a_duration_that_is_no_number_is_refused_by_check_and_pseudo_label(written, speech_dir, tiny_random_whisper,
                                                                           tmp_path):
    manifest = fox_manifest(speech_dir, tmp_path / "m.jsonl")
    lines = manifest.read_text().splitlines()
    lines[1] = lines[1].replace(f'"duration": {line("r", speech_dir / "report.wav")["duration"]}',
                                f'"duration": {written}')
    manifest.write_text("\n".join(lines) + "\n")
    says = f"{manifest}:2: field duration is {written}, not a finite number"

    checked = voxdistill("corpus", "check", manifest)
    assert checked.returncode == 1
    assert f"problem: {says}" in checked.stdout and f"{manifest}: 1 problem(s)" in checked.stdout

    out = tmp_path / "pl"
    assert_refused(voxdistill("pseudo-label", "--teacher", tiny_random_whisper, "--manifest", manifest, "--out", out),
                   2, f"error: {says}")
    assert not out.exists()  # refused before the teacher loaded: no run.json to block the corrected run


@pytest.mark.parametrize("case", ["durations cut to 5%", "a NaN duration"])
def test_ctc_distill_refuses_durations_that_are_not_the_audio(case, ctc_student, speech_dir, tmp_path):
    if case == "a NaN duration":
        manifest = fox_manifest(speech_dir, tmp_path / "m.jsonl")
        manifest.write_text(manifest.read_text().replace(f'{line("r", speech_dir / "report.wav")["duration"]}', "NaN"))
        says = [f"{manifest}:2: field duration is NaN, not a finite number"]
    else:  # every line: the student would count frames from the manifest and learn nothing (loss 0.000)
        records = [line(name, speech_dir / f"{name}.wav") for name in ("fox", "report")]
        real = records[0]["duration"]
        manifest = write_lines(tmp_path / "m.jsonl", [{**r, "duration": round(r["duration"] * 0.05, 3)} for r in records])
        says = [f"{manifest} [", "duration says ", f"lasts {real:.2f} s"]
    config = distill_config(tmp_path, ctc_student, manifest)
    result = voxdistill("distill", "--config", config)
    assert_refused(result, 2, *says)
    log = tmp_path / "run" / "log.jsonl"
    assert not log.is_file() or log.read_text() == ""  # not one step was trained on it
    assert not list((tmp_path / "run").glob("checkpoints/step-*")) and not (tmp_path / "run" / "model").exists()


def test_evaluate_refuses_an_empty_reference_that_check_flags(speech_dir, tiny_random_whisper, tmp_path):
    manifest = fox_manifest(speech_dir, tmp_path / "m.jsonl", text="  ")
    checked = voxdistill("corpus", "check", manifest)
    assert checked.returncode == 1 and f"problem: {manifest}:2 [report]: empty text" in checked.stdout

    out = tmp_path / "eval"
    out.mkdir()
    (out / "metrics.json").write_text("earlier results\n")
    result = voxdistill("evaluate", "--model", tiny_random_whisper, "--manifest", manifest, "--out", out / "metrics.json",
                        separate=True)
    assert_refused(result, 2, f"error: {manifest}:2 [report]: empty reference text",
                   "every utterance is scored against its reference")
    assert files_under(out) == {"metrics.json": b"earlier results\n"}  # nothing scored, nothing clobbered


# -- 5. and 10. model folders missing files, or damaged -------------------------------------------


@pytest.mark.parametrize("removed, named", [
    (("tokenizer.json",), "tokenizer.json (or vocab.json and merges.txt)"),
    (("tokenizer.json", "generation_config.json"), "tokenizer.json (or vocab.json and merges.txt); generation_config.json"),
    (("processor_config.json",), "preprocessor_config.json (or processor_config.json)"),
])
def test_a_model_folder_without_its_tokenizer_is_refused(removed, named, tiny_random_whisper, speech_dir, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(tiny_random_whisper, model)
    for name in removed:
        (model / name).unlink()
    result = voxdistill("transcribe", model, speech_dir / "fox.wav", "--max-new-tokens", "4",
                        separate=removed == ("tokenizer.json",))
    assert_refused(result, 2, f"error: {model}: the model folder is incomplete, it lacks {named} ")
    assert result.stdout == ""  # no empty transcript printed as if it were one


def test_config_shapes_that_disagree_with_the_weights_name_the_tensor(tiny_random_whisper, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(tiny_random_whisper, model)
    config = json.loads((model / "config.json").read_text())
    config["decoder_ffn_dim"] *= 2
    (model / "config.json").write_text(json.dumps(config))
    result = voxdistill("model", "info", model, separate=True)
    assert_refused(result, 2, f"error: {model}: config.json and the weights disagree: tensor "
                              f"model.decoder.layers.0.fc1.bias is [{config['decoder_ffn_dim'] // 2}] in the weights "
                              f"but config.json makes it [{config['decoder_ffn_dim']}]")


def test_a_config_with_fewer_layers_than_the_weights_is_refused(tiny_random_whisper, tmp_path):
    """transformers would drop the layers config.json has no place for and run a smaller model."""
    model = tmp_path / "model"
    shutil.copytree(tiny_random_whisper, model)
    config = json.loads((model / "config.json").read_text())
    assert config["encoder_layers"] > 1
    config["encoder_layers"] -= 1
    (model / "config.json").write_text(json.dumps(config))
    result = voxdistill("model", "info", model)
    assert_refused(result, 2, f"error: {model}: the weights hold", "that config.json has no place for",
                   f"model.encoder.layers.{config['encoder_layers']}.")


@pytest.mark.parametrize("runtime", ["torch", "ct2"])
@pytest.mark.parametrize("damage", ["no vocabulary", "truncated model.bin"])
def test_a_damaged_ctranslate2_folder_is_named_in_either_runtime(damage, runtime, ct2_folder, speech_dir, tmp_path):
    model = tmp_path / "ct2"
    shutil.copytree(ct2_folder, model)
    if damage == "no vocabulary":
        for vocabulary in model.glob("vocabulary.*"):
            vocabulary.unlink()
        says = f"error: {model}: missing vocabulary.txt or vocabulary.json"
    else:
        with (model / "model.bin").open("r+b") as f:
            f.truncate((model / "model.bin").stat().st_size // 2)
        says = "truncated CTranslate2 model"
    result = voxdistill("transcribe", model, speech_dir / "fox.wav", "--runtime", runtime, "--max-new-tokens", "4")
    assert_refused(result, 2, says, str(model))
    assert result.stdout == ""


@pytest.mark.parametrize("damage", ["not JSON", "no teacher"])
@pytest.mark.parametrize("command", ["transcribe", "export", "distill"])
def test_a_damaged_student_json_is_named(command, damage, tiny_random_whisper, speech_dir, tmp_path):
    student = tmp_path / "student"
    made = voxdistill("student", "init", "--teacher", tiny_random_whisper, "--encoder-layers", "1",
                      "--decoder-layers", "1", "--out", student)
    assert made.returncode == 0, made.stderr
    record = student / "student.json"
    record.write_text(record.read_text()[:60] if damage == "not JSON" else json.dumps({"encoder_layers": [0]}))
    args = {"transcribe": ["transcribe", student, speech_dir / "fox.wav"],
            "export": ["export", student, "--format", "hf", "--out", tmp_path / "exported"],
            "distill": ["distill", "--config", distill_config(tmp_path, student, fox_manifest(speech_dir, tmp_path / "m.jsonl"))],
            }[command]
    result = voxdistill(*args)
    assert_refused(result, 2, f"error: {record}: damaged")
    assert not (tmp_path / "exported").exists() and not (tmp_path / "run" / "model").exists()


# -- 6. --set of a whole section ---------------------------------------------------------------------


def test_set_of_a_section_merges_into_it(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({"student": "s", "out": "o", "data": {"train_manifest": "m.jsonl"},
                                      "optim": {"lr": 0.001, "max_steps": 7, "warmup_steps": 3}}))
    before = config.read_bytes()
    result = voxdistill("distill", "--config", config, "--set", "optim={lr: 0.0002, betas: [0.8, 0.9]}",
                        "--print-config", separate=True)
    assert result.returncode == 0, result.stderr
    optim = yaml.safe_load(result.stdout)["optim"]
    assert optim["lr"] == 0.0002 and optim["betas"] == [0.8, 0.9]
    assert optim["max_steps"] == 7 and optim["warmup_steps"] == 3  # kept, not reset to the defaults
    assert config.read_bytes() == before


# -- 11. inputs and options ------------------------------------------------------------------------


def test_a_manifest_with_a_byte_that_is_not_utf8_names_file_and_line(speech_dir, tiny_random_whisper, tmp_path):
    manifest = fox_manifest(speech_dir, tmp_path / "m.jsonl", text="cafe au lait")
    manifest.write_bytes(manifest.read_bytes().replace(b"cafe", b"caf\xe9"))  # Latin-1's e-acute, not UTF-8
    says = f"{manifest}:2: not UTF-8 text (byte 0xe9 at column"
    checked = voxdistill("corpus", "check", manifest, separate=True)
    assert checked.returncode == 1 and f"problem: {says}" in checked.stdout
    assert "Traceback" not in checked.stderr
    for command in ("pseudo-label", "evaluate"):
        args = (["pseudo-label", "--teacher", tiny_random_whisper, "--out", tmp_path / "pl"] if command == "pseudo-label"
                else ["evaluate", "--model", tiny_random_whisper, "--out", tmp_path / "e" / "metrics.json"])
        assert_refused(voxdistill(*args, "--manifest", manifest), 2, f"error: {says}", "save the manifest as UTF-8")
    assert not (tmp_path / "pl").exists() and not (tmp_path / "e").exists()


def test_top_k_beyond_the_vocabulary_is_refused_before_run_json(speech_dir, tiny_random_whisper, tmp_path):
    manifest, out = fox_manifest(speech_dir, tmp_path / "m.jsonl"), tmp_path / "pl"
    args = ["pseudo-label", "--teacher", tiny_random_whisper, "--manifest", manifest, "--out", out,
            "--max-new-tokens", "4"]
    assert_refused(voxdistill(*args, "--top-k", "100000"), 2,
                   "error: --top-k 100000 is more than the 51864 tokens of the teacher's vocabulary")
    assert not out.exists()
    fixed = voxdistill(*args, "--top-k", "4")
    assert fixed.returncode == 0, fixed.stderr
    assert json.loads((out / "run.json").read_text())["top_k"] == 4


def test_a_run_stopped_before_its_first_shard_does_not_block_the_corrected_one(speech_dir, tiny_random_whisper,
                                                                               tmp_path):
    """The class behind the --top-k report: a run.json without a finished shard protects no work."""
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x24\x00\x00\x00WAVEjunkjunkjunk")  # a header and nothing usable
    bad = write_lines(tmp_path / "bad.jsonl", [{**line("fox", speech_dir / "fox.wav"), "audio_filepath": str(broken)}])
    out = tmp_path / "pl"
    args = ["pseudo-label", "--teacher", tiny_random_whisper, "--out", out, "--max-new-tokens", "4"]
    assert_refused(voxdistill(*args, "--manifest", bad, "--top-k", "2"), 2, str(broken))
    assert (out / "run.json").is_file() and not list((out / "shards").glob("*.jsonl"))
    fixed = voxdistill(*args, "--manifest", fox_manifest(speech_dir, tmp_path / "m.jsonl"), "--top-k", "4")
    assert fixed.returncode == 0, fixed.stderr
    assert [json.loads(x)["id"] for x in (out / "pseudo_labels.jsonl").read_text().splitlines()] == ["fox", "report"]


@pytest.mark.parametrize("command", ["transcribe", "evaluate", "pseudo-label"])
@pytest.mark.parametrize("language, says", [
    ("klingon", "argument --language: got 'klingon', not a language Whisper knows"),
    ("french", "--language fr: {model} is English-only; leave --language at en"),
])
def test_a_language_the_model_cannot_transcribe_is_refused(command, language, says, speech_dir, tiny_random_whisper,
                                                           tmp_path):
    manifest = fox_manifest(speech_dir, tmp_path / "m.jsonl")
    args = {"transcribe": ["transcribe", tiny_random_whisper, speech_dir / "fox.wav"],
            "evaluate": ["evaluate", "--model", tiny_random_whisper, "--manifest", manifest,
                         "--out", tmp_path / "e" / "metrics.json"],
            "pseudo-label": ["pseudo-label", "--teacher", tiny_random_whisper, "--manifest", manifest,
                             "--out", tmp_path / "pl"]}[command]
    result = voxdistill(*args, "--language", language, "--max-new-tokens", "4")
    assert_refused(result, 2, says.format(model=tiny_random_whisper))
    assert result.stdout == ""
    assert not (tmp_path / "pl").exists() and not (tmp_path / "e" / "metrics.json").exists()


# -- 14. bad audio paths, long audio, pipes --------------------------------------------------------


def _damaged_copy(source: Path, path: Path) -> Path:
    """``source`` as FLAC with a valid header over a corrupt body: it exists and opens, only decoding fails."""
    audio, rate = sf.read(source, dtype="float32")
    sf.write(path, audio, rate, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    data[200:-100] = np.random.default_rng(0).bytes(len(data) - 300)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_evaluate_checks_every_audio_file_before_any_work(damage, speech_dir, tiny_random_whisper, tmp_path):
    if damage == "missing":
        bad, says = tmp_path / "gone.wav", f"audio file {tmp_path / 'gone.wav'} not found"
    else:
        bad = _damaged_copy(speech_dir / "fox.wav", tmp_path / "damaged.flac")
        says = f"{bad}: cannot decode"
    records = [line(f"u{i}", speech_dir / "fox.wav") for i in range(5)]
    manifest = write_lines(tmp_path / "m.jsonl", [*records, {**records[0], "id": "late", "audio_filepath": str(bad)}])
    out = tmp_path / "eval"
    out.mkdir()
    (out / "metrics.json").write_text("earlier results\n")
    result = voxdistill("evaluate", "--model", tiny_random_whisper, "--manifest", manifest,
                        "--out", out / "metrics.json", "--max-new-tokens", "4", separate=True)
    assert_refused(result, 2, f"error: {manifest}:6 [late]: {says}")
    assert files_under(out) == {"metrics.json": b"earlier results\n"}


def test_pseudo_label_checks_audio_paths_first_and_may_skip_them(speech_dir, tiny_random_whisper, tmp_path):
    missing = tmp_path / "gone.wav"
    manifest = fox_manifest(speech_dir, tmp_path / "m.jsonl", audio_filepath=str(missing))
    args = ["pseudo-label", "--teacher", tiny_random_whisper, "--manifest", manifest, "--max-new-tokens", "4",
            "--top-k", "0"]
    assert_refused(voxdistill(*args, "--out", tmp_path / "strict"), 2,
                   f"error: {manifest}:2 [report]: audio file {missing} not found")
    assert not (tmp_path / "strict").exists()
    lenient = voxdistill(*args, "--out", tmp_path / "lenient", "--skip-bad-audio", "1")
    assert lenient.returncode == 0, lenient.stderr
    assert "1 bad audio skipped" in lenient.stdout


def test_pseudo_label_advice_for_long_audio_names_no_option_it_lacks(speech_dir, tiny_random_whisper, tmp_path):
    long = tmp_path / "lecture.wav"
    sf.write(long, np.random.default_rng(0).normal(0, 0.1, 31 * 16000).astype(np.float32), 16000)
    manifest = fox_manifest(speech_dir, tmp_path / "m.jsonl", audio_filepath=str(long), duration=31.0)
    result = voxdistill("pseudo-label", "--teacher", tiny_random_whisper, "--manifest", manifest,
                        "--out", tmp_path / "pl", "--max-new-tokens", "4")
    assert_refused(result, 2, f"error: {long}: audio is 31.0 s, longer than the 30 s limit",
                   "cut the audio into clips", "--skip-bad-audio")
    assert "--long-audio" not in result.stderr  # pseudo-label has no such option


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_pipe_or_device_given_as_audio_is_named_for_what_it_is(kind, tiny_random_whisper, tmp_path):
    if kind == "fifo":
        path, says = tmp_path / "stream.wav", "is a named pipe (FIFO), not a regular file"
        os.mkfifo(path)
    else:
        path, says = Path("/dev/null"), "is a character device, not a regular file"
    result = voxdistill("transcribe", tiny_random_whisper, path)
    assert_refused(result, 2, f"error: {path}: {says}")
    assert "empty" not in result.stderr
