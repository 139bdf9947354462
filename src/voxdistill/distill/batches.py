"""From utterance records to decoder inputs, labels and (offline KD) teacher top-k rows.

For a prompt of P tokens and label tokens t_1..t_n the decoder reads ``prompt + t_1..t_n`` and
position j is trained to predict token j + 1 of ``prompt + t_1..t_n + <eot>``. Positions that would
predict prompt tokens are ignored; positions P−1 … P−1+n predict t_1 … t_n and <eot>. Those are
exactly the n + 1 rows the pseudo-labeller caches per utterance, so offline top-k rows line up
with the labels one to one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from voxdistill.data.manifest import Utterance
from voxdistill.distill.losses import IGNORE_INDEX
from voxdistill.errors import VoxdistillError
from voxdistill.teacher.topk import TopKCache


class LabelError(VoxdistillError):
    """An utterance has no label of the kind the run needs."""


@dataclass
class DecoderBatch:
    decoder_input_ids: torch.Tensor  # (B, L)
    labels: torch.Tensor  # (B, L), IGNORE_INDEX where there is nothing to learn
    topk_ids: torch.Tensor | None = None  # (B, L, K) offline KD rows aligned with labels
    topk_log_probs: torch.Tensor | None = None  # (B, L, K)


def label_tokens(utt: Utterance, tokenizer, field: str, use_pseudo_label_tokens: bool) -> list[int]:
    if use_pseudo_label_tokens:
        tokens = utt.extra.get("pseudo_label_tokens")
        if tokens is None:
            raise LabelError(f"{utt.id}: no pseudo_label_tokens; offline KD needs a manifest written by pseudo-label")
        return list(tokens)
    text = utt.text if field == "text" else utt.extra.get(field)
    if not text:
        raise LabelError(f"{utt.id}: no {field!r} to learn from")
    # Whisper writes a space before the first word; tokenise the same way.
    return tokenizer(" " + text.strip(), add_special_tokens=False).input_ids


def build_decoder_batch(utterances: Sequence[Utterance], tokenizer, prompt: list[int], eot: int,
                        max_length: int, label_field: str = "text",
                        topk_cache: TopKCache | None = None) -> DecoderBatch:
    """Decoder inputs and shifted labels for a batch; with ``topk_cache``, the teacher's cached
    rows placed at the label positions (labels are then the pseudo-label tokens themselves)."""
    offline = topk_cache is not None
    sequences = []
    for utt in utterances:
        tokens = label_tokens(utt, tokenizer, label_field, use_pseudo_label_tokens=offline)
        sequences.append(prompt + tokens[: max_length - len(prompt) - 1] + [eot])
    width = max(len(s) for s in sequences) - 1
    inputs = torch.full((len(sequences), width), eot, dtype=torch.long)
    labels = torch.full((len(sequences), width), IGNORE_INDEX, dtype=torch.long)
    first = len(prompt) - 1  # the first position whose target is a label token
    for i, seq in enumerate(sequences):
        inputs[i, : len(seq) - 1] = torch.tensor(seq[:-1])
        labels[i, first : len(seq) - 1] = torch.tensor(seq[len(prompt):])
    batch = DecoderBatch(inputs, labels)
    if offline:
        rows = [topk_cache.lookup(u.extra["topk_shard"], u.extra["topk_index"]) for u in utterances]
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
