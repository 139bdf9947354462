"""`voxdistill export` and the CTranslate2 runtime, checked with the real clients (the ctranslate2
package's converter and runtime, faster-whisper) on real espeak-ng speech and tiny random Whispers:
the same greedy tokens as PyTorch at float32, a windowed student in voxdistill's own runtime,
`evaluate --runtime ct2` through the CLI, pseudo-labels of a CTranslate2 teacher and the
consistency rule, and typed errors for bad options."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.test_evaluate import write_set
from tests.test_pseudo_label import speech_manifest
from voxdistill.audio import load_audio
from voxdistill.cli import main
from voxdistill.config import from_dict
from voxdistill.decoding import NO_CHECKS, DecodingOptions
from voxdistill.distill.config import DistillConfig
from voxdistill.distill.consistency import TeacherMismatchError, resolve_teacher
from voxdistill.export.exporter import ExportError, export_model
from voxdistill.families import load_recogniser
from voxdistill.files import OutputError
from voxdistill.formats import EXPORT_RECORD
from voxdistill.models.loading import load_whisper
from voxdistill.models.student import StudentSpec, build_student, save_student
from voxdistill.runtime import Runtime, RuntimeConfigError, generate_tokens
from voxdistill.teacher.pseudo_label import PseudoLabelConfig, run_pseudo_label
from voxdistill.teacher.topk import TopKCache
from voxdistill.transcribe import transcribe_audio

# Random weights never emit end-of-text: every clip decodes the whole budget, so equal token lists
# compare every step.
GREEDY = DecodingOptions(batch_size=3, max_new_tokens=24, max_tokens_per_second=None, checks=NO_CHECKS)
CT2_FLOAT32 = Runtime("ct2", "float32")


@pytest.fixture(scope="module")
def clips(speech_dir) -> list[np.ndarray]:
    return [load_audio(speech_dir / f"{name}.wav") for name in ("fox", "report", "weather")]


@pytest.fixture(scope="module")
def ct2_export(tiny_random_whisper, tmp_path_factory) -> Path:
    return export_model(str(tiny_random_whisper), "ct2", tmp_path_factory.mktemp("export") / "ct2", "float32")


@pytest.fixture(scope="module")
def student_10s(tiny_random_whisper, tmp_path_factory) -> Path:
    """A 2+1-layer student of the tiny random Whisper with a 10 s window."""
    teacher = load_whisper(str(tiny_random_whisper))
    student, provenance = build_student(teacher.model, StudentSpec((0, 1), (1,), window_seconds=10))
    return save_student(student, teacher.processor, provenance, str(tiny_random_whisper), teacher.fingerprint.digest,
                        tmp_path_factory.mktemp("student") / "model")


def test_ct2_export_holds_what_clients_need(ct2_export, tiny_random_whisper):
    files = {p.name for p in ct2_export.iterdir()}
    assert {"model.bin", "config.json", "vocabulary.json", "tokenizer.json", "preprocessor_config.json",
            "README.md", EXPORT_RECORD} <= files
    record = json.loads((ct2_export / EXPORT_RECORD).read_text())
    assert record["format"] == "ct2" and record["quantization"] == "float32" and record["window_seconds"] == 30
    assert record["source_fingerprint"]["digest"] == load_whisper(str(tiny_random_whisper)).fingerprint.digest
    assert "faster_whisper" in (ct2_export / "README.md").read_text()


def test_ct2_float32_decodes_the_torch_tokens(ct2_export, tiny_random_whisper, clips):
    torch_tokens = generate_tokens(load_recogniser(str(tiny_random_whisper)), clips, GREEDY)
    ct2 = load_recogniser(str(ct2_export), CT2_FLOAT32, threads=1)
    assert generate_tokens(ct2, clips, GREEDY) == torch_tokens
    assert [len(t) for t in torch_tokens] == [GREEDY.max_new_tokens] * 3
    # One clip at a time too: the batch does not change a clip's tokens.
    assert [generate_tokens(ct2, [c], GREEDY)[0] for c in clips] == torch_tokens


def test_ct2_runtime_is_another_teacher(ct2_export, tiny_random_whisper):
    torch_print = load_recogniser(str(tiny_random_whisper)).fingerprint
    ct2_print = load_recogniser(str(ct2_export), CT2_FLOAT32, threads=1).fingerprint
    assert ct2_print.runtime == {"backend": "ct2", "compute_type": "float32"}
    assert ct2_print.digest != torch_print.digest
    assert ct2_print.model_digest == torch_print.digest  # the same weights and preprocessing


def test_faster_whisper_transcribes_a_30s_export(ct2_export, speech_dir):
    from faster_whisper import WhisperModel

    model = WhisperModel(str(ct2_export), device="cpu", compute_type="int8", cpu_threads=1)
    segments, info = model.transcribe(
        str(speech_dir / "fox.wav"), language="en", beam_size=1, temperature=0.0, without_timestamps=True,
        condition_on_previous_text=False, max_new_tokens=GREEDY.max_new_tokens,
        # A random model's text fails every quality check; keep faster-whisper from dropping it.
        compression_ratio_threshold=None, log_prob_threshold=None, no_speech_threshold=None)
    segments = list(segments)
    assert info.duration == pytest.approx(len(load_audio(speech_dir / "fox.wav")) / 16000, abs=0.05)
    assert segments and all(s.text.strip() for s in segments)
    # Its tokens are not compared with voxdistill's here: faster-whisper pads the features of a clip
    # with zeros, where Whisper, transformers and voxdistill pad the audio and take the log-mel of the
    # silence, so a random model's first token already differs. The integration test compares the
    # transcripts of the real tiny.en.


def test_windowed_export_runs_in_voxdistill_ct2_runtime(student_10s, clips, tmp_path):
    out = export_model(str(student_10s), "ct2", tmp_path / "ct2", "float32")
    assert json.loads((out / "preprocessor_config.json").read_text())["chunk_length"] == 10
    assert json.loads((out / EXPORT_RECORD).read_text())["window_seconds"] == 10
    assert (out / "student.json").is_file()
    card = (out / "README.md").read_text()
    assert "--runtime ct2" in card and "pads every clip" in card

    ct2 = load_recogniser(str(out), CT2_FLOAT32, threads=1)
    student = load_recogniser(str(student_10s))
    assert ct2.feature_extractor.n_samples == 10 * 16000
    assert generate_tokens(ct2, clips, GREEDY) == generate_tokens(student, clips, GREEDY)
    # Longer than the window: chunked by voxdistill.long_audio, the same in either runtime.
    long = np.concatenate([clips[1], clips[2], clips[0]])
    assert len(long) > 10 * 16000
    options = DecodingOptions(max_new_tokens=12, checks=NO_CHECKS)
    assert transcribe_audio(ct2, [long], options) == transcribe_audio(student, [long], options)

    # faster-whisper pads every clip to 30 s, which a 10 s model refuses (checked on the installed
    # version: the reason the card sends such a model to voxdistill's runtime).
    from faster_whisper import WhisperModel

    model = WhisperModel(str(out), device="cpu", compute_type="float32", cpu_threads=1)
    with pytest.raises(ValueError, match="Invalid input features shape"):
        list(model.transcribe(clips[0], language="en", without_timestamps=True)[0])


def test_hf_export_is_a_plain_whisper_folder(student_10s, clips, tmp_path):
    out = export_model(str(student_10s), "hf", tmp_path / "hf")
    assert json.loads((out / "preprocessor_config.json").read_text())["chunk_length"] == 10
    assert {"model.safetensors", "config.json", "generation_config.json", "tokenizer.json", "student.json",
            "README.md"} <= {p.name for p in out.iterdir()}
    assert generate_tokens(load_recogniser(str(out)), clips, GREEDY) == \
        generate_tokens(load_recogniser(str(student_10s)), clips, GREEDY)


def test_evaluate_in_ct2_through_the_cli(ct2_export, student_10s, speech_dir, tmp_path, capsys):
    manifest = write_set(speech_dir, tmp_path / "test-clean.jsonl", {"fox": "clean", "report": "clean"})
    out = tmp_path / "eval" / "metrics.json"
    args = ["evaluate", "--model", str(ct2_export), "--model", str(student_10s), "--manifest", str(manifest),
            "--out", str(out), "--runtime", "ct2", "--compute-type", "float32", "--max-new-tokens", "12",
            "--latency-clips", "1", "--warmup", "0", "--threads", "1", "--latency-threads", "2", "1"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "speed (ct2 float32)" in printed and "at the same thread count" in printed
    result = json.loads(out.read_text())
    assert result["runtime"]["backend"] == "ct2" and result["runtime"]["compute_type"] == "float32"
    teacher, student = result["models"]
    assert teacher["runtime"] == student["runtime"] == {"backend": "ct2", "compute_type": "float32"}
    assert teacher["folder"] == str(ct2_export) and student["role"] == "student"
    assert student["window_seconds"] == 10 and Path(student["folder"]).parent.name == "ct2"  # exported into the cache
    assert 0 <= teacher["sets"]["test-clean"]["wer"] and student["disk_bytes"] > 0
    # Latency timed at 1 and 2 threads, each model led by its fastest count; the ratios at each count
    assert result["speed"]["threads"] == 1 and result["speed"]["latency_threads"] == [1, 2]
    for model in (teacher, student):
        at = {k: v["latency_ms_p50"] for k, v in model["overall"]["latency_by_threads"].items()}
        assert set(at) == {"1", "2"} and all(p50 > 0 for p50 in at.values())
        assert model["overall"]["latency_ms_p50"] == at[str(model["overall"]["latency_threads"])] == min(at.values())
    by_threads = result["ratios"][student["model"]]["speedup_by_threads"]
    assert by_threads == {k: pytest.approx(teacher["overall"]["latency_by_threads"][k]["latency_ms_p50"]
                                           / student["overall"]["latency_by_threads"][k]["latency_ms_p50"])
                          for k in ("1", "2")}


def test_a_ct2_evaluation_transcribes_alike_whether_or_not_it_times_latency(ct2_export, speech_dir, tmp_path):
    # Judged by the loop rules alone, the random model loops at temperature 0 and its samples do not:
    # every clip's transcript is one of its draws. CTranslate2 seeds a
    # model's sampler once, not per call: when the timed clips were decoded by the same model object
    # as the accuracy pass, their draws moved those of every later set (the teacher's digits in the
    # demo: 54.2% with latency timed, 60.0% without).
    sets = [write_set(speech_dir, tmp_path / f"{name}.jsonl", {"fox": "clean", "report": "clean"})
            for name in ("first", "second")]
    transcripts = {}
    for clips in ("0", "2"):
        out = tmp_path / f"latency-{clips}" / "metrics.json"
        assert main(["evaluate", "--model", str(ct2_export), "--manifest", *map(str, sets), "--out", str(out),
                     "--runtime", "ct2", "--compute-type", "float32", "--max-new-tokens", "64", "--threads", "1",
                     "--latency-clips", clips, "--warmup", "0", "--no-speech-threshold", "none",
                     "--logprob-threshold", "none", "--no-vad"]) == 0
        rows = [json.loads(line) for line in out.with_name("metrics.transcripts.jsonl").read_text().splitlines()]
        assert all(row["decisions"] == {"ct2": ["fallback"]} for row in rows), rows
        transcripts[clips] = [(row["id"], row["hypotheses"]) for row in rows]
    assert transcripts["2"] == transcripts["0"]


def test_a_ct2_sampled_transcript_does_not_depend_on_what_the_model_sampled_before(ct2_export, clips):
    from dataclasses import replace

    recogniser = load_recogniser(str(ct2_export), CT2_FLOAT32, 1)
    options = replace(DecodingOptions(batch_size=1, max_new_tokens=32, checks=NO_CHECKS), temperature=1.0)

    def sample(clip: np.ndarray) -> list[int]:
        return recogniser.decode(recogniser.encode([clip]), options, len(clip) / 16000)[0]

    first = sample(clips[0])
    sample(clips[1]), sample(clips[1])
    assert sample(clips[0]) == first
    # On the model object itself (as a timed copy samples), each draw continues the one before.
    recogniser.sampler_per_call = False
    assert len({tuple(sample(clips[0])) for _ in range(3)}) > 1


def test_pseudo_labels_of_a_ct2_teacher(ct2_export, tiny_random_whisper, speech_dir, tmp_path):
    manifest = speech_manifest(speech_dir, tmp_path / "speech.jsonl")
    options = DecodingOptions(batch_size=2, max_new_tokens=10)
    runs = {}
    for name, runtime in (("torch", Runtime()), ("ct2", CT2_FLOAT32)):
        run_pseudo_label(PseudoLabelConfig(str(ct2_export), manifest, tmp_path / name, options, runtime=runtime,
                                           top_k=4, shard_size=2), progress=False)
        runs[name] = tmp_path / name
    meta = {name: json.loads((out / "metadata.json").read_text()) for name, out in runs.items()}
    assert meta["ct2"]["runtime"] == {"backend": "ct2", "compute_type": "float32"}
    assert meta["ct2"]["fingerprint"]["digest"] != meta["torch"]["fingerprint"]["digest"]
    lines = {name: [json.loads(x) for x in (out / "pseudo_labels.jsonl").read_text().splitlines()]
             for name, out in runs.items()}
    assert [r["pseudo_label_tokens"] for r in lines["ct2"]] == [r["pseudo_label_tokens"] for r in lines["torch"]]
    cache = TopKCache(runs["ct2"])
    for record in lines["ct2"]:
        rows = cache.lookup(record["topk_shard"], record["topk_index"])
        assert rows.ids.shape == (len(record["pseudo_label_tokens"]) + 1, 4)
        reference = cache.lookup(record["topk_shard"], record["reference_topk_index"], stream="reference")
        assert reference.ids.shape == (len(record["reference_tokens"]) + 1, 4)
        assert torch.isfinite(rows.log_probs).all() and (rows.log_probs <= 0).all()

    # Distilling from that cache: consistent offline; an online PyTorch teacher is another teacher.
    teacher = load_whisper(str(tiny_random_whisper))
    student, provenance = build_student(teacher.model, StudentSpec((0, 1), (1,)))
    save_student(student, teacher.processor, provenance, str(tiny_random_whisper), teacher.fingerprint.digest,
                 tmp_path / "student")
    fe = teacher.processor.feature_extractor

    def config(**teacher_section) -> DistillConfig:
        return from_dict(DistillConfig, {
            "student": str(tmp_path / "student"), "out": str(tmp_path / "run"),
            "data": {"train_manifest": str(runs["ct2"] / "pseudo_labels.jsonl")}, "teacher": teacher_section})

    source = resolve_teacher(config(mode="offline"), fe, 51864)
    assert source.fingerprint == meta["ct2"]["fingerprint"]["digest"] and not source.mismatches
    with pytest.raises(TeacherMismatchError, match="another runtime are numerically another teacher"):
        resolve_teacher(config(mode="online", model=str(tiny_random_whisper)), fe, 51864)


def test_bad_export_options_are_refused(tiny_random_whisper, tmp_path, capsys):
    model = str(tiny_random_whisper)
    with pytest.raises(ExportError, match="--format onnx"):
        export_model(model, "onnx", tmp_path / "a")
    with pytest.raises(ExportError, match="--quantization int4"):
        export_model(model, "ct2", tmp_path / "a", "int4")
    with pytest.raises(ExportError, match="--quantization int8 applies to --format ct2"):
        export_model(model, "hf", tmp_path / "a", "int8")
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    with pytest.raises(OutputError, match=f"--out {taken}: already exists"):
        export_model(model, "ct2", taken)
    assert [p.name for p in taken.iterdir()] == ["keep.txt"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left

    assert main(["export", model, "--format", "ct2", "--out", str(taken)]) == 2
    assert f"--out {taken}: already exists" in capsys.readouterr().err
    assert main(["export", model, "--format", "onnx", "--out", str(tmp_path / "b")]) == 2
    assert "is a Whisper model; export it with --format hf or ct2" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        main(["export", model, "--format", "tflite", "--out", str(tmp_path / "b")])
    assert stop.value.code == 2 and "argument --format: invalid choice: 'tflite'" in capsys.readouterr().err


def test_bad_runtime_options_are_refused(tiny_random_whisper, speech_dir, capsys):
    with pytest.raises(RuntimeConfigError, match="--compute-type int16: the torch runtime"):
        Runtime.of("torch", "int16")
    with pytest.raises(RuntimeConfigError, match="--compute-type int4: the ct2 runtime on this machine runs .*float32"):
        Runtime.of("ct2", "int4")
    assert main(["transcribe", str(tiny_random_whisper), str(speech_dir / "fox.wav"), "--runtime", "ct2",
                 "--compute-type", "int4"]) == 2
    assert "--compute-type int4" in capsys.readouterr().err
