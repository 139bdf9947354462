"""English text normalisation before scoring, so that WER counts recognition errors rather than
style: "forty-two" and "42", "colour" and "color", "Mr." and "mister", case and punctuation all
compare equal.

Numbers, abbreviations and punctuation are handled by the Whisper English normaliser that
``transformers`` ships; the British-to-American spelling table is the project's own.
"""

from __future__ import annotations

import re
from functools import lru_cache

from transformers.models.whisper.english_normalizer import EnglishTextNormalizer

# British spelling -> American spelling. Words that appear in the project's corpora and in
# everyday transcripts; extend freely.
BRITISH_TO_AMERICAN = {
    "colour": "color", "colours": "colors", "coloured": "colored", "favour": "favor",
    "favourite": "favorite", "favourites": "favorites", "honour": "honor", "honours": "honors",
    "labour": "labor", "neighbour": "neighbor", "neighbours": "neighbors", "behaviour": "behavior",
    "humour": "humor", "flavour": "flavor", "harbour": "harbor", "rumour": "rumor",
    "centre": "center", "centres": "centers", "theatre": "theater", "metre": "meter",
    "metres": "meters", "kilometre": "kilometer", "kilometres": "kilometers", "litre": "liter",
    "litres": "liters", "fibre": "fiber", "organise": "organize", "organised": "organized",
    "organising": "organizing", "realise": "realize", "realised": "realized", "recognise": "recognize",
    "recognised": "recognized", "apologise": "apologize", "travelled": "traveled",
    "travelling": "traveling", "traveller": "traveler", "cancelled": "canceled",
    "cancelling": "canceling", "jewellery": "jewelry", "grey": "gray", "programme": "program",
    "programmes": "programs", "cheque": "check", "defence": "defense", "licence": "license",
    "catalogue": "catalog", "dialogue": "dialog", "analyse": "analyze", "analysed": "analyzed",
    "pyjamas": "pajamas", "tyre": "tire", "tyres": "tires", "aluminium": "aluminum",
    "mould": "mold", "plough": "plow", "practise": "practice", "enrol": "enroll",
}


@lru_cache(maxsize=1)
def _normalizer() -> EnglishTextNormalizer:
    return EnglishTextNormalizer(BRITISH_TO_AMERICAN)


# The Whisper normaliser turns "5 p.m." into "5 p m" but leaves "5 pm" alone; join the letters
# after a number so that both spellings of a time compare equal.
_TIME_OF_DAY = re.compile(r"(\d) ([ap]) m\b")


def normalize_english(text: str) -> str:
    return _TIME_OF_DAY.sub(r"\1 \2m", _normalizer()(text))
