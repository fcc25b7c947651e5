"""Speakers of dialogue transcriptions and the user's voice profiles.

Ownership: a speaker is reached through its transcription (transcriptions.service checks the
owner); a voice profile through `owned_profiles`, the one filter of this domain.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Select, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from verbatim.audit import service as audit
from verbatim.config import Settings
from verbatim.engines.base import EngineResult
from verbatim.errors import Conflict, NotFound, ValidationFailed
from verbatim.kit.pagination import paginate
from verbatim.models import Segment, Speaker, Transcription, TranscriptionStatus, User, VoiceProfile
from verbatim.speakers.schemas import SpeakerUpdate
from verbatim.tenancy.scope import tenant_of, visible

# --- voices: pure ---------------------------------------------------------------------------


def normalised(vector: Iterable[float]) -> list[float]:
    array = np.asarray(list(vector), dtype=np.float64)
    norm = float(np.linalg.norm(array))
    result: list[float] = (array / norm).tolist() if norm > 0 else array.tolist()
    return result


def similarity(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity of two voice embeddings."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    denominator = float(np.linalg.norm(x) * np.linalg.norm(y))
    return float(x @ y) / denominator if denominator > 0 else 0.0


@dataclass(frozen=True)
class Match:
    profile_id: uuid.UUID
    name: str
    score: float


def match_voices(
    speakers: Sequence[tuple[str, Sequence[float] | None]],
    profiles: Sequence[tuple[uuid.UUID, str, Sequence[float]]],
    threshold: float,
) -> dict[str, Match]:
    """Speakers matched to profiles with similarity >= threshold, best pairs first; each
    profile names at most one speaker of a transcription, and each speaker gets one name."""
    pairs = sorted(
        (
            (similarity(centroid, p_centroid), label, p_id, p_name)
            for label, centroid in speakers
            if centroid is not None
            for p_id, p_name, p_centroid in profiles
        ),
        key=lambda pair: -pair[0],
    )
    matches: dict[str, Match] = {}
    used: set[uuid.UUID] = set()
    for score, label, p_id, p_name in pairs:
        if score < threshold:
            break
        if label in matches or p_id in used:
            continue
        matches[label] = Match(p_id, p_name, round(score, 4))
        used.add(p_id)
    return matches


# --- writing a finished transcription's speakers ---------------------------------------------


async def write_speakers(
    session: AsyncSession, settings: Settings, transcription: Transcription, result: EngineResult
) -> None:
    """Replace the transcription's speaker rows (a re-run leaves no stale ones) and name the
    voices that match the owner's profiles."""
    await session.execute(
        delete(Speaker)
        .where(Speaker.transcription_id == transcription.id)
        .execution_options(synchronize_session=False)
    )
    if not result.speakers:
        return
    profiles = (
        await session.execute(
            select(VoiceProfile.id, VoiceProfile.name, VoiceProfile.centroid).where(
                # The transcription's library: its tenant's voice profiles.
                VoiceProfile.tenant_id == transcription.tenant_id
            )
        )
    ).all()
    matches = match_voices(
        [(s.label, s.centroid) for s in result.speakers],
        [(p_id, name, centroid) for p_id, name, centroid in profiles],
        settings.voice_match_threshold,
    )
    for stats in result.speakers:
        match = matches.get(stats.label)
        session.add(
            Speaker(
                transcription_id=transcription.id,
                label=stats.label,
                display_name=match.name if match else None,
                talk_time=stats.talk_time,
                word_count=stats.word_count,
                centroid=list(stats.centroid) if stats.centroid is not None else None,
                voice_profile_id=match.profile_id if match else None,
                match_confidence=match.score if match else None,
            )
        )


# --- reading ---------------------------------------------------------------------------------


def speaker_out(speaker: Speaker) -> dict[str, Any]:
    return {
        "label": speaker.label,
        "display_name": speaker.display_name,
        "name": speaker.display_name or speaker.label,
        "talk_time": round(speaker.talk_time, 3),
        "word_count": speaker.word_count,
        "voice_profile_id": speaker.voice_profile_id,
        "match_confidence": speaker.match_confidence,
        "has_voice": speaker.centroid is not None,
    }


