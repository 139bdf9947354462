"""voxdistill report: one HTML page from distillation runs and evaluations."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser(
        "report", help="one self-contained HTML page from distillation runs and evaluations",
        description="PATH is a distillation run folder (log.jsonl), an evaluation JSON (from "
                    "voxdistill evaluate), or a folder searched for both (e.g. a demo output folder). "
                    "The page has training curves, kd weight and phase, dev WER, the teacher-vs-"
                    "students table per domain, speed and size bars, and transcripts that differ.")
    p.add_argument("paths", type=Path, nargs="+", metavar="PATH",
                   help="run folders, evaluation JSON files, or folders searched for both (repeatable)")
    p.add_argument("--out", type=Path, required=True, help="HTML file to write")
    p.add_argument("--title", default="voxdistill report", help="page title")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from voxdistill.evaluation.report import build_report

    print(f"report: {build_report(args.paths, args.out, title=args.title)}")
    return 0
