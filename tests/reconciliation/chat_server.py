"""A local server speaking OpenAI's chat completions protocol, for the reconciliation LLM pass.

Follows the documented request and response shapes:
- https://platform.openai.com/docs/api-reference/chat/create (`POST /v1/chat/completions`,
  `model`, `messages`, `temperature`, `response_format: {"type": "json_object"}`; the answer's
  `choices[0].message.content` holds the model's text, `object: "chat.completion"`).
- https://platform.openai.com/docs/guides/error-codes (401 invalid key, 429 rate limit with
  `Retry-After`, 500/503 server errors; errors as `{"error": {"message", "type", "param",
  "code"}}`).

Scripted: each request pops the next planned reply (status, body, headers); requests are kept
for assertions. No model runs: the content is what the test scripts.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    content: str | None = None  # the assistant message (for 200)
    headers: dict[str, str] = field(default_factory=dict)


class ChatServer:
    def __init__(self, api_key: str = "sk-test") -> None:
        self.api_key = api_key
        self.replies: list[Reply] = []
        self.requests: list[dict[str, Any]] = []
        # Set: answers each request from its body (a reply that depends on what was asked).
        self.responder: Callable[[dict[str, Any]], Reply] | None = None
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                server.requests.append(
                    {"path": self.path, "auth": self.headers.get("authorization"), "body": body}
                )
                if self.path != "/v1/chat/completions":
                    return self._send(404, _error("Not found", "invalid_request_error", None))
                if self.headers.get("authorization") != f"Bearer {server.api_key}":
                    return self._send(
                        401,
                        _error(
                            "Incorrect API key provided", "invalid_request_error", "invalid_api_key"
                        ),
                    )
                if server.responder is not None:
                    reply = server.responder(body)
                else:
                    reply = server.replies.pop(0) if server.replies else Reply(content="{}")
                if reply.status != 200:
                    kind = "rate_limit_exceeded" if reply.status == 429 else "server_error"
                    return self._send(reply.status, _error("try again", kind, kind), reply.headers)
                return self._send(
                    200,
                    {
                        "id": "chatcmpl-test",
                        "object": "chat.completion",
                        "created": 1764547200,
                        "model": body.get("model"),
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": reply.content},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
                    },
                    reply.headers,
                )

            def _send(
                self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
            ) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> ChatServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _error(message: str, kind: str, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}
