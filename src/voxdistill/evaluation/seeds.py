"""Recipes trained once per seed, summarised (``voxdistill bench --seeds``): for every evaluation set,
each recipe's WER as the mean and sample standard deviation over its seeds, and its mean speed-up
over the teacher. One seed on a few dozen utterances a set cannot tell recipes a few points apart;
the spread over seeds says how far apart they must be."""

from __future__ import annotations

import statistics
from collections.abc import Mapping

ALL = "all"  # every set together, as in the per-model table


def aggregate_over_seeds(result: Mapping, runs: Mapping[str, Mapping[int, str]]) -> dict:
    """``result`` is an ``evaluate`` result with the teacher first; ``runs`` maps each recipe to
    ``{seed: model source}`` of its runs, as evaluated there. The JSON-ready summary."""
    records = {record["source"]: record for record in result["models"]}
    teacher = result["models"][0]
    sets = {}
    for name in [*teacher["sets"], ALL]:
        teacher_scores = _scores(teacher, name)
        recipes = {}
        for recipe, by_seed in runs.items():
            scores = [_scores(records[source], name) for source in by_seed.values()]
            wers = [s["wer"] for s in scores]
            speedups = [_speedup(teacher_scores, s) for s in scores]
            recipes[recipe] = {
                "seeds": list(by_seed), "runs": [records[source]["model"] for source in by_seed.values()],
                "n": len(wers), "wer": wers, "wer_mean": statistics.mean(wers),
                "wer_std": statistics.stdev(wers) if len(wers) > 1 else None,  # sample (n - 1)
                "speedup": speedups,
                "speedup_mean": None if None in speedups else statistics.mean(speedups),
            }
        sets[name] = {"teacher_wer": teacher_scores["wer"], "recipes": recipes}
    seeds = sorted({seed for by_seed in runs.values() for seed in by_seed})
    return {"teacher": teacher["model"], "seeds": seeds, "sets": sets}


def _scores(record: Mapping, name: str) -> Mapping:
    return record["overall"] if name == ALL else record["sets"][name]


def _speedup(teacher: Mapping, student: Mapping) -> float | None:
    """The teacher's p50 latency over the student's (None when latency was not timed)."""
    if teacher["latency_ms_p50"] is None or student["latency_ms_p50"] is None:
        return None
    return teacher["latency_ms_p50"] / student["latency_ms_p50"]


def format_over_seeds(aggregate: Mapping) -> str:
    """One table per set: recipe, WER mean ± standard deviation, seeds, mean speed-up."""
    seeds = ", ".join(map(str, aggregate["seeds"]))
    lines = [f"WER over seeds {seeds}: mean ± sample standard deviation; speed-up is the teacher's p50 "
             f"latency over the student's, averaged over seeds"]
    sets = aggregate["sets"]
    width = max(12, len(aggregate["teacher"]), *map(len, sets), *(len(r) for s in sets.values() for r in s["recipes"]))
    for name, by_set in sets.items():
        rows = by_set["recipes"]
        lines += ["", f"{name:{width}} {'WER':>8} {'± std':>7} {'seeds':>5} {'speed-up':>9}",
                  f"{aggregate['teacher']:{width}} {by_set['teacher_wer']:8.1%}"]
        for recipe, row in rows.items():
            std = "-" if row["wer_std"] is None else f"{row['wer_std']:.1%}"
            speedup = "-" if row["speedup_mean"] is None else f"{row['speedup_mean']:.2f}x"
            lines.append(f"{recipe:{width}} {row['wer_mean']:8.1%} {std:>7} {row['n']:>5} {speedup:>9}")
    return "\n".join(lines)
