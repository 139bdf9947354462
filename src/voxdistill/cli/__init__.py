"""The ``voxdistill`` command. Thin: parse arguments, call library functions, print.

Every command (or command group) is one module of this package: its ``register(subparsers)``
declares its options, taking the groups several commands share from `options`, and each action is
one function ``run...(args) -> int`` that calls one library function. Errors voxdistill raises on
purpose (``VoxdistillError``) print as one line on stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
import warnings

from voxdistill import __version__
from voxdistill.cli import corpus, distill, evaluate, export, model, pipeline, prune, pseudo_label, report
from voxdistill.cli import student, transcribe
from voxdistill.errors import VoxdistillError

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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from voxdistill.audio import AudioConversionWarning
    from voxdistill.console import quiet_transformers

    quiet_transformers()
    with warnings.catch_warnings():
        # Every file that is converted on load is reported, even when many share a call site.
        warnings.simplefilter("always", AudioConversionWarning)
        warnings.showwarning = _show_warning
        try:
            return args.func(args)
        except VoxdistillError as err:
            print(f"error: {err}", file=sys.stderr)
            return EXIT_USAGE
