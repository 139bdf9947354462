"""The checks on every decoded window (`runtime.checks`): silence, white noise and a steady tone give
empty transcripts, with each decision recorded; a looping model is decoded again at higher
temperatures; speech passes untouched; the flags turn each rule off."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voxdistill.audio import SAMPLE_RATE, load_audio
from voxdistill.decoding import NO_CHECKS, DecodingOptions, SpeechChecks
from voxdistill.errors import VoxdistillError
from voxdistill.families import load_recogniser
from voxdistill.decoding import Decoded
from voxdistill.runtime.checks import DECISIONS, _judge, decode_checked, holds_speech

TEACHER = "bundled:whisper-tiny.en"
CHECKS_OFF = ("--no-speech-threshold", "none", "--logprob-threshold", "none", "--compression-ratio-threshold",
              "none", "--temperature-fallback", "none", "--no-vad")


def non_speech(seconds: float = 3.0) -> dict[str, np.ndarray]:
    """Digital silence, white noise and a steady 440 Hz tone."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    noise = np.random.default_rng(0).standard_normal(len(t))
    return {"silence": np.zeros(len(t), dtype=np.float32), "white": (0.1 * noise).astype(np.float32),
            "tone": (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)}


def written(folder: Path, clips: dict[str, np.ndarray]) -> list[Path]:
    paths = []
    for name, audio in clips.items():
        paths.append(folder / f"{name}.wav")
        sf.write(paths[-1], audio, SAMPLE_RATE, subtype="FLOAT")
    return paths


def transcribe_json(*args) -> tuple[subprocess.CompletedProcess, list[dict] | None]:
    result = subprocess.run([sys.executable, "-m", "voxdistill.cli", "transcribe", *map(str, args), "--json"],
                            capture_output=True, text=True, env=os.environ.copy())
    return result, json.loads(result.stdout) if result.returncode == 0 else None


def test_vad_hears_speech_and_not_silence_noise_or_tone(speech_dir):
    assert all(holds_speech(load_audio(path)) for path in sorted(speech_dir.glob("*.wav")))
    assert not any(holds_speech(clip) for clip in non_speech().values())


def test_a_looping_model_is_decoded_again_and_speech_it_is_sure_of_is_not(tiny_random_whisper, speech_dir):
    """The random model loops and is never sure: every window is sampled again at each temperature
    and, VAD hearing speech, kept as unsure: the decoding that does not loop, or if each does the most
    likely one (T=0 among them); with the checks off it is decoded once and kept."""
    recogniser = load_recogniser(str(tiny_random_whisper))
    clips = [load_audio(path) for path in sorted(speech_dir.glob("*.wav"))[:2]]
    options = DecodingOptions(max_new_tokens=16, max_tokens_per_second=None)
    checked = decode_checked(recogniser, clips, options)
    assert [c.decision for c in checked] == ["unsure", "unsure"] and all(c.tokens for c in checked)
    once = decode_checked(recogniser, clips, DecodingOptions(max_new_tokens=16, max_tokens_per_second=None,
                                                             checks=NO_CHECKS))
    assert [c.decision for c in once] == ["speech", "speech"] and all(c.temperature == 0 for c in once)
    for kept, greedy in zip(checked, once):  # every decoding looped: the most likely, at least T=0's
        assert not kept.looping or kept.avg_logprob >= greedy.avg_logprob - 1e-4
    assert set(DECISIONS) >= {c.decision for c in checked + once}


def test_a_clip_sampled_again_is_transcribed_alike_beside_any_other_clips(tiny_random_whisper, speech_dir):
    """The random model loops for 64 tokens at temperature 0 and its samples at 0.4 do not (the loop
    rules alone): each clip's draws are its own, so its transcript is the same decoded alone as
    beside the others."""
    recogniser = load_recogniser(str(tiny_random_whisper))
    clips = [load_audio(path) for path in sorted(speech_dir.glob("*.wav"))[:3]]
    loops_only = SpeechChecks(no_speech_threshold=None, logprob_threshold=None, vad=False)
    options = DecodingOptions(max_new_tokens=64, max_tokens_per_second=None, checks=loops_only)
    together = decode_checked(recogniser, clips, options)
    assert [c.decision for c in together] == ["fallback"] * 3
    alone = [decode_checked(recogniser, [clip], options)[0] for clip in clips]
    assert [(c.tokens, c.temperature) for c in alone] == [(c.tokens, c.temperature) for c in together]


def test_sampled_decoding_is_seeded(tiny_random_whisper, speech_dir):
    recogniser = load_recogniser(str(tiny_random_whisper))
    clip = [load_audio(sorted(speech_dir.glob("*.wav"))[0])]
    options = DecodingOptions(max_new_tokens=12, max_tokens_per_second=None, temperature=1.0)
    first = recogniser.decode_scored(recogniser.encode(clip), options, 3.0)[0].tokens
    assert recogniser.decode_scored(recogniser.encode(clip), options, 3.0)[0].tokens == first
    assert recogniser.decode(recogniser.encode(clip), options, 3.0)[0] == first
    greedy = recogniser.decode(recogniser.encode(clip), DecodingOptions(max_new_tokens=12,
                                                                        max_tokens_per_second=None), 3.0)[0]
    assert greedy != first


