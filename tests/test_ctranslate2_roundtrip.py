"""Hugging Face -> CTranslate2 (the ctranslate2 package's own converter) -> Hugging Face
(voxdistill's reader): every tensor comes back, and both engines decode the same tokens."""

from __future__ import annotations

from pathlib import Path

import ctranslate2
import pytest
import torch
from safetensors.torch import load_file

from voxdistill.audio import load_audio
from voxdistill.decoding import DecodingOptions, decode_tokens, encode, log_mel, prompt_tokens
from voxdistill.models.loading import load_whisper, resolve_model_folder

# Relative error of one float16 rounding (2^-11), with room for values near the subnormal range.
FP16_RTOL, FP16_ATOL = 2**-11, 1e-7


@pytest.fixture(scope="module")
def original(tiny_random_whisper) -> dict[str, torch.Tensor]:
    return load_file(tiny_random_whisper / "model.safetensors")


def ct2_convert(src: Path, out: Path, quantization: str) -> Path:
    converter = ctranslate2.converters.TransformersConverter(str(src), copy_files=["tokenizer.json"])
    converter.convert(str(out), quantization=quantization)
    return out


def back_to_hf(ct2_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(Path(resolve_model_folder(str(ct2_dir))) / "model.safetensors")


def assert_same_keys(original: dict, converted: dict) -> None:
    # The tied output projection is saved once by both sides.
    assert sorted(converted) == sorted(original)


def test_float32_roundtrip_is_exact(tiny_random_whisper, original, tmp_path):
    converted = back_to_hf(ct2_convert(tiny_random_whisper, tmp_path / "ct2", "float32"))
    assert_same_keys(original, converted)
    for name, tensor in original.items():
        assert torch.equal(converted[name], tensor), name


def test_float16_roundtrip_within_rounding(tiny_random_whisper, original, tmp_path):
    converted = back_to_hf(ct2_convert(tiny_random_whisper, tmp_path / "ct2", "float16"))
    assert_same_keys(original, converted)
    for name, tensor in original.items():
        assert converted[name].dtype == torch.float32
        torch.testing.assert_close(converted[name], tensor, rtol=FP16_RTOL, atol=FP16_ATOL, msg=name)
        # Exactly the float16 value: the converter loses nothing beyond CTranslate2's own rounding.
        assert torch.equal(converted[name], tensor.half().float()), name


def test_int8_roundtrip_within_quantisation_step(tiny_random_whisper, original, tmp_path):
    converted = back_to_hf(ct2_convert(tiny_random_whisper, tmp_path / "ct2", "int8"))
    assert_same_keys(original, converted)
    for name, tensor in original.items():
        if tensor.ndim >= 2 and "embed_positions" not in name:
            # Quantised per output row: error at most half a step, step = row max / 127.
            row_max = tensor.abs().reshape(tensor.shape[0], -1).amax(dim=1)
            step = (row_max / 127).reshape(-1, *([1] * (tensor.ndim - 1)))
            assert ((converted[name] - tensor).abs() <= step / 2 + 1e-6).all(), name
        else:
            torch.testing.assert_close(converted[name], tensor, rtol=0, atol=0, msg=name)


def test_greedy_tokens_match_ctranslate2(tiny_random_whisper, speech_dir, tmp_path):
    ct2_dir = ct2_convert(tiny_random_whisper, tmp_path / "ct2", "float32")
    whisper = load_whisper(str(ct2_dir))
    features = log_mel(whisper, [load_audio(speech_dir / "fox.wav")])
    options = DecodingOptions(max_new_tokens=40, max_tokens_per_second=None)
    ours = decode_tokens(whisper, encode(whisper, features), options, 30.0)[0]

    engine = ctranslate2.models.Whisper(str(ct2_dir), device="cpu", compute_type="float32")
    # CTranslate2's max_length counts differently from max_new_tokens; compare the common prefix,
    # which must be long enough to mean something.
    result = engine.generate(ctranslate2.StorageView.from_array(features.numpy()),
                             [prompt_tokens(whisper)], beam_size=1, max_length=80)
    theirs = [t for t in result[0].sequences_ids[0] if t != whisper.model.generation_config.eos_token_id]
    n = min(len(ours), len(theirs))
    assert n >= 20
    assert ours[:n] == theirs[:n]
