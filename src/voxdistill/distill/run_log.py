"""Scalars of a run, every step: a JSON Lines file (``log.jsonl``, easy to read back for reports)
and TensorBoard event files (``tensorboard/``).

Both are flushed after every step, so a killed run has logged every step it finished. A run that
resumes from the checkpoint of step k first drops what was logged after step k (those steps are
trained again), so every step appears once. The JSONL file is rewritten atomically. TensorBoard
event files are rewritten one by one, each through a temporary file and a rename, keeping the
records of steps <= k byte for byte (read and written with TensorBoard's own record reader and
writer); a file with no summary left is removed. Rewriting them, rather than hiding the late steps
with a TensorBoard ``purge_step`` marker, leaves files that every reader takes at face value, and a
second pass changes nothing, so a crash in the middle of it is repaired by the next resume.
"""

from __future__ import annotations

import json
from pathlib import Path

from voxdistill.errors import VoxdistillError
from voxdistill.files import file_written_atomically, temporary_pattern, write_text_atomic

EVENT_FILES = "events.out.tfevents.*"
_REWRITING = "rewriting"  # the temporaries' name: no "tfevents" in it, so TensorBoard never reads a half-written copy


class RunLogError(VoxdistillError):
    """A run's log.jsonl has a broken line that is not its last."""


class RunLog:
    def __init__(self, out: Path, resumed_step: int | None, enabled: bool = True):
        """``resumed_step``: the step of the checkpoint the run resumes from; what was logged after
        it is dropped. None: the run starts from scratch, and any earlier log is dropped."""
        self.enabled = enabled
        self.jsonl = None
        self.writer = None
        if enabled:
            from torch.utils.tensorboard import SummaryWriter

            out.mkdir(parents=True, exist_ok=True)
            keep_through = -1 if resumed_step is None else resumed_step
            drop_jsonl_after(out / "log.jsonl", keep_through)
            drop_events_after(out / "tensorboard", keep_through)
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
        self.writer.flush()

    def close(self) -> None:
        if self.enabled:
            self.jsonl.close()
            self.writer.close()


def _log_lines(path: Path) -> list[tuple[str, dict]]:
    """(line, record) of every line of a log.jsonl. A last line cut short by a crash is left out
    (the step it described is redone on resume); a broken line before it is an error."""
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()] if path.is_file() else []
    parsed = []
    for number, line in enumerate(lines, start=1):
        try:
            parsed.append((line, json.loads(line)))
        except json.JSONDecodeError as err:
            if number == len(lines):
                break
            raise RunLogError(f"{path}: line {number} is not valid JSON ({err.msg})") from err
    return parsed


def drop_jsonl_after(path: Path, keep_through: int) -> None:
    """Rewrite ``path`` without the lines of steps after ``keep_through`` (and without a cut last line)."""
    if not path.is_file():
        return
    kept = [line for line, record in _log_lines(path) if record["step"] <= keep_through]
    text = "".join(line + "\n" for line in kept)
    if text != path.read_text(encoding="utf-8"):
        write_text_atomic(path, text)


def drop_events_after(folder: Path, keep_through: int) -> None:
    """Rewrite the TensorBoard event files of ``folder`` without the summaries of steps after
    ``keep_through`` (and without a record cut short by a crash); remove files left with no summary."""
    if not folder.is_dir():
        return
    from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.summary.writer.record_writer import RecordWriter

    for leftover in [*folder.glob(temporary_pattern(_REWRITING)), *folder.glob(".rewriting-*")]:  # and older ones
        leftover.unlink()
    for path in sorted(folder.glob(EVENT_FILES)):
        records = list(RawEventFileLoader(str(path)).Load())  # stops before a truncated record
        events = [(record, Event.FromString(record)) for record in records]
        kept = [(r, e) for r, e in events if not e.HasField("summary") or e.step <= keep_through]
        if not any(e.HasField("summary") for _, e in kept):
            path.unlink()
            continue
        # A record is its bytes plus 16 bytes of length and checksums.
        if len(kept) == len(records) and sum(len(r) + 16 for r in records) == path.stat().st_size:
            continue
        with file_written_atomically(path, stem=_REWRITING) as tmp, tmp.open("wb") as f:
            writer = RecordWriter(f)
            for record, _ in kept:
                writer.write(record)


def read_log(out: Path) -> list[dict]:
    """The log of a run, one record per step in step order. Logs written before resumes dropped
    their late lines may hold a step twice: the later line wins."""
    by_step = {record["step"]: record for _, record in _log_lines(out / "log.jsonl")}
    return [by_step[s] for s in sorted(by_step)]
