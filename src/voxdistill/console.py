"""What voxdistill's entry points (CLI, benchmarks) show on the terminal."""

from __future__ import annotations


def quiet_transformers() -> None:
    """Hide transformers' info-level chatter and progress bars (for instance deprecation notes
    raised inside its own Whisper ``generate``); its errors still surface."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
