"""CTranslate2 Whisper folder -> Hugging Face Whisper folder.

The inverse of the ``ctranslate2`` package's Whisper converter. Where CTranslate2 fuses matrices we
split them: self-attention stores q/k/v as one (3·d, d) matrix, cross-attention stores k/v as one
(2·d, d) matrix. Whisper's key projections have no bias; the fused bias holds zeros there, and even a
non-zero key bias would only add a per-query constant to the attention logits, which softmax
ignores, so it is dropped. The output projection is tied to the token embedding.

Weights are written as float32: float16 upcasts exactly, int8/int16 weights are de-quantised. Float32
on disk (rather than the stored float16) means every loader, ``transformers.pipeline`` included,
gets a CPU-ready model without being told a dtype.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import GenerationConfig, WhisperConfig, WhisperFeatureExtractor

from voxdistill.audio import HOP_LENGTH, N_FFT, SAMPLE_RATE, exact_div
from voxdistill.errors import ConversionError
from voxdistill.files import folder_written_atomically
from voxdistill.models.ctranslate2_format import CT2Model, read_ct2_bytes

CONVERSION_MARKER = "voxdistill-conversion.json"


@dataclass(frozen=True)
class SpecialTokens:
    """Whisper's special token ids, read from the tokenizer (they differ between English-only and
    multilingual vocabularies by one)."""

    end_of_text: int
    start_of_transcript: int
    translate: int
    transcribe: int
    start_of_prev: int
    no_timestamps: int
    languages: dict[str, int]  # "<|en|>" -> id; empty for English-only models

    @property
    def multilingual(self) -> bool:
        return len(self.languages) > 1


# CTranslate2 treats a Whisper with this many tokens or more as multilingual (whisper.cc).
MULTILINGUAL_VOCABULARY = 51865

def special_tokens_from_tokenizer_json(tokenizer_json: dict, vocabulary_size: int) -> SpecialTokens:
    """The special tokens of a Whisper's ``tokenizer.json``; ``vocabulary_size``: the model's token count."""
    ids = {t["content"]: t["id"] for t in tokenizer_json.get("added_tokens", [])}
    required = ["<|endoftext|>", "<|startoftranscript|>", "<|translate|>", "<|transcribe|>",
                "<|startofprev|>", "<|notimestamps|>"]
    missing = [name for name in required if name not in ids]
    if missing:
        raise ConversionError(f"tokenizer.json lacks Whisper special tokens {missing}")
    sot, translate = ids["<|startoftranscript|>"], ids["<|translate|>"]
    # Language tokens sit between <|startoftranscript|> and <|translate|> in every Whisper vocab.
    languages = {name: i for name, i in ids.items() if sot < i < translate}
    # English-only vocabularies still carry the language tokens, but the model never saw them. The rule
    # is CTranslate2's (a multilingual Whisper has at least 51,865 tokens), so both runtimes agree, also
    # on a vocabulary trimmed by `voxdistill prune --vocabulary`.
    # (A tokenizer.json may list no timestamp tokens, so the count is the model's, not the file's.)
    english_only = vocabulary_size < MULTILINGUAL_VOCABULARY
    return SpecialTokens(
        end_of_text=ids["<|endoftext|>"],
        start_of_transcript=sot,
        translate=translate,
        transcribe=ids["<|transcribe|>"],
        start_of_prev=ids["<|startofprev|>"],
        no_timestamps=ids["<|notimestamps|>"],
        languages={} if english_only else languages,
    )


def _count_layers(ct2: CT2Model, stack: str) -> int:
    n = 0
    while f"{stack}/layer_{n}/ffn/linear_0/weight" in ct2.variables:
        n += 1
    return n


def whisper_config_from_ct2(ct2: CT2Model, tokens: SpecialTokens, ct2_config: dict) -> WhisperConfig:
    if ct2.spec_name != "WhisperSpec":
        raise ConversionError(f"not a Whisper model: CTranslate2 spec is {ct2.spec_name}")
    v = ct2.variables
    vocab_size, d_model = v["decoder/embeddings/weight"].shape
    return WhisperConfig(
        vocab_size=vocab_size,
        num_mel_bins=v["encoder/conv1/weight"].shape[1],
        d_model=d_model,
        encoder_layers=_count_layers(ct2, "encoder"),
        decoder_layers=_count_layers(ct2, "decoder"),
        encoder_attention_heads=int(ct2.scalar("encoder/num_heads")),
        decoder_attention_heads=int(ct2.scalar("decoder/num_heads")),
        encoder_ffn_dim=v["encoder/layer_0/ffn/linear_0/weight"].shape[0],
        decoder_ffn_dim=v["decoder/layer_0/ffn/linear_0/weight"].shape[0],
        max_source_positions=v["encoder/position_encodings/encodings"].shape[0],
        max_target_positions=v["decoder/position_encodings/encodings"].shape[0],
        bos_token_id=tokens.end_of_text,
        eos_token_id=tokens.end_of_text,
        pad_token_id=tokens.end_of_text,
        decoder_start_token_id=tokens.start_of_transcript,
        # Suppression lists belong to the generation config alone; transformers warns when the
        # model config carries them too.
        suppress_tokens=None,
        begin_suppress_tokens=None,
        scale_embedding=False,
        tie_word_embeddings=True,
    )


def whisper_state_dict_from_ct2(ct2: CT2Model, config: WhisperConfig) -> dict[str, torch.Tensor]:
    """Map CTranslate2 variable names onto ``WhisperForConditionalGeneration`` parameter names."""
    d = config.d_model

    w = ct2.float_weight

    state: dict[str, torch.Tensor] = {}

    def linear(hf: str, ct: str, rows: slice | None = None, bias: bool = True) -> None:
        weight = w(f"{ct}/weight")
        state[f"{hf}.weight"] = weight if rows is None else weight[rows]
        if bias:
            b = w(f"{ct}/bias")
            state[f"{hf}.bias"] = b if rows is None else b[rows]

    def layer_norm(hf: str, ct: str) -> None:
        state[f"{hf}.weight"] = w(f"{ct}/gamma")
        state[f"{hf}.bias"] = w(f"{ct}/beta")

    def fused_qkv(hf: str, ct: str) -> None:
        linear(f"{hf}.q_proj", ct, slice(0, d))
        linear(f"{hf}.k_proj", ct, slice(d, 2 * d), bias=False)
        linear(f"{hf}.v_proj", ct, slice(2 * d, 3 * d))

    enc, dec = "model.encoder", "model.decoder"
    for conv in ("conv1", "conv2"):
        linear(f"{enc}.{conv}", f"encoder/{conv}")
    state[f"{enc}.embed_positions.weight"] = w("encoder/position_encodings/encodings")
    layer_norm(f"{enc}.layer_norm", "encoder/layer_norm")
    for i in range(config.encoder_layers):
        hf, ct = f"{enc}.layers.{i}", f"encoder/layer_{i}"
        layer_norm(f"{hf}.self_attn_layer_norm", f"{ct}/self_attention/layer_norm")
        fused_qkv(f"{hf}.self_attn", f"{ct}/self_attention/linear_0")
        linear(f"{hf}.self_attn.out_proj", f"{ct}/self_attention/linear_1")
        layer_norm(f"{hf}.final_layer_norm", f"{ct}/ffn/layer_norm")
        linear(f"{hf}.fc1", f"{ct}/ffn/linear_0")
        linear(f"{hf}.fc2", f"{ct}/ffn/linear_1")

    state[f"{dec}.embed_tokens.weight"] = w("decoder/embeddings/weight")
    state[f"{dec}.embed_positions.weight"] = w("decoder/position_encodings/encodings")
    layer_norm(f"{dec}.layer_norm", "decoder/layer_norm")
    for i in range(config.decoder_layers):
        hf, ct = f"{dec}.layers.{i}", f"decoder/layer_{i}"
        layer_norm(f"{hf}.self_attn_layer_norm", f"{ct}/self_attention/layer_norm")
        fused_qkv(f"{hf}.self_attn", f"{ct}/self_attention/linear_0")
        linear(f"{hf}.self_attn.out_proj", f"{ct}/self_attention/linear_1")
        layer_norm(f"{hf}.encoder_attn_layer_norm", f"{ct}/attention/layer_norm")
        linear(f"{hf}.encoder_attn.q_proj", f"{ct}/attention/linear_0")
        linear(f"{hf}.encoder_attn.k_proj", f"{ct}/attention/linear_1", slice(0, d), bias=False)
        linear(f"{hf}.encoder_attn.v_proj", f"{ct}/attention/linear_1", slice(d, 2 * d))
        linear(f"{hf}.encoder_attn.out_proj", f"{ct}/attention/linear_2")
        layer_norm(f"{hf}.final_layer_norm", f"{ct}/ffn/layer_norm")
        linear(f"{hf}.fc1", f"{ct}/ffn/linear_0")
        linear(f"{hf}.fc2", f"{ct}/ffn/linear_1")

    projection = ct2.variables.get("decoder/projection/weight")
    if projection is not None and not torch.equal(projection, ct2.variables["decoder/embeddings/weight"]):
        raise ConversionError("output projection differs from the token embedding; Whisper ties them")
    # safetensors refuses views that share memory; give each tensor its own contiguous storage.
    return {name: t.contiguous().clone() for name, t in state.items()}


def generation_config_for(config: WhisperConfig, tokens: SpecialTokens, ct2_config: dict) -> GenerationConfig:
    extra: dict = {}
    if tokens.multilingual:
        extra["lang_to_id"] = dict(tokens.languages)
        extra["task_to_id"] = {"transcribe": tokens.transcribe, "translate": tokens.translate}
    return GenerationConfig(
        decoder_start_token_id=tokens.start_of_transcript,
        bos_token_id=tokens.end_of_text,
        eos_token_id=tokens.end_of_text,
        pad_token_id=tokens.end_of_text,
        max_length=config.max_target_positions,
        suppress_tokens=list(ct2_config.get("suppress_ids", [])),
        begin_suppress_tokens=list(ct2_config.get("suppress_ids_begin", [])),
        no_timestamps_token_id=tokens.no_timestamps,
        prev_sot_token_id=tokens.start_of_prev,
        is_multilingual=tokens.multilingual,
        alignment_heads=[list(h) for h in ct2_config.get("alignment_heads", [])],
        max_initial_timestamp_index=50,
        return_timestamps=False,
        **extra,
    )


def _tokenizer_json_with_timestamps(tokenizer_json: dict, vocabulary: list[str]) -> dict:
    """Add the timestamp tokens (``<|0.00|>`` ... ``<|30.00|>``) that the vocabulary lists but the
    shipped ``tokenizer.json`` omits, so that every id the model can emit decodes."""
    present = {t["id"] for t in tokenizer_json["added_tokens"]}
    vocab_ids = set(tokenizer_json["model"]["vocab"].values())
    added = [
        {"id": i, "content": token, "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": False}
        for i, token in enumerate(vocabulary)
        if i not in present and i not in vocab_ids
    ]
    return {**tokenizer_json, "added_tokens": tokenizer_json["added_tokens"] + added}


def write_hf_folder(
    model_bin: bytes, ct2_config: dict, tokenizer_json: dict, vocabulary: list[str], out: Path,
    origin: str,
) -> Path:
    """Convert and write a Hugging Face Whisper folder at ``out``, atomically: everything is
    written under a temporary name in the same parent, then renamed."""
    ct2 = read_ct2_bytes(model_bin, origin)
    tokens = special_tokens_from_tokenizer_json(tokenizer_json, len(vocabulary))
    config = whisper_config_from_ct2(ct2, tokens, ct2_config)
    state = whisper_state_dict_from_ct2(ct2, config)

    # A concurrent conversion that finishes first wrote the same result: it is kept.
    with folder_written_atomically(out, existing="keep") as tmp:
        config.save_pretrained(tmp)
        generation_config_for(config, tokens, ct2_config).save_pretrained(tmp)
        save_file(state, tmp / "model.safetensors", metadata={"format": "pt"})
        # The window follows the encoder's positions (a student exported with a shorter one has
        # fewer); 30 s for every released Whisper.
        chunk_length = exact_div(config.max_source_positions * 2 * HOP_LENGTH, SAMPLE_RATE)
        WhisperFeatureExtractor(
            feature_size=config.num_mel_bins, sampling_rate=SAMPLE_RATE, hop_length=HOP_LENGTH,
            chunk_length=chunk_length, n_fft=N_FFT,
        ).save_pretrained(tmp)
        tokenizer_json = _tokenizer_json_with_timestamps(tokenizer_json, vocabulary)
        (tmp / "tokenizer.json").write_text(json.dumps(tokenizer_json, ensure_ascii=False))
        (tmp / "tokenizer_config.json").write_text(json.dumps({
            "tokenizer_class": "WhisperTokenizer",
            "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
            "unk_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
            "add_prefix_space": False, "errors": "replace", "model_max_length": 1024,
        }, indent=2))
        (tmp / CONVERSION_MARKER).write_text(json.dumps({"source": origin}, indent=2))
    return out


def convert_ct2_folder(src: Path, out: Path) -> Path:
    """Convert a CTranslate2 Whisper folder (``model.bin``, ``config.json``, ``tokenizer.json``,
    ``vocabulary.txt`` or ``vocabulary.json``) into a Hugging Face folder at ``out``."""
    return write_hf_folder(
        (src / "model.bin").read_bytes(), *read_ct2_side_files(src), out=out, origin=str(src),
    )


def read_ct2_side_files(src: Path) -> tuple[dict, dict, list[str]]:
    """``config.json``, ``tokenizer.json`` and the vocabulary of a CTranslate2 Whisper folder."""
    for needed in ("config.json", "tokenizer.json"):
        if not (src / needed).is_file():
            raise ConversionError(
                f"{src}: missing {needed} beside model.bin (when converting with ct2-transformers-"
                f"converter, pass --copy_files tokenizer.json)"
            )
    ct2_config = json.loads((src / "config.json").read_text())
    tokenizer_json = json.loads((src / "tokenizer.json").read_text())
    if (src / "vocabulary.json").is_file():
        vocabulary = json.loads((src / "vocabulary.json").read_text())
    elif (src / "vocabulary.txt").is_file():
        vocabulary = (src / "vocabulary.txt").read_text(encoding="utf-8").split("\n")
        vocabulary = vocabulary[:-1] if vocabulary and vocabulary[-1] == "" else vocabulary
    else:
        raise ConversionError(f"{src}: missing vocabulary.txt or vocabulary.json")
    return ct2_config, tokenizer_json, vocabulary
