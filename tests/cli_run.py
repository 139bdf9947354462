"""Running the `voxdistill` command in tests, and checking how it refused.

`voxdistill` runs the command's own `main` in this process by default: the same parser, the same
code and the same exit status as the console script, its standard output and error captured, an
exception that escapes it written as the traceback a process would print (status 1). What belongs
to a process is tested in a new one (``separate=True``, or any option of `subprocess.run`): its
start-up, signals, resource limits, umask, a lock another process holds, ``kill -9``. Each kind of
refusal keeps at least one test in a new process; the rest save the interpreter's start-up (about
five seconds on two cores, most of it importing torch and transformers).
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import traceback
from pathlib import Path

from voxdistill.cli import main

VOXDISTILL = [sys.executable, "-m", "voxdistill.cli"]


def voxdistill(*args, cwd: Path | None = None, separate: bool = False, prefix: tuple = (),
               **options) -> subprocess.CompletedProcess:
    """``voxdistill ARGS`` (run from ``cwd``): how it ended, as `subprocess.run` reports it. In a new
    process when ``separate``, started through ``prefix`` (e.g. setpriv) or given ``options``."""
    argv = [str(a) for a in args]
    if separate or prefix or options:
        return subprocess.run([*prefix, *VOXDISTILL, *argv], capture_output=True, text=True, cwd=cwd,
                              env=os.environ | {"PYTHONDONTWRITEBYTECODE": "1"}, **options)
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.chdir(cwd or os.getcwd()), contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            status = main(argv)
        except SystemExit as exit:  # argparse's refusals and --help
            status = exit.code if isinstance(exit.code, int) else int(exit.code is not None)
        except Exception:  # what a process would die of
            traceback.print_exc()
            status = 1
    return subprocess.CompletedProcess(["voxdistill", *argv], status, stdout.getvalue(), stderr.getvalue())


def assert_refused(result: subprocess.CompletedProcess, status: int, *named: str) -> None:
    """Exit ``status`` with one message naming everything in ``named``, and no traceback."""
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr
    for text in named:
        assert text in result.stderr, (text, result.stderr)
