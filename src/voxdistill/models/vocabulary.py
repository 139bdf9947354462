"""Trimming a Whisper's vocabulary to its most common byte-pair tokens: a cheaper decoding step.

Every decoded token ends in the output projection over the whole vocabulary: 51,864 rows of
``d_model`` for Whisper, tied to the decoder's token embeddings. For tiny.en that is 20 M weights,
twice its four decoder layers together, and in CTranslate2 int8 on one CPU thread most of a
decoding step's time (`benchmarks/vocabulary.py` measures it). A student that transcribes English
needs far fewer tokens.

Whisper's tokenizers are byte-level BPE whose token ids follow the order the merges were learnt in:
after the byte tokens, merge k makes token ``first_merge_id + k``, from two tokens made before it.
Keeping the ordinary tokens with ids below ``keep`` and the merges that make them is therefore BPE
stopped after fewer merges: a valid tokenizer that spells every text (all bytes are kept), giving
rare words as several common tokens. `trim_vocabulary` checks that property on the tokenizer it is
given (every kept merge made from kept tokens) rather than assuming it.

Kept ordinary tokens keep their ids; the special tokens (end-of-text, start-of-transcript, languages,
tasks, no-timestamps, timestamps) move down, in their order, to follow them, so every id arithmetic
that tools do on them (faster-whisper's first timestamp = no-timestamps + 1) still holds. The
generation config's and model config's token ids move with them. The embedding rows (and so the tied
projection) of the kept tokens are the source's, unchanged.

A trimmed model reads labels in its own tokens: a text the source spells with a dropped token, the
trimmed model spells with more, shorter ones, which its decoder must learn to emit (untrained, the
teacher's decoder trimmed to 16,000 tokens spells "rainbow" as "rainbo": read speech 3.9% -> 9.8%).
`VocabularyMap` relates its ids to the source's, for KD from the untrimmed teacher: the teacher is
teacher-forced on the student's tokens (every one of them is a teacher token), and its distribution
is moved onto the student's vocabulary with each dropped token's probability on the piece the student
spells it with first (`first_pieces`, `spelled_distribution`): where the teacher is sure of " rainbow",
the student is taught to be as sure of " rain", then, a step later, of "bow".
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory

import torch
from transformers import WhisperForConditionalGeneration, WhisperTokenizer

from voxdistill.errors import VoxdistillError
from voxdistill.models.convert import MULTILINGUAL_VOCABULARY
from voxdistill.models.student import STUDENT_FILE, read_student_record

RECORD_KEY = "vocabulary"  # in student.json: how the vocabulary was trimmed


class VocabularyError(VoxdistillError):
    """A vocabulary cannot be trimmed as asked: the size is out of range, or the tokenizer is not a
    byte-level BPE whose ids follow its merges."""


@dataclass(frozen=True)
class VocabularyMap:
    """How a trimmed vocabulary's ids relate to its source's: ordinary ids below ``keep`` are the
    same; the source's special ids from ``first_special`` on move down to start at ``keep``."""

    keep: int
    first_special: int
    source_size: int

    @property
    def size(self) -> int:
        return self.keep + self.source_size - self.first_special

    @property
    def shift(self) -> int:
        return self.first_special - self.keep

    def to_source(self, token: int) -> int:
        return token if token < self.keep else token + self.shift

    def from_source(self, token: int) -> int | None:
        """The trimmed id of source token ``token``; None for a dropped one."""
        if token < self.keep:
            return token
        return token - self.shift if token >= self.first_special else None

    def source_ids(self) -> torch.Tensor:
        """(size,) the source id of every trimmed id: gathers a source model's logits, or embedding
        rows, into the trimmed vocabulary's order."""
        return torch.cat([torch.arange(self.keep), torch.arange(self.first_special, self.source_size)])

    def to_dict(self) -> dict:
        return {"keep": self.keep, "first_special": self.first_special, "source_size": self.source_size}

    @classmethod
    def from_dict(cls, record: dict) -> "VocabularyMap":
        return cls(int(record["keep"]), int(record["first_special"]), int(record["source_size"]))


def _merge_parts(merge) -> tuple[str, str]:
    return tuple(merge.split(" ", 1)) if isinstance(merge, str) else tuple(merge)


