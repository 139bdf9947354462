"""The student-shape sweep's Pareto front (WER against latency), and its plot in the report, from a
hand-made shapes.json: no model is built or trained."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from voxdistill.evaluation.pareto import dominates, pareto_front
from voxdistill.evaluation.report import build_report
from voxdistill.evaluation.report_inputs import ReportInputError, collect

# (shape, role, WER on test-ood-voice, latency p50 ms, on the Pareto front)
POINTS = [
    ("whisper-tiny.en", "teacher", 0.19, 470.0, True),  # the most accurate
    ("e2d2", "student", 0.60, 150.0, True),  # the fastest
    ("d1", "student", 0.45, 180.0, True),
    ("d2", "student", 0.39, 270.0, True),
    ("d3", "student", 0.39, 330.0, False),  # d2's WER, slower: dominated by d2 (and by d4)
    ("d4", "student", 0.35, 330.0, True),  # d3's latency, lower WER
    ("d2w30", "student", 0.40, 400.0, False),  # slower and worse than d2
]


def test_a_point_dominates_only_when_no_worse_on_every_measure_and_better_on_one():
    assert dominates((0.3, 100), (0.3, 200)) and dominates((0.2, 100), (0.3, 200))
    assert not dominates((0.3, 100), (0.3, 100))  # equal
    assert not dominates((0.2, 300), (0.3, 200))  # a trade-off


def test_pareto_front_of_hand_made_points():
    assert pareto_front([(wer, latency) for _, _, wer, latency, _ in POINTS]) == [p[-1] for p in POINTS]


def test_equal_points_share_the_front_and_unmeasured_points_are_never_on_it():
    assert pareto_front([(0.3, 100.0), (0.3, 100.0), (0.4, 100.0)]) == [True, True, False]
    assert pareto_front([(0.3, 100.0), None, (0.2, 200.0)]) == [True, False, True]
    assert pareto_front([None]) == [False] and pareto_front([]) == []
    assert pareto_front([(0.5, 50.0)]) == [True]


def write_shapes(folder: Path) -> Path:
    """A shapes.json as benchmarks/student_shapes.py writes it, for POINTS."""
    front = pareto_front([(wer, latency) for _, _, wer, latency, _ in POINTS])
    rows = [{"shape": shape, "role": role, "model": f"shapes/{shape}/model", "parameters": 30_000_000,
             "encoder_layers": [0, 1, 2, 3], "decoder_layers": [0, 3], "window_seconds": 10,
             "wer": {"test-clean": wer - 0.02, "test-ood-voice": wer, "test-ood-noise": wer + 0.3},
             "latency_ms_p50": latency, "speedup": 470.0 / latency, "pareto": on_front}
            for (shape, role, wer, latency, _), on_front in zip(POINTS, front)]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "shapes.json"
    path.write_text(json.dumps({"teacher": "whisper-tiny.en", "pareto_set": "test-ood-voice",
                                "sets": ["test-clean", "test-ood-voice", "test-ood-noise"], "rows": rows}))
    return path


def test_report_of_a_folder_holding_shapes_json_draws_wer_against_latency(tmp_path):
    shapes = write_shapes(tmp_path / "demo" / "shapes")
    page = build_report([tmp_path / "demo"], tmp_path / "report.html").read_text()
    figure = re.search(r'<figure class="plot" id="wer-latency"><svg.*?</figure>', page, re.S)
    assert figure is not None
    assert "WER on test-ood-voice against latency p50" in figure.group(0)
    assert '<a href="#shapes">Student shapes</a>' in page and str(shapes) in page
    assert "No evaluation file" in page  # the sweep alone holds no metrics.json


def test_shapes_json_named_directly_is_read_and_a_bad_one_is_a_typed_error(tmp_path):
    shapes = write_shapes(tmp_path)
    found = collect([shapes])
    assert [s.path for s in found.shape_sweeps] == [shapes] and not found.evaluations
    assert [row["pareto"] for row in found.shape_sweeps[0].table["rows"]] == [p[-1] for p in POINTS]
    shapes.write_text(json.dumps({"rows": [{"shape": "d2"}]}))
    with pytest.raises(ReportInputError, match=r"shapes\.json: not an output of benchmarks/student_shapes\.py"):
        collect([shapes])
