"""The word leg of search: every language of the library, and a bound on what it ranks.

Words are matched with the text search configuration of each transcription's language, so a
search first finds the caller's distinct languages (by index probes, migration 0018) and builds
one query per configuration. Ranking reads every match's tsvector, so at most
`search_text_max_matches` matches are ranked (a query of common words matched 77,000 of a
million chunks in bench/search and took 440 ms).
"""

from __future__ import annotations

from tests.conftest import ApiUser
from tests.search.helpers import Chunk, Recording, add_recording, search, user_id
from verbatim.config import Settings
from verbatim.models import User
from verbatim.search import embedding, service
from verbatim.search.query import Filters
from verbatim.search.schemas import SearchMode
from verbatim.services import get_services


async def test_words_are_found_in_every_language_of_the_library(alice: ApiUser) -> None:
    english = await add_recording(
        alice, [Chunk("The tomatoes were harvested early this year.", 0.0, 5.0)]
    )
    german = await add_recording(
        alice, [Chunk("Die Lieferungen kommen erst im März.", 0.0, 5.0)], language="de"
    )
    # No language detected (or none PostgreSQL has a configuration for): the `simple` one.
    unknown = await add_recording(
        alice, [Chunk("Zorbulax quintessa marivel dontra.", 0.0, 5.0)], language=None
    )

    async def found_by_words(q: str, recording: Recording) -> None:
        body = await search(alice, q, mode="text")
        assert [h["chunk_id"] for h in body["items"]] == recording.chunk_ids, q
        body = await search(alice, q)  # hybrid: the word leg is in it
        assert "text" in body["items"][0]["retrievers"], q

    await found_by_words("tomato", english)  # english stemming: tomatoes -> tomato
    await found_by_words("Lieferung", german)  # german stemming: Lieferungen -> lieferung
    await found_by_words("zorbulax", unknown)
    # A language PostgreSQL has no configuration for: `simple` too.
    other_language = await add_recording(
        alice, [Chunk("Kwenye mkutano tulijadili bajeti ya mwaka.", 0.0, 5.0)], language="sw"
    )
    await found_by_words("bajeti", other_language)


async def test_a_common_word_ranks_at_most_the_configured_number_of_matches(
    alice: ApiUser, settings: Settings
) -> None:
    # 29 chunks say "report" once; the last one, written last, says it five times and ranks
    # first when every match is ranked.
    chunks = [
        Chunk(f"Item {i}: the weekly report was filed on time by the team.", i * 10.0, i * 10.0 + 9)
        for i in range(29)
    ]
    chunks.append(Chunk("Report, report, report: the report of all reports.", 290.0, 299.0))
    recording = await add_recording(alice, chunks)
    best = recording.chunk_ids[-1]
    alice_id = await user_id(alice)

    async def text_hits(text_max: int) -> list[int]:
        tuned = settings.model_copy(update={"search_text_max_matches": text_max})
        req = service.SearchRequest(
            q="report",
            mode=SearchMode.text,
            filters=Filters(),
            limit=50,
            cursor=None,
            group_by_transcription=False,
        )
        model = service.QueryModel(embed_query=embedding.embed_query)
        async with get_services().sessionmaker() as session:
            owner = await session.get(User, alice_id)
            assert owner is not None
            page = await service.search(
                session, tuned, owner, req, model=model, media_url=lambda a, t: ""
            )
        return [hit["chunk_id"] for hit in page["items"]]

    every = await text_hits(0)
    assert every[0] == best and set(every) == set(recording.chunk_ids)
    # Capped at 10: ten of the 30 matches (whichever the scan yields first) are ranked, and
    # only they are returned, in rank order.
    capped = await text_hits(10)
    assert len(capped) == 10 and set(capped) <= set(recording.chunk_ids)
    assert capped == [chunk_id for chunk_id in every if chunk_id in capped]
    # The default cap is far above a library this size: the same answer as no cap.
    assert (await text_hits(settings.search_text_max_matches)) == every
