"""Alignment and voting of several engines' words (pure functions, no model, no database)."""

from __future__ import annotations

import random

import pytest

from verbatim.reconciliation import Word, align, normalise, quality, reconcile


def words(text: str, start: float = 0.0, step: float = 0.4, conf: float = 0.9) -> list[Word]:
    out = []
    for i, token in enumerate(text.split()):
        t = start + i * step
        out.append(Word(" " + token, round(t, 3), round(t + step * 0.8, 3), conf))
    return out


def consensus_text(hyps: list[list[Word]]) -> str:
    return " ".join(v.word.text.strip() for v in reconcile(hyps).words)


def test_normalise_ignores_case_punctuation_but_keeps_apostrophes() -> None:
    assert normalise(" Hello,") == "hello"
    assert normalise("DON'T") == "don't"
    assert normalise("don\u2019t.") == "don't"
    assert normalise("'quoted'") == "quoted"
    assert normalise("...") == ""


def test_every_word_lands_in_exactly_one_slot_in_order() -> None:
    a = words("the quick brown fox jumps over the lazy dog")
    b = words("the quick brown box jumped over a lazy dog today")
    c = words("a quick brown fox jumps over the dog")
    slots = align([a, b, c])
    for engine, hyp in enumerate((a, b, c)):
        placed = [s.words[engine] for s in slots if s.words[engine] is not None]
        assert placed == hyp


def test_majority_fixes_each_engines_own_mistakes() -> None:
    truth = "we agreed to move the delivery to march because the parts arrive late"
    a = words("we agreed to move the delivery to marsh because the parts arrive late")
    b = words("we agreed to move a delivery to march because the parts arrive late")
    c = words("we agreed move the delivery to march because the parts they arrive late")
    assert consensus_text([a, b, c]).lower() == truth


def test_dropped_and_inserted_words_are_voted_too() -> None:
    a = words("so I think that is fine")
    b = words("so I think that is fine")
    c = words("so um I think that that is fine")
    out = reconcile([a, b, c])
    assert " ".join(v.word.text.strip() for v in out.words) == "so I think that is fine"
    # The engine that inserted two words is charged two insertions and gets the least weight.
    assert out.stats[2].insertions == 2 and out.stats[0].insertions == 0
    assert out.weights[2] < out.weights[0] == out.weights[1] == 1.0


def test_agreement_and_alternatives_are_reported() -> None:
    a = words("the cat sat")
    b = words("the bat sat")
    c = words("the cat sat")
    out = reconcile([a, b, c])
    cat = out.words[1]
    assert cat.word.text.strip() == "cat" and cat.agreement == 2 and cat.engines == 3
    assert [alt.text for alt in cat.alternatives] == ["bat"]
    assert cat.alternatives[0].engines == (1,)
    assert out.words[0].agreement == 3


def test_confidence_breaks_a_two_engine_tie() -> None:
    a = words("the cat sat", conf=0.95)
    b = [Word(" the", 0.0, 0.3, 0.95), Word(" bat", 0.4, 0.7, 0.2), Word(" sat", 0.8, 1.1, 0.95)]
    assert consensus_text([a, b]) == "the cat sat"
    b2 = [Word(" the", 0.0, 0.3, 0.95), Word(" bat", 0.4, 0.7, 0.99), Word(" sat", 0.8, 1.1, 0.95)]
    a2 = [Word(" the", 0.0, 0.3, 0.95), Word(" cat", 0.4, 0.7, 0.3), Word(" sat", 0.8, 1.1, 0.95)]
    assert consensus_text([a2, b2]) == "the bat sat"


def test_times_stay_monotonic_and_come_from_a_voter() -> None:
    rng = random.Random(7)
    base = [
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
    ]
    hyps = []
    for _ in range(3):
        tokens = [t if rng.random() > 0.2 else "x" + t for t in base]
        hyps.append(words(" ".join(tokens), start=rng.uniform(0, 0.2)))
    out = reconcile(hyps)
    starts = [v.word.start for v in out.words]
    assert starts == sorted(starts)
    assert all(v.word.end >= v.word.start for v in out.words)


