"""From utterance records to decoder inputs, labels and (offline KD) the teacher's cached rows.

For a prompt of P tokens and label tokens t_1..t_n the decoder reads ``prompt + t_1..t_n`` and
position j is trained to predict token j + 1 of ``prompt + t_1..t_n + <eot>``. Positions that would
predict prompt tokens are ignored; positions P−1 … P−1+n predict t_1 … t_n and <eot>. Those are
exactly the n + 1 rows the pseudo-labeller caches per utterance and label stream, so offline top-k
rows line up with the labels one to one.

Which label an utterance teaches (``data.labels``):
- ``reference``: its reference transcript (``text`` of a plain manifest, ``reference_text`` of a
  pseudo-label manifest); offline, the teacher's rows teacher-forced along that reference;
- ``pseudo_label``: the teacher's transcript (a pseudo-label manifest only), and its rows along it;
- ``prefer_reference``: the reference where the utterance has one, else its pseudo-label.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from voxdistill.data.manifest import Utterance, read_manifest
from voxdistill.decoding import text_tokens
from voxdistill.distill.losses import IGNORE_INDEX
from voxdistill.errors import VoxdistillError
from voxdistill.teacher.topk import TopKCache

LABEL_CHOICES = ("prefer_reference", "reference", "pseudo_label")


class LabelError(VoxdistillError):
    """An utterance has no label of the kind the run needs."""


@dataclass
class DecoderBatch:
    decoder_input_ids: torch.Tensor  # (B, L)
    labels: torch.Tensor  # (B, L), IGNORE_INDEX where there is nothing to learn
    sources: list[str]  # the label stream of each utterance: reference | pseudo_label
    topk_ids: torch.Tensor | None = None  # (B, L, K) offline KD rows aligned with labels
    topk_log_probs: torch.Tensor | None = None  # (B, L, K)


def is_pseudo_labelled(utt: Utterance) -> bool:
    return "pseudo_label_tokens" in utt.extra


def reference_text(utt: Utterance) -> str | None:
    text = utt.extra.get("reference_text") if is_pseudo_labelled(utt) else utt.text
    return text if text and text.strip() else None


def label_source(utt: Utterance, labels: str) -> str:
    """The stream ``utt`` learns from under ``data.labels == labels``; LabelError if it has none."""
    has_reference = reference_text(utt) is not None
    if labels == "reference" or (labels == "prefer_reference" and has_reference):
        if not has_reference:
            raise LabelError(f"{utt.id}: no reference transcript to learn from (data.labels=reference); "
                             f"use data.labels=prefer_reference to fall back on its pseudo-label")
        return "reference"
    if not is_pseudo_labelled(utt):
        raise LabelError(f"{utt.id}: no pseudo-label (a manifest written by `voxdistill pseudo-label` has "
                         f"them){'' if labels == 'pseudo_label' else ' and no reference transcript'}")
    return "pseudo_label"


def label_text(utt: Utterance, source: str) -> str:
    """The transcript of ``utt``'s label stream ``source`` as text, for a student that does not read
    the teacher's tokens (a CTC student, or a Whisper with a trimmed vocabulary). A pseudo-label
    manifest's ``text`` is the teacher's transcript."""
    return reference_text(utt) if source == "reference" else (utt.text or "")


def count_label_sources(manifest: Path, labels: str) -> Counter:
    """How many utterances of ``manifest`` learn from each stream, checked before training starts:
    an utterance without the label the run needs stops the run here, naming it."""
    return Counter(label_source(utt, labels) for utt in read_manifest(manifest))


def _tokens(utt: Utterance, source: str, tokenizer, own_tokens: bool) -> list[int]:
    """The label's token ids: those the pseudo-labelling teacher cached, or with ``own_tokens`` (a
    student whose vocabulary is not the teacher's) the label's text in ``tokenizer``'s tokens."""
    if own_tokens:
        return text_tokens(tokenizer, label_text(utt, source))
    cached = utt.extra.get("pseudo_label_tokens" if source == "pseudo_label" else "reference_tokens") \
        if is_pseudo_labelled(utt) else None
    if cached is None:
        return text_tokens(tokenizer, reference_text(utt))
    if max(cached, default=0) >= len(tokenizer):
        raise LabelError(f"{utt.id}: its cached {source.replace('_', ' ')} tokens reach id {max(cached)}, past the "
                         f"student's {len(tokenizer)}-token vocabulary: they are another vocabulary's tokens")
    return list(cached)


def _cached_rows(cache: TopKCache, utt: Utterance, source: str):
    index_key = "topk_index" if source == "pseudo_label" else "reference_topk_index"
    if "topk_shard" not in utt.extra or index_key not in utt.extra:
        raise LabelError(f"{utt.id}: no cached teacher rows along its {source.replace('_', ' ')}; "
                         f"pseudo-label the manifest again with this version of voxdistill")
    return cache.lookup(utt.extra["topk_shard"], utt.extra[index_key], source)


def build_decoder_batch(utterances: Sequence[Utterance], tokenizer, prompt: list[int], eot: int,
                        max_length: int, labels: str = "prefer_reference",
                        topk_cache: TopKCache | None = None, own_tokens: bool = False) -> DecoderBatch:
    """Decoder inputs and shifted labels for a batch; with ``topk_cache``, the teacher's cached
    rows along the same label tokens placed at the label positions. ``own_tokens``: tokenize every
    label's text with ``tokenizer`` instead of reading the teacher's cached tokens (`_tokens`)."""
    if own_tokens and topk_cache is not None:
        raise ValueError("cached teacher rows follow the teacher's tokens, not the student's own")
    sources = [label_source(u, labels) for u in utterances]
    sequences = []
    for utt, source in zip(utterances, sources):
        tokens = _tokens(utt, source, tokenizer, own_tokens)
        sequences.append(prompt + tokens[: max_length - len(prompt) - 1] + [eot])
    width = max(len(s) for s in sequences) - 1
    inputs = torch.full((len(sequences), width), eot, dtype=torch.long)
    targets = torch.full((len(sequences), width), IGNORE_INDEX, dtype=torch.long)
    first = len(prompt) - 1  # the first position whose target is a label token
    for i, seq in enumerate(sequences):
        inputs[i, : len(seq) - 1] = torch.tensor(seq[:-1])
        targets[i, first : len(seq) - 1] = torch.tensor(seq[len(prompt):])
    batch = DecoderBatch(inputs, targets, sources)
    if topk_cache is not None:
        rows = [_cached_rows(topk_cache, u, s) for u, s in zip(utterances, sources)]
        k = rows[0].ids.shape[1]
        batch.topk_ids = torch.zeros(len(rows), width, k, dtype=torch.long)
        batch.topk_log_probs = torch.zeros(len(rows), width, k)
        for i, (row, seq) in enumerate(zip(rows, sequences)):
            n = len(seq) - len(prompt)  # label positions of this utterance (tokens + eot)
            if len(row.ids) < n:
                raise LabelError(f"{utterances[i].id}: {len(row.ids)} cached teacher rows for {n} label positions")
            batch.topk_ids[i, first : first + n] = row.ids[:n].long()
            batch.topk_log_probs[i, first : first + n] = row.log_probs[:n]
    return batch
