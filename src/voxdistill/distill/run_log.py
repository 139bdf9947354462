"""Scalars of a run, every step: a JSON Lines file (``log.jsonl``, easy to read back for reports)
and TensorBoard event files (``tensorboard/``)."""

from __future__ import annotations

import json
from pathlib import Path

from voxdistill.errors import VoxdistillError


class RunLogError(VoxdistillError):
    """A run's log.jsonl has a broken line that is not its last."""


class RunLog:
    def __init__(self, out: Path, enabled: bool = True):
        self.enabled = enabled
        self.jsonl = None
        self.writer = None
        if enabled:
            from torch.utils.tensorboard import SummaryWriter

            out.mkdir(parents=True, exist_ok=True)
            self.jsonl = (out / "log.jsonl").open("a", encoding="utf-8")
            self.writer = SummaryWriter(str(out / "tensorboard"))

    def write(self, step: int, scalars: dict) -> None:
        if not self.enabled:
            return
        record = {"step": step, **scalars}
        self.jsonl.write(json.dumps(record) + "\n")
        self.jsonl.flush()  # a crash loses at most the line being written
        for key, value in scalars.items():
            if isinstance(value, (int, float)):
                self.writer.add_scalar(key, value, step)

    def close(self) -> None:
        if self.enabled:
            self.jsonl.close()
            self.writer.close()


def read_log(out: Path) -> list[dict]:
    """The log of a run; on resume a step may appear twice, and the later line wins. A last line
    cut short by a crash is ignored (the step it described is redone on resume)."""
    by_step: dict[int, dict] = {}
    path = out / "log.jsonl"
    lines = [line for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []
    for number, line in enumerate(lines, start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            if number == len(lines):
                break
            raise RunLogError(f"{path}: line {number} is not valid JSON ({err.msg})") from err
        by_step[record["step"]] = record
    return [by_step[s] for s in sorted(by_step)]
