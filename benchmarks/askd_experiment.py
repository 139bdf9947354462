"""The ASKD comparison over several seeds: `voxdistill bench` (teacher, CE-only, KD and ASKD students
of the same student, data and step budget) once per seed, then WER per test set as the mean and
spread over seeds. Each seed is its own corpus draw, data order and initialisation.

    .venv/bin/python benchmarks/askd_experiment.py [--seeds 0 1] [--steps 200] [--work DIR]
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from voxdistill.console import quiet_transformers
from voxdistill.paths import cache_dir
from voxdistill.pipeline import EVAL_SETS, PipelineConfig, run_pipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", default="bundled:whisper-tiny.en")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--work", type=Path, default=cache_dir() / "askd-experiment")
    args = parser.parse_args()
    quiet_transformers()
    wers: dict[str, dict[str, list[float]]] = {}
    for seed in args.seeds:
        config = PipelineConfig(out=args.work / f"seed{seed}", teacher=args.teacher, recipes=("ce", "kd", "askd"),
                                steps=args.steps, seed=seed)
        result = run_pipeline(config, progress=False)
        for record in result["models"]:
            for name in EVAL_SETS:
                wers.setdefault(record["model"], {}).setdefault(name, []).append(record["sets"][name]["wer"])

    print(f"\nteacher {args.teacher}, {args.steps} steps per recipe, seeds {args.seeds}; "
          f"WER mean (min–max over seeds); reports in {args.work}/seed*/report.html")
    print(f"{'model':16} " + " ".join(f"{name:>22}" for name in EVAL_SETS))
    for model, by_set in wers.items():
        cells = []
        for name in EVAL_SETS:
            values = by_set[name]
            spread = f" ({min(values):.1%}–{max(values):.1%})" if len(values) > 1 else ""
            cells.append(f"{statistics.mean(values):.1%}{spread}")
        print(f"{model:16} " + " ".join(f"{c:>22}" for c in cells))


if __name__ == "__main__":
    main()
