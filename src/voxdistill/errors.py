"""Typed errors. Each says what was wrong, where, and what to do about it."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class VoxdistillError(Exception):
    """Base of every error voxdistill raises on purpose. The CLI prints it and exits 2."""


class AudioError(VoxdistillError):
    """An audio file is missing, unreadable or unusable."""

    def __init__(self, path: str, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class ModelLoadError(VoxdistillError):
    """A model argument cannot be resolved or its weights cannot be read."""


class ConversionError(VoxdistillError):
    """A CTranslate2 model file does not follow the format or is not a Whisper model."""


# -- interruptions ----------------------------------------------------------------------------------

RESUME = "run the same command to resume"


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised wherever the program is, as Python raises KeyboardInterrupt for Ctrl-C (the
    CLI installs the handler), so that both stop work the same way."""

    signum = signal.SIGTERM


class Interrupted(VoxdistillError):
    """Ctrl-C (SIGINT) or SIGTERM stopped a command. Says what was kept on disk and how to go on;
    the CLI prints it and exits 128 + the signal's number (130 for Ctrl-C), as a shell would."""

    def __init__(self, kept: str, resume: str = RESUME, signum: int = signal.SIGINT):
        self.kept, self.resume, self.signum = kept, resume, signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}: {kept}; {resume}")

    @classmethod
    def by(cls, stop: KeyboardInterrupt, kept: str, resume: str = RESUME) -> "Interrupted":
        """The `Interrupted` of a KeyboardInterrupt (Ctrl-C) or `Terminated` (SIGTERM)."""
        return cls(kept, resume, getattr(stop, "signum", signal.SIGINT))


@contextmanager
def kept_on_interrupt(kept: Callable[[], str], resume: str = RESUME) -> Iterator[None]:
    """Work in the block that Ctrl-C or SIGTERM stops raises `Interrupted`, saying what ``kept()``
    finds on disk at that moment and ``resume``. An `Interrupted` from work nested inside (a stage of
    a pipeline) keeps its own account after ours: "stage 3 stopped: 4 of 12 shards committed"."""
    try:
        yield
    except Interrupted as inner:
        raise Interrupted(f"{kept()}: {inner.kept}", resume, inner.signum) from None
    except KeyboardInterrupt as stop:
        raise Interrupted.by(stop, kept(), resume) from None
