"""Reference-free pseudo-label filters: Whisper's confidence signals, measured alike by both runtimes and
both decoding modes, recorded with every label, and the drops they make when the shards are merged."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import SPEECH
from tests.test_pseudo_label import pseudo_label_args, records
from voxdistill.audio import SAMPLE_RATE, load_audio
from voxdistill.cli import main
from voxdistill.data.manifest import Utterance, write_manifest
from voxdistill.decoding import DecodingOptions
from voxdistill.families import load_recogniser
from voxdistill.runtime import Runtime
from voxdistill.scoring.metrics import compression_ratio
from voxdistill.teacher.filters import REASONS, SIGNALS, LabelFilterError, LabelFilters, label_signals

TEACHER = "bundled:whisper-tiny.en"
NONE = ["--compression-ratio-threshold", "none", "--logprob-threshold", "none", "--no-speech-threshold", "none",
        "--repeated-ngram-threshold", "none", "--keep-empty"]
ALL_OFF = LabelFilters(compression_ratio_threshold=None, logprob_threshold=None, no_speech_threshold=None,
                       repeated_ngram_threshold=None, drop_empty=False)
SENTENCE = "It will be cold and windy tomorrow morning, so bring a warm coat."


def record(text: str, avg_logprob: float, no_speech_prob: float) -> dict:
    return {"text": text} | label_signals(text, avg_logprob, no_speech_prob)


def test_compression_ratio_sees_loops():
    assert compression_ratio(SENTENCE) < 1.2
    assert compression_ratio(" ".join(["I don't know what to do."] * 8)) > 2.4


@pytest.mark.parametrize("label, filters, reasons", [
    (record(SENTENCE, -0.2, 0.1), LabelFilters(), []),
    (record(" ".join(["I don't know what to do."] * 8), -0.3, 0.1), LabelFilters(),
     ["compression_ratio", "repeated_ngrams"]),
    (record("Thank you. Thank you. Thank you. Thank you.", -0.3, 0.1), LabelFilters(), ["repeated_ngrams"]),
    # Real sentences repeat a phrase now and then: 3 repeated 3-grams, kept.
    (record("The width of the band increases as the size of the drops increases, the size of the drops.", -0.2, 0.1),
     LabelFilters(), []),
    (record(SENTENCE, -1.3, 0.2), LabelFilters(), ["avg_logprob"]),
    (record("you", -1.5, 0.9), LabelFilters(), ["avg_logprob", "no_speech"]),  # Whisper's silence rule
    (record("you", -0.4, 0.9), LabelFilters(), []),  # ...which spares what the teacher is sure of
    (record("you", -0.4, 0.9), LabelFilters(no_speech_alone=True), ["no_speech"]),
    (record("you", -0.4, 0.9), LabelFilters(logprob_threshold=None), ["no_speech"]),  # as Whisper without one
    (record("...", -0.1, 0.2), LabelFilters(), ["empty"]),
    (record("", -0.1, 0.9), LabelFilters(no_speech_threshold=None), ["empty"]),
    (record(" ".join(["so"] * 40), -2.0, 0.9), ALL_OFF, []),
])
def test_drop_rules(label, filters, reasons):
    assert filters.reasons(label) == reasons


def test_thresholds_outside_their_signal_are_refused(capsys):
    with pytest.raises(LabelFilterError, match="logprob_threshold 0.5, no_speech_threshold 1.5"):
        LabelFilters(logprob_threshold=0.5, no_speech_threshold=1.5)
    args = pseudo_label_args(TEACHER, "m.jsonl", "out")
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--logprob-threshold", "low"])
    assert exit_info.value.code == 2
    assert "--logprob-threshold: got 'low'; give a number, or 'none' to turn it off" in capsys.readouterr().err
    assert main([*args, "--no-speech-threshold", "nan"]) == 2  # refused before the manifest is read
    assert "no_speech_threshold nan" in capsys.readouterr().err


def unlabelled_manifest(folder: Path, clips: dict[str, np.ndarray | Path]) -> Path:
    """A manifest without references: arrays are written as 16 kHz wav files, paths listed as they are."""
    utterances = []
    for name, clip in clips.items():
        if isinstance(clip, np.ndarray):
            sf.write(folder / f"{name}.wav", clip, SAMPLE_RATE)
            clip = folder / f"{name}.wav"
        utterances.append(Utterance(name, str(clip), round(len(load_audio(clip)) / SAMPLE_RATE, 3)))
    write_manifest(folder / "unlabelled.jsonl", utterances)
    return folder / "unlabelled.jsonl"


def labelled(out: Path) -> tuple[list[dict], list[dict], dict]:
    """The kept records, the dropped ones, the metadata."""
    dropped = [json.loads(line) for line in (out / "dropped.jsonl").read_text().splitlines()]
    return records(out), dropped, json.loads((out / "metadata.json").read_text())


def assert_merged_by_the_rules(out: Path, filters: LabelFilters) -> dict[str, int]:
    """Every record carries the signals; kept ones pass ``filters``, dropped ones fail them and say why;
    the metadata counts each reason. Returns the counts."""
    kept, dropped, metadata = labelled(out)
    assert all(set(SIGNALS) <= set(r) for r in kept + dropped)
    assert all(filters.reasons(r) == [] for r in kept)
    assert all(r["drop_reasons"] == filters.reasons(r) != [] for r in dropped)
    tally = {reason: sum(reason in r["drop_reasons"] for r in dropped) for reason in ("wer", *REASONS)}
    assert metadata["counts"]["dropped_by"] == tally and metadata["counts"]["dropped"] == len(dropped)
    assert metadata["filters"] == vars(filters)
    return tally


def shard_times(out: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in (out / "shards").iterdir()}


def test_a_looping_teacher_is_dropped_and_other_thresholds_relabel_nothing(tiny_random_whisper, speech_dir, tmp_path,
                                                                          capsys):
    """The random teacher loops ("...sudosudosudo") and is never sure: dropped, by compression ratio
    and log-probability; with every rule off, the same folder keeps everything without relabelling."""
    manifest = unlabelled_manifest(tmp_path, {name: speech_dir / f"{name}.wav" for name in SPEECH})
    out = tmp_path / "out"
    assert main(pseudo_label_args(tiny_random_whisper, manifest, out, "--top-k", "0", "--shard-size", "2")) == 0
    tally = assert_merged_by_the_rules(out, LabelFilters())
    assert tally["avg_logprob"] == len(SPEECH) and tally["compression_ratio"] >= 1
    assert f"0 kept, 3 dropped (compression_ratio {tally['compression_ratio']}, avg_logprob 3)" in capsys.readouterr().out

    labelled_at = shard_times(out)
    assert main(pseudo_label_args(tiny_random_whisper, manifest, out, "--top-k", "0", "--shard-size", "2", *NONE)) == 0
    assert shard_times(out) == labelled_at
    assert assert_merged_by_the_rules(out, ALL_OFF) == dict.fromkeys(("wer", *REASONS), 0)
    assert len(records(out)) == len(SPEECH)


def test_a_folder_of_an_older_voxdistill_is_refused(tiny_random_whisper, speech_dir, tmp_path, capsys):
    manifest = unlabelled_manifest(tmp_path, {"fox": speech_dir / "fox.wav"})
    out = tmp_path / "out"
    assert main(pseudo_label_args(tiny_random_whisper, manifest, out, "--top-k", "0")) == 0
    run = json.loads((out / "run.json").read_text())
    del run["signals"]
    (out / "run.json").write_text(json.dumps(run))
    assert main(pseudo_label_args(tiny_random_whisper, manifest, out, "--top-k", "0")) == 2
    assert "holds pseudo-labels of an older voxdistill, whose records lack the signals the filters read " \
           "(avg_logprob, no_speech_prob, compression_ratio, repeated_ngrams)" in capsys.readouterr().err


def silence_and_noise() -> dict[str, np.ndarray]:
    noise = np.random.default_rng(0).standard_normal(3 * SAMPLE_RATE).astype(np.float32)
    return {"zeros": np.zeros(3 * SAMPLE_RATE, dtype=np.float32), "noise": 0.01 * noise}


@pytest.mark.integration
def test_torch_and_ct2_measure_the_same_signals(speech_dir):
    """Greedy decoding measures them as it decodes, beam search in a teacher-forced pass after,
    CTranslate2 from its own scores: all agree where the tokens do."""
    clips = [load_audio(speech_dir / "weather.wav"), *silence_and_noise().values()]
    runs = {}
    for backend in ("torch", "ct2"):
        teacher = load_recogniser(TEACHER, Runtime(backend), threads=1)
        for beams in (1, 2):
            runs[backend, beams] = [teacher.decode_scored(teacher.encode([clip]), DecodingOptions(num_beams=beams),
                                                          len(clip) / SAMPLE_RATE)[0] for clip in clips]
        # In a batch, clips that end early (silence at step 2, speech at 17) are measured as alone.
        batch = teacher.decode_scored(teacher.encode(clips), DecodingOptions(), max(map(len, clips)) / SAMPLE_RATE)
        assert [d.tokens for d in batch] == [d.tokens for d in runs[backend, 1]]
        np.testing.assert_allclose([(d.avg_logprob, d.no_speech_prob) for d in batch],
                                   [(d.avg_logprob, d.no_speech_prob) for d in runs[backend, 1]], atol=1e-4)
    for beams in (1, 2):  # the runtimes agree, in each decoding mode
        torch_run, ct2_run = runs["torch", beams], runs["ct2", beams]
        assert [d.tokens for d in ct2_run] == [d.tokens for d in torch_run]
        np.testing.assert_allclose([(d.avg_logprob, d.no_speech_prob) for d in ct2_run],
                                   [(d.avg_logprob, d.no_speech_prob) for d in torch_run], atol=1e-3)
    greedy, beam = runs["torch", 1], runs["torch", 2]
    assert len(greedy[0].tokens) > 10 and greedy[0].no_speech_prob < 0.3 < 0.6 < greedy[1].no_speech_prob
    # Where greedy and beam search choose the same tokens (in noise greedy says "You", beam search
    # "you"), the values measured while decoding equal those of the teacher-forced pass.
    same = [(g, b) for g, b in zip(greedy, beam) if g.tokens == b.tokens]
    assert len(same) >= 2
    np.testing.assert_allclose([(g.avg_logprob, g.no_speech_prob) for g, _ in same],
                               [(b.avg_logprob, b.no_speech_prob) for _, b in same], atol=1e-4)


@pytest.mark.integration
def test_noise_is_dropped_as_non_speech_and_speech_kept(speech_dir, tmp_path, capsys):
    """tiny.en hears "you" in silence and noise with a high no-speech probability. Whisper's rule drops
    it where the teacher is unsure (noise); in digital silence it is sure (avg_logprob -0.4), and it
    is dropped because Silero VAD, asked about clips above the no-speech threshold, hears no speech
    there. Speech is never given to VAD (its no-speech probability is low)."""
    manifest = unlabelled_manifest(tmp_path, {"weather": speech_dir / "weather.wav",
                                              "report": speech_dir / "report.wav", **silence_and_noise()})
    out = tmp_path / "out"
    assert main(pseudo_label_args(TEACHER, manifest, out)) == 0  # top-k 16: the signals do not depend on it
    assert_merged_by_the_rules(out, LabelFilters())
    kept, dropped, _ = labelled(out)
    assert [r["id"] for r in kept] == ["weather", "report"]
    assert [(r["id"], r["drop_reasons"]) for r in dropped] == [("zeros", ["no_speech"]),
                                                               ("noise", ["avg_logprob", "no_speech"])]
    zeros = dropped[0]
    assert zeros["no_speech_prob"] > 0.9 and zeros["avg_logprob"] > -1 and zeros["text"].lower() == "you"
    assert zeros["vad_speech"] is False and dropped[1]["vad_speech"] is False
    assert all(r["no_speech_prob"] < 0.3 and r["avg_logprob"] > -0.5 and "vad_speech" not in r for r in kept)
    capsys.readouterr()

    assert main(pseudo_label_args(TEACHER, manifest, out, "--no-speech-alone")) == 0
    assert_merged_by_the_rules(out, LabelFilters(no_speech_alone=True))
    assert [r["id"] for r in records(out)] == ["weather", "report"]
    assert "2 kept, 2 dropped (avg_logprob 1, no_speech 2)" in capsys.readouterr().out
