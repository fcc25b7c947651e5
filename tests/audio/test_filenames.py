"""Client file names: parsed as browsers send them, stored as a cleaned display name, escaped in
headers; odd bytes are a 4xx or decoded safely, never a 500 or a NUL in PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

import pytest

from tests.conftest import FIXTURES, ApiUser
from verbatim.kit.filenames import display_name
from verbatim.kit.http import content_disposition

BOUNDARY = b"verbatim-test-boundary"


def multipart(disposition: bytes, data: bytes, content_type: bytes = b"audio/wav") -> bytes:
    return (
        b"--" + BOUNDARY + b"\r\n"
        b"Content-Disposition: " + disposition + b"\r\n"
        b"Content-Type: " + content_type + b"\r\n\r\n" + data + b"\r\n"
        b"--" + BOUNDARY + b"--\r\n"
    )


async def raw_upload(user: ApiUser, disposition: bytes, content_type: bytes = b"audio/wav") -> dict:
    body = multipart(disposition, (FIXTURES / "speech.wav").read_bytes(), content_type)
    r = await user.post(
        "/api/v1/audio",
        content=body,
        headers={"content-type": "multipart/form-data; boundary=" + BOUNDARY.decode()},
    )
    assert r.status_code in (200, 201), r.text
    result: dict = r.json()
    return result


@pytest.mark.parametrize(
    ("disposition", "stored"),
    [
        (b'form-data; name="file"; filename="a\\"b.wav"', 'a"b.wav'),  # curl, Python clients
        (b'form-data; name="file"; filename="a%22b.wav"', 'a"b.wav'),  # browsers (WHATWG)
        (b'form-data; name="file"; filename="C:\\x\\y.wav"', "y.wav"),  # old IE: a full path
        (b"form-data; name=\"file\"; filename*=UTF-8''caf%C3%A9.wav", "café.wav"),  # RFC 5987
        (b'form-data; name="file"; filename="../../etc/passwd.wav"', "passwd.wav"),
        ('form-data; name="file"; filename="evil\u202ewav.exe"'.encode(), "evilwav.exe"),
        (b'form-data; name="file"; filename="caf\xe9.wav"', "café.wav"),  # Latin-1, not UTF-8
        (b'form-data; name="file"; filename="\xff\xfe.wav"', "ÿþ.wav"),  # not UTF-8 at all
        (b'form-data; name="file"; filename="nul\x00byte.wav"', "nulbyte.wav"),
        (b'form-data; name="file"; filename="tab\there.wav"', "tab here.wav"),
        (b'form-data; name="file"; filename=""', "audio"),
    ],
)
async def test_multipart_filenames(alice: ApiUser, disposition: bytes, stored: str) -> None:
    audio = await raw_upload(alice, disposition)
    assert audio["original_filename"] == stored
    # Served back with a header that says the same name and cannot be broken out of.
    r = await alice.get(f"/api/v1/audio/{audio['id']}/content")
    header = r.headers["content-disposition"]
    assert header.isascii()
    star = header.split("filename*=UTF-8''", 1)[1]
    assert unquote(star) == stored
    assert header.count('"') == 2  # only the fallback's own quotes


async def test_nul_in_the_part_content_type_is_harmless(alice: ApiUser) -> None:
    audio = await raw_upload(
        alice, b'form-data; name="file"; filename="a.wav"', content_type=b"audio/wav\x00x"
    )
    assert audio["mime_type"] == "audio/wav"  # sniffed, the client's type is never stored


async def test_direct_upload_names_and_types_are_cleaned(alice: ApiUser) -> None:
    # NUL cannot be stored: a JSON body carrying one is refused whole (kit.schemas.RequestModel).
    r = await alice.post(
        "/api/v1/uploads",
        json={"filename": "x\u0000.wav", "size": 1000, "content_type": "audio/wav\u0000"},
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"
    assert (await alice.get("/api/v1/audio")).json()["total"] == 0
    r = await alice.post(
        "/api/v1/uploads",
        json={
            "filename": "..\\dir\\x\u202e.wav",
            "size": 1000,
            "content_type": "audio/wav\u0007",
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["filename"] == "x.wav"
    assert r.json()["content_type"] == "audio/wav"


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("a/b/c.wav", "c.wav"),
        ("  spaced   out .wav ", "spaced out .wav"),
        ("e\u0301t\u00e9.wav", "\u00e9t\u00e9.wav"),  # NFC
        ("..", "audio"),
        ("\u2066\u2067\u2068\u2069\u200e\u200f.wav", "wav"),
        ("x" * 500 + ".wav", "x" * 196 + ".wav"),
    ],
)
def test_display_name(given: str, shown: str) -> None:
    assert display_name(given) == shown


def test_content_disposition_escapes_everything() -> None:
    header = content_disposition('a"b;\r\nX-Evil: 1 \u202eé.wav', inline=True)
    assert header.isascii() and "\r" not in header and "\n" not in header
    fallback = header.split('filename="', 1)[1].split('"', 1)[0]
    assert fallback == "a_b_X-Evil_1_e.wav"
    assert unquote(header.split("filename*=UTF-8''", 1)[1]) == 'a"b; X-Evil: 1 é.wav'


def test_path_is_not_used_for_filenames(tmp_path: Path) -> None:
    assert display_name(str(tmp_path / "x.wav")) == "x.wav"
