"""Long audio transcribed whole: the chunk plan on real signals, the merge at the seams, and real
multi-sentence speech longer than the window through the CLI, for the teacher and a 10-s student."""

from __future__ import annotations

import difflib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voxdistill.audio import SAMPLE_RATE
from voxdistill.data.tts import Voice, synthesize
from voxdistill.long_audio import Chunk, merge_transcripts, overlap_seconds, plan_chunks
from voxdistill.scoring.normalize import normalize_english

SENTENCES = [
    "The old lighthouse keeper walked slowly along the rocky shore every evening.",
    "He carried a small lantern and a notebook full of careful observations.",
    "Ships passing in the night would sometimes signal him with their horns.",
    "One winter a terrible storm damaged the roof of the tower.",
    "The villagers gathered wood and tools to help him repair it.",
    "By the spring the light was shining brighter than ever before.",
    "Children from the school came to visit and listen to his stories.",
    "He told them about whales, wrecks and the stars above the sea.",
    "Years later one of those children became the new keeper of the light.",
]
PAUSE = np.zeros(int(0.35 * SAMPLE_RATE), np.float32)


@pytest.fixture(scope="module")
def story(tmp_path_factory) -> tuple[Path, list[tuple[int, int]]]:
    """Nine sentences read by a flite voice with short pauses: 36 s, longer than any window. Returns the
    file and each sentence's sample range."""
    parts, spans, at = [], [], 0
    for sentence in SENTENCES:
        speech = synthesize(Voice("flite", "slt"), sentence)
        parts += [speech, PAUSE]
        spans.append((at, at + len(speech)))
        at += len(speech) + len(PAUSE)
    path = tmp_path_factory.mktemp("long") / "story.wav"
    sf.write(path, np.concatenate(parts), SAMPLE_RATE)
    return path, spans


def _covers(chunks: list[Chunk], total: int) -> None:
    assert chunks[0].start == 0 and chunks[-1].end == total
    for before, after in zip(chunks, chunks[1:]):
        assert after.start > before.start  # always advances
        assert after.start <= before.end  # no gap
        assert after.overlaps_previous == (after.start < before.end)