def _label_order(label: str) -> tuple[int, str]:
    number = label.rsplit("_", 1)[-1]
    return (int(number), label) if number.isdigit() else (1 << 30, label)


async def transcription_speakers(
    session: AsyncSession, transcription_id: uuid.UUID
) -> list[Speaker]:
    """The speakers of a transcription the caller was already checked to own."""
    rows = await session.scalars(
        select(Speaker).where(Speaker.transcription_id == transcription_id)
    )
    return sorted(rows, key=lambda s: _label_order(s.label))


async def speaker_names(session: AsyncSession, transcription_id: uuid.UUID) -> dict[str, str]:
    """label -> name shown (display name, or the label while unnamed)."""
    rows = await session.execute(
        select(Speaker.label, Speaker.display_name).where(
            Speaker.transcription_id == transcription_id
        )
    )
    return {label: name or label for label, name in rows}


async def list_speakers(
    session: AsyncSession, user: User, transcription_id: uuid.UUID
) -> list[Speaker]:
    from verbatim.transcriptions.service import get_transcription

    transcription = await get_transcription(session, user, transcription_id)
    return await transcription_speakers(session, transcription.id)


async def _owned_speaker(
    session: AsyncSession, user: User, transcription_id: uuid.UUID, label: str
) -> tuple[Transcription, Speaker]:
    from verbatim.transcriptions.service import get_transcription

    transcription = await get_transcription(session, user, transcription_id)
    if transcription.status is not TranscriptionStatus.completed:
        raise Conflict(
            f"The transcription is {transcription.status.value}, not completed",
            code="transcription_not_ready",
        )
    speaker = await session.scalar(
        select(Speaker)
        .where(Speaker.transcription_id == transcription.id, Speaker.label == label)
        .with_for_update()
    )
    if speaker is None:
        raise NotFound(f"No speaker {label!r} in this transcription", code="speaker_not_found")
    return transcription, speaker


# --- renaming and merging --------------------------------------------------------------------


async def rename_speaker(
    session: AsyncSession,
    user: User,
    transcription_id: uuid.UUID,
    label: str,
    body: SpeakerUpdate,
) -> Speaker:
    _, speaker = await _owned_speaker(session, user, transcription_id, label)
    name = body.display_name
    if body.save_voice:
        if name is None:
            raise ValidationFailed(
                "save_voice needs a display_name to save the voice under",
                code="voice_name_required",
            )
        if speaker.centroid is None:
            raise ValidationFailed(
                "No voice embedding was kept for this speaker", code="voice_unavailable"
            )
        profile = await save_voice(session, user, name, speaker)
        speaker.voice_profile_id = profile.id
        if speaker.match_confidence is not None and speaker.display_name != name:
            speaker.match_confidence = None  # no longer the automatic match
    elif speaker.voice_profile_id is not None:
        # Named otherwise than its profile: the automatic match was wrong, drop the link.
        linked = await session.get(VoiceProfile, speaker.voice_profile_id)
        if linked is None or linked.name != name:
            speaker.voice_profile_id = None
            speaker.match_confidence = None
    speaker.display_name = name
    await session.flush()
    return speaker


async def save_voice(
    session: AsyncSession, user: User, name: str, speaker: Speaker
) -> VoiceProfile:
    """Create the profile `name` from the speaker's voice, or add the voice to it."""
    assert speaker.centroid is not None
    centroid = normalised(speaker.centroid)
    profile = await session.scalar(
        owned_profiles(user).where(VoiceProfile.name == name).with_for_update()
    )
    if profile is None:
        try:
            async with session.begin_nested():
                profile = VoiceProfile(
                    user_id=user.id,
                    tenant_id=tenant_of(user),
                    name=name,
                    centroid=centroid,
                    samples=1,
                )
                session.add(profile)
                await session.flush()
            return profile
        except IntegrityError:  # created meanwhile by a concurrent request: add to it
            profile = await session.scalar(
                owned_profiles(user).where(VoiceProfile.name == name).with_for_update()
            )
            assert profile is not None
    if speaker.voice_profile_id != profile.id:  # this voice is not in the profile yet
        weight = profile.samples
        profile.centroid = normalised(
            np.asarray(profile.centroid, dtype=np.float64) * weight + np.asarray(centroid)
        )
        profile.samples = weight + 1
    return profile


