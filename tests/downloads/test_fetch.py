"""The download process against local sites: what it fetches, and everything it refuses.

These call `fetch()` directly (a real yt-dlp in a real child process, no database); the API and
worker tests build on them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.conftest import FIXTURES
from tests.downloads.conftest import ALLOW
from tests.downloads.servers import MediaServer
from verbatim.downloads.fetch import FetchedMedia, FetchFailed, FetchRequest, fetch


def request(url: str, workdir: Path, **overrides: object) -> FetchRequest:
    values: dict[str, object] = {
        "url": url,
        "workdir": str(workdir),
        "max_bytes": 5_000_000,
        "max_duration_s": 3600,
        "wall_time_s": 30,
        "allow_networks": tuple(str(n) for n in ALLOW),
    }
    values.update(overrides)
    return FetchRequest(**values)  # type: ignore[arg-type]


async def fetched(url: str, workdir: Path, **overrides: object) -> FetchedMedia:
    workdir.mkdir(exist_ok=True)
    return await fetch(request(url, workdir, **overrides))


async def refused(url: str, workdir: Path, **overrides: object) -> FetchFailed:
    workdir.mkdir(exist_ok=True)
    with pytest.raises(FetchFailed) as failure:
        await fetch(request(url, workdir, **overrides))
    return failure.value


def sha256(path: Path | str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.mark.parametrize("name", ["speech.wav", "speech.mp3", "speech.ogg", "speech.m4a"])
async def test_direct_media_files(media_server: MediaServer, tmp_path: Path, name: str) -> None:
    media = await fetched(media_server.url(f"/media/{name}"), tmp_path / "work")
    assert sha256(media.path) == sha256(FIXTURES / name)
    assert Path(media.path).parent == tmp_path / "work"
    assert media.platform == "generic"
    assert media.title == "speech"
    assert media.ext == name.rsplit(".", 1)[1]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["speech.mp3", "speech.mp4"])
async def test_page_with_an_html5_media_element(
    media_server: MediaServer, tmp_path: Path, name: str
) -> None:
    media = await fetched(media_server.url(f"/page/{name}"), tmp_path / "work")
    assert sha256(media.path) == sha256(FIXTURES / name)
    assert media.platform == "generic"
    assert media.title and media.title.startswith(f"A talk about {name}")
    assert media_server.hits == [f"/page/{name}", f"/media/{name}"]


@pytest.mark.slow
async def test_redirect_chain(media_server: MediaServer, tmp_path: Path) -> None:
    media = await fetched(media_server.url("/chain/4/speech.ogg"), tmp_path / "work")
    assert sha256(media.path) == sha256(FIXTURES / "speech.ogg")
    assert "/media/speech.ogg" in media_server.hits


@pytest.mark.slow
async def test_progress_is_reported(media_server: MediaServer, tmp_path: Path) -> None:
    seen: list[tuple[int, int | None]] = []

    async def on_progress(downloaded: int, total: int | None) -> None:
        seen.append((downloaded, total))

    (tmp_path / "work").mkdir()
    size = (FIXTURES / "speech.wav").stat().st_size
    url = media_server.url("/slow-media/speech.wav?bps=80000")
    await fetch(request(url, tmp_path / "work"), on_progress)
    partial = [(d, t) for d, t in seen if 0 < d < size]
    assert partial, seen
    assert all(t == size for _, t in partial)


@pytest.mark.slow
async def test_redirect_from_allowed_host_to_blocked_address(
    media_server: MediaServer, blocked_server: MediaServer, tmp_path: Path
) -> None:
    target = blocked_server.url("/media/speech.mp3")
    failure = await refused(media_server.url(f"/redirect?to={target}"), tmp_path / "work")
    assert failure.code == "blocked_destination"
    assert "127.0.0.1" in failure.message
    assert blocked_server.hits == []
    assert list((tmp_path / "work").iterdir()) == []


@pytest.mark.slow
@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "localhost",
        "2130706433",
        "0x7f000001",
        "0177.0.0.1",
        "127.1",
        "[::ffff:127.0.0.1]",
    ],
)
async def test_blocked_hosts_are_refused_at_connect_time(
    blocked_server: MediaServer, tmp_path: Path, host: str
) -> None:
    """Handed straight to the download process (no API check before it)."""
    failure = await refused(blocked_server.url("/media/speech.mp3", host=host), tmp_path / "work")
    assert failure.code == "blocked_destination"
    assert blocked_server.hits == []


@pytest.mark.slow
async def test_a_name_resolving_to_a_blocked_address(
    blocked_name: tuple[str, MediaServer], tmp_path: Path
) -> None:
    name, server = blocked_name
    failure = await refused(server.url("/media/speech.mp3", host=name), tmp_path / "work")
    assert failure.code == "blocked_destination"
    assert server.hits == []


@pytest.mark.slow
async def test_empty_allow_list_refuses_every_local_server(
    media_server: MediaServer, blocked_server: MediaServer, tmp_path: Path
) -> None:
    for url in (
        media_server.url("/media/speech.mp3"),
        media_server.url("/chain/2/speech.mp3"),
        blocked_server.url("/media/speech.mp3"),
        blocked_server.url("/media/speech.mp3", host="localhost"),
    ):
        failure = await refused(url, tmp_path / "work", allow_networks=())
        assert failure.code == "blocked_destination", (url, failure.message)
    assert media_server.hits == [] and blocked_server.hits == []
    assert list((tmp_path / "work").iterdir()) == []


@pytest.mark.slow
@pytest.mark.parametrize(
    "target",
    ["file:///etc/passwd", "data:audio/wav;base64,UklGRiQAAABXQVZF", "ftp://127.0.0.2/a.mp3"],
)
async def test_redirects_to_other_schemes_are_refused(
    media_server: MediaServer, tmp_path: Path, target: str
) -> None:
    failure = await refused(media_server.url(f"/redirect?to={target}"), tmp_path / "work")
    assert failure.code == "blocked_destination", failure.message


@pytest.mark.slow
@pytest.mark.parametrize(
    "source",
    ["file:///etc/hostname", "data:audio/wav;base64,UklGRiQAAABXQVZF", "ftp://127.0.0.2/a.mp3"],
)
async def test_media_elements_with_other_schemes_are_refused(
    media_server: MediaServer, tmp_path: Path, source: str
) -> None:
    html = f'<html><head><title>t</title></head><body><audio src="{source}"></audio></body></html>'
    failure = await refused(media_server.page_url(html), tmp_path / "work")
    # Refused by the guard, or never offered: only http(s) formats are selectable.
    assert failure.code in ("blocked_destination", "no_audio_stream"), failure.message
    assert list((tmp_path / "work").iterdir()) == []


@pytest.mark.slow
async def test_slow_site_hits_the_wall_time(media_server: MediaServer, tmp_path: Path) -> None:
    failure = await refused(media_server.url("/slow"), tmp_path / "work", wall_time_s=3)
    assert failure.code == "download_timeout"
    assert not failure.transient


@pytest.mark.slow
async def test_endless_body_is_cut_at_the_size_limit(
    media_server: MediaServer, tmp_path: Path
) -> None:
    failure = await refused(media_server.url("/huge"), tmp_path / "work", max_bytes=300_000)
    assert failure.code == "file_too_large"


@pytest.mark.slow
async def test_declared_size_over_the_limit_stops_at_once(
    media_server: MediaServer, tmp_path: Path
) -> None:
    failure = await refused(media_server.url("/trickle"), tmp_path / "work", max_bytes=100_000)
    assert failure.code == "file_too_large"


@pytest.mark.slow
async def test_not_found_and_pages_without_media(media_server: MediaServer, tmp_path: Path) -> None:
    assert (await refused(media_server.url("/media/none.mp3"), tmp_path / "w")).code == (
        "source_not_found"
    )
    assert (await refused(media_server.url("/nomedia"), tmp_path / "w")).code == "unsupported_url"


@pytest.mark.slow
async def test_duration_known_up_front_is_checked_before_downloading(
    media_server: MediaServer, tmp_path: Path
) -> None:
    # A direct file has no duration up front (the probe checks it after the download, see the
    # API tests); a page that declares it (JSON-LD here, which the generic extractor reads) is
    # refused before the download starts.
    html = (
        "<html><head><title>Long</title>"
        '<script type="application/ld+json">{"@context": "https://schema.org", '
        '"@type": "AudioObject", "name": "Long", "duration": "PT5H", '
        f'"contentUrl": "{media_server.url("/media/speech.mp3")}"}}</script>'
        "</head><body></body></html>"
    )
    failure = await refused(media_server.page_url(html), tmp_path / "w")
    assert failure.code == "media_too_long", failure.message
    # (The extractor looks at the media URL's headers to learn what it is; nothing is saved.)
    assert list((tmp_path / "w").iterdir()) == []


@pytest.mark.slow
async def test_hls_is_fetched_natively_through_the_guard(
    media_server: MediaServer, tmp_path: Path
) -> None:
    """An HLS stream is fetched by yt-dlp's own downloader (no ffmpeg), segment by segment."""
    media = await fetched(media_server.url("/hls/speech.mp3.m3u8"), tmp_path / "work")
    # (The segments are byte ranges of the MP3: joined, they are the file again.)
    assert sha256(media.path) == sha256(FIXTURES / "speech.mp3")
    assert [h for h in media_server.hits if h.startswith("/hls-segment/")] == [
        f"/hls-segment/speech.mp3/{i}" for i in range(3)
    ]


