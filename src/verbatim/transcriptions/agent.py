"""The transcript for LLM agents: compact turns, speakers and facts, no per-word noise.

A stable contract (`schema_version`), published as JSON Schema at
`/api/v1/schemas/agent-transcript.json`. Additive changes keep the version; anything that would
break a reader bumps it. Pure: built from the same `ExportDocument` as every other format.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from verbatim.transcriptions.export import ExportDocument

SCHEMA_VERSION = 1
SCHEMA_ID = "https://verbatim.invalid/schemas/agent-transcript-v1.json"

# Mono transcripts become paragraphs: consecutive segments joined until a pause this long or a
# paragraph this long, so an agent reads a few dozen blocks for an hour, not a thousand lines.
PARAGRAPH_PAUSE_S = 1.5
PARAGRAPH_MAX_S = 60.0


def _t(value: float | None) -> float | None:
    # Tenths of a second are as precise as an agent quoting a moment needs.
    if value is None or not math.isfinite(value):
        return None
    return round(value, 1)


def build(doc: ExportDocument) -> dict[str, Any]:
    """The agent document of an `export.ExportDocument`."""
    dialogue = any(seg.speaker for seg in doc.segments)
    turns: list[dict[str, Any]] = []
    for seg in doc.segments:
        text = " ".join(seg.text.split())
        if not text:
            continue
        last = turns[-1] if turns else None
        if last is not None and (
            (dialogue and seg.speaker == last["speaker"])
            or (
                not dialogue
                and seg.start - last["_end"] < PARAGRAPH_PAUSE_S
                and seg.end - last["_start"] <= PARAGRAPH_MAX_S
            )
        ):
            last["text"] += " " + text
            last["_end"] = seg.end
            continue
        turns.append({"speaker": seg.speaker, "_start": seg.start, "_end": seg.end, "text": text})
    total_talk = sum(sp.talk_time for sp in doc.speakers) or 0.0
    return {
        "schema_version": SCHEMA_VERSION,
        "id": doc.id,
        "title": doc.title,
        "language": doc.language,
        "duration": _t(doc.duration),
        "confidence": None if doc.confidence is None else round(doc.confidence, 3),
        "speakers": [
            {
                "id": sp.label,
                "name": sp.name,
                "talk_time": _t(sp.talk_time),
                "share": round(sp.talk_time / total_talk, 3) if total_talk else None,
            }
            for sp in doc.speakers
        ],
        "turns": [
            {
                "speaker": turn["speaker"],
                "start": _t(turn["_start"]),
                "end": _t(turn["_end"]),
                "text": turn["text"],
            }
            for turn in turns
        ],
        "topics": [{"name": name, "status": status} for name, status in doc.topics],
        "summary": doc.summary,
        "notes": list(doc.notes),
    }


def render(doc: ExportDocument) -> str:
    return json.dumps(build(doc), ensure_ascii=False, separators=(",", ":")) + "\n"


def json_schema() -> dict[str, Any]:
    """JSON Schema (2020-12) of `build`'s output."""
    seconds = {"type": ["number", "null"], "minimum": 0}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "Verbatim agent transcript",
        "description": "A transcript for LLM agents: speaker turns with start times, speakers "
        "with talk time, language, duration, confidence, topics, summary and notes. Times are "
        "seconds from the start of the recording, to a tenth.",
        "type": "object",
        "additionalProperties": False,
        "required": [
            "schema_version",
            "id",
            "title",
            "language",
            "duration",
            "confidence",
            "speakers",
            "turns",
            "topics",
            "summary",
            "notes",
        ],
        "properties": {
            "schema_version": {"const": SCHEMA_VERSION},
            "id": {"type": "string", "description": "The transcription's id"},
            "title": {"type": "string"},
            "language": {"type": ["string", "null"], "description": "ISO 639-1"},
            "duration": seconds,
            "confidence": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
            "speakers": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["id", "name", "talk_time", "share"],
                    "properties": {
                        "id": {"type": "string", "description": "The label turns refer to"},
                        "name": {"type": "string"},
                        "talk_time": seconds,
                        "share": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
                    },
                },
            },
            "turns": {
                "type": "array",
                "description": "Speaker turns (dialogue), or paragraphs split at pauses (mono)",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["speaker", "start", "end", "text"],
                    "properties": {
                        "speaker": {"type": ["string", "null"]},
                        "start": seconds,
                        "end": seconds,
                        "text": {"type": "string", "minLength": 1},
                    },
                },
            },
            "topics": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["name", "status"],
                    "properties": {
                        "name": {"type": "string"},
                        "status": {"enum": ["accepted", "suggested"]},
                    },
                },
            },
            "summary": {"type": ["string", "null"]},
            "notes": {"type": "array", "items": {"type": "string"}},
        },
    }