@pytest.mark.parametrize("text, loops", [
    ("9. 9. 9. 9. 9. 9. 9. 9", True),  # a spoken "nine" the demo's student once looped on: too short to compress
    ("Nine.", False),
    ("Word. Word. Word. Word. Word.", False),  # 2 repeats: what a speaker may say
    ("Thank you, and thank you for watching and thank you.", False),
])
def test_a_loop_too_short_to_compress_is_decoded_again(tiny_random_whisper, text, loops):
    """A sure transcript (mean log-probability -0.1) that repeats a word 3-gram more than 3 times
    beyond its first is a loop, as the pseudo-label filters judge it, though zlib cannot compress it
    past 2.4; with the rule off it is speech."""
    recogniser = load_recogniser(str(tiny_random_whisper))
    decoded = Decoded(recogniser.tokenizer.encode(" " + text, add_special_tokens=False), -0.1, 0.01)
    judged = _judge(recogniser, SpeechChecks(), decoded, 0.0)
    assert judged.looping is loops and judged.decision == ("unsure" if loops else "speech")
    off = _judge(recogniser, SpeechChecks(repeated_ngram_threshold=None), decoded, 0.0)
    assert not off.looping and off.decision == "speech"


def test_thresholds_out_of_range_are_refused():
    with pytest.raises(VoxdistillError, match="no_speech_threshold 1.5"):
        SpeechChecks(no_speech_threshold=1.5)
    with pytest.raises(VoxdistillError, match="temperature 0"):
        SpeechChecks(temperatures=(0.0, 0.5))
    with pytest.raises(VoxdistillError, match="repeated_ngram_threshold -1"):
        SpeechChecks(repeated_ngram_threshold=-1)


@pytest.mark.integration
@pytest.mark.parametrize("runtime", [("torch", "float32"), ("ct2", "int8")])
def test_silence_noise_and_tone_give_empty_transcripts(tmp_path, speech_dir, runtime):
    """tiny.en hears "you" in silence and in white noise, and a word in a tone; the checks empty all
    three, recording why, and leave speech as it was. With every check off it hears them again."""
    audio = [*written(tmp_path, non_speech()), speech_dir / "weather.wav"]
    flags = ("--runtime", runtime[0], "--compute-type", runtime[1])
    result, transcripts = transcribe_json(TEACHER, *audio, *flags)
    assert result.returncode == 0, result.stderr
    assert [t["text"] for t in transcripts[:3]] == ["", "", ""]
    assert all(t["decisions"][0] in ("no_speech", "no_speech_vad") for t in transcripts[:3])
    assert transcripts[3]["decisions"] == ["speech"] and "cold and windy" in transcripts[3]["text"].lower()

    result, unchecked = transcribe_json(TEACHER, *audio, *flags, *CHECKS_OFF)
    assert result.returncode == 0, result.stderr
    assert unchecked[0]["text"].lower().strip(".") == "you" and all(t["text"] for t in unchecked)
    assert unchecked[3]["text"] == transcripts[3]["text"]


def test_bad_check_flags_are_one_line(tmp_path):
    audio = written(tmp_path, {"silence": non_speech()["silence"]})
    for flags, named in ((("--temperature-fallback", "hot"), "--temperature-fallback"),
                         (("--no-speech-threshold", "2"), "no_speech_threshold 2.0")):
        result, _ = transcribe_json(TEACHER, *audio, *flags)
        assert result.returncode == 2 and "Traceback" not in result.stderr and named in result.stderr, result.stderr


def test_evaluate_records_each_decision(tiny_random_whisper, speech_dir, tmp_path):
    """transcripts.jsonl names each model's decisions per utterance; metrics.json counts them per set."""
    from voxdistill.evaluation.evaluate import EvalSettings, evaluate

    clips = dict(non_speech(2.0))
    paths = written(tmp_path, clips)
    manifest = tmp_path / "set.jsonl"
    manifest.write_text("".join(json.dumps({"id": p.stem, "audio_filepath": str(p), "duration": 2.0,
                                            "text": "nothing"}) + "\n" for p in paths))
    settings = EvalSettings(DecodingOptions(batch_size=3, max_new_tokens=8), latency_clips=1, warmup_clips=0, threads=1)
    result = evaluate([str(tiny_random_whisper)], [manifest], tmp_path / "m.json", settings, progress=False)
    rows = [json.loads(line) for line in (tmp_path / result["transcripts"]).read_text().splitlines()]
    label = result["model"]
    assert all(set(row["decisions"]) == {label} and len(row["decisions"][label]) == 1 for row in rows)
    counts = result["sets"]["set"]["decisions"]
    assert sum(counts.values()) == 3 and set(counts) <= set(DECISIONS)
    assert [row["hypotheses"][label] == "" for row in rows] == \
        [row["decisions"][label][0] in ("no_speech", "no_speech_vad") for row in rows]
