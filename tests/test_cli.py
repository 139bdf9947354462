"""The command line: help for every subcommand, transcription output, and every bad-audio case of
RELIABILITY item 6 through `voxdistill transcribe`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voxdistill.audio import load_audio
from voxdistill.cli import build_parser, main

MODEL = "bundled:whisper-tiny.en"


def subcommand_paths(parser, prefix=()):
    for action in parser._subparsers._group_actions if parser._subparsers else []:
        for name, sub in action.choices.items():
            yield prefix + (name,)
            yield from subcommand_paths(sub, prefix + (name,))


def test_every_subcommand_has_help(capsys):
    paths = list(subcommand_paths(build_parser()))
    assert ("transcribe",) in paths and ("model", "info") in paths and ("demo",) in paths
    for path in paths:
        with pytest.raises(SystemExit) as exit_info:
            main([*path, "--help"])
        assert exit_info.value.code == 0
        out = capsys.readouterr().out
        assert out.startswith("usage: voxdistill " + " ".join(path))


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def write(path: Path, audio: np.ndarray, rate: int, subtype: str = "PCM_16") -> Path:
    sf.write(path, audio, rate, subtype=subtype)
    return path


@pytest.fixture
def fox(speech_dir) -> np.ndarray:
    return load_audio(speech_dir / "fox.wav")


def bad_files(tmp_path: Path, fox: np.ndarray) -> dict[str, tuple[Path, str]]:
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(np.random.default_rng(0).bytes(4000))
    no_samples = write(tmp_path / "nosamples.wav", np.zeros(0, np.float32), 16000)
    with_nan = fox.copy()
    with_nan[100:110] = np.nan
    with_inf = fox.copy()
    with_inf[5] = np.inf
    too_long = np.tile(fox, int(31 * 16000 / len(fox)) + 1)
    return {
        "missing": (tmp_path / "missing.wav", "file not found"),
        "directory": (tmp_path, "is a directory"),
        "empty": (empty, "file is empty"),
        "corrupt": (corrupt, "cannot decode"),
        "no samples": (no_samples, "contains no samples"),
        "nan": (write(tmp_path / "nan.wav", with_nan, 16000, "FLOAT"), "10 non-finite"),
        "inf": (write(tmp_path / "inf.wav", with_inf, 16000, "FLOAT"), "1 non-finite"),
        "odd rate": (write(tmp_path / "rate.wav", fox[:3000], 2000), "unusual sample rate 2000 Hz"),
        "too long": (write(tmp_path / "long.wav", too_long, 16000), "longer than the 30 s limit"),
    }


@pytest.mark.parametrize("case", ["missing", "directory", "empty", "corrupt", "no samples", "nan",
                                  "inf", "odd rate", "too long"])
def test_bad_audio_exits_2_naming_the_file(case, tmp_path, fox, capsys):
    path, reason = bad_files(tmp_path, fox)[case]
    good = write(tmp_path / "good.wav", fox, 16000)
    code, out, err = run_cli(capsys, "transcribe", MODEL, str(good), str(path))
    assert code == 2
    assert out == ""  # nothing is transcribed when any input is bad
    assert f"error: {path}: " in err
    assert reason in err


def test_conversions_warn_and_transcribe(tmp_path, fox, capsys):
    from scipy.signal import resample_poly

    stereo = write(tmp_path / "stereo.wav", np.stack([fox, fox], axis=1), 16000)
    rate_44k = write(tmp_path / "44k.wav", resample_poly(fox, 441, 160).astype(np.float32), 44100)
    long_clip = write(tmp_path / "long.wav", np.concatenate([fox, np.zeros(30 * 16000, np.float32), fox]), 16000)
    code, out, err = run_cli(capsys, "transcribe", MODEL, str(stereo), str(rate_44k), str(long_clip),
                             "--long-audio", "split", "--json")
    assert code == 0
    assert f"warning: {stereo}: 2 channels downmixed to mono" in err
    assert f"warning: {rate_44k}: resampled 44100 Hz -> 16000 Hz" in err
    assert f"warning: {long_clip}: audio is" in err and "overlapping windows" in err
    results = json.loads(out)
    assert [r["audio"] for r in results] == [str(stereo), str(rate_44k), str(long_clip)]
    for r in results[:2]:
        assert "quick" in r["text"].lower() and "lazy" in r["text"].lower()
    # The long clip holds the sentence twice, 30 s of silence apart: two chunks, nothing shared at the seam.
    assert results[2]["text"].lower().count("lazy") == 2


def test_console_script_prints_one_line_per_file(speech_dir):
    exe = Path(sys.executable).with_name("voxdistill")
    files = [str(speech_dir / "fox.wav"), str(speech_dir / "report.wav")]
    result = subprocess.run([str(exe), "transcribe", MODEL, *files], capture_output=True, text=True,
                            env=os.environ.copy())
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().split("\n")
    assert [line.split("\t")[0] for line in lines] == files
    assert "report" in lines[1].split("\t")[1].lower()


def test_evaluate_takes_every_manifest_however_given():
    """A repeated --manifest adds to the sets instead of silently replacing the earlier ones."""
    args = build_parser().parse_args(["evaluate", "--model", "m", "--manifest", "a.jsonl", "b.jsonl",
                                      "--manifest", "c.jsonl", "--out", "x.json"])
    assert args.manifest == [Path("a.jsonl"), Path("b.jsonl"), Path("c.jsonl")]