def test_chunks_end_in_the_pauses_between_sentences(story):
    path, spans = story
    audio, _ = sf.read(path, dtype="float32")
    window = 10 * SAMPLE_RATE
    chunks = plan_chunks(audio, window)
    _covers(chunks, len(audio))
    assert len(chunks) >= 4
    for chunk in chunks:
        assert chunk.end - chunk.start <= window
        assert not chunk.overlaps_previous  # every seam found a pause
    loud = np.percentile(audio**2, 99)
    for chunk in chunks[:-1]:  # every cut lies in a pause: the 100 ms around it are quiet
        around = audio[chunk.end - SAMPLE_RATE // 20 : chunk.end + SAMPLE_RATE // 20]
        assert np.mean(around**2) < 1e-3 * loud, chunk
    # Most cuts fall between sentences: the longest pauses.
    between = sum(any(end <= c.end <= start for (_, end), (start, _) in zip(spans, spans[1:])) for c in chunks[:-1])
    assert between >= len(chunks[:-1]) - 1


def test_without_pauses_chunks_overlap(tmp_path):
    # Speech-shaped noise with no pause at all: the plan falls back to overlapping chunks.
    rng = np.random.default_rng(0)
    t = np.arange(25 * SAMPLE_RATE) / SAMPLE_RATE
    audio = (rng.standard_normal(t.size) * (1.2 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    window = 8 * SAMPLE_RATE
    chunks = plan_chunks(audio, window)
    _covers(chunks, len(audio))
    assert all(c.end - c.start <= window for c in chunks)
    assert all(c.overlaps_previous for c in chunks[1:])
    for before, after in zip(chunks, chunks[1:]):
        shared = (before.end - after.start) / SAMPLE_RATE
        assert overlap_seconds(8) <= shared <= overlap_seconds(8) + 1.0


def test_short_and_empty_signals():
    assert plan_chunks(np.zeros(100, np.float32), 1000) == [Chunk(0, 100, False)]
    assert plan_chunks(np.zeros(0, np.float32), 1000) == []
    with pytest.raises(ValueError, match="positive"):
        plan_chunks(np.zeros(10, np.float32), 0)


def _overlapping(n: int) -> list[Chunk]:
    return [Chunk(i * 10, i * 10 + 15, i > 0) for i in range(n)]


def test_merge_joins_overlapping_pieces_at_the_shared_words():
    pieces = ["the cat sat on the mat and then it sle-",
              "mat and then it slept all day. Later the dog",  # a damaged first word would be "mat"
              "Later, the dog barked."]
    # At each seam, the first half of the shared run comes from the earlier piece ("Later" without its
    # comma), the rest from the later one.
    assert merge_transcripts(pieces, _overlapping(3)) == "the cat sat on the mat and then it slept all day. Later the dog barked."


def test_merge_ignores_a_chance_match_and_appends_after_a_pause_cut():
    # A common word shared far from the seam is chance, not overlap.
    assert merge_transcripts(["the cat sat on the mat quietly", "the dog barked at it loudly"], _overlapping(2)) \
        == "the cat sat on the mat quietly the dog barked at it loudly"
    # Chunks cut at a pause share nothing: the same words at the seam are said twice, and kept twice.
    cut = [Chunk(0, 10, False), Chunk(10, 20, False)]
    assert merge_transcripts(["I said yes yes", "yes yes I did"], cut) == "I said yes yes yes yes I did"
    assert merge_transcripts(["only one piece  "], [Chunk(0, 5, False)]) == "only one piece  "
    with pytest.raises(ValueError, match="2 transcripts for 1 chunks"):
        merge_transcripts(["a", "b"], [Chunk(0, 5, False)])


def _sentences_found(text: str) -> list[float]:
    """For each sentence, the fraction of its words the transcript holds, aligned with the whole story
    (difflib's matching blocks: words in order, each used once)."""
    reference = [normalize_english(sentence).split() for sentence in SENTENCES]
    flat = [word for words in reference for word in words]
    matched = set()
    for block in difflib.SequenceMatcher(None, flat, normalize_english(text).split(), autojunk=False).get_matching_blocks():
        matched.update(range(block.a, block.a + block.size))
    found, at = [], 0
    for words in reference:
        found.append(sum(i in matched for i in range(at, at + len(words))) / len(words))
        at += len(words)
    return found


@pytest.mark.integration
def test_every_sentence_of_long_speech_comes_out(story, tmp_path):
    """The teacher (30-s window) and a student with a 10-s window, through the CLI."""
    path, _ = story
    cli = [sys.executable, "-m", "voxdistill.cli"]
    student = tmp_path / "student"
    init = subprocess.run([*cli, "student", "init", "--teacher", "bundled:whisper-tiny.en", "--encoder-layers", "4",
                           "--decoder-layers", "4", "--window-seconds", "10", "--out", str(student)],
                          capture_output=True, text=True)
    assert init.returncode == 0, init.stderr
    for model in ("bundled:whisper-tiny.en", str(student)):
        result = subprocess.run([*cli, "transcribe", model, str(path), "--long-audio", "split", "--json"],
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert "overlapping windows" in result.stderr  # the user is told the audio is long
        text = json.loads(result.stdout)[0]["text"]
        found = _sentences_found(text)
        assert min(found) >= 0.5, f"{model}: {found}: {text}"  # a lost sentence scores 0
        assert sum(found) / len(found) >= 0.85, f"{model}: {found}: {text}"
        # Nothing said twice at a seam.
        assert normalize_english(text).split().count("lighthouse") <= 1
        assert len(normalize_english(text).split()) <= 1.1 * sum(len(s.split()) for s in SENTENCES)
