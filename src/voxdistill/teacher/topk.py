"""The cached teacher distributions for offline distillation.

For each utterance the teacher's log-probabilities (over its full vocabulary) are kept at every
position that predicts a pseudo-label token or the final end-of-text: the ``k`` largest, as token
ids (int32) and log-probabilities (float16, about 3 significant digits, ample for a KD target).
A shard stores its utterances' rows concatenated, with ``offsets`` marking where each begins:

    topk_ids        (rows, k) int32
    topk_log_probs  (rows, k) float16
    offsets         (utterances + 1,) int64     utterance j owns rows offsets[j]:offsets[j+1]

The file's metadata names the teacher fingerprint, so a shard can never be mistaken for another
teacher's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file


@dataclass(frozen=True)
class TopK:
    ids: torch.Tensor  # (positions, k) int32
    log_probs: torch.Tensor  # (positions, k), log-probabilities under the teacher


def write_topk_shard(path: Path, rows: list[TopK], k: int, fingerprint: str) -> None:
    """Write one shard of ``k``-wide rows atomically (temporary name, then rename)."""
    tensors = {
        "topk_ids": torch.cat([r.ids for r in rows]) if rows else torch.zeros(0, k, dtype=torch.int32),
        "topk_log_probs": (torch.cat([r.log_probs for r in rows]) if rows else torch.zeros(0, k)).half(),
        "offsets": torch.tensor([0] + [len(r.ids) for r in rows], dtype=torch.int64).cumsum(0),
    }
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    save_file({n: t.contiguous() for n, t in tensors.items()}, str(tmp),
              metadata={"teacher_fingerprint": fingerprint})
    os.replace(tmp, path)


class TopKCache:
    """Reads cached top-k rows of a pseudo-label folder, one record (manifest line) at a time.
    Shards are memory-mapped and opened once each."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    @lru_cache(maxsize=64)
    def _shard(self, relative: str):
        return safe_open(str(self.folder / relative), framework="pt")

    def fingerprint(self, relative_shard: str) -> str:
        return self._shard(relative_shard).metadata()["teacher_fingerprint"]

    def lookup(self, topk_shard: str, topk_index: int) -> TopK:
        shard = self._shard(topk_shard)
        offsets = shard.get_slice("offsets")
        start, end = (int(x) for x in offsets[topk_index : topk_index + 2])
        return TopK(ids=shard.get_slice("topk_ids")[start:end],
                    log_probs=shard.get_slice("topk_log_probs")[start:end].float())
