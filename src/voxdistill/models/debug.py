"""The debug flavour of Whisper: random weights, two layers a side, width 64, with a real tokenizer.
Every stage runs on it in seconds, so tests and the kill/resume benchmark use it as a teacher."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import GenerationConfig, WhisperConfig, WhisperForConditionalGeneration, WhisperProcessor


def make_tiny_whisper(out: Path, tokenizer_source: Path, seed: int = 0) -> Path:
    """A random-weight Whisper of width 64 with 2+2 layers and the tokenizer, feature extractor and
    generation config of ``tokenizer_source`` (e.g. tiny.en), saved as a Hugging Face folder.
    ``init_std`` is large so that logits are spread out: greedy decoding then has no near-ties, and
    comparisons between engines test the weights, not rounding luck."""
    torch.manual_seed(seed)
    config = WhisperConfig(
        vocab_size=51864, num_mel_bins=80, d_model=64, encoder_layers=2, decoder_layers=2,
        encoder_attention_heads=2, decoder_attention_heads=4, encoder_ffn_dim=128,
        decoder_ffn_dim=128, max_source_positions=1500, max_target_positions=448, init_std=0.2,
        bos_token_id=50256, eos_token_id=50256, pad_token_id=50256, decoder_start_token_id=50257,
        suppress_tokens=None, begin_suppress_tokens=None,
    )
    model = WhisperForConditionalGeneration(config)
    model.generation_config = GenerationConfig.from_pretrained(tokenizer_source)
    model.save_pretrained(out)
    WhisperProcessor.from_pretrained(tokenizer_source).save_pretrained(out)
    return out
