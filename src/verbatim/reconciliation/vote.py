"""Voting over the aligned network: one word (or none) per slot, with agreement and alternatives.

Each slot's candidates are its distinct normalised words plus "nothing here" (engines with no
word in the slot). A candidate's score follows NIST ROVER (Fiscus 1997):

    score = ALPHA * (weight of the engines voting for it / weight of all engines)
          + (1 - ALPHA) * (its mean confidence among those engines)

"Nothing" takes NULL_CONFIDENCE as its confidence. Engines are weighted by how much they agree
with the others: a first vote with equal weights gives a consensus, each engine's word error
rate against it gives its weight (1 - WER, at least MIN_WEIGHT), and a second vote decides.
ALPHA and NULL_CONFIDENCE are ROVER's usual values, chosen before any measurement here; both
can be passed to `reconcile` (bench/reconcile measures other values, decision 0022 says why the
defaults stay).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from verbatim.reconciliation.align import Slot, Word, align

ALPHA = 0.7
NULL_CONFIDENCE = 0.7
DEFAULT_CONFIDENCE = 0.7  # engines that give no word confidence
MIN_WEIGHT = 0.1


@dataclass(frozen=True, slots=True)
class Alternative:
    text: str
    engines: tuple[int, ...]
    score: float


@dataclass(frozen=True, slots=True)
class VotedWord:
    """A word of the consensus with its support: `agreement` engines of `engines` said it."""

    word: Word
    agreement: int
    engines: int
    voters: tuple[int, ...]
    score: float
    alternatives: tuple[Alternative, ...]
    slot: int = -1  # index into Consensus.slots (-1: not from a slot, e.g. an LLM change)

    @property
    def agreement_ratio(self) -> float:
        return self.agreement / self.engines


@dataclass(slots=True)
class EngineStats:
    substitutions: int = 0
    deletions: int = 0  # the consensus has a word, this engine none
    insertions: int = 0  # this engine has a word the consensus dropped
    words: int = 0

    def wer(self, reference_words: int) -> float:
        errors = self.substitutions + self.deletions + self.insertions
        return errors / reference_words if reference_words else float(errors > 0)


@dataclass(slots=True)
class Consensus:
    words: list[VotedWord]
    weights: list[float]
    stats: list[EngineStats]
    slots: list[Slot] = field(repr=False)
    # Per slot: the winning key ('' = nothing), kept for the raw record.
    choices: list[str] = field(repr=False, default_factory=list)


def reconcile(
    hypotheses: Sequence[Sequence[Word]],
    *,
    weights: Sequence[float] | None = None,
    window: float = 10.0,
    alpha: float = ALPHA,
    null_confidence: float = NULL_CONFIDENCE,
) -> Consensus:
    """Align and vote. `weights` fixes engine weights; by default they come from agreement.
    `alpha` weighs votes against confidence; `null_confidence` is the confidence of "nothing"."""
    if not 0.0 <= alpha <= 1.0 or not 0.0 <= null_confidence <= 1.0:
        raise ValueError("alpha and null_confidence must lie in [0, 1]")
    slots = align(hypotheses, window=window)
    n = len(hypotheses)
    if weights is None:
        first = _vote(slots, [1.0] * n, alpha, null_confidence)
        stats = _stats(slots, first[1], n)
        reference = sum(1 for key in first[1] if key)
        weights = [max(MIN_WEIGHT, 1.0 - s.wer(reference)) for s in stats]
    words, choices = _vote(slots, list(weights), alpha, null_confidence)
    stats = _stats(slots, choices, n)
    return Consensus(words, list(weights), stats, slots, choices)


def _vote(
    slots: list[Slot], weights: list[float], alpha: float, null_confidence: float
) -> tuple[list[VotedWord], list[str]]:
    total = sum(weights) or 1.0
    out: list[VotedWord] = []
    choices: list[str] = []
    previous_start = 0.0
    for slot_index, slot in enumerate(slots):
        groups: dict[str, list[int]] = {}
        for engine, word in enumerate(slot.words):
            groups.setdefault(word.key if word is not None else "", []).append(engine)
        scored: list[tuple[float, float, str, list[int]]] = []
        for key, engines in groups.items():
            support = sum(weights[e] for e in engines)
            if key:
                confs = [_confidence(slot.words[e]) for e in engines]
                confidence = sum(confs) / len(confs)
            else:
                confidence = null_confidence
            score = alpha * support / total + (1 - alpha) * confidence
            # Ties go to the candidate of the heaviest engine (then to a word over nothing).
            scored.append((score, max(weights[e] for e in engines), key, engines))
        scored.sort(key=lambda s: (s[0], s[1], bool(s[2])), reverse=True)
        score, _, key, voters = scored[0]
        choices.append(key)
        if not key:
            continue
        # The form and times of the most trusted voter (its punctuation and casing too).
        best = max(voters, key=lambda e: (weights[e], _confidence(slot.words[e])))
        chosen = slot.words[best]
        assert chosen is not None
        start = max(chosen.start, previous_start)
        word = Word(
            chosen.text,
            start,
            max(chosen.end, start),
            round(sum(_confidence(slot.words[e]) for e in voters) / len(voters), 4),
            chosen.speaker,
        )
        previous_start = start
        alternatives = tuple(
            Alternative(
                _display(slot, engines) if k else "",
                tuple(engines),
                round(s, 4),
            )
            for s, _, k, engines in scored[1:]
        )
        out.append(
            VotedWord(
                word=word,
                agreement=len(voters),
                engines=len(weights),
                voters=tuple(voters),
                score=round(score, 4),
                alternatives=alternatives,
                slot=slot_index,
            )
        )
    return out, choices


def _display(slot: Slot, engines: list[int]) -> str:
    word = slot.words[engines[0]]
    return word.text.strip() if word is not None else ""


def _confidence(word: Word | None) -> float:
    if word is None or word.confidence is None:
        return DEFAULT_CONFIDENCE
    return word.confidence


def _stats(slots: list[Slot], choices: list[str], n: int) -> list[EngineStats]:
    """Each engine's errors against the consensus, counted over the network's slots."""
    stats = [EngineStats() for _ in range(n)]
    for slot, key in zip(slots, choices, strict=True):
        for engine, word in enumerate(slot.words):
            s = stats[engine]
            if word is not None:
                s.words += 1
            if key and word is None:
                s.deletions += 1
            elif key and word is not None and word.key != key:
                s.substitutions += 1
            elif not key and word is not None:
                s.insertions += 1
    return stats
