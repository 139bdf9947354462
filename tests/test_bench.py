"""``voxdistill bench``'s baselines on a tiny random teacher and the small corpus of test_pipeline:
the teacher fine-tuned on the same labels (a full copy of the teacher, not the demo's student), and
every recipe over several distillation seeds, summarised as WER mean and spread over seeds."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
import yaml

from tests.conftest import decode_each_window_once
from tests.test_pipeline import SMALL
from voxdistill.cli import build_parser
from voxdistill.config import load_config, to_dict
from voxdistill.data.corpus import PRESETS
from voxdistill.distill.config import DistillConfig
from voxdistill.errors import VoxdistillError
from voxdistill.evaluation.seeds import aggregate_over_seeds, format_over_seeds
from voxdistill.pipeline import CONFIGS, SYNTHETIC_TEST_SETS, PipelineConfig, recipe_config, run_pipeline


def test_teacher_ft_is_ce_on_the_same_labels_from_a_copy_of_the_teacher(tmp_path):
    # Only the starting point may differ from the CE-only recipe: same labels, loss, optimiser, budget.
    ce, teacher_ft = (to_dict(load_config(DistillConfig, CONFIGS / f"{name}.yaml")) for name in ("ce", "teacher-ft"))
    differing = {key for key in ce if ce[key] != teacher_ft[key]}
    assert differing == {"student", "out"}
    assert teacher_ft["teacher"]["mode"] == "none" and teacher_ft["loss"]["kd_weight"] == 0
    assert teacher_ft["data"]["labels"] == "prefer_reference"

    config = PipelineConfig(out=tmp_path / "bench", recipes=("ce", "teacher-ft"), steps=8)
    assert recipe_config(config, "teacher-ft").student == config.out / "teacher-student"
    assert recipe_config(config, "ce").student == config.out / "student"
    assert recipe_config(config, "ce", seed=2).out == config.out / "runs" / "ce-seed2"
    assert recipe_config(config, "ce", seed=2).seed == 2
    assert recipe_config(config, "ce").out == config.out / "runs" / "ce"  # the demo's seed keeps its folder

    # The default recipes of `voxdistill bench` all exist in configs/.
    args = build_parser().parse_args(["bench"])
    assert args.recipes == ["ce", "kd", "askd", "teacher-ft"] and args.seeds is None
    PipelineConfig(out=tmp_path / "bench", recipes=tuple(args.recipes))
    assert build_parser().parse_args(["bench", "--seeds", "0", "1", "2"]).seeds == [0, 1, 2]
    with pytest.raises(VoxdistillError, match="seeds must be"):
        PipelineConfig(out=tmp_path / "bench", seeds=(1, 1))
    assert not (tmp_path / "bench").exists()


@pytest.fixture(scope="module")
def bench(tiny_random_whisper, tmp_path_factory):
    """The teacher-ft recipe over seeds 0 and 1, 4 steps each: the pipeline's printed lines and result.
    (One recipe keeps the test short; the aggregation over several is tested on its own below.)"""
    lines: list[str] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(PRESETS, "small", SMALL)
        decode_each_window_once(patch)
        config = PipelineConfig(out=tmp_path_factory.mktemp("bench") / "bench", teacher=str(tiny_random_whisper),
                                recipes=("teacher-ft",), preset="small", steps=4, seeds=(0, 1), latency_clips=1,
                                deployed_runtime="torch:float32")  # CTranslate2 int8: test_pipeline
        result = run_pipeline(config, progress=False, say=lines.append)
    return config, result, lines


def test_teacher_ft_trains_from_a_full_copy_of_the_teacher(bench):
    config, result, lines = bench
    out = config.out
    full = {"encoder_layers": [0, 1], "decoder_layers": [0, 1], "window_seconds": {"teacher": 30, "student": 30}}
    for folder in (out / "teacher-student", out / "runs" / "teacher-ft" / "model",
                   out / "runs" / "teacher-ft-seed1" / "model"):
        record = json.loads((folder / "student.json").read_text())
        assert {key: record[key] for key in full} == full, folder
    trained = json.loads((out / "runs" / "teacher-ft" / "model" / "student.json").read_text())["distilled"]
    assert trained["teacher_mode"] == "none" and trained["steps"] == 4
    saved = yaml.safe_load((out / "runs" / "teacher-ft" / "config.yaml").read_text())
    assert saved["student"] == str(out / "teacher-student") and saved["data"]["labels"] == "prefer_reference"
    assert not (out / "student").exists()  # no recipe here trains the demo's student, so none is built
    # corpus, real speech (none in this preset), pseudo-labels, the teacher's copy, 2 seeds, evaluation,
    # model cards, report
    assert [line.split("]")[0] for line in lines if line.startswith("[")] == [f"[{i}/9" for i in range(1, 10)]


def test_seeds_give_a_run_per_seed_and_their_mean_and_spread(bench):
    config, result, lines = bench
    out = config.out
    for seed, folder in ((0, "teacher-ft"), (1, "teacher-ft-seed1")):
        saved = yaml.safe_load((out / "runs" / folder / "config.yaml").read_text())
        assert saved["seed"] == seed and (out / "runs" / folder / "model" / "model.safetensors").is_file()

    # One evaluation holds the teacher and every run; the aggregates come from its numbers.
    metrics = json.loads((out / "eval" / "metrics.json").read_text())
    assert [m["model"] for m in metrics["models"]][1:] == ["teacher-ft", "teacher-ft-seed1"]
    wer = {m["model"]: {name: m["sets"][name]["wer"] for name in SYNTHETIC_TEST_SETS} | {"all": m["overall"]["wer"]}
           for m in metrics["models"]}
    over_seeds = json.loads((out / "eval" / "bench.json").read_text())
    assert over_seeds == result["over_seeds"] and over_seeds["seeds"] == [0, 1]
    table = "\n".join(lines)
    # The seed tables, one block per set: its name, the teacher's row, a row per recipe.
    blocks = {block.split()[0]: block.splitlines() for block in table.split("WER over seeds 0, 1")[1].split("\n\n")[1:]}
    for name in [*SYNTHETIC_TEST_SETS, "all"]:
        assert over_seeds["sets"][name]["teacher_wer"] == wer[metrics["model"]][name]
        row = over_seeds["sets"][name]["recipes"]["teacher-ft"]
        wers = [wer["teacher-ft"][name], wer["teacher-ft-seed1"][name]]
        assert row["wer"] == wers and row["n"] == 2 and row["seeds"] == [0, 1]
        assert row["wer_mean"] == pytest.approx(statistics.mean(wers))
        assert row["wer_std"] == pytest.approx(statistics.stdev(wers))
        assert row["speedup_mean"] > 0
        assert blocks[name][2].split() == ["teacher-ft", f"{row['wer_mean']:.1%}", f"{row['wer_std']:.1%}", "2",
                                           f"{row['speedup_mean']:.2f}x"]
    # The per-model table still comes first.
    assert table.index("WER (CER)") < table.index("WER over seeds 0, 1")


def _record(model: str, wers: dict[str, float], p50_ms: float | None) -> dict:
    sets = {name: {"wer": wer, "latency_ms_p50": p50_ms} for name, wer in wers.items()}
    overall = {"wer": sum(wers.values()) / len(wers), "latency_ms_p50": p50_ms}
    return {"model": model, "source": f"runs/{model}/model", "sets": sets, "overall": overall}


def test_aggregate_over_seeds_against_hand_computed_values():
    result = {"models": [
        _record("teacher", {"clean": 0.1, "noise": 0.5}, 100.0),
        _record("ce", {"clean": 0.2, "noise": 0.6}, 50.0),
        _record("ce-seed1", {"clean": 0.3, "noise": 0.6}, 40.0),
        _record("ce-seed2", {"clean": 0.4, "noise": 0.6}, 50.0),
        _record("kd", {"clean": 0.25, "noise": 0.7}, None),  # latency not timed
    ]}
    runs = {"ce": {0: "runs/ce/model", 1: "runs/ce-seed1/model", 2: "runs/ce-seed2/model"},
            "kd": {0: "runs/kd/model"}}
    aggregate = aggregate_over_seeds(result, runs)
    assert aggregate["teacher"] == "teacher" and aggregate["seeds"] == [0, 1, 2]
    assert list(aggregate["sets"]) == ["clean", "noise", "all"]
    ce = aggregate["sets"]["clean"]["recipes"]["ce"]
    assert ce["runs"] == ["ce", "ce-seed1", "ce-seed2"] and ce["n"] == 3
    assert ce["wer_mean"] == pytest.approx(0.3) and ce["wer_std"] == pytest.approx(0.1)  # sample deviation
    assert ce["speedup"] == [2.0, 2.5, 2.0] and ce["speedup_mean"] == pytest.approx(6.5 / 3)
    assert aggregate["sets"]["noise"]["recipes"]["ce"]["wer_std"] == pytest.approx(0.0)
    kd = aggregate["sets"]["clean"]["recipes"]["kd"]
    assert kd["n"] == 1 and kd["wer_std"] is None and kd["speedup_mean"] is None
    assert aggregate["sets"]["all"]["teacher_wer"] == pytest.approx(0.3)

    table = format_over_seeds(aggregate).splitlines()
    assert "ce              30.0%   10.0%     3     2.17x" in table  # width 12: the shortest
    assert "kd              25.0%       -     1         -" in table
    assert "teacher         10.0%" in table


def test_recipes_ship_in_the_wheel(tmp_path):
    """The recipes are package data: an installed wheel finds them, not only a checkout."""
    import subprocess
    import sys
    import zipfile

    import voxdistill

    root = Path(voxdistill.__file__).resolve().parents[2]
    assert CONFIGS.parent == Path(voxdistill.__file__).resolve().parent  # found inside the package
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                             "-w", str(tmp_path), str(root)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    wheel = next(tmp_path.glob("voxdistill-*.whl"))
    shipped = {Path(name).name for name in zipfile.ZipFile(wheel).namelist() if name.startswith("voxdistill/recipes/")}
    assert shipped == {p.name for p in CONFIGS.glob("*.yaml")} >= {"ce.yaml", "kd.yaml", "askd.yaml", "teacher-ft.yaml"}
    assert (root / "configs" / "askd.yaml").read_text() == (CONFIGS / "askd.yaml").read_text()  # the checkout's link
