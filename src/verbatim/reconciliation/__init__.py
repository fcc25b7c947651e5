"""Reconciliation of several engines' transcripts into one: alignment, voting, metrics."""

from verbatim.reconciliation.align import Word, align, normalise
from verbatim.reconciliation.metrics import low_agreement_spans, quality
from verbatim.reconciliation.vote import Consensus, VotedWord, reconcile

__all__ = [
    "Consensus",
    "VotedWord",
    "Word",
    "align",
    "low_agreement_spans",
    "normalise",
    "quality",
    "reconcile",
]
