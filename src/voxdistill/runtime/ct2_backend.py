"""The CTranslate2 runtime: ``ctranslate2.models.Whisper`` at a compute type, fed by the model's own
feature extractor (its ``preprocessor_config.json``: a student's shorter window included).

Decoding matches the torch runtime's settings: the same prompt, the model's suppressed tokens at
every step and its begin-suppressed ones at the first (CTranslate2 reads both from its
``config.json``, which the converter fills from the generation config), the same token budget. At
float32, greedy decoding gives the torch runtime's tokens (tested); at int8 it is another model.

CTranslate2's ``max_length`` is not a count of new tokens: it decodes ``min(max_length // 2,
max_length - (len(prompt) - 1))`` steps (``WhisperReplica::generate``), text tokens forced after
the prompt included, so `_max_length` inverts that.

Teacher-forced top-k rows come from ``generate(..., return_logits_vocab=True)`` with the text to
force placed after the prompt: CTranslate2 treats it as a decoding prefix and returns the logits of
every forced step, i.e. the teacher's distribution at each position given the exact tokens before
it. Those logits are taken after the model's token suppression (suppressed tokens at -3.4e38, the
begin-suppressed ones at the first position), the distribution CTranslate2 decodes from; the torch
runtime keeps the raw logits. Offline KD renormalises the teacher over its top k, so the two differ
only where a suppressed token would have been among the k.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import ctranslate2
import numpy as np
import torch
from transformers import WhisperFeatureExtractor, WhisperTokenizer

from voxdistill.data.dataset import check_clip_padding, log_mel
from voxdistill.decoding import SAMPLING_SEED, Decoded
from voxdistill.errors import ModelLoadError
from voxdistill.formats import EXPORT_RECORD
from voxdistill.formats.ctranslate2 import ct2_folder_for
from voxdistill.models.fingerprint import Fingerprint, preprocessing_config, weights_sha256
from voxdistill.models.loading import check_feature_files, load_whisper
from voxdistill.runtime import Runtime, TopK

# Every Whisper decoder has 448 positions; CTranslate2 does not expose the number (faster-whisper
# assumes it too).
DECODER_POSITIONS = 448


class CT2Recogniser:
    """A CTranslate2 Whisper folder behind the `Recogniser` interface. Encoded values are
    ``ctranslate2.StorageView`` encoder outputs on the CPU.

    CTranslate2 seeds a sampler's generator once per worker thread, at its first draw, so on one model
    object a sampled transcript depends on everything that model sampled before (three draws of one
    clip, the seed set before each, give three transcripts). With ``sampler_per_call`` (the default)
    each sampled decoding runs on a copy of the model loaded for it (about 35 ms for tiny.en), whose
    first draw follows the seed: a clip's sampled transcript is the same whatever came before it, as
    in PyTorch. Those loads count in the accuracy pass's throughput; the copies that time latency turn
    it off, to sample as a deployed model does. A larger model takes longer to load."""

    scores_transcripts = True

    def __init__(self, folder: Path, source: str, compute_type: str, threads: int):
        self.folder = Path(folder)
        self.source = source
        self.runtime = Runtime("ct2", compute_type)
        self.threads = threads
        self.sampler_per_call = True
        self.model = self._load()
        self.feature_extractor = _feature_extractor(self.folder, self.model.n_mels)
        self.tokenizer = WhisperTokenizer.from_pretrained(self.folder)
        self._eot = self.tokenizer.convert_tokens_to_ids("<|endoftext|>")
        self._sot = self.tokenizer.convert_tokens_to_ids("<|startoftranscript|>")

    def _load(self) -> ctranslate2.models.Whisper:
        return ctranslate2.models.Whisper(str(self.folder), device="cpu", compute_type=self.runtime.compute_type,
                                          intra_threads=self.threads, inter_threads=1)

    @property
    def multilingual(self) -> bool:
        return bool(self.model.is_multilingual)

    @cached_property
    def vocab_size(self) -> int:
        if (self.folder / "vocabulary.json").is_file():
            return len(json.loads((self.folder / "vocabulary.json").read_text()))
        return len((self.folder / "vocabulary.txt").read_text(encoding="utf-8").rstrip("\n").split("\n"))

    @property
    def max_target_positions(self) -> int:
        return DECODER_POSITIONS

    @cached_property
    def _reference(self) -> tuple[str, int]:
        """(weights sha256, parameter count) of the model the runtime was given: for a folder
        voxdistill exported, the float32 weights it was exported from (its export record); for any
        other, its own weights as voxdistill's CTranslate2 -> Hugging Face conversion reads them
        (float32; de-quantised if stored as integers), loaded in PyTorch once."""
        record = self.folder / EXPORT_RECORD
        if record.is_file():
            export = json.loads(record.read_text())
            return export["source_fingerprint"]["weights"], export["parameters"]
        model = load_whisper(str(self.folder)).model
        return weights_sha256(model), sum(p.numel() for p in model.parameters())

    @property
    def parameters(self) -> int:
        return self._reference[1]

    @cached_property
    def fingerprint(self) -> Fingerprint:
        return Fingerprint(self._reference[0], preprocessing_config(self.feature_extractor), self.runtime.to_dict())

    def prompt(self, language: str = "en") -> list[int]:
        tokens = ["<|startoftranscript|>"]
        if self.multilingual:
            tokens += [f"<|{language}|>", "<|transcribe|>"]
        return self.tokenizer.convert_tokens_to_ids(tokens + ["<|notimestamps|>"])

    def encode(self, audios: Sequence[np.ndarray]) -> ctranslate2.StorageView:
        features = np.ascontiguousarray(log_mel(self.feature_extractor, audios).numpy())  # (B, n_mels, frames)
        try:
            return self.model.encode(ctranslate2.StorageView.from_array(features), to_cpu=True)
        except ValueError as err:
            raise ModelLoadError(
                f"{self.folder}: {err}. The features follow its preprocessor_config.json (or, without one, "
                f"Whisper's 30 s window); write the model's own there (voxdistill export does)") from err

    def decode(self, encoded: ctranslate2.StorageView, options, audio_seconds: float) -> list[list[int]]:
        return [self._text_only(r.sequences_ids[0]) for r in self._generate(encoded, options, audio_seconds)]

    def decode_scored(self, encoded: ctranslate2.StorageView, options, audio_seconds: float) -> list[Decoded]:
        steps = options.token_budget(audio_seconds)
        decoded = []
        for r in self._generate(encoded, options, audio_seconds, return_scores=True, return_no_speech_prob=True):
            ids = r.sequences_ids[0]
            # The score is the summed log-probability of the tokens emitted (end-of-text included when it
            # came within the budget) over len(ids), its length penalty of 1 (as faster-whisper reads it).
            emitted = len(ids) + (len(ids) < steps)
            decoded.append(Decoded(self._text_only(ids), r.scores[0] * len(ids) / emitted, r.no_speech_prob))
        return decoded

    def _generate(self, encoded: ctranslate2.StorageView, options, audio_seconds: float, **returns) -> list:
        prompt = self.prompt(options.language)
        steps = options.token_budget(audio_seconds)
        search = {"beam_size": options.num_beams}
        model = self.model
        if options.sampling:  # one candidate drawn from the whole distribution, as faster-whisper's fallback
            # Only the first draw of a worker thread follows this seed (see the class): a fresh copy's is one.
            ctranslate2.set_random_seed(SAMPLING_SEED)
            search = {"beam_size": 1, "sampling_topk": 0, "sampling_temperature": options.temperature}
            if self.sampler_per_call:
                model = self._load()
        return model.generate(encoded, [prompt] * encoded.shape[0], max_length=_max_length(prompt, steps),
                              suppress_tokens=[-1], suppress_blank=True, **search, **returns)

    def _text_only(self, ids: list[int]) -> list[int]:
        """CTranslate2 leaves the prompt and end-of-text out; timestamps are dropped as in torch."""
        return [t for t in ids if t != self._eot and t < self._sot]

    def teacher_forced_topk(self, encoded: ctranslate2.StorageView, sequences: list[list[int] | None], top_k: int,
                            language: str = "en") -> list[TopK | None]:
        chosen = [i for i, t in enumerate(sequences) if t is not None]
        if len(chosen) < len(sequences):
            encoded = ctranslate2.StorageView.from_array(np.ascontiguousarray(np.array(encoded)[chosen]))
        prompt = self.prompt(language)
        steps = max(len(sequences[i]) for i in chosen) + 1
        results = self.model.generate(encoded, [prompt + sequences[i] for i in chosen], beam_size=1,
                                      max_length=_max_length(prompt, steps), return_logits_vocab=True)
        kept: list[TopK | None] = [None] * len(sequences)
        for i, result in zip(chosen, results):
            rows = result.logits[0][: len(sequences[i]) + 1]
            if len(rows) != len(sequences[i]) + 1:
                raise RuntimeError(f"CTranslate2 {ctranslate2.__version__} returned {len(rows)} logit rows "
                                   f"for {len(sequences[i])} forced tokens; expected one per token plus end-of-text")
            logits = torch.from_numpy(np.stack([np.asarray(row) for row in rows]).astype(np.float32))
            values, ids = torch.log_softmax(logits, dim=-1).topk(top_k, dim=-1)
            kept[i] = TopK(ids=ids.to(torch.int32), log_probs=values)
        return kept

    def encoder_states(self, encoded: ctranslate2.StorageView, positions: int) -> torch.Tensor:
        return torch.from_numpy(np.array(encoded)[:, :positions]).float()


def _max_length(prompt: list[int], steps: int) -> int:
    """CTranslate2's ``max_length`` for exactly ``steps`` decoding steps after ``prompt``."""
    return max(2 * steps, steps + len(prompt) - 1)


def _feature_extractor(folder: Path, n_mels: int) -> WhisperFeatureExtractor:
    """The folder's own feature extractor; without ``preprocessor_config.json`` (e.g. a folder made
    by ``ct2-transformers-converter`` without it), Whisper's 30 s one, as faster-whisper assumes."""
    if (folder / "preprocessor_config.json").is_file():
        extractor = WhisperFeatureExtractor.from_pretrained(folder)
        check_feature_files(folder, extractor)
        try:
            check_clip_padding(extractor)
        except ValueError as err:
            raise ModelLoadError(f"{folder / 'preprocessor_config.json'}: {err}") from None
        return extractor
    return WhisperFeatureExtractor(feature_size=n_mels)


def load_ct2_recogniser(model: str, compute_type: str, threads: int) -> CT2Recogniser:
    """``model`` in CTranslate2: a CTranslate2 folder as it is, anything else through its cached
    CTranslate2 conversion at ``compute_type`` (`formats.ctranslate2.ct2_folder_for`)."""
    return CT2Recogniser(ct2_folder_for(model, compute_type), model, compute_type, threads)