def _first_special(tokenizer_json: dict, source_size: int) -> int:
    """The lowest id of the added (special) tokens, all of which must lie above every BPE token."""
    added = {t["id"] for t in tokenizer_json.get("added_tokens", [])}
    ordinary = [i for i in tokenizer_json["model"]["vocab"].values() if i not in added]
    if not added or max(ordinary, default=-1) >= min(added) or max(added) != source_size - 1:
        raise VocabularyError("the tokenizer's special tokens are not the last ids of its vocabulary; only a "
                              "Whisper tokenizer (special tokens after the BPE tokens) can be trimmed")
    return min(added)


def trimmed_tokenizer_json(tokenizer_json: dict, keep: int, source_size: int) -> tuple[dict, VocabularyMap]:
    """``tokenizer_json`` (a ``tokenizers`` BPE serialisation) with the ordinary tokens of ids below
    ``keep`` and the merges that make them; special tokens renumbered to follow them."""
    model = tokenizer_json.get("model", {})
    if model.get("type") != "BPE":
        raise VocabularyError(f"the tokenizer is {model.get('type')!r}, not byte-pair encoding (BPE)")
    first_special = _first_special(tokenizer_json, source_size)
    if not 256 < keep < first_special:
        raise VocabularyError(f"keep {keep} ordinary tokens: choose from 257 (the bytes and one merge) to "
                              f"{first_special - 1} (all but one of this tokenizer's {first_special})")
    vocab_map = VocabularyMap(keep, first_special, source_size)
    vocab = model["vocab"]
    kept_merges = []
    for merge in model["merges"]:
        a, b = _merge_parts(merge)
        made = vocab.get(a + b)
        if made is None or made >= keep:
            continue
        if vocab.get(a, keep) >= keep or vocab.get(b, keep) >= keep:
            raise VocabularyError(f"merge {a!r} + {b!r} makes kept token {made} from a dropped one: this "
                                  f"tokenizer's ids do not follow its merges, so it cannot be cut at {keep}")
        kept_merges.append(merge)
    out = copy.deepcopy(tokenizer_json)
    out["model"]["vocab"] = {t: vocab_map.from_source(i) for t, i in vocab.items() if vocab_map.from_source(i) is not None}
    out["model"]["merges"] = kept_merges
    for token in out.get("added_tokens", []):
        token["id"] = vocab_map.from_source(token["id"])
    processor = out.get("post_processor") or {}
    for spec in (processor.get("special_tokens") or {}).values():
        spec["ids"] = [vocab_map.from_source(i) for i in spec["ids"]]
    return out, vocab_map


