"""The reconciliation benchmark's WER normaliser (bench/textnorm.py): written forms that mean the
same words compare equal, and it stays word-local so errors can be traced to engine words."""

from __future__ import annotations

import pytest
from bench.textnorm import integer_words, normalise, normalise_word


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("The total is $2,350.", "the total is two thousand three hundred fifty dollars"),
        ("reference 1189", "reference 1,189"),
        ("on the 3rd of March 2024", "on the third of march two thousand twenty four"),
        ("grew by 12% to 8.4 million", "grew by twelve percent to eight point four million"),
        ("Let's meet at 7:15", "let us meet at seven fifteen"),
        ("at 8:00", "at eight"),
        ("Dr. Okafor, OK?", "doctor okafor okay"),
        ("the on-call engineer", "the on call engineer"),
        ("twenty-two pounds", "twenty two pounds"),
        ("I don't know, uh, it's fine", "i do not know it is fine"),
        ("the harbour", "the harbor"),
        ("the 28th", "the twenty eighth"),
    ],
)
def test_written_forms_compare_equal(a: str, b: str) -> None:
    assert normalise(a) == normalise(b)


def test_different_words_stay_different() -> None:
    assert normalise("four four three") != normalise("443")
    assert normalise("Kevin O'Brien's") == ["kevin", "o'brien's"]
    assert normalise("...") == []


def test_integers_in_full() -> None:
    assert integer_words(0) == ["zero"]
    assert " ".join(integer_words(40_000)) == "forty thousand"
    assert " ".join(integer_words(1_200_015)) == "one million two hundred thousand fifteen"


def test_word_local() -> None:
    # Each engine word is normalised on its own: the tokens of a text are those of its words.
    text = " In voice number 441 1 issued on the 3rd, the total comes to $2,350."
    assert normalise(text) == [t for w in text.split() for t in normalise_word(w)]
