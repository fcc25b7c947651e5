"""The optional LLM pass: resolve only the disputed spans, never rewrite agreed text.

Any OpenAI-compatible chat endpoint works (OpenAI, Gemini's OpenAI-compatible endpoint, Ollama,
vLLM): `POST {base_url}/chat/completions` with a JSON answer asked for. The model sees each
low-agreement span with the consensus words around it and every engine's words inside it, and
answers which text each span should read, why, and a summary and topic suggestions.

What it may change is bounded here, not by the prompt: a span's new text must be made of words
some engine heard there (a model cannot invent content), words outside spans are never touched,
and every change is recorded with its reason and `source: "llm"`. A failed or malformed answer
leaves the voted transcript as it was, with a note saying so.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from verbatim.config import Settings
from verbatim.reconciliation.align import Word, normalise
from verbatim.reconciliation.metrics import low_agreement_spans
from verbatim.reconciliation.vote import Consensus, VotedWord

CONTEXT_WORDS = 12  # consensus words shown before and after each span
MAX_SPANS = 60  # per request; a transcript with more disputes sends its worst first
MAX_ATTEMPTS = 4
MAX_RETRY_AFTER_S = 30.0

SYSTEM_PROMPT = (
    "You reconcile speech-recognition output. Several engines transcribed the same audio; "
    "they disagree in the numbered spans below. For each span choose the wording that is most "
    "likely what was said, using ONLY words that at least one engine heard in that span (you "
    "may pick one engine's version or combine their words), or an empty string if nothing was "
    "said. Never add other words. Then write a two-sentence summary of the whole excerpt and up "
    "to five short topic names. Answer with JSON only: "
    '{"spans": [{"id": <int>, "text": <string>, "reason": <short string>}], '
    '"summary": <string>, "topics": [<string>]}'
)


class LlmError(Exception):
    """The endpoint failed or answered something unusable; `code` is stable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class LlmConfig:
    base_url: str  # e.g. https://api.openai.com/v1
    api_key: str | None
    model: str
    timeout_s: float = 60.0


def config_from(settings: Settings) -> LlmConfig | None:
    """The deployment's LLM endpoint, or None when the pass is off."""
    if not settings.llm_base_url or not settings.llm_model:
        return None
    return LlmConfig(
        base_url=settings.llm_base_url,
        api_key=settings.llm_api_key or None,
        model=settings.llm_model,
        timeout_s=settings.llm_timeout_s,
    )


@dataclass(slots=True)
class LlmResult:
    words: list[VotedWord]
    changes: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    summary: str | None = None
    topics: list[str] = field(default_factory=list)
    model: str | None = None


def build_request(consensus: Consensus, spans: list[dict[str, Any]], model: str) -> dict[str, Any]:
    """The chat completion request for these spans (ids are indexes into `spans`)."""
    words = consensus.words
    lines = []
    for index, span in enumerate(spans):
        before = [v.word.text.strip() for v in words if v.word.end <= span["start"] + 0.01]
        after = [v.word.text.strip() for v in words if v.word.start >= span["end"] - 0.01]
        options = "\n".join(f"  engine {e + 1}: {text!r}" for e, text in enumerate(span["engines"]))
        lines.append(
            f"Span {index} ({span['start']:.1f}-{span['end']:.1f} s)\n"
            f"  before: ...{' '.join(before[-CONTEXT_WORDS:])}\n{options}\n"
            f"  after: {' '.join(after[:CONTEXT_WORDS])}..."
        )
    return {
        "model": model,
        "temperature": 0,
        "response_format": {"type": "json_object"},
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": "\n\n".join(lines) or "(no disputed spans)"},
        ],
    }


async def chat(config: LlmConfig, body: dict[str, Any]) -> dict[str, Any]:
    """One chat completion: timeouts on every call, 429 and 5xx retried with backoff and
    Retry-After, 401/403 at once as `llm_auth_failed`. Returns the parsed JSON content."""
    headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
    url = config.base_url.rstrip("/") + "/chat/completions"
    async with httpx.AsyncClient(timeout=config.timeout_s, follow_redirects=False) as client:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                r = await client.post(url, json=body, headers=headers)
            except httpx.HTTPError as exc:
                if attempt == MAX_ATTEMPTS:
                    raise LlmError("llm_unreachable", f"{type(exc).__name__}: {exc}") from exc
                await asyncio.sleep(_backoff(attempt, None))
                continue
            if r.status_code in (401, 403):
                raise LlmError("llm_auth_failed", f"the LLM endpoint answered {r.status_code}")
            if r.status_code == 429 or r.status_code >= 500:
                if attempt == MAX_ATTEMPTS:
                    raise LlmError("llm_unavailable", f"the LLM endpoint answered {r.status_code}")
                await asyncio.sleep(_backoff(attempt, r.headers.get("retry-after")))
                continue
            if r.status_code != 200:
                raise LlmError("llm_rejected", f"the LLM endpoint answered {r.status_code}")
            try:
                content = r.json()["choices"][0]["message"]["content"]
                parsed = json.loads(_strip_fence(content))
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                raise LlmError("llm_bad_answer", "the answer was not the JSON asked for") from exc
            if not isinstance(parsed, dict):
                raise LlmError("llm_bad_answer", "the answer was not a JSON object")
            return parsed
    raise AssertionError("unreachable")