def trim_tokenizer(tokenizer: WhisperTokenizer, keep: int) -> tuple[WhisperTokenizer, VocabularyMap]:
    """A Whisper tokenizer whose vocabulary is ``tokenizer``'s ordinary tokens below ``keep`` and all
    its special tokens (see `trimmed_tokenizer_json`)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise VocabularyError(f"{type(tokenizer).__name__} has no `tokenizers` backend to trim")
    trimmed, vocab_map = trimmed_tokenizer_json(json.loads(backend.to_str()), keep, len(tokenizer))
    with TemporaryDirectory() as tmp:
        tokenizer.save_pretrained(tmp)
        (Path(tmp) / "tokenizer.json").write_text(json.dumps(trimmed, ensure_ascii=False), encoding="utf-8")
        for stale in ("vocab.json", "merges.txt", "added_tokens.json"):  # slow-tokenizer files, if any
            (Path(tmp) / stale).unlink(missing_ok=True)
        new = WhisperTokenizer.from_pretrained(tmp)
    if len(new) != vocab_map.size:
        raise VocabularyError(f"the trimmed tokenizer has {len(new)} tokens, expected {vocab_map.size}")
    return new, vocab_map


def _remap_ids(holder, vocab_map: VocabularyMap) -> None:
    """Move every token id a model or generation config holds to the trimmed vocabulary; suppressed
    tokens that were dropped are dropped from the lists."""
    for key, value in list(vars(holder).items()):
        if key.endswith("token_id") and isinstance(value, int):
            setattr(holder, key, vocab_map.from_source(value))
        elif key in ("suppress_tokens", "begin_suppress_tokens") and value:
            setattr(holder, key, [m for t in value if (m := vocab_map.from_source(t)) is not None])
        elif key in ("lang_to_id", "task_to_id") and value:
            setattr(holder, key, {name: vocab_map.from_source(t) for name, t in value.items()})
        elif key == "forced_decoder_ids" and value:
            setattr(holder, key, [[position, t if t is None else vocab_map.from_source(t)] for position, t in value])
        elif key.endswith("token_id") and isinstance(value, list):
            setattr(holder, key, [vocab_map.from_source(t) for t in value])


def trim_vocabulary(model: WhisperForConditionalGeneration, tokenizer: WhisperTokenizer,
                    keep: int) -> tuple[WhisperForConditionalGeneration, WhisperTokenizer, VocabularyMap]:
    """A copy of ``model`` and its ``tokenizer`` with ``keep`` ordinary tokens (and every special
    one): the kept tokens' embedding rows, the projection tied to them, ids in both configs moved."""
    if getattr(model.generation_config, "is_multilingual", False) or model.config.vocab_size >= MULTILINGUAL_VOCABULARY:
        raise VocabularyError("the model is multilingual: its first byte-pair tokens are not what other languages "
                              "need, and CTranslate2 reads a Whisper of fewer than 51,865 tokens as English-only; "
                              "trim an English-only model")
    if len(tokenizer) != model.config.vocab_size:
        raise VocabularyError(f"the tokenizer has {len(tokenizer)} tokens but the model {model.config.vocab_size}")
    new_tokenizer, vocab_map = trim_tokenizer(tokenizer, keep)
    config = copy.deepcopy(model.config)
    config.vocab_size = vocab_map.size
    _remap_ids(config, vocab_map)
    rows = vocab_map.source_ids()
    state = dict(model.state_dict())
    for name in ("model.decoder.embed_tokens.weight", "proj_out.weight"):
        state[name] = state[name][rows].clone()
    trimmed = WhisperForConditionalGeneration(config)
    trimmed.load_state_dict(state, strict=True)
    trimmed.generation_config = copy.deepcopy(model.generation_config)
    _remap_ids(trimmed.generation_config, vocab_map)
    trimmed.eval()
    return trimmed, new_tokenizer, vocab_map


def recorded_vocabulary(folder: str | Path) -> VocabularyMap | None:
    """The trimming a student folder's ``student.json`` records (`voxdistill prune --vocabulary`);
    None for a student with its teacher's vocabulary, or a plain Whisper."""
    record = read_student_record(folder)
    trimmed = None if record is None else record.get(RECORD_KEY)
    if trimmed is None:
        return None
    try:
        return VocabularyMap.from_dict(trimmed["map"])
    except (KeyError, TypeError, ValueError):
        raise VocabularyError(f"{Path(folder) / STUDENT_FILE}: damaged \"{RECORD_KEY}\" entry (it must give "
                              f"\"map\": keep, first_special, source_size); prune the student again") from None


def first_pieces(source_tokenizer, trimmed_tokenizer, vocab_map: VocabularyMap) -> torch.Tensor:
    """(source_size,) for every source token, the trimmed id that starts its spelling: itself when
    kept, the first of the pieces the trimmed BPE writes it in when dropped (" rainbow" -> " rain")."""
    bpe = trimmed_tokenizer.backend_tokenizer.model
    out = torch.empty(vocab_map.source_size, dtype=torch.long)
    for token in range(vocab_map.source_size):
        kept = vocab_map.from_source(token)
        if kept is None:
            pieces = bpe.tokenize(source_tokenizer.convert_ids_to_tokens(token))
            if not pieces:
                raise VocabularyError(f"source token {token} has no spelling in the trimmed vocabulary")
            kept = pieces[0].id
        out[token] = kept
    return out


def spelled_distribution(source_logits: torch.Tensor, first_piece: torch.Tensor, size: int) -> torch.Tensor:
    """Log-probabilities over the trimmed vocabulary (size ``size``) of a source model's ``source_logits``
    (..., source_size): each dropped token's probability goes to the piece its trimmed spelling starts
    with, so a teacher sure of " rainbow" is as sure of " rain" (its mass is not spread over whatever
    kept tokens it found less likely, as renormalising over them would)."""
    probs = torch.softmax(source_logits.float(), dim=-1)
    spelled = torch.zeros(*probs.shape[:-1], size, dtype=probs.dtype, device=probs.device)
    spelled.index_add_(-1, first_piece.to(probs.device), probs)
    return torch.log(spelled.clamp_min(torch.finfo(spelled.dtype).tiny))
