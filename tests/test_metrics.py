"""Error rates against hand-computed alignments."""

import pytest

from voxdistill.evaluation.metrics import basic_normalize, char_error_rate, edit_counts, word_error_rate


def test_edit_counts_split_by_kind():
    counts = edit_counts("the cat sat on the mat".split(), "the cat sit on mat today".split())
    # sat->sit (S), "the" deleted (D), "today" inserted (I)
    assert (counts.substitutions, counts.deletions, counts.insertions) == (1, 1, 1)
    assert counts.reference_length == 6


def test_empty_sides():
    assert edit_counts([], ["a", "b"]).insertions == 2
    assert edit_counts(["a", "b"], []).deletions == 2
    assert word_error_rate([""], [""]) == 0.0


def test_wer_is_corpus_level():
    # 1 error in 1 word and 0 errors in 4 words: 1/5, not the mean of 100% and 0%.
    assert word_error_rate(["yes", "red green blue white"], ["no", "red green blue white"]) == pytest.approx(0.2)


def test_normalisation_ignores_case_and_punctuation():
    assert basic_normalize("Hello, World!  It's 'fine'.") == "hello world it's fine"
    assert word_error_rate(["Hello, world."], ["hello world"]) == 0.0


def test_cer():
    assert char_error_rate(["abcd"], ["abed"]) == pytest.approx(0.25)


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        word_error_rate(["a", "b"], ["a"])


def test_english_normaliser_equates_style_variants():
    from voxdistill.evaluation.normalize import normalize_english

    assert normalize_english("Jonas ran forty-two kilometres.") == normalize_english("jonas ran 42 kilometers")
    assert normalize_english("The COLOUR grey") == "the color gray"
    assert word_error_rate(["It is twenty five degrees."], ["It's 25 degrees"]) == 0.0