def _backoff(attempt: int, retry_after: str | None) -> float:
    if retry_after is not None:
        try:
            return min(max(float(retry_after), 0.0), MAX_RETRY_AFTER_S)
        except ValueError:
            pass
    return min(0.5 * 2.0 ** (attempt - 1), 8.0) * (0.5 + random.random())  # noqa: S311 (jitter)


def _strip_fence(content: str) -> str:
    # Some models wrap JSON in a markdown fence even when asked not to.
    text = content.strip()
    if text.startswith("```"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
        text = text.rsplit("```", 1)[0]
    return text


async def resolve(config: LlmConfig, consensus: Consensus) -> LlmResult:
    """Ask the LLM about the disputed spans and apply what it may change."""
    spans = low_agreement_spans(consensus)[:MAX_SPANS]
    result = LlmResult(words=list(consensus.words), model=config.model)
    if not spans:
        result.notes.append("The engines agreed everywhere; nothing was sent to the LLM.")
        return result
    try:
        answer = await chat(config, build_request(consensus, spans, config.model))
    except LlmError as exc:
        result.notes.append(f"LLM pass skipped ({exc.code}): {exc}")
        return result
    return apply(consensus, spans, answer, model=config.model)


def apply(
    consensus: Consensus, spans: list[dict[str, Any]], answer: dict[str, Any], *, model: str
) -> LlmResult:
    """Apply an LLM answer: only span texts made of words some engine heard there."""
    result = LlmResult(words=list(consensus.words), model=model)
    summary = answer.get("summary")
    result.summary = summary.strip() if isinstance(summary, str) and summary.strip() else None
    topics = answer.get("topics")
    if isinstance(topics, list):
        result.topics = [t.strip()[:100] for t in topics if isinstance(t, str) and t.strip()][:5]
    choices = answer.get("spans")
    if not isinstance(choices, list):
        result.notes.append("The LLM answer had no spans; the voted transcript is kept.")
        return result
    replacements: list[tuple[dict[str, Any], list[Word], str]] = []
    for choice in choices:
        if not isinstance(choice, dict):
            continue
        index, text = choice.get("id"), choice.get("text")
        if not isinstance(index, int) or not 0 <= index < len(spans) or not isinstance(text, str):
            continue
        span = spans[index]
        reason = str(choice.get("reason") or "")[:300]
        heard = {normalise(w) for option in span["engines"] for w in option.split()}
        wanted = [w for w in text.split() if normalise(w)]
        if any(normalise(w) not in heard for w in wanted):
            result.notes.append(
                f"LLM text for {span['start']:.1f}-{span['end']:.1f} s refused: it used words no "
                f"engine heard there ({text!r})."
            )
            continue
        if " ".join(normalise(w) for w in wanted) == normalise_text(span["consensus"]):
            continue  # it agrees with the vote
        replacements.append((span, _timed(span, wanted, consensus), reason))
    for span, new_words, reason in replacements:
        before = span["consensus"]
        result.words = _replace(result.words, span, new_words, len(consensus.weights))
        result.changes.append(
            {
                "start": span["start"],
                "end": span["end"],
                "before": before,
                "after": " ".join(w.text.strip() for w in new_words),
                "reason": reason,
                "source": "llm",
                "model": model,
            }
        )
    return result


def normalise_text(text: str) -> str:
    return " ".join(n for n in (normalise(w) for w in text.split()) if n)


def _timed(span: dict[str, Any], wanted: Sequence[str], consensus: Consensus) -> list[Word]:
    """Words for the new span text: an engine's own words (with its times) when the text is
    exactly one engine's, else times spread evenly over the span."""
    target = " ".join(normalise(w) for w in wanted)
    for slot_words in _engine_words(span, consensus):
        if " ".join(w.key for w in slot_words) == target:
            return list(slot_words)
    start, end = span["start"], span["end"]
    step = (end - start) / max(1, len(wanted))
    return [
        Word(" " + w, round(start + i * step, 3), round(start + (i + 1) * step, 3), None)
        for i, w in enumerate(wanted)
    ]


def _engine_words(span: dict[str, Any], consensus: Consensus) -> list[list[Word]]:
    n = len(consensus.weights)
    per_engine: list[list[Word]] = [[] for _ in range(n)]
    for slot in consensus.slots[span["first_slot"] : span["last_slot"] + 1]:
        for e, w in enumerate(slot.words):
            if w is not None:
                per_engine[e].append(w)
    return per_engine


def _replace(
    words: list[VotedWord], span: dict[str, Any], new: list[Word], engines: int
) -> list[VotedWord]:
    """The span's slots' words swapped for `new`; every other word stays as voted."""
    first, last = span["first_slot"], span["last_slot"]
    before = [v for v in words if 0 <= v.slot < first]
    after = [v for v in words if v.slot > last]
    inserted = [
        # Marked by agreement 0 and no voters; placed at the span's first slot for order.
        VotedWord(
            word=w, agreement=0, engines=engines, voters=(), score=0.0, alternatives=(), slot=first
        )
        for w in new
    ]
    return before + inserted + after
