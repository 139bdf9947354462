"""The CTC student family (`models.ctc`) and its recognisers (`runtime.ctc_backend`): hand-computed
CTC decoding and loss, the character alphabet, a student built from a tiny random Whisper, saved and
loaded, typed errors for damaged folders, and ONNX exports that transcribe real espeak-ng speech as
PyTorch does, through `transcribe_audio`."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import SPEECH
from voxdistill.audio import SAMPLE_RATE, load_audio
from voxdistill.data.dataset import log_mel
from voxdistill.decoding import DecodingOptions
from voxdistill.families import load_recogniser
from voxdistill.families.ctc import is_ctc_folder
from voxdistill.formats import EXPORT_RECORD
from voxdistill.files import OutputError
from voxdistill.formats.onnx import export_onnx, onnx_folder_for
from voxdistill.models.ctc import (
    BLANK, BLANK_TEXT, CTC_CONFIG_FILE, ONNX_FILE, WEIGHTS_FILE, Alphabet, CTCConfigError, CTCLoadError,
    build_ctc_student, ctc_frames_needed, ctc_loss, ctc_provenance, greedy_ctc,
    load_ctc_student, save_ctc_student,
)
from voxdistill.models.loading import load_whisper
from voxdistill.models.student import STUDENT_FILE
from voxdistill.paths import cache_dir
from voxdistill.runtime import Runtime, RuntimeConfigError, describe
from voxdistill.runtime.ctc_backend import CTCUnsupportedError, TorchCTCRecogniser, load_ctc_recogniser
from voxdistill.transcribe import transcribe_audio

ALPHABET = Alphabet()
_, A, B, C = BLANK, *ALPHABET.encode("abc")  # "_" is the blank, so frame lists read like the docs
WINDOW = 10  # seconds: 500 encoder frames
LAYERS = [1]  # the tiny random teacher's last encoder layer


@pytest.fixture(scope="module")
def teacher(tiny_random_whisper):
    return load_whisper(str(tiny_random_whisper))


@pytest.fixture(scope="module")
def clips(speech_dir) -> list[np.ndarray]:
    return [load_audio(speech_dir / f"{name}.wav") for name in SPEECH]


@pytest.fixture(scope="module")
def saved(teacher, tmp_path_factory) -> dict[str, Path]:
    """A saved student of each head, built from the tiny random teacher."""
    folders = {}
    for head in ("linear", "lstm"):
        model, feature_extractor = build_ctc_student(teacher, LAYERS, WINDOW, head, lstm_hidden=16)
        folders[head] = save_ctc_student(model, feature_extractor, tmp_path_factory.mktemp(head) / "model",
                                         ctc_provenance(teacher, model, LAYERS))
    return folders


def one_hot(frames: list[int], n_labels: int = len(ALPHABET)) -> torch.Tensor:
    """(T, n_labels) logits whose best label at frame t is frames[t]."""
    return torch.nn.functional.one_hot(torch.tensor(frames), n_labels).float() * 5


# --- CTC decoding and loss, by hand -------------------------------------------------------------------

def test_greedy_ctc_collapses_repeats_then_drops_blanks():
    logits = torch.stack([one_hot([A, A, _, A, B, B, _, _]),  # aa|a|bb -> a a b
                          one_hot([A, _, B, B, C, C, A, A]),  # cut after 4 frames: a b
                          one_hot([B, B, B, B, B, B, B, B])])  # no frame: nothing
    lengths = torch.tensor([8, 4, 0])
    assert greedy_ctc(logits, lengths) == [[A, A, B], [A, B], []]
    assert greedy_ctc(logits.numpy(), [8, 4, 0]) == [[A, A, B], [A, B], []]
    assert ALPHABET.decode(greedy_ctc(logits, lengths)[0]) == "aab"


def probabilities_to_logits(rows: list[dict[int, float]]) -> torch.Tensor:
    """(T, n_labels) log-probabilities: the given labels' probabilities, every other label impossible."""
    logits = torch.full((len(rows), len(ALPHABET)), -math.inf)
    for t, row in enumerate(rows):
        for label, p in row.items():
            logits[t, label] = math.log(p)
    return logits


