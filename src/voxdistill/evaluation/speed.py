"""Fair speed measurement of several models on the same clips.

Fair means: every model is warmed up before timing (first calls pay for allocation and kernel
selection); the thread count is fixed and reported; the models are timed in one process, clip by
clip, in an order that rotates, so that a slow phase of the machine (another process, thermal
throttling) hits every model alike instead of whichever ran during it.
"""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from voxdistill.audio import SAMPLE_RATE


@dataclass
class Timings:
    """Wall-clock seconds of one model's calls, with the audio seconds each call processed."""

    seconds: list[float] = field(default_factory=list)
    audio_seconds: list[float] = field(default_factory=list)
    items: list[int] = field(default_factory=list)  # utterances per call

    def add(self, seconds: float, audio_seconds: float, items: int = 1) -> None:
        self.seconds.append(seconds)
        self.audio_seconds.append(audio_seconds)
        self.items.append(items)

    def extend(self, other: "Timings") -> None:
        self.seconds += other.seconds
        self.audio_seconds += other.audio_seconds
        self.items += other.items

    def latency_ms(self, percentile: float) -> float | None:
        return float(np.percentile(self.seconds, percentile) * 1000) if self.seconds else None

    @property
    def rtf(self) -> float | None:
        """Real-time factor: processing seconds per audio second (below 1 is faster than real time)."""
        return sum(self.seconds) / sum(self.audio_seconds) if self.seconds else None

    @property
    def items_per_second(self) -> float | None:
        return sum(self.items) / sum(self.seconds) if self.seconds else None


def rotated(items: Sequence, turn: int) -> list:
    """``items`` starting at position ``turn`` (mod its length): who goes first changes every turn."""
    k = turn % len(items)
    return list(items[k:]) + list(items[:k])


def time_interleaved(runners: dict[str, Callable[[list[np.ndarray]], object]], batch: list[np.ndarray],
                     timings: dict[str, Timings], turn: int) -> dict[str, object]:
    """Run and time every runner on one batch, in the order of ``turn`` (see ``rotated``); append
    to ``timings`` and return each runner's output."""
    audio_seconds = sum(len(a) for a in batch) / SAMPLE_RATE
    outputs = {}
    for name in rotated(list(runners), turn):
        start = time.perf_counter()
        outputs[name] = runners[name](batch)
        timings[name].add(time.perf_counter() - start, audio_seconds, len(batch))
    return outputs


def set_threads(threads: int | None) -> int:
    """Fix PyTorch's intra-op thread count (None keeps the current one); returns the count in use."""
    if threads is not None:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def thread_counts(up_to: int) -> tuple[int, ...]:
    """1 and every doubling below ``up_to``, then ``up_to``: the thread counts worth timing a model at
    on a machine that gives it ``up_to`` (1, 2 on two cores; 1, 2, 4, 6 on six)."""
    counts = [1]
    while counts[-1] * 2 < up_to:
        counts.append(counts[-1] * 2)
    return tuple(counts + [up_to] if up_to > 1 else counts)


def machine_description() -> dict:
    return {"threads": torch.get_num_threads(), "torch": torch.__version__,
            "cpu": platform.processor() or platform.machine(), "python": platform.python_version()}


def cpu_probe_ms(rounds: int = 5) -> float:
    """Milliseconds this CPU takes for a fixed float32 workload shaped like one feed-forward block of
    tiny.en's encoder over a 30 s window ((1500, 384) · (384, 1536) and back): the median of
    ``rounds``. Comparing it with the figure of a machine of known speed estimates how
    long a run will take here (AVX-512 against AVX2 shows up in it, as in the real work)."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(1500, 384, generator=generator)
    up, down = torch.randn(384, 1536, generator=generator), torch.randn(1536, 384, generator=generator)
    times = []
    with torch.inference_mode():
        for _ in range(rounds + 1):  # the first round warms up
            start = time.perf_counter()
            torch.relu(x @ up) @ down
            times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times[1:])
