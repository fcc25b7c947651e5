"""The optional LLM pass against a local server speaking OpenAI's chat completions protocol."""

from __future__ import annotations

import json

from tests.reconciliation.chat_server import ChatServer, Reply
from tests.reconciliation.test_voting import words
from verbatim.reconciliation import reconcile
from verbatim.reconciliation.llm import LlmConfig, resolve
from verbatim.reconciliation.metrics import low_agreement_spans


def disputed() -> tuple[list, list, list]:
    # "report / record / resort" is a three-way split; everything else is agreed.
    a = words("please send the report by friday and call me")
    b = words("please send the record by friday and call me")
    c = words("please send the resort by friday and call me")
    return a, b, c


def text_of(result_words: list) -> str:
    return " ".join(v.word.text.strip() for v in result_words)


def config(server: ChatServer, key: str = "sk-test") -> LlmConfig:
    return LlmConfig(base_url=server.base_url, api_key=key, model="gpt-test", timeout_s=5)


async def test_only_the_disputed_span_is_sent_and_changed() -> None:
    consensus = reconcile(list(disputed()))
    (span,) = low_agreement_spans(consensus)
    answer = {
        "spans": [{"id": 0, "text": "record", "reason": "a report is sent; 'record' fits less"}],
        "summary": "A request to send something by Friday.",
        "topics": ["Deadlines", "  "],
    }
    # The model may answer "record" (engine 2's word): it is applied, with engine 2's times.
    with ChatServer() as server:
        server.replies.append(Reply(content=json.dumps(answer)))
        result = await resolve(config(server), consensus)
        (request,) = server.requests
    assert request["auth"] == "Bearer sk-test"
    body = request["body"]
    assert body["model"] == "gpt-test" and body["temperature"] == 0
    assert body["response_format"] == {"type": "json_object"}
    prompt = body["messages"][1]["content"]
    assert "'report'" in prompt and "'record'" in prompt and "'resort'" in prompt
    assert "please send the" in prompt  # context before, never as a span
    assert text_of(result.words) == "please send the record by friday and call me"
    (change,) = result.changes
    assert change["source"] == "llm" and change["after"] == "record"
    assert change["before"] == span["consensus"] and change["reason"].startswith("a report")
    changed = result.words[3]
    assert changed.agreement == 0 and changed.word.start == disputed()[1][3].start
    assert result.summary == "A request to send something by Friday."
    assert result.topics == ["Deadlines"]
    # Agreed words are the voted ones, untouched.
    assert result.words[:3] == consensus.words[:3] and result.words[4:] == consensus.words[4:]


async def test_invented_words_are_refused_and_noted() -> None:
    consensus = reconcile(list(disputed()))
    answer = {"spans": [{"id": 0, "text": "invoice", "reason": "sounds right"}], "summary": ""}
    with ChatServer() as server:
        server.replies.append(Reply(content="```json\n" + json.dumps(answer) + "\n```"))
        result = await resolve(config(server), consensus)
    assert text_of(result.words) == text_of(consensus.words)
    assert result.changes == [] and result.summary is None
    assert any("refused" in note and "invoice" in note for note in result.notes)


async def test_rate_limit_is_retried_and_auth_failure_is_not() -> None:
    consensus = reconcile(list(disputed()))
    answer = {"spans": [{"id": 0, "text": "resort", "reason": "x"}]}
    with ChatServer() as server:
        server.replies += [
            Reply(status=429, headers={"Retry-After": "0"}),
            Reply(status=503),
            Reply(content=json.dumps(answer)),
        ]
        result = await resolve(config(server), consensus)
        assert len(server.requests) == 3
    assert result.changes and result.changes[0]["after"] == "resort"

    with ChatServer() as server:
        result = await resolve(config(server, key="sk-wrong"), consensus)
        assert len(server.requests) == 1  # 401: no retry
    assert result.changes == [] and text_of(result.words) == text_of(consensus.words)
    assert any("llm_auth_failed" in note for note in result.notes)


async def test_garbage_answers_leave_the_vote_alone() -> None:
    consensus = reconcile(list(disputed()))
    for content in (
        "not json",
        "[1, 2]",
        json.dumps({"spans": "no"}),
        json.dumps({"spans": [{"id": 7, "text": "record"}, "x", {"id": "0"}]}),
    ):
        with ChatServer() as server:
            server.replies.append(Reply(content=content))
            result = await resolve(config(server), consensus)
        assert text_of(result.words) == text_of(consensus.words), content
        assert result.changes == []


async def test_agreement_everywhere_sends_nothing() -> None:
    same = words("all three engines agree")
    consensus = reconcile([same, same, same])
    with ChatServer() as server:
        result = await resolve(config(server), consensus)
        assert server.requests == []
    assert result.changes == [] and "agreed everywhere" in result.notes[0]