def test_ctc_loss_is_the_batch_mean_of_minus_log_p_over_target_length():
    # "a" in 2 frames: paths a_, _a, aa: P = 0.6·0.7 + 0.3·0.2 + 0.6·0.2 = 0.60.
    one = probabilities_to_logits([{A: 0.6, _: 0.3, B: 0.1}, {A: 0.2, _: 0.7, B: 0.1}, {B: 1.0}])
    # "ab" in 2 frames: only the path ab: P = 0.5·0.8 = 0.40, divided by 2 labels.
    two = probabilities_to_logits([{A: 0.5, B: 0.25, _: 0.25}, {A: 0.1, B: 0.8, _: 0.1}, {B: 1.0}])
    logits = torch.stack([one, two])  # (B, T, n_labels); the third frame is past both lengths
    loss = ctc_loss(logits, [2, 2], [[A], [A, B]])
    expected = (-math.log(0.6) + -math.log(0.4) / 2) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    # With 3 frames (the third surely b), "ab" is "a" then b (0.60) or a, b, b (0.6·0.1): P = 0.66.
    assert ctc_loss(logits[:1], [3], [[A, B]]).item() == pytest.approx(-math.log(0.66) / 2, rel=1e-6)


def test_ctc_loss_of_an_impossible_target_is_zero_and_frames_needed_says_so():
    logits = probabilities_to_logits([{A: 0.5, _: 0.5}, {A: 0.5, _: 0.5}])[None]  # (1, 2, n_labels)
    assert ctc_frames_needed([A, A]) == 3 and ctc_frames_needed([A, B]) == 2 and ctc_frames_needed([]) == 0
    assert ctc_loss(logits, [2], [[A, A]]).item() == 0.0  # zero_infinity: needs a blank between the a's
    # an empty target: all blanks, P = 0.25, divided by max(0, 1)
    assert ctc_loss(logits, [2], [[]]).item() == pytest.approx(-math.log(0.25), rel=1e-6)


# --- alphabet -------------------------------------------------------------------------------------------

def test_alphabet_round_trip_and_normalisation():
    assert len(ALPHABET) == 29 and ALPHABET.encode("a b'") == [3, 1, 4, 2]
    text = "the quick brown fox's lazy dog"
    assert ALPHABET.decode(ALPHABET.encode(text)) == text
    assert ALPHABET.normalise("  Café — Naïve’s co-operate!\tÉCOLE 42\n") == "cafe naive's co operate ecole"
    assert ALPHABET.decode([0, 3, 0, 4]) == "ab"
    assert ALPHABET.decode([0, 3, 0, 4], skip_special_tokens=False) == f"{BLANK_TEXT}a{BLANK_TEXT}b"
    with pytest.raises(CTCConfigError, match="each once"):
        Alphabet("abca")


# --- build, save, load ----------------------------------------------------------------------------------

@pytest.mark.parametrize("head", ["linear", "lstm"])
def test_student_copies_the_chosen_teacher_layers_and_reloads_identically(head, teacher, saved, clips):
    model, feature_extractor = build_ctc_student(teacher, LAYERS, WINDOW, head, lstm_hidden=16)
    encoder = teacher.model.model.encoder
    for name, tensor in encoder.layers[LAYERS[0]].state_dict().items():
        assert torch.equal(model.encoder.layers[0].state_dict()[name], tensor), name
    for part in ("conv1", "conv2", "layer_norm"):
        for name, tensor in getattr(encoder, part).state_dict().items():
            assert torch.equal(getattr(model.encoder, part).state_dict()[name], tensor), f"{part}.{name}"
    assert torch.equal(model.encoder.embed_positions.weight, encoder.embed_positions.weight[:500])
    assert len(model.encoder.layers) == 1 and feature_extractor.n_samples == WINDOW * SAMPLE_RATE

    loaded, loaded_fe, config = load_ctc_student(saved[head])
    assert config == model.config and loaded_fe.to_dict() == feature_extractor.to_dict()
    features = log_mel(feature_extractor, clips)  # (3, 80, 1000)
    with torch.no_grad():
        logits, states = model(features)
        assert logits.shape == (3, 500, 29) and states.shape == (3, 500, 64)
        assert torch.equal(loaded(features).logits, logits)  # the same seed gives the same head, too
        assert torch.equal(model(encoder_states=states).logits, logits)  # a frozen encoder's cached states
    with pytest.raises(ValueError, match="one of the two"):
        model(features, encoder_states=states)
    other, _ = build_ctc_student(teacher, LAYERS, WINDOW, head, lstm_hidden=16, seed=1)
    assert not torch.equal(other.output.weight, model.output.weight)

    record = json.loads((saved[head] / STUDENT_FILE).read_text())
    assert record["family"] == "ctc" and record["head"] == head and record["encoder_layers"] == LAYERS
    assert record["teacher"] == {"source": teacher.source, "fingerprint": teacher.fingerprint.digest}
    assert record["window_seconds"] == {"teacher": 30, "student": WINDOW} and record["alphabet"] == ALPHABET.symbols
    assert sorted(p.name for p in saved[head].iterdir()) == sorted(
        [WEIGHTS_FILE, CTC_CONFIG_FILE, "preprocessor_config.json", STUDENT_FILE])


