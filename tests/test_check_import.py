"""`voxdistill corpus check` and `corpus import` on real files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from voxdistill.cli import main
from voxdistill.data.manifest import read_manifest


@pytest.fixture
def tone_dir(tmp_path):
    folder = tmp_path / "clips"
    (folder / "sub").mkdir(parents=True)
    t = np.arange(16000) / 16000
    sf.write(folder / "one.wav", (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000)
    sf.write(folder / "sub" / "two.flac", (0.3 * np.sin(2 * np.pi * 330 * t[:8000])).astype(np.float32), 16000)
    (folder / "one.txt").write_text("first clip\n")
    (folder / "notes.md").write_text("not audio")
    return folder


def test_import_folder_with_sidecars(tone_dir, tmp_path, capsys):
    assert main(["corpus", "import", str(tone_dir), "--out", str(tmp_path / "m"), "--domain", "lab"]) == 0
    utts = list(read_manifest(tmp_path / "m" / "clips.jsonl"))
    assert [(u.id, u.text, u.duration, u.domain) for u in utts] == [
        ("one", "first clip", 1.0, "lab"), ("sub_two", None, 0.5, "lab")]
    assert main(["corpus", "check", str(tmp_path / "m" / "clips.jsonl")]) == 0
    assert "0 problem(s)" in capsys.readouterr().out


def test_import_saved_datasets_dataset(tmp_path, speech_dir):
    datasets = pytest.importorskip("datasets")
    rows = {"audio": [str(speech_dir / "fox.wav"), str(speech_dir / "report.wav")],
            "sentence": ["The quick brown fox.", "Please send the report."]}
    ds = datasets.Dataset.from_dict(rows).cast_column("audio", datasets.Audio(decode=False))
    datasets.DatasetDict({"test": ds}).save_to_disk(str(tmp_path / "saved"))
    assert main(["corpus", "import", str(tmp_path / "saved"), "--out", str(tmp_path / "out")]) == 0
    utts = list(read_manifest(tmp_path / "out" / "test.jsonl"))
    assert [u.text for u in utts] == rows["sentence"]
    for u in utts:
        path = u.audio_path(tmp_path / "out")
        assert path.is_file() and abs(sf.info(str(path)).duration - u.duration) < 1e-3
    assert main(["corpus", "check", str(tmp_path / "out" / "test.jsonl")]) == 0


def test_check_reports_every_problem_with_ids(tmp_path, capsys):
    good = tmp_path / "good.wav"
    sf.write(good, np.zeros(16000, np.float32) + 0.1, 16000)
    stereo = tmp_path / "stereo.wav"
    sf.write(stereo, np.full((16000, 2), 0.1, np.float32), 16000)
    nan = tmp_path / "nan.wav"
    sf.write(nan, np.full(16000, np.nan, np.float32), 16000, subtype="FLOAT")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    lines = [
        {"id": "ok", "audio_filepath": "good.wav", "duration": 1.0, "text": "fine"},
        {"id": "st", "audio_filepath": "stereo.wav", "duration": 1.0},
        {"id": "ok", "audio_filepath": "good.wav", "duration": 1.0},
        {"id": "gone", "audio_filepath": "missing.wav", "duration": 1.0},
        {"id": "nan", "audio_filepath": "nan.wav", "duration": 1.0},
        {"id": "empty", "audio_filepath": "empty.wav", "duration": 1.0},
        {"id": "long", "audio_filepath": "good.wav", "duration": 4.0},
        {"id": "blank", "audio_filepath": "good.wav", "duration": 1.0, "text": "  "},
    ]
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("\n".join(json.dumps(x) for x in lines) + "\n{broken\n")
    assert main(["corpus", "check", str(manifest)]) == 1
    out = capsys.readouterr().out
    expected = [
        (2, "st", "note", "2 channels downmixed to mono"),
        (3, "ok", "problem", "duplicate id (first at"),
        (4, "gone", "problem", "file not found"),
        (5, "nan", "problem", "non-finite"),
        (6, "empty", "problem", "file is empty"),
        (7, "long", "problem", "duration says 4.00 s but"),
        (8, "blank", "problem", "empty text"),
        (9, None, "problem", "not valid JSON"),
    ]
    for line, utt_id, kind, message in expected:
        prefix = f"{kind}: {manifest}:{line}" + (f" [{utt_id}]" if utt_id else "")
        assert any(row.startswith(prefix) and message in row for row in out.splitlines()), (prefix, message)
    assert f"{manifest}: 7 problem(s), 1 note(s)" in out


def test_check_of_a_missing_manifest_fails(tmp_path, capsys):
    assert main(["corpus", "check", str(tmp_path / "none.jsonl")]) == 1
    assert "manifest not found" in capsys.readouterr().out
