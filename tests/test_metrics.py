"""Error rates against hand-computed alignments."""

import pytest

from voxdistill.scoring.normalize import normalize_english as normalize_english_text

from voxdistill.scoring.metrics import (
    basic_normalize, char_edits, char_error_rate, edit_counts, loops, repeated_ngrams, word_edits, word_error_rate,
)


def test_edit_counts_split_by_kind():
    counts = edit_counts("the cat sat on the mat".split(), "cat sit on the mat today".split())
    # "the" deleted (D), sat->sit (S), "today" inserted (I)
    assert (counts.substitutions, counts.deletions, counts.insertions) == (1, 1, 1)
    assert counts.reference_length == 6
    # "the mat" -> "mat today": two substitutions cost as much as a deletion plus an insertion;
    # the substitutions are counted, so no insertion is reported for a word the model did not add.
    counts = edit_counts("the cat sat on the mat".split(), "the cat sit on mat today".split())
    assert (counts.substitutions, counts.deletions, counts.insertions) == (3, 0, 0)


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
    from voxdistill.scoring.normalize import normalize_english

    assert normalize_english("Jonas ran forty-two kilometres.") == normalize_english("jonas ran 42 kilometers")
    assert normalize_english("The COLOUR grey") == "the color gray"
    assert word_error_rate(["It is twenty five degrees."], ["It's 25 degrees"]) == 0.0


@pytest.mark.parametrize("written, spoken", [
    ("Mr. Smith met Dr. Jones at 5 p.m.", "mister smith met doctor jones at five pm"),  # abbreviations, numbers, times
    ("It costs $3.50.", "it costs three dollars fifty cents"),  # currency
    ("He came 1st in 2024!", "he came first in twenty twenty four"),  # ordinals and years
    ("One hundred and twenty-three", "123"),
    ("Ten percent", "10%"),
    ("The COLOUR of the theatre was grey.", "the color of the theater was gray"),  # British -> American
    ("I'm gonna go, Hmm.", "I am going to go"),  # contractions, fillers
    ("St. Louis; 7 A.M.", "saint louis seven am"),
    ("one...", "one"),  # a trailing ellipsis after a number word leaves no word behind
    ("Six... five.", "6 5"),
])
def test_english_normaliser_cases(written, spoken):
    from voxdistill.scoring.normalize import normalize_english

    assert normalize_english(written) == normalize_english(spoken)
    assert word_error_rate([written], [spoken]) == 0.0


def test_normaliser_keeps_real_differences():
    assert normalize_english_text("It costs 3.5 pounds") != normalize_english_text("It costs 35 pounds")
    assert word_error_rate(["the colour red"], ["the colour bread"]) == pytest.approx(1 / 3)
    assert word_error_rate(["at 5 pm"], ["at 6 pm"]) == pytest.approx(1 / 3)


def test_wer_and_cer_hand_computed():
    # ref 6 words; hyp: "the" deleted (D), "sat"->"sit" (S), "today" inserted (I): 3/6.
    refs, hyps = ["the cat sat on the mat"], ["cat sit on the mat today"]
    assert word_error_rate(refs, hyps) == pytest.approx(0.5)
    counts = word_edits(refs, hyps)
    assert (counts.substitutions, counts.deletions, counts.insertions, counts.reference_length) == (1, 1, 1, 6)
    # characters: "kitten" -> "sitting" is the textbook 3 edits over 6 characters.
    assert char_error_rate(["kitten"], ["sitting"]) == pytest.approx(3 / 6)
    chars = char_edits(["kitten"], ["sitting"])
    assert (chars.substitutions, chars.deletions, chars.insertions) == (2, 0, 1)
    # spaces count: "a b" -> "ab" deletes one of 3 characters.
    assert char_error_rate(["a b"], ["ab"]) == pytest.approx(1 / 3)


def test_repeated_ngrams_and_loops():
    assert repeated_ngrams("the cat sat on the mat".split()) == 0
    assert repeated_ngrams("go on go on go on".split()) == 2  # (go on go) twice, (on go on) once more
    assert repeated_ngrams("a b".split()) == 0
    assert loops("he said yes", "he said yes yes yes yes yes")
    # A repetition the reference has too is not a hallucination signal.
    assert not loops("so so so so so", "so so so so so")
    assert not loops("the cat sat", "the cat sat down")
