"""Structured pruning (`voxdistill prune`): feed-forward neurons ranked by what they do on real
espeak-ng speech, removed from a tiny random Whisper student; the result is a smaller dense model
that loads, transcribes, converts to CTranslate2, and records how it was made."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from tests.test_pseudo_label import speech_manifest
from voxdistill.audio import load_audio
from voxdistill.data.dataset import log_mel
from voxdistill.data.manifest import Utterance, read_manifest, write_manifest
from voxdistill.decoding import NO_CHECKS, DecodingOptions, prompt_tokens, text_tokens
from voxdistill.distill.prune import (
    PruneError, calibration_utterances, ffn_targets, measure_ffn_importance, prune_ffn, prune_student,
)
from voxdistill.families import load_recogniser
from voxdistill.files import OutputError
from voxdistill.models.loading import load_whisper
from voxdistill.models.student import STUDENT_FILE, StudentSpec, build_student, largest, save_student, weight_importance
from voxdistill.runtime import Runtime, generate_tokens
from voxdistill.transcribe import transcribe_audio

# Random weights never emit end-of-text: every clip decodes the whole budget, so equal token lists
# compare every step.
GREEDY = DecodingOptions(batch_size=3, max_new_tokens=16, max_tokens_per_second=None, checks=NO_CHECKS)


@pytest.fixture(scope="module")
def student(tiny_random_whisper, tmp_path_factory) -> Path:
    """A trained-student stand-in: every layer of the tiny random Whisper, a 10 s window, student.json."""
    teacher = load_whisper(str(tiny_random_whisper))
    model, provenance = build_student(teacher.model, StudentSpec((0, 1), (0, 1), window_seconds=10))
    return save_student(model, teacher.processor, provenance, str(tiny_random_whisper), teacher.fingerprint.digest,
                        tmp_path_factory.mktemp("student") / "model")


@pytest.fixture(scope="module")
def calibration(speech_dir, tmp_path_factory) -> Path:
    return speech_manifest(speech_dir, tmp_path_factory.mktemp("calibration") / "calibration.jsonl")


@pytest.fixture(scope="module")
def clips(speech_dir) -> list[np.ndarray]:
    return [load_audio(speech_dir / f"{name}.wav") for name in ("fox", "report", "weather")]


def forward_logits(folder: Path, audio: np.ndarray, text: str) -> torch.Tensor:
    whisper = load_whisper(str(folder))
    ids = torch.tensor([prompt_tokens(whisper) + text_tokens(whisper.processor.tokenizer, text)])
    features = log_mel(whisper.processor.feature_extractor, [audio])
    with torch.no_grad():
        return whisper.model(input_features=features, decoder_input_ids=ids).logits  # (1, T, V)


def test_keeping_every_neuron_changes_nothing(student, calibration, clips, tmp_path):
    out, record = prune_student(str(student), calibration, tmp_path / "pruned", keep=1.0, progress=False)
    text = "the quick brown fox"
    assert torch.equal(forward_logits(out, clips[0], text), forward_logits(student, clips[0], text))
    source = json.loads((student / STUDENT_FILE).read_text())
    saved = json.loads((out / STUDENT_FILE).read_text())
    assert saved == record
    assert {key: saved[key] for key in source} == source  # the source's record, the same shape
    pruned = saved["pruned"]
    assert pruned["source"] == str(student) and pruned["keep"] == 1.0
    assert pruned["encoder_ffn_dim"] == pruned["decoder_ffn_dim"] == {"before": 128, "after": 128}
    assert pruned["kept_importance"] == {"encoder": [1.0, 1.0], "decoder": [1.0, 1.0]}


def test_pruned_student_loads_transcribes_and_runs_in_ct2(student, calibration, clips, tmp_path):
    out, record = prune_student(str(student), calibration, tmp_path / "pruned", encoder_ffn_dim=48,
                                decoder_ffn_dim=40, progress=False)
    whisper = load_whisper(str(out))
    config = whisper.model.config
    assert (config.encoder_ffn_dim, config.decoder_ffn_dim) == (48, 40)
    for layers, width in ((whisper.model.model.encoder.layers, 48), (whisper.model.model.decoder.layers, 40)):
        for layer in layers:
            assert layer.fc1.weight.shape == (width, 64) and layer.fc1.bias.shape == (width,)
            assert layer.fc2.weight.shape == (64, width)
    assert whisper.processor.feature_extractor.chunk_length == 10  # the source's window
    pruned = record["pruned"]
    assert record["student_shape"]["encoder_ffn_dim"] == 48 and record["student_shape"]["decoder_ffn_dim"] == 40
    # Each neuron removed takes its fc1 row (64), fc1 bias and fc2 column (64); 2 layers a side.
    assert pruned["parameters"]["before"] - pruned["parameters"]["after"] == 129 * 2 * ((128 - 48) + (128 - 40))
    calib = pruned["calibration"]
    assert calib["clips"] == 3 and calib["labels"] == {"reference": 3} and len(calib["sha256"]) == 64
    assert all(0 < share < 1 for shares in pruned["kept_importance"].values() for share in shares)
    assert record["teacher"] == json.loads((student / STUDENT_FILE).read_text())["teacher"]

    torch_recogniser = load_recogniser(str(out))
    texts = transcribe_audio(torch_recogniser, clips, GREEDY)
    assert len(texts) == 3 and all(isinstance(t, str) and t for t in texts)
    ct2 = load_recogniser(str(out), Runtime("ct2", "float32"), threads=1)
    assert generate_tokens(ct2, clips, GREEDY) == generate_tokens(torch_recogniser, clips, GREEDY)
    assert transcribe_audio(ct2, clips, GREEDY) == texts


def test_importance_is_measured_not_read_off_the_weights(tiny_random_whisper, calibration):
    whisper = load_whisper(str(tiny_random_whisper))
    encoder_layer, decoder_layer = whisper.model.model.encoder.layers[0], whisper.model.model.decoder.layers[1]
    # Encoder neuron 5 writes nothing; decoder neuron 7 has the largest weights but never fires (its
    # pre-activation is about -1e4, where GELU is 0).
    encoder_layer.fc2.weight[:, 5] = 0
    decoder_layer.fc1.weight[7] *= 10
    decoder_layer.fc1.bias[7] = -1e4
    assert int(weight_importance(decoder_layer.fc1, decoder_layer.fc2).argmax()) == 7

    utterances = calibration_utterances(calibration, 64)
    importance = measure_ffn_importance(whisper, utterances, calibration.parent, batch_size=3)
    assert importance.encoder[0][5] == 0 and importance.decoder[1][7] == 0
    assert (importance.encoder[0] > 0).sum() == 127 and (importance.decoder[1] > 0).sum() == 127
    assert 5 not in largest(importance.encoder[0], 64) and 7 not in largest(importance.decoder[1], 64)

    pruned, kept_share = prune_ffn(whisper.model, importance, 64, 64)
    kept = largest(importance.decoder[1], 64)
    assert torch.equal(pruned.model.decoder.layers[1].fc2.weight, decoder_layer.fc2.weight[:, kept])
    assert torch.equal(pruned.model.decoder.layers[1].fc1.bias, decoder_layer.fc1.bias[kept])
    scores = importance.decoder[1]
    assert kept_share["decoder"][1] == pytest.approx(float(scores[kept].sum() / scores.sum()), abs=1e-4)

    # Padding takes no part: one clip at a time measures the same as the three padded together.
    one_by_one = measure_ffn_importance(whisper, utterances, calibration.parent, batch_size=1)
    assert one_by_one.decoder_tokens == importance.decoder_tokens
    for a, b in zip(one_by_one.encoder + one_by_one.decoder, importance.encoder + importance.decoder):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_importance_matches_a_plain_reference(tiny_random_whisper, calibration):
    """mean |GELU(fc1 x)| over every position, times the fc2 column norm, for one clip."""
    whisper = load_whisper(str(tiny_random_whisper))
    utterance = next(read_manifest(calibration))
    importance = measure_ffn_importance(whisper, [utterance], calibration.parent)
    layers = [*whisper.model.model.encoder.layers, *whisper.model.model.decoder.layers]
    captured = []
    hooks = [layer.fc1.register_forward_hook(lambda m, i, o, layer=layer: captured.append(layer.activation_fn(o)))
             for layer in layers]
    ids = torch.tensor([prompt_tokens(whisper) + text_tokens(whisper.processor.tokenizer, utterance.text)])
    features = log_mel(whisper.processor.feature_extractor, [load_audio(utterance.audio_filepath)])
    whisper.model(input_features=features, decoder_input_ids=ids)
    for hook in hooks:
        hook.remove()
    assert importance.decoder_tokens == ids.shape[1] and importance.encoder_positions == 1500
    for layer, activation, measured in zip(layers, captured, importance.encoder + importance.decoder):
        reference = activation.abs().mean(dim=(0, 1)) * layer.fc2.weight.norm(dim=0)
        torch.testing.assert_close(measured, reference, rtol=1e-4, atol=1e-7)


def test_widths(tiny_random_whisper):
    config = load_whisper(str(tiny_random_whisper)).model.config  # 128 neurons per layer
    assert ffn_targets(config, keep=0.5) == (64, 64)
    assert ffn_targets(config, keep=0.001) == (1, 1)
    assert ffn_targets(config, decoder_ffn_dim=32) == (128, 32)
    for kwargs, named in [({"keep": 0.0}, "--ffn-keep 0.0"), ({"keep": 1.5}, "--ffn-keep 1.5"),
                          ({"keep": float("nan")}, "--ffn-keep nan"),
                          ({"encoder_ffn_dim": 129}, "--encoder-ffn-dim 129: the model has 128"),
                          ({"decoder_ffn_dim": 0}, "--decoder-ffn-dim 0"),
                          ({"keep": 0.5, "encoder_ffn_dim": 8}, "both given"), ({}, "nothing to prune")]:
        with pytest.raises(PruneError, match=named):
            ffn_targets(config, **kwargs)


def test_bad_calibration_and_taken_output_are_refused(student, calibration, speech_dir, tmp_path):
    def prune(manifest: Path, out: Path = tmp_path / "out"):
        return prune_student(str(student), manifest, out, keep=0.5, progress=False)

    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(PruneError, match=f"--calibration: {empty}: the manifest holds no utterances"):
        prune(empty)
    untranscribed = tmp_path / "untranscribed.jsonl"
    write_manifest(untranscribed, [Utterance("fox", str(speech_dir / "fox.wav"), 2.0)])
    with pytest.raises(PruneError, match="--calibration: fox: no pseudo-label"):
        prune(untranscribed)
    long_clip = tmp_path / "long.wav"
    sf.write(long_clip, np.tile(load_audio(speech_dir / "fox.wav"), 5)[: 12 * 16000], 16000)
    too_long = tmp_path / "long.jsonl"
    write_manifest(too_long, [Utterance("long", str(long_clip), 12.0, text="words")])
    with pytest.raises(PruneError, match=f"{long_clip} \\(long\\) is longer than the model's 10 s window"):
        prune(too_long)
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "file").write_text("x")
    with pytest.raises(OutputError, match=f"--out {taken}: already exists"):
        prune(calibration, taken)


def test_prune_command(student, calibration, tmp_path):
    def voxdistill(*args) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "voxdistill.cli", "prune", str(student), "--calibration",
                               str(calibration), *map(str, args)],
                              capture_output=True, text=True, env=os.environ.copy())

    out = tmp_path / "pruned"
    result = voxdistill("--ffn-keep", "0.5", "--clips", "2", "--out", out)
    assert result.returncode == 0, result.stderr
    assert f"-> {out}: feed-forward neurons per layer encoder 128 -> 64, decoder 128 -> 64" in result.stdout
    assert "--config configs/prune-recover.yaml" in result.stdout
    record = json.loads((out / STUDENT_FILE).read_text())
    assert record["pruned"]["calibration"]["clips"] == 2
    assert load_whisper(str(out)).model.config.encoder_ffn_dim == 64

    refused = voxdistill("--ffn-keep", "1.5", "--out", tmp_path / "other")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "error: --ffn-keep 1.5: the fraction of neurons kept must be above 0 and at most 1" in refused.stderr
    assert not (tmp_path / "other").exists()


def test_calibration_clips_spread_over_the_manifest(speech_dir, tmp_path):
    manifest = speech_manifest(speech_dir, tmp_path / "six.jsonl", copies=2)  # fox-0 report-0 weather-0 fox-1 ...
    assert [u.id for u in calibration_utterances(manifest, 3)] == ["fox-0", "weather-0", "report-1"]
    assert [u.id for u in calibration_utterances(manifest, 2)] == ["fox-0", "fox-1"]
    assert len(calibration_utterances(manifest, 64)) == 6
    with pytest.raises(PruneError, match="--clips 0"):
        calibration_utterances(manifest, 0)