@pytest.mark.slow
async def test_hls_segments_on_a_blocked_address_are_refused(
    media_server: MediaServer, blocked_server: MediaServer, tmp_path: Path
) -> None:
    # The playlist is on the allowed host; its segments point at the internal one.
    base = blocked_server.url("")
    url = media_server.url(f"/hls/speech.mp3.m3u8?segment_base={base}")
    failure = await refused(url, tmp_path / "work")
    assert failure.code == "blocked_destination", failure.message
    assert blocked_server.hits == []
    assert list((tmp_path / "work").iterdir()) == []


@pytest.mark.slow
async def test_a_page_with_several_media_is_a_playlist(
    media_server: MediaServer, tmp_path: Path
) -> None:
    html = (
        "<html><head><title>Two</title></head><body>"
        '<audio src="/media/speech.mp3"></audio><audio src="/media/speech.ogg"></audio>'
        "</body></html>"
    )
    failure = await refused(media_server.page_url(html), tmp_path / "work")
    assert failure.code == "playlist_not_supported", failure.message
    assert list((tmp_path / "work").iterdir()) == []


@pytest.mark.slow
async def test_server_errors_are_transient(media_server: MediaServer, tmp_path: Path) -> None:
    failure = await refused(media_server.url("/flaky/speech.mp3?fail=100"), tmp_path / "work")
    assert (failure.code, failure.transient) == ("download_failed", True)
