"""Dynamic int8 for the decoder: which layers change, and that a real teacher still transcribes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.conftest import SPEECH
from voxdistill.audio import load_audio
from voxdistill.decoding import DecodingOptions
from voxdistill.models.loading import load_whisper
from voxdistill.models.quantize import quantize_decoder_int8
from voxdistill.scoring.metrics import word_error_rate
from voxdistill.transcribe import transcribe_audio


def test_decoder_and_projection_are_int8_and_the_encoder_is_not(tiny_random_whisper, speech_dir):
    whisper = load_whisper(str(tiny_random_whisper))
    embedding = whisper.model.model.decoder.embed_tokens.weight.detach().clone()
    quantize_decoder_int8(whisper)
    dynamic = torch.ao.nn.quantized.dynamic.Linear
    decoder = [m for m in whisper.model.model.decoder.modules() if isinstance(m, (nn.Linear, dynamic))]
    encoder = [m for m in whisper.model.model.encoder.modules() if isinstance(m, (nn.Linear, dynamic))]
    assert decoder and all(isinstance(m, dynamic) for m in decoder)
    assert encoder and not any(isinstance(m, dynamic) for m in encoder)
    assert isinstance(whisper.model.proj_out, dynamic)
    # The token embedding the decoder reads stays float32 and unchanged (the projection was untied).
    assert torch.equal(whisper.model.model.decoder.embed_tokens.weight, embedding)
    texts = transcribe_audio(whisper, [load_audio(speech_dir / "fox.wav")], DecodingOptions(max_new_tokens=10))
    assert isinstance(texts[0], str)


@pytest.mark.integration
def test_int8_teacher_transcribes_as_well(speech_dir):
    clips = [load_audio(speech_dir / f"{name}.wav") for name in SPEECH]
    references = [text for _, text in SPEECH.values()]
    float_texts = transcribe_audio(load_whisper("bundled:whisper-tiny.en"), clips)
    int8_texts = transcribe_audio(quantize_decoder_int8(load_whisper("bundled:whisper-tiny.en")), clips)
    assert word_error_rate(references, int8_texts) <= word_error_rate(references, float_texts) + 0.05
    # Nearly the same transcripts: int8 rounding may flip a few words of an unclear clip (here 4 of 31
    # on this machine: "roundfark stump ... nog" against "round-fark jump ... dog"), a broken
    # quantisation changes most of them.
    assert word_error_rate(float_texts, int8_texts) <= 0.2


def test_torch_int8_runtime_names_itself_and_keeps_the_float32_identity(tiny_random_whisper, speech_dir):
    from voxdistill.runtime import Runtime, generate_tokens
    from voxdistill.families import load_recogniser

    exact = load_recogniser(str(tiny_random_whisper))
    int8 = load_recogniser(str(tiny_random_whisper), Runtime("torch", "int8"))
    assert int8.fingerprint.weights == exact.fingerprint.weights  # the same float32 weights...
    assert int8.fingerprint.digest != exact.fingerprint.digest  # ...run as another model
    assert int8.fingerprint.model_digest == exact.fingerprint.digest
    assert int8.fingerprint.runtime == {"backend": "torch", "compute_type": "int8"}
    assert int8.parameters == exact.parameters
    clip = load_audio(speech_dir / "fox.wav")
    assert len(generate_tokens(int8, [clip], DecodingOptions(max_new_tokens=8))[0]) > 0


def test_int8_rows_rounds_each_row_to_its_own_grid():
    from voxdistill.models.quantize import int8_rows

    t = torch.tensor([[0.5, -1.27, 0.004], [100.0, 3.0, -50.0]])
    q = int8_rows(t)
    scales = t.abs().amax(-1, keepdim=True) / 127
    assert torch.allclose(q / scales, torch.round(q / scales), atol=1e-4)  # on the grid
    assert (q - t).abs().le(scales / 2 + 1e-6).all() and torch.equal(q[:, :1].sign(), t[:, :1].sign())


def test_fake_int8_rounds_in_training_and_comes_out_exactly(tiny_random_whisper, speech_dir):
    """Quantisation-aware training's forward computes int8-rounded products while gradients reach
    the float weights; removing it gives back the model, weights tied as before, bit for bit."""
    from voxdistill.models.quantize import add_fake_int8, int8_rows, remove_fake_int8

    whisper = load_whisper(str(tiny_random_whisper), frozen=False)
    model = whisper.model
    features = whisper.processor.feature_extractor(
        [load_audio(next(speech_dir.glob("*.wav")))], sampling_rate=16000, return_tensors="pt").input_features
    decoder_input = torch.tensor([[50257, 50362, 464, 2068]])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        exact = model(input_features=features, decoder_input_ids=decoder_input).logits
    add_fake_int8(model)
    layer = model.model.decoder.layers[0].fc1
    x = torch.randn(3, layer.in_features)
    expected = int8_rows(x) @ int8_rows(layer.parametrizations.weight.original).T + layer.bias
    assert torch.allclose(layer(x), expected, atol=1e-5)
    rounded = model(input_features=features, decoder_input_ids=decoder_input).logits
    assert not torch.allclose(rounded, exact) and torch.allclose(rounded, exact, atol=0.5)
    rounded.sum().backward()
    assert layer.parametrizations.weight.original.grad is not None
    assert model.proj_out.weight is not None and model.model.decoder.embed_tokens.weight is \
        model.proj_out.parametrizations.weight.original  # still tied
    remove_fake_int8(model)
    assert model.proj_out.weight is model.model.decoder.embed_tokens.weight
    assert model.state_dict().keys() == before.keys() and all(torch.equal(model.state_dict()[k], v) for k, v in before.items())
    with torch.no_grad():
        assert torch.equal(model(input_features=features, decoder_input_ids=decoder_input).logits, exact)


def test_quantization_aware_distillation_exports_plain_float_weights(tiny_random_whisper, speech_dir, tmp_path):
    """A run with optim.quantization_aware trains through the rounding and exports an ordinary
    Hugging Face student (no parametrisation keys), whose weights moved, that loads and converts."""
    from safetensors.torch import load_file

    from tests.test_pseudo_label import speech_manifest
    from voxdistill.config import from_dict
    from voxdistill.distill.config import DistillConfig
    from voxdistill.families import distill
    from voxdistill.models.student import StudentSpec, build_student, save_student

    teacher = load_whisper(str(tiny_random_whisper))
    student, provenance = build_student(teacher.model, StudentSpec((0, 1), (1,)))
    save_student(student, teacher.processor, provenance, str(tiny_random_whisper), teacher.fingerprint.digest,
                 tmp_path / "student")
    config = from_dict(DistillConfig, {
        "student": str(tmp_path / "student"), "out": str(tmp_path / "run"),
        "data": {"train_manifest": str(speech_manifest(speech_dir, tmp_path / "speech.jsonl", copies=2)),
                 "batch_size": 2, "bucket_size": 4, "labels": "reference"},
        "teacher": {"mode": "none"}, "loss": {"kd_weight": 0.0}, "eval": {"every_steps": 0},
        "optim": {"max_steps": 3, "warmup_steps": 1, "lr": 1e-3, "freeze_encoder": True, "quantization_aware": True},
    })
    distill(config, progress=False)
    exported = load_file(str(tmp_path / "run" / "model" / "model.safetensors"))
    initial = load_file(str(tmp_path / "student" / "model.safetensors"))
    assert exported.keys() == initial.keys() and not any("parametrizations" in k for k in exported)
    assert not torch.equal(exported["model.decoder.layers.0.fc1.weight"], initial["model.decoder.layers.0.fc1.weight"])
    assert torch.equal(exported["model.encoder.layers.0.fc1.weight"], initial["model.encoder.layers.0.fc1.weight"])
    reloaded = load_whisper(str(tmp_path / "run" / "model"))
    assert transcribe_audio(reloaded, [load_audio(next(speech_dir.glob("*.wav")))], DecodingOptions(max_new_tokens=5))
