"""The reconciliation benchmark's own measures (bench/reconcile.py): the oracle path, error times
and span coverage, on small hand-made cases whose answers are known."""

from __future__ import annotations

from bench.reconcile import corpus_wer, error_times, oracle_errors, span_figures
from bench.textnorm import normalise

from verbatim.reconciliation import Word, align


def words(text: str, start: float = 0.0, step: float = 0.5) -> list[Word]:
    return [
        Word(" " + t, round(start + i * step, 3), round(start + i * step + 0.4, 3), 0.9)
        for i, t in enumerate(text.split())
    ]


def test_oracle_picks_the_best_candidate_in_every_slot() -> None:
    ref = normalise("we moved the delivery to march")
    a = words("we moved a delivery to marsh")
    b = words("we moved the delivery to marsh")
    c = words("he moved a delivery to march")
    slots = align([a, b, c])
    # Every reference word is some engine's candidate in its slot: the oracle makes no error,
    # though every engine makes at least one.
    assert oracle_errors(slots, ref) == 0
    # A word no engine said stays an error.
    assert oracle_errors(slots, normalise("we moved the parcel to march")) == 1
    # Words the reference lacks can be dropped only where some engine had nothing.
    extra = words("we moved the delivery to march today")
    assert oracle_errors(align([extra, extra]), ref) == 1
    # With an engine that lacks "today" (and says "marsh" where the other says "march"), the
    # oracle takes "march" from one and "nothing" from the other.
    assert oracle_errors(align([extra, b]), ref) == 0


def test_error_times_locate_substitutions_insertions_and_deletions() -> None:
    ref = normalise("one two three four five")
    hyp = words("one too three four five six")  # "too" at 0.5 s, "six" at 2.5 s
    times = error_times(ref, hyp, duration=4.0)
    assert sorted(times) == [(0.5, 0.9), (2.5, 2.9)]
    dropped = words("one two four five")  # "three" missing between 0.9 (end of two) and 1.0
    assert error_times(ref, dropped, duration=4.0) == [(0.9, 1.0)]


def test_span_figures_count_errors_inside_and_span_time_with_errors() -> None:
    spans = [[{"start": 1.0, "end": 2.0}, {"start": 5.0, "end": 8.0}]]
    errors = [[(1.5, 1.7), (3.0, 3.2)]]  # one inside the first span, one outside any span
    out = span_figures(spans, errors, [10.0])
    assert out["consensus_errors"] == 2 and out["errors_inside_spans"] == 1
    assert out["error_recall"] == 0.5
    assert out["spans_with_error"] == 1
    assert out["span_time_precision"] == round(1.0 / 4.0, 4)
    assert out["audio_share_in_spans"] == 0.4


def test_corpus_wer_is_pooled_over_clips() -> None:
    refs = [normalise("a b c d"), normalise("e f")]
    hyps = [normalise("a b c d"), normalise("e g")]
    out = corpus_wer(refs, hyps)
    # One error in six words, not the mean of 0 % and 50 %.
    assert out["wer"] == round(1 / 6, 4) and out["substitutions"] == 1
