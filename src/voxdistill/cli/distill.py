"""voxdistill distill: train a student from a YAML config, or print the config it resolves to."""

from __future__ import annotations

import argparse
from pathlib import Path

from voxdistill.cli.options import at_least


def register(sub) -> None:
    p = sub.add_parser(
        "distill", help="train a student with cross-entropy and KL to the teacher",
        description="Train a student from a YAML config (see configs/). Every key, with its default: "
                    "voxdistill distill --print-config. Resumes from the run folder's latest "
                    "checkpoint, with the settings the run was started with; SIGINT/SIGTERM save a "
                    "checkpoint and stop. A second run on the same run folder while one is running is "
                    "refused. Runs on several processes under accelerate launch.")
    p.add_argument("--config", type=Path, default=None,
                   help="YAML run config; required to train unless --set gives every key without a "
                        "default (student, out, data.train_manifest)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set optim.lr=1e-4 (repeatable); a mapping given for "
                        "a section, e.g. --set 'optim={lr: 1e-4}', changes only the keys it names")
    p.add_argument("--steps-this-run", type=at_least(1), default=None, metavar="N",
                   help="stop after N steps with a checkpoint; the same command continues the run")
    p.add_argument("--print-config", action="store_true",
                   help="print the resolved config (every key; defaults, --config and --set applied) as "
                        "YAML and exit without training")
    p.add_argument("--allow-config-change", action="store_true",
                   help="resume a run folder with settings other than those it was run with (otherwise "
                        "refused, naming the keys); the change and its step are recorded in run.json")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from voxdistill.config import load_config, resolved_config_yaml
    from voxdistill.distill.config import DistillConfig

    if args.print_config:
        print(resolved_config_yaml(DistillConfig, args.config, args.set), end="")
        return 0
    from voxdistill.families import distill

    config = load_config(DistillConfig, args.config, args.set)
    result = distill(config, steps_this_run=args.steps_this_run, allow_config_change=args.allow_config_change)
    best = "" if result.state.best_wer is None else \
        f"; best dev WER {result.state.best_wer:.1%} at step {result.state.best_step}"
    print(f"{result.state.step} steps -> {result.last_checkpoint}{best}")
    return 0