@pytest.mark.slow
def test_long_transcripts_align_in_a_time_band() -> None:
    """30,000 words per engine (3 hours): the banded programme stays linear in length."""
    rng = random.Random(1)
    vocabulary = [f"w{i}" for i in range(500)]
    truth = [rng.choice(vocabulary) for _ in range(30_000)]
    hyps = []
    for _engine in range(3):
        hyp = []
        for i, token in enumerate(truth):
            r = rng.random()
            if r < 0.02:
                continue  # deletion
            if r < 0.07:
                token = rng.choice(vocabulary)  # substitution
            # Times follow the audio (as every engine's do), with each engine's own jitter.
            t = max(0.0, i * 0.33 + rng.uniform(-0.15, 0.15))
            hyp.append(Word(" " + token, round(t, 3), round(t + 0.25, 3), 0.9))
        hyps.append(hyp)
    out = reconcile(hyps)
    got = [v.word.text.strip() for v in out.words]
    alone = _edit_distance([w.text.strip() for w in hyps[0]], truth) / len(truth)
    errors = _edit_distance(got, truth) / len(truth)
    assert alone > 0.06 and errors < 0.02


def test_quality_metrics_and_low_agreement_spans() -> None:
    a = words("please send the report by friday")
    b = words("please send the record by friday")
    c = words("please spend the resort by friday")
    out = reconcile([a, b, c])
    q = quality(out, [{"engine": "a"}, {"engine": "b"}, {"engine": "c"}], duration=3.0)
    assert q["word_count"] == 6
    assert q["engines"][0]["engine"] == "a" and q["engines"][2]["wer_vs_consensus"] > 0
    spans = q["low_agreement_spans"]
    # "report/record/resort" is a three-way split: the one place to check.
    assert len(spans) == 1
    assert spans[0]["start"] <= a[3].start and spans[0]["end"] >= a[3].end
    assert sorted(spans[0]["engines"]) == ["record", "report", "resort"]
    assert 0 < q["mean_agreement"] < 1
    assert q["unanimous_words"] == 4


def test_one_engine_and_no_words() -> None:
    a = words("alone here")
    out = reconcile([a])
    assert [v.word.text for v in out.words] == [" alone", " here"]
    assert reconcile([[], []]).words == []
    assert reconcile([a, []]).words[0].agreement == 1


def _edit_distance(a: list[str], b: list[str]) -> int:
    """Levenshtein in a band around the diagonal scaled to the lengths (enough for a test: the
    sequences differ by scattered edits, never by long shifts)."""
    band = 200
    inf = 10**9
    ratio = len(b) / max(1, len(a))
    prev = {j: j for j in range(0, min(len(b), band) + 1)}
    for i in range(1, len(a) + 1):
        cur: dict[int, int] = {}
        centre = round(i * ratio)
        lo = max(0, centre - band)
        hi = min(len(b), centre + band)
        for j in range(lo, hi + 1):
            best = prev.get(j, inf) + 1
            if j > lo:
                best = min(best, cur[j - 1] + 1)
            if j == 0:
                best = min(best, i)
            else:
                best = min(best, prev.get(j - 1, inf) + (a[i - 1] != b[j - 1]))
            cur[j] = best
        prev = cur
    return prev[len(b)]


def test_alpha_one_votes_by_count_alone_and_zero_by_confidence_alone() -> None:
    # Two unsure engines say "marsh", one sure engine says "march".
    a = words("to marsh", conf=0.3)
    b = words("to marsh", conf=0.3)
    c = words("to march", conf=0.99)
    equal = [1.0, 1.0, 1.0]
    by_count = reconcile([a, b, c], weights=equal, alpha=1.0)
    by_confidence = reconcile([a, b, c], weights=equal, alpha=0.0)
    assert [v.word.text.strip() for v in by_count.words] == ["to", "marsh"]
    assert [v.word.text.strip() for v in by_confidence.words] == ["to", "march"]


def test_null_confidence_decides_a_word_only_one_engine_said() -> None:
    a = words("so that is fine")
    b = words("so that is fine")
    c = [*words("so that", conf=0.95), *words("really", 0.8, conf=0.95), *words("is fine", 1.2)]
    equal = [1.0, 1.0, 1.0]
    # "really": 1/3 of the votes at 0.95 against "nothing": 2/3 at null_confidence.
    kept = reconcile([a, b, c], weights=equal, alpha=0.2, null_confidence=0.1)
    dropped = reconcile([a, b, c], weights=equal, alpha=0.2, null_confidence=0.9)
    assert "really" in [v.word.text.strip() for v in kept.words]
    assert "really" not in [v.word.text.strip() for v in dropped.words]


@pytest.mark.parametrize(("alpha", "null"), [(-0.1, 0.7), (0.7, 1.5)])
def test_voting_parameters_out_of_range_are_refused(alpha: float, null: float) -> None:
    with pytest.raises(ValueError):
        reconcile([words("a b"), words("a b")], alpha=alpha, null_confidence=null)
