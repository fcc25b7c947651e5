"""The edit aligner (versions/align.py): property tests over random transcripts and random edits.

Properties: start times never go backwards, every word ends at or after it starts and no later
than the next word starts, every word lies within the turn, and every word the edit did not
touch keeps its exact times.
"""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from verbatim.versions.align import align, normalise

VOCAB = ["the", "cat", "sat", "on", "a", "mat", "We", "agreed", "to", "move", "delivery", "March."]


def timed(tokens: list[str], start: float = 10.0) -> list[dict[str, Any]]:
    words, t = [], start
    for token in tokens:
        length = 0.2 + 0.05 * len(token)
        words.append(
            {
                "start": round(t, 3),
                "end": round(t + length, 3),
                "word": " " + token,
                "probability": 0.9,
            }
        )
        t += length + 0.1
    return words


def check_monotonic(words: list[dict[str, Any]], start: float, end: float) -> None:
    for i, w in enumerate(words):
        assert start - 1e-9 <= w["start"] <= w["end"] <= end + 1e-9, w
        if i:
            assert words[i - 1]["start"] <= w["start"], (words[i - 1], w)
            assert words[i - 1]["end"] <= w["start"] + 1e-9, (words[i - 1], w)


edits = st.lists(
    st.tuples(st.sampled_from(["keep", "replace", "delete", "insert"]), st.sampled_from(VOCAB)),
    min_size=1,
    max_size=30,
)


def random_edit(tokens: list[str], rnd: random.Random) -> tuple[list[str], list[tuple[int, int]]]:
    """Keep, replace, delete or insert before each word; returns the new tokens and the
    (old index, new index) pairs of the words left alone."""
    new_tokens: list[str] = []
    kept: list[tuple[int, int]] = []
    for i, token in enumerate(tokens):
        action = rnd.choice(["keep", "keep", "keep", "replace", "delete", "insert"])
        if action == "insert":
            new_tokens.append(f"new{rnd.randrange(1000)}")
        if action in ("keep", "insert"):
            kept.append((i, len(new_tokens)))
            new_tokens.append(token)
        elif action == "replace":
            new_tokens.append("ZZ" + token)
    return new_tokens or ["only"], kept if new_tokens else []


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=40), st.randoms())
def test_untouched_words_keep_their_exact_times(n: int, rnd: random.Random) -> None:
    tokens = [f"w{i}" for i in range(n)]  # distinct words: "untouched" is unambiguous
    old = timed(tokens)
    new_tokens, kept = random_edit(tokens, rnd)

    new = align(old, " ".join(new_tokens), old[0]["start"], old[-1]["end"])

    assert [w["word"].strip() for w in new] == new_tokens
    check_monotonic(new, old[0]["start"], old[-1]["end"])
    for o, k in kept:
        assert (new[k]["start"], new[k]["end"], new[k]["probability"]) == (
            old[o]["start"],
            old[o]["end"],
            old[o]["probability"],
        )
    changed = set(range(len(new))) - {k for _, k in kept}
    assert all(new[k]["probability"] is None for k in changed)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(VOCAB), min_size=1, max_size=40), st.randoms())
def test_times_stay_ordered_with_repeated_words(tokens: list[str], rnd: random.Random) -> None:
    old = timed(tokens)
    new_tokens, _ = random_edit(tokens, rnd)

    new = align(old, " ".join(new_tokens), old[0]["start"], old[-1]["end"])

    check_monotonic(new, old[0]["start"], old[-1]["end"])
    # With repeated words "which one was kept" is ambiguous, and difflib's matching (longest
    # block first) is not always a longest common subsequence: it may re-time a word a person
    # left alone. What holds: the words it keeps carry an old word's exact times, in order.
    position = {(w["start"], w["end"]): i for i, w in enumerate(old)}
    from_old = [position[(w["start"], w["end"])] for w in new if w["probability"] is not None]
    assert from_old == sorted(set(from_old))


def test_a_changed_word_keeps_its_neighbours_times_exactly() -> None:
    old = timed(["we", "agreed", "to", "move", "the", "delivery", "to", "March"])
    new = align(old, "we agreed to move the shipment to March", old[0]["start"], old[-1]["end"])

    for i in (0, 1, 2, 3, 4, 6, 7):
        assert (new[i]["start"], new[i]["end"]) == (old[i]["start"], old[i]["end"])
    # The replaced word takes the old word's slot, between its neighbours.
    assert new[5]["word"] == " shipment"
    assert old[4]["end"] <= new[5]["start"] <= new[5]["end"] <= old[6]["start"]
    assert new[5]["probability"] is None


def test_inserted_words_share_the_gap_between_neighbours() -> None:
    old = timed(["hello", "world"])
    new = align(old, "hello big wide world", old[0]["start"], old[-1]["end"])

    assert [w["word"] for w in new] == [" hello", " big", " wide", " world"]
    assert (new[0]["start"], new[-1]["start"]) == (old[0]["start"], old[1]["start"])
    assert old[0]["end"] <= new[1]["start"] < new[2]["start"] <= new[2]["end"] <= old[1]["start"]


def test_case_and_punctuation_changes_keep_times() -> None:
    old = timed(["hello", "world"])
    new = align(old, "Hello, world!", old[0]["start"], old[-1]["end"])

    assert [w["word"] for w in new] == [" Hello,", " world!"]
    assert [(w["start"], w["end"]) for w in new] == [(w["start"], w["end"]) for w in old]
    assert all(w["probability"] == 0.9 for w in new)


def test_deleting_words_keeps_the_rest() -> None:
    old = timed(["um", "so", "we", "we", "agreed"])
    new = align(old, "so we agreed", old[0]["start"], old[-1]["end"])

    assert [(w["start"], w["end"]) for w in new] == [
        (old[i]["start"], old[i]["end"]) for i in (1, 3, 4)
    ] or [(w["start"], w["end"]) for w in new] == [
        (old[i]["start"], old[i]["end"]) for i in (1, 2, 4)
    ]


def test_a_turn_without_word_times_is_spread_over_the_turn() -> None:
    new = align([], "three new words", 4.0, 7.0)

    check_monotonic(new, 4.0, 7.0)
    assert new[0]["start"] == 4.0 and new[-1]["end"] == 7.0


def test_normalise() -> None:
    assert normalise(" Hello,") == normalise("hello") == "hello"
    assert normalise("don't") == "don't"
