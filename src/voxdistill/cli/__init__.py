"""The ``voxdistill`` command. Thin: parse arguments, call library functions, print.

Every command (or command group) is one module of this package: its ``register(subparsers)``
declares its options, taking the groups several commands share from `options`, and each action is
one function ``run...(args) -> int`` that calls one library function. Errors voxdistill raises on
purpose (``VoxdistillError``) print as one line on stderr and exit with status 2. Ctrl-C and
SIGTERM print one line too, saying what was kept and how to resume (`errors.Interrupted`, which the
long-running library functions raise), and exit 128 + the signal's number: 130 for Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import warnings
from contextlib import contextmanager

from voxdistill import __version__
from voxdistill.cli import corpus, distill, evaluate, export, model, pipeline, prune, pseudo_label, report
from voxdistill.cli import student, transcribe
from voxdistill.errors import Interrupted, Terminated, VoxdistillError

EXIT_USAGE = 2

# In the order `voxdistill --help` lists them (pipeline adds demo and bench).
COMMANDS = (transcribe, pipeline, report, corpus, pseudo_label, student, distill, evaluate, export, prune, model)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"warning: {message}", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voxdistill",
        description="Distil a Whisper-class teacher into a small, fast student, and prove it.",
    )
    parser.add_argument("--version", action="version", version=f"voxdistill {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                help="what to do; voxdistill COMMAND --help explains each")
    for command in COMMANDS:
        command.register(sub)
    return parser


def _raise_interrupt(signum, frame):
    """Raise KeyboardInterrupt (Ctrl-C) or `errors.Terminated` (SIGTERM) where the command is.
    Python ignores an exception raised inside a finaliser (``__del__``, which garbage collection may
    run at any moment), so a signal that lands in one is sent again a moment later instead of being
    lost (the command would run on and exit 0)."""
    while frame is not None:
        if frame.f_code.co_name == "__del__":
            threading.Timer(0.05, os.kill, (os.getpid(), signum)).start()
            return
        frame = frame.f_back
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


@contextmanager
def _signals_interrupt():
    """Ctrl-C and SIGTERM stop a command alike (KeyboardInterrupt, `errors.Terminated`), for the time
    of the command."""
    previous = {sig: signal.signal(sig, _raise_interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from voxdistill.audio import AudioConversionWarning
    from voxdistill.console import quiet_transformers

    quiet_transformers()
    with warnings.catch_warnings(), _signals_interrupt():
        # Every file that is converted on load is reported, even when many share a call site.
        warnings.simplefilter("always", AudioConversionWarning)
        warnings.showwarning = _show_warning
        try:
            return args.func(args)
        except KeyboardInterrupt as stop:  # a command that keeps no account of its work, or before work began
            return _interrupted(Interrupted.by(stop, f"voxdistill {args.command} stopped before it finished",
                                               "run the same command again"))
        except Interrupted as stop:
            return _interrupted(stop)
        except VoxdistillError as err:
            print(f"error: {err}", file=sys.stderr)
            return EXIT_USAGE


def _interrupted(stop: Interrupted) -> int:
    """One line, the last, and the shell's status for the signal."""
    from voxdistill.console import close_progress_bars

    close_progress_bars()
    print(stop, file=sys.stderr)
    return 128 + stop.signum
