"""Typed errors. Each says what was wrong, where, and what to do about it."""

from __future__ import annotations


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