async def merge_speakers(
    session: AsyncSession, user: User, transcription_id: uuid.UUID, label: str, into: str
) -> list[Speaker]:
    """Fold `label` into `into` (the pipeline split one voice): its segments, talk time, words
    and voice go to `into`; `label` is removed."""
    transcription, source = await _owned_speaker(session, user, transcription_id, label)
    if into == label:
        raise ValidationFailed("A speaker cannot be merged into itself", code="speaker_merge_self")
    target = await session.scalar(
        select(Speaker)
        .where(Speaker.transcription_id == transcription.id, Speaker.label == into)
        .with_for_update()
    )
    if target is None:
        raise ValidationFailed(
            f"No speaker {into!r} in this transcription", code="merge_target_not_found"
        )
    if source.centroid is not None and target.centroid is not None:
        a, b = max(source.talk_time, 1e-3), max(target.talk_time, 1e-3)
        target.centroid = normalised(
            np.asarray(source.centroid, dtype=np.float64) * a
            + np.asarray(target.centroid, dtype=np.float64) * b
        )
    elif target.centroid is None:
        target.centroid = source.centroid
    target.talk_time = round(target.talk_time + source.talk_time, 3)
    target.word_count += source.word_count
    await session.execute(
        update(Segment)
        .where(Segment.transcription_id == transcription.id, Segment.speaker == label)
        .values(speaker=into)
        .execution_options(synchronize_session=False)
    )
    await session.delete(source)
    await session.flush()
    return await transcription_speakers(session, transcription.id)


# --- voice profiles --------------------------------------------------------------------------


def owned_profiles(user: User) -> Select[VoiceProfile]:
    return select(VoiceProfile).where(visible(VoiceProfile, user))


async def get_profile(session: AsyncSession, user: User, profile_id: uuid.UUID) -> VoiceProfile:
    profile = await session.scalar(owned_profiles(user).where(VoiceProfile.id == profile_id))
    if profile is None:
        raise NotFound("Voice profile not found", code="voice_profile_not_found")
    return profile


async def list_profiles(
    session: AsyncSession, user: User, *, limit: int, offset: int
) -> tuple[list[VoiceProfile], int]:
    stmt = owned_profiles(user).order_by(VoiceProfile.name, VoiceProfile.id)
    return await paginate(session, stmt, limit, offset)


async def rename_profile(
    session: AsyncSession, user: User, profile_id: uuid.UUID, name: str
) -> VoiceProfile:
    profile = await get_profile(session, user, profile_id)
    if name == profile.name:
        return profile
    taken = await session.scalar(
        owned_profiles(user).where(VoiceProfile.name == name, VoiceProfile.id != profile.id)
    )
    if taken is not None:
        raise Conflict(f"A voice profile named {name!r} exists", code="voice_profile_exists")
    # Speakers named by this profile follow the new name; names typed by hand stay.
    await session.execute(
        update(Speaker)
        .where(Speaker.voice_profile_id == profile.id, Speaker.display_name == profile.name)
        .values(display_name=name)
        .execution_options(synchronize_session=False)
    )
    profile.name = name
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise Conflict(
            f"A voice profile named {name!r} exists", code="voice_profile_exists"
        ) from exc
    return profile


async def delete_profile(session: AsyncSession, user: User, profile_id: uuid.UUID) -> None:
    """The row and its embedding go; speakers it named keep their name, lose the link."""
    profile = await get_profile(session, user, profile_id)
    await session.delete(profile)
    await session.flush()
    await audit.record_for(session, user, audit.Action.delete, "voice_profile", profile_id)
