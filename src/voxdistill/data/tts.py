"""Offline speech synthesis through the engines installed by ``scripts/setup.sh``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from voxdistill.errors import VoxdistillError


class SynthesisError(VoxdistillError):
    """A speech engine is missing or failed."""


def espeak_ng(text: str, out: Path, *, voice: str = "en-us", rate: int = 160, pitch: int = 50) -> Path:
    """Speak ``text`` with espeak-ng into the WAV file ``out`` (22.05 kHz mono, as espeak writes it)."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise SynthesisError("espeak-ng is not installed; run scripts/setup.sh")
    out.parent.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [exe, "-v", voice, "-s", str(rate), "-p", str(pitch), "-w", str(out), text],
        capture_output=True, text=True,
    )
    if result.returncode != 0 or not out.is_file():
        raise SynthesisError(f"espeak-ng failed for voice {voice}: {result.stderr.strip()}")
    return out