@pytest.mark.parametrize("head", ["linear", "lstm"])
def test_loss_of_real_transcripts_trains_every_part(head, teacher, clips):
    model, feature_extractor = build_ctc_student(teacher, LAYERS, WINDOW, head, lstm_hidden=16)
    lengths = model.output_lengths([len(clip) for clip in clips])
    assert lengths.tolist() == [math.ceil(len(clip) / 320) for clip in clips]
    assert model.output_lengths(WINDOW * SAMPLE_RATE + 1).item() == 500  # at most the window
    targets = [ALPHABET.encode(text) for _, text in SPEECH.values()]
    assert all(ctc_frames_needed(t) <= n for t, n in zip(targets, lengths))
    loss = ctc_loss(model.train()(log_mel(feature_extractor, clips)).logits, lengths, targets)
    loss.backward()
    assert math.isfinite(loss.item()) and loss.item() > 0
    for part in (model.encoder.layers[0], model.output):
        assert all(p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0
                   for p in part.parameters())


def test_damaged_folders_raise_errors_naming_the_file(saved, tmp_path):
    folder = shutil.copytree(saved["lstm"], tmp_path / "model")
    assert is_ctc_folder(folder) and not is_ctc_folder(tmp_path)

    config = json.loads((folder / CTC_CONFIG_FILE).read_text())
    (folder / CTC_CONFIG_FILE).write_text(json.dumps({k: v for k, v in config.items() if k != "head"}))
    with pytest.raises(CTCLoadError, match=rf"{CTC_CONFIG_FILE}: lacks head"):
        load_ctc_student(folder)
    (folder / CTC_CONFIG_FILE).write_text(json.dumps(config | {"head": "gru"}))
    with pytest.raises(CTCLoadError, match=rf"{CTC_CONFIG_FILE}: CTCConfig.head='gru'"):
        load_ctc_student(folder)
    (folder / CTC_CONFIG_FILE).write_text(json.dumps(config))

    weights = folder / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(CTCLoadError, match=rf"{WEIGHTS_FILE}: corrupt or truncated"):
        load_ctc_student(folder)
    weights.unlink()
    with pytest.raises(CTCLoadError, match=rf"{WEIGHTS_FILE}: missing"):
        load_ctc_student(folder)
    with pytest.raises(CTCLoadError, match=rf"{WEIGHTS_FILE}: missing"):
        onnx_folder_for(folder)


def test_saving_into_a_taken_folder_is_refused(teacher, saved):
    model, feature_extractor, _ = load_ctc_student(saved["linear"])
    with pytest.raises(OutputError, match="already exists"):
        save_ctc_student(model, feature_extractor, saved["linear"], ctc_provenance(teacher, model, LAYERS))


# --- recognisers: torch and ONNX ------------------------------------------------------------------------

