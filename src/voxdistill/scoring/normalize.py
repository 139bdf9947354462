"""English text normalisation before scoring, so that WER counts recognition errors rather than
style: "forty-two" and "42", "colour" and "color", "Mr." and "mister", case and punctuation all
compare equal.

Numbers, abbreviations and punctuation are handled by the Whisper English normaliser that
``transformers`` ships, with Whisper's British-to-American spelling table from ``whisper-normalizer``
(transformers reads it from a model folder's normalizer.json, which converted models lack).
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources

from transformers.models.whisper.english_normalizer import EnglishTextNormalizer


def british_to_american() -> dict[str, str]:
    """Whisper's own British-to-American spelling table (about 1,700 words), as the
    ``whisper-normalizer`` package ships it."""
    table = resources.files("whisper_normalizer").joinpath("normalizers", "english.json")
    return json.loads(table.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def _normalizer() -> EnglishTextNormalizer:
    return EnglishTextNormalizer(british_to_american())


# The Whisper normaliser turns "5 p.m." into "5 p m" but leaves "5 pm" alone; join the letters
# after a number so that both spellings of a time compare equal.
_TIME_OF_DAY = re.compile(r"(\d) ([ap]) m\b")


# The Whisper normaliser keeps the decimal point of numbers, and so turns a trailing ellipsis after
# a number word ("one...", a hesitant "six...") into "one ." with a lone point that would count as a
# word; a point with no digit beside it is punctuation.
_LONE_POINT = re.compile(r"(?<!\S)\.+(?!\S)")
# Bump when the rules above change what a text normalises to: stored evaluations are then redone.
RULES_VERSION = 2


def normalize_english(text: str) -> str:
    text = _TIME_OF_DAY.sub(r"\1 \2m", _normalizer()(text))
    return " ".join(_LONE_POINT.sub(" ", text).split())
