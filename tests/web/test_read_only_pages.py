"""A viewer of an organisation reads only (decision 0019): the API refuses their writes with 403
`tenant_read_only`, so the pages must not offer them controls that write (uploads, links, bulk
delete, adding to collections, transcribing, renaming speakers, reviewing topics, editing turns,
making and arranging collections, topics and voices). They say instead that the role reads only.
A member of the same organisation, on the same pages, gets every control."""

from __future__ import annotations

import re
import uuid

import httpx

from tests.conftest import FIXTURES
from tests.speakers.helpers import add_dialogue, unit
from tests.web.test_session import csrf_of, web_register
from tests.web.test_tenancy_pages import _other_client, _switch, _web_org
from verbatim.models import (
    AssignedBy,
    AssignmentStatus,
    Collection,
    Topic,
    TranscriptionCollection,
    TranscriptionTopic,
    VoiceProfile,
)
from verbatim.services import get_services

HINT = "You can view this organisation's library; your role (viewer) cannot change it."

# What marks each write control in a page's HTML (ids, classes, data attributes).
WRITES: dict[str, tuple[str, ...]] = {
    "library": (
        'id="dropzone"',
        'id="file-input"',
        'id="url-form"',
        'id="bulk-delete"',
        'id="bulk-collection"',
        'id="bulk-collect"',
    ),
    "recording": (
        'class="speaker-form"',
        'name="display_name"',
        "data-assign=",
        'id="collect-form"',
        'class="edit ',
        'id="editor-template"',
    ),
    "untranscribed": ('id="transcribe"',),
    "collections": ('id="new-collection"', "data-delete-collection"),
    "collection": ("data-move=", "data-remove", 'draggable="true"', 'id="collection-export"'),
    "topics": ('id="new-topic"', "data-delete-topic"),
    "voices": ("profile-form", "data-delete-profile"),
}

# What must stay for everyone: reading, filtering, playing, seeking, exporting.
READS: dict[str, tuple[str, ...]] = {
    "library": ('id="f-q"', 'id="select-all"', 'id="bulk-export"', "dialogue.wav"),
    "recording": (
        'id="media"',
        "data-seek=",
        "/export?format=srt",
        'id="speakers"',
        "Alice",
        'id="topics"',
        "Budget",
    ),
    "untranscribed": ('id="media"',),
    "collections": ("Favourites",),
    "collection": ("?transcription=",),
    "topics": ("Budget",),
    "voices": ("Alice",),
}


async def _seed(org: str, owner_id: str, audio_id: str) -> dict[str, str]:
    """A completed dialogue transcription of `audio_id` in the organisation (written as the
    worker would, no model), with speakers, a suggested topic, a collection holding it and a
    voice profile."""
    tid, topic_id, cid = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    owned = {"user_id": uuid.UUID(owner_id), "tenant_id": uuid.UUID(org)}
    async with get_services().sessionmaker() as session:
        await add_dialogue(
            session, tid, **owned, audio_file_id=uuid.UUID(audio_id), first_speaker_name="Alice"
        )
        session.add_all(
            [
                Topic(id=topic_id, **owned, name="Budget", description="Money matters"),
                Collection(id=cid, **owned, name="Favourites"),
                VoiceProfile(**owned, name="Alice", centroid=unit(1)),
            ]
        )
        await session.flush()
        session.add_all(
            [
                TranscriptionTopic(
                    transcription_id=tid,
                    topic_id=topic_id,
                    status=AssignmentStatus.suggested,
                    assigned_by=AssignedBy.ai,
                    ai_confidence=0.8,
                ),
                TranscriptionCollection(collection_id=cid, transcription_id=tid, position=1024),
            ]
        )
        await session.commit()
    return {"transcription": str(tid), "collection": str(cid)}


async def _join(
    owner: httpx.AsyncClient,
    owner_csrf: str,
    org: str,
    other: httpx.AsyncClient,
    email: str,
    role: str,
) -> None:
    r = await owner.post(
        f"/organisations/{org}/invitations",
        data={"csrf_token": owner_csrf, "email": email, "role": role},
    )
    assert r.status_code == 201, r.text
    link = re.search(r'<code id="invite-link">([^<]+)</code>', r.text).group(1)  # type: ignore[union-attr]
    token = link.split("token=", 1)[1]
    csrf = await web_register(other, email)
    r = await other.post("/invitations/accept", data={"csrf_token": csrf, "token": token})
    assert r.status_code == 303, r.text
    page = await other.get("/library")
    assert f"Acting in <strong>Newsroom</strong> as {role}" in page.text


async def test_a_viewer_is_offered_no_write_controls_and_a_member_all_of_them(
    app_client: httpx.AsyncClient,
) -> None:
    owner_csrf = await web_register(app_client, "owner@example.com")
    org = await _web_org(app_client, owner_csrf, "Newsroom")
    assert (await _switch(app_client, owner_csrf, org)).status_code == 303
    audio = {}
    for name in ("dialogue.wav", "speech.wav"):  # the second one stays untranscribed
        with (FIXTURES / name).open("rb") as fh:
            r = await app_client.post(
                "/api/v1/audio",
                headers={"X-CSRF-Token": owner_csrf},
                files={"file": (name, fh, "audio/wav")},
            )
        assert r.status_code == 201, r.text
        audio[name] = r.json()["id"]
    owner_id = (await app_client.get("/api/v1/auth/me")).json()["id"]
    seeded = await _seed(org, owner_id, audio["dialogue.wav"])

    pages = {
        "library": "/library",
        "recording": f"/recordings/{audio['dialogue.wav']}",
        "untranscribed": f"/recordings/{audio['speech.wav']}",
        "collections": "/collections",
        "collection": f"/collections/{seeded['collection']}",
        "topics": "/topics",
        "voices": "/voices",
    }
    async with _other_client(app_client) as viewer, _other_client(app_client) as member:
        await _join(app_client, owner_csrf, org, viewer, "viewer@example.com", "viewer")
        await _join(app_client, owner_csrf, org, member, "member@example.com", "member")

        for name, url in pages.items():
            page = await viewer.get(url)
            assert page.status_code == 200, (name, page.status_code)
            offered = [marker for marker in WRITES[name] if marker in page.text]
            assert offered == [], (name, offered)
            missing = [marker for marker in READS[name] if marker not in page.text]
            assert missing == [], (name, missing)
            assert 'id="read-only"' in page.text and HINT in page.text, name

            page = await member.get(url)
            assert page.status_code == 200, (name, page.status_code)
            missing = [m for m in WRITES[name] + READS[name] if m not in page.text]
            assert missing == [], (name, missing)
            assert 'id="read-only"' not in page.text, name

        # The viewer's API writes are still refused (the pages only stop offering them).
        viewer_csrf = csrf_of((await viewer.get("/library")).text)
        r = await viewer.post(
            f"/api/v1/audio/{audio['speech.wav']}/transcriptions",
            headers={"X-CSRF-Token": viewer_csrf},
            json={},
        )
        assert r.status_code == 403 and r.json()["error"]["code"] == "tenant_read_only"

        # In their own library the viewer writes: every control, no hint.
        personal = (await viewer.get("/api/v1/auth/me")).json()["tenant_id"]
        assert (await _switch(viewer, viewer_csrf, personal)).status_code == 303
        page = await viewer.get("/library")
        assert 'id="dropzone"' in page.text and 'id="bulk-delete"' in page.text
        assert 'id="read-only"' not in page.text