@pytest.mark.parametrize("head", ["linear", "lstm"])
def test_onnx_transcribes_as_torch_does(head, saved, clips):
    in_torch = load_ctc_recogniser(saved[head], "torch")
    in_onnx = load_ctc_recogniser(saved[head], "onnx", threads=1)
    assert in_onnx.folder.parent == cache_dir() / "onnx" and (in_onnx.folder / ONNX_FILE).is_file()
    assert load_recogniser(str(saved[head]), Runtime("onnx")).folder == in_onnx.folder  # exported once

    encoded_torch, encoded_onnx = in_torch.encode(clips), in_onnx.encode(clips)  # batch 3, traced at 2
    assert isinstance(encoded_onnx.logits, np.ndarray)
    np.testing.assert_allclose(encoded_onnx.logits, encoded_torch.logits.numpy(), atol=1e-4, rtol=0)
    assert torch.equal(encoded_onnx.lengths, encoded_torch.lengths)

    options = DecodingOptions(batch_size=3)
    transcripts = transcribe_audio(in_torch, clips, options)
    assert all(transcripts) and transcribe_audio(in_onnx, clips, options) == transcripts
    assert all(set(text) <= set(ALPHABET.symbols) for text in transcripts)

    assert in_onnx.fingerprint.weights == in_torch.fingerprint.weights
    assert in_onnx.fingerprint.model_digest == in_torch.fingerprint.digest != in_onnx.fingerprint.digest
    assert in_onnx.parameters == in_torch.parameters == sum(
        p.numel() for p in load_ctc_student(saved[head])[0].parameters())
    assert describe(in_onnx)["runtime"] == {"backend": "onnx", "compute_type": "float32"}
    assert describe(in_torch)["window_seconds"] == WINDOW


def test_an_exported_folder_runs_as_it_is_in_onnx_only(teacher, saved, clips, tmp_path):
    model, feature_extractor, _ = load_ctc_student(saved["lstm"])
    provenance = json.loads((saved["lstm"] / STUDENT_FILE).read_text())
    out = export_onnx(model, feature_extractor, tmp_path / "onnx", provenance, source=str(saved["lstm"]))
    assert json.loads((out / EXPORT_RECORD).read_text())["format"] == "onnx"
    recogniser = load_ctc_recogniser(out, "onnx")
    assert recogniser.folder == out
    assert transcribe_audio(recogniser, clips) == transcribe_audio(load_ctc_recogniser(saved["lstm"], "torch"), clips)
    with pytest.raises(CTCLoadError, match=rf"{WEIGHTS_FILE}: missing"):
        load_ctc_recogniser(out, "torch")
    (out / ONNX_FILE).write_bytes(b"not a graph")
    with pytest.raises(CTCLoadError, match=rf"{ONNX_FILE}: onnxruntime cannot load it"):
        load_ctc_recogniser(out, "onnx")


def test_what_a_ctc_recogniser_refuses(saved, clips):
    model, feature_extractor, _ = load_ctc_student(saved["linear"])
    recogniser = TorchCTCRecogniser(model, feature_extractor, source="in training")  # as a trainer makes it
    assert recogniser.folder is None and transcribe_audio(recogniser, clips[:1]) == \
        transcribe_audio(load_ctc_recogniser(saved["linear"], "torch"), clips[:1])
    assert recogniser.prompt() == [] and not recogniser.multilingual
    assert recogniser.vocab_size == 29 and recogniser.max_target_positions == 500
    encoded = recogniser.encode(clips[:1])
    with pytest.raises(CTCUnsupportedError, match="decodes greedily"):
        recogniser.decode(encoded, DecodingOptions(num_beams=2), 3.0)
    with pytest.raises(CTCUnsupportedError, match="pseudo-labelling teacher"):
        recogniser.teacher_forced_topk(encoded, [[3]], top_k=2)
    with pytest.raises(CTCUnsupportedError, match="pseudo-labelling teacher"):
        recogniser.decode_scored(encoded, DecodingOptions(), 3.0)
    with pytest.raises(CTCUnsupportedError, match="encoder states"):
        recogniser.encoder_states(encoded, 10)
    with pytest.raises(RuntimeConfigError, match="torch or onnx"):
        load_ctc_recogniser(saved["linear"], "ct2")
