"""The cached teacher outputs for offline distillation.

For each utterance the teacher's log-probabilities (over its full vocabulary) are kept at every
position that predicts a label token or the final end-of-text: the ``k`` largest, as token ids
(int32) and log-probabilities (float16, about 3 significant digits, ample for a KD target). There
are two *streams* of such rows, one per kind of label the student may learn from:

- ``pseudo_label``: along the teacher's own transcript (every utterance);
- ``reference``: teacher-forced along the reference transcript (utterances that have one), so that
  a student can learn CE on the reference and KL against the teacher along the same tokens.

A shard stores each stream's rows concatenated, with ``offsets`` marking where each utterance
begins (reference tensors carry the prefix ``reference_``):

    topk_ids        (rows, k) int32
    topk_log_probs  (rows, k) float16
    offsets         (utterances + 1,) int64     utterance j owns rows offsets[j]:offsets[j+1]

Optionally it also holds the teacher's final encoder states from the start of its own window, for
encoder-state distillation: over the first P positions (a student with a P-position window), or over
the positions holding each clip (``CLIP_SPAN``, a student compared over its clip alone). Either way
they are concatenated, utterance j owning rows ``encoder_state_offsets[j]:encoder_state_offsets[j+1]``:

    encoder_states          (rows, d_model) float16
    encoder_state_offsets   (utterances + 1,) int64

(Shards written before clip spans existed hold ``encoder_states`` as (utterances, P, d_model) and
no offsets; they are read as they are.)

The file's metadata names the teacher fingerprint, so a shard can never be mistaken for another
teacher's.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from voxdistill.files import file_written_atomically
from voxdistill.runtime import TopK

STREAMS = ("pseudo_label", "reference")
CLIP_SPAN = "clip"  # cache each clip's own encoder positions, not a fixed window's


def _prefix(stream: str) -> str:
    if stream not in STREAMS:
        raise ValueError(f"unknown top-k stream {stream!r}; known: {', '.join(STREAMS)}")
    return "" if stream == "pseudo_label" else f"{stream}_"


def write_topk_shard(path: Path, streams: dict[str, list[TopK]], k: int, fingerprint: str,
                     encoder_states: list[torch.Tensor] | None = None) -> None:
    """Write one shard of ``k``-wide rows per stream (and optionally each utterance's encoder
    states, (P_j, d)) atomically: temporary name, then rename."""
    tensors = {}
    for stream, rows in streams.items():
        prefix = _prefix(stream)
        tensors[f"{prefix}topk_ids"] = torch.cat([r.ids for r in rows]) if rows else torch.zeros(0, k, dtype=torch.int32)
        tensors[f"{prefix}topk_log_probs"] = (torch.cat([r.log_probs for r in rows]) if rows else torch.zeros(0, k)).half()
        tensors[f"{prefix}offsets"] = torch.tensor([0] + [len(r.ids) for r in rows], dtype=torch.int64).cumsum(0)
    if encoder_states is not None:
        tensors["encoder_states"] = (torch.cat(encoder_states) if encoder_states else torch.zeros(0, 0)).half()
        tensors["encoder_state_offsets"] = torch.tensor([0] + [len(s) for s in encoder_states]).cumsum(0)
    with file_written_atomically(path) as tmp:  # Ctrl-C too: no half-written file is left behind
        save_file({n: t.contiguous() for n, t in tensors.items()}, str(tmp),
                  metadata={"teacher_fingerprint": fingerprint})


class TopKCache:
    """Reads cached teacher rows of a pseudo-label folder, one record (manifest line) at a time.
    Shards are memory-mapped and opened once each."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    @lru_cache(maxsize=64)
    def _shard(self, relative: str):
        return safe_open(str(self.folder / relative), framework="pt")

    def fingerprint(self, relative_shard: str) -> str:
        return self._shard(relative_shard).metadata()["teacher_fingerprint"]

    def lookup(self, topk_shard: str, topk_index: int, stream: str = "pseudo_label") -> TopK:
        prefix = _prefix(stream)
        shard = self._shard(topk_shard)
        offsets = shard.get_slice(f"{prefix}offsets")
        start, end = (int(x) for x in offsets[topk_index : topk_index + 2])
        return TopK(ids=shard.get_slice(f"{prefix}topk_ids")[start:end],
                    log_probs=shard.get_slice(f"{prefix}topk_log_probs")[start:end].float())

    def encoder_states(self, topk_shard: str, topk_index: int, positions: int) -> torch.Tensor:
        """(n, d_model) float32: the teacher's final encoder states over its first n positions, n the
        smaller of ``positions`` and what the shard holds for the utterance."""
        shard = self._shard(topk_shard)
        states = shard.get_slice("encoder_states")
        if "encoder_state_offsets" not in shard.keys():
            return states[topk_index : topk_index + 1, :positions][0].float()
        start, end = (int(x) for x in shard.get_slice("encoder_state_offsets")[topk_index : topk_index + 2])
        return states[start : min(end, start + positions)].float()
