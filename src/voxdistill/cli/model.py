"""voxdistill model info: a model's size, shape and teacher fingerprint."""

from __future__ import annotations

import argparse
import json

from voxdistill.cli.options import command_group, model_argument


def register(sub) -> None:
    model_sub = command_group(sub, "model", help="inspect models",
                              description="Inspect a model: size, shape and teacher fingerprint.")
    info = model_sub.add_parser("info", help="print size, shape and fingerprint of a model",
                                description="Load a model (converting a bundled one on first use) "
                                            "and print its size, shape and fingerprint.")
    model_argument(info)
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(func=run_info)


def run_info(args: argparse.Namespace) -> int:
    from voxdistill.models.loading import model_info

    info = model_info(args.model)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for key, value in info.items():
            print(f"{key:15} {value}")
    return 0
