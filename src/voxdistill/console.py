"""What voxdistill's entry points (CLI, benchmarks) show on the terminal."""

from __future__ import annotations


def quiet_transformers() -> None:
    """Hide transformers' info-level chatter and progress bars (for instance deprecation notes
    raised inside its own Whisper ``generate``); its errors still surface."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def close_progress_bars() -> None:
    """Close the progress bars that stopped work left open (tqdm keeps a set of them), so that they
    print their last state now, before a message that must be the last line, not when collected."""
    from tqdm import tqdm

    for bar in list(getattr(tqdm, "_instances", ())):
        bar.close()
