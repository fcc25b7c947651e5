"""Quality metrics of a reconciliation: per engine, overall, and the spans a person should check."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from verbatim.reconciliation.vote import Consensus

# A slot is disputed when the winner's support is below this share of the engines (with three
# engines: a word only one of them said, or three different words; a 2-1 vote is not disputed).
DISPUTED_BELOW = 0.6


def low_agreement_spans(consensus: Consensus) -> list[dict[str, Any]]:
    """Where the engines disagreed, in time order: runs of consecutive disputed slots, each with
    its start, end, the consensus text there and each engine's own words, so that a person (or
    the LLM pass) checks just these places. `first_slot`/`last_slot` index Consensus.slots."""
    n = len(consensus.weights)
    runs: list[list[int]] = []
    for index, (slot, key) in enumerate(zip(consensus.slots, consensus.choices, strict=True)):
        support = sum(1 for w in slot.words if (w.key if w is not None else "") == key)
        if support / n >= DISPUTED_BELOW:
            continue
        if runs and runs[-1][-1] == index - 1:
            runs[-1].append(index)
        else:
            runs.append([index])
    by_slot = {v.slot: v for v in consensus.words}
    out: list[dict[str, Any]] = []
    for run in runs:
        present = [w for i in run for w in consensus.slots[i].words if w is not None]
        out.append(
            {
                "start": round(min(w.start for w in present), 3),
                "end": round(max(w.end for w in present), 3),
                "consensus": " ".join(by_slot[i].word.text.strip() for i in run if i in by_slot),
                "engines": [
                    " ".join(
                        w.text.strip()
                        for i in run
                        if (w := consensus.slots[i].words[e]) is not None
                    )
                    for e in range(n)
                ],
                "first_slot": run[0],
                "last_slot": run[-1],
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
    spans = [
        {k: v for k, v in span.items() if k not in ("first_slot", "last_slot")}
        for span in low_agreement_spans(consensus)
    ]
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
