"""Quality metrics of a reconciliation: per engine, overall, and the spans a person should check."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from verbatim.reconciliation.vote import Consensus

# A slot is disputed when the winner's support is below this share of the engines' weight
# count (with three engines: a word only one of them said, or one dropped by a 2-1 vote is not
# disputed but one engine alone against two different words is).
DISPUTED_BELOW = 0.6
# Disputed slots closer than this (seconds) form one span.
SPAN_GAP = 1.0


def low_agreement_spans(consensus: Consensus) -> list[dict[str, Any]]:
    """Where the engines disagreed, in time order: start, end, the consensus text there and
    each engine's own words, so that a person (or an LLM pass) can check just these places."""
    n = len(consensus.weights)
    spans: list[dict[str, Any]] = []
    for slot, key in zip(consensus.slots, consensus.choices, strict=True):
        present = [w for w in slot.words if w is not None]
        if not present:
            continue
        support = sum(1 for w in slot.words if (w.key if w is not None else "") == key)
        if support / n >= DISPUTED_BELOW:
            continue
        start = min(w.start for w in present)
        end = max(w.end for w in present)
        if spans and start - spans[-1]["end"] <= SPAN_GAP:
            span = spans[-1]
            span["end"] = max(span["end"], end)
        else:
            span = {"start": start, "end": end, "slots": []}
            spans.append(span)
        span["slots"].append(slot)
    out: list[dict[str, Any]] = []
    chosen_words = consensus.words
    for span in spans:
        engines_text = [
            " ".join(w.text.strip() for s in span["slots"] if (w := s.words[e]) is not None)
            for e in range(n)
        ]
        consensus_text = " ".join(
            v.word.text.strip()
            for v in chosen_words
            if span["start"] - 0.01 <= v.word.start <= span["end"] + 0.01
        )
        out.append(
            {
                "start": round(span["start"], 3),
                "end": round(span["end"], 3),
                "consensus": consensus_text,
                "engines": engines_text,
            }
        )
    return out


def quality(
    consensus: Consensus,
    engines: Sequence[dict[str, Any]],
    *,
    duration: float | None,
) -> dict[str, Any]:
    """Metrics stored with a reconciled transcription. `engines[i]` describes engine i (name,
    model, processing_seconds, cost, ...) and is returned with its figures added."""
    reference = len(consensus.words)
    per_engine = []
    for info, stats, weight in zip(engines, consensus.stats, consensus.weights, strict=True):
        per_engine.append(
            {
                **info,
                "words": stats.words,
                "wer_vs_consensus": round(stats.wer(reference), 4),
                "substitutions": stats.substitutions,
                "deletions": stats.deletions,
                "insertions": stats.insertions,
                "weight": round(weight, 4),
            }
        )
    n = len(consensus.weights)
    agreements = [v.agreement / n for v in consensus.words]
    confidences = [v.word.confidence for v in consensus.words if v.word.confidence is not None]
    spans = low_agreement_spans(consensus)
    return {
        "engines": per_engine,
        "word_count": reference,
        "duration": duration,
        "mean_agreement": round(sum(agreements) / len(agreements), 4) if agreements else None,
        "unanimous_words": sum(1 for v in consensus.words if v.agreement == n),
        "mean_confidence": round(sum(confidences) / len(confidences), 4) if confidences else None,
        "low_agreement_spans": spans,
        "low_agreement_seconds": round(sum(s["end"] - s["start"] for s in spans), 3),
    }
