"""A local OpenAI-compatible chat server for tests and benchmarks: scripted replies, counted requests.

    with FakeLLM(latency_s=0.2) as llm:          # serves http://127.0.0.1:<port>/v1
        settings = LLMSettings(model="fake", base_url=llm.base_url, api_key="sk-test")
        ...
    llm.received[prompt], llm.answered[prompt]   # requests per prompt, successful replies per prompt

A responder ``(body, attempt) -> Reply`` decides each reply; ``attempt`` counts the requests that carried
the same prompt so far (1 for the first), so a test can fail a prompt's first tries and then succeed.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    """What the server answers: a chat message (status 200) or an HTTP error, after ``delay_s``."""

    content: str = ""
    status: int = 200
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


Responder = Callable[[dict, int], Reply]


def prompt_of(body: dict) -> str:
    """The last user message of a chat request."""
    return next((m.get("content", "") for m in reversed(body.get("messages", [])) if m.get("role") == "user"),
                "")


def fake_questions(prompt: str) -> list[str]:
    """Well-formed questions made from the prompt's passage (its last triple-quoted block, else the whole
    prompt): as many as the prompt asks for ("Write 3 questions"), else 3."""
    asked = re.search(r"\b(\d+)\s+(?:\w+\s+){0,2}questions?\b", prompt)
    n = int(asked.group(1)) if asked else 3
    blocks = prompt.split('"""')
    passage = blocks[-2] if len(blocks) >= 3 else prompt
    words = list(dict.fromkeys(w.lower() for w in re.findall(r"[A-Za-z]{6,}", passage))) or ["topic"]
    return [f"What is known about {words[(2 * i) % len(words)]} and {words[(2 * i + 1) % len(words)]}?"
            for i in range(n)]


def default_reply(body: dict, attempt: int) -> Reply:
    """JSON mode: ``{"questions": [...]}``; otherwise an answer made of the prompt's first 40 words."""
    prompt = prompt_of(body)
    if (body.get("response_format") or {}).get("type") == "json_object":
        return Reply(json.dumps({"questions": fake_questions(prompt)}))
    return Reply(" ".join(prompt.split()[:40]))


class FakeLLM:
    """``POST /v1/chat/completions`` and ``GET /v1/models`` on 127.0.0.1, served from a background thread."""

    def __init__(self, responder: Responder = default_reply, latency_s: float = 0.0):
        self.responder = responder
        self.latency_s = latency_s
        self.received: Counter[str] = Counter()
        self.answered: Counter[str] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def count(self, text: str) -> int:
        """Requests whose prompt contains ``text`` (e.g. a chunk's text)."""
        with self._lock:
            return sum(n for prompt, n in self.received.items() if text in prompt)

    def start(self) -> FakeLLM:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeLLM:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def reply_to(self, body: dict) -> tuple[Reply, str]:
        """Count the request and ask the responder; return its reply and the prompt."""
        prompt = prompt_of(body)
        with self._lock:
            self.received[prompt] += 1
            attempt = self.received[prompt]
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return self.responder(body, attempt), prompt
        except Exception as exc:  # a broken responder answers 500 rather than hanging the client
            return Reply(f"responder failed: {exc}", status=500), prompt

    def done(self, prompt: str, answered: bool) -> None:
        with self._lock:
            self.in_flight -= 1
            if answered:
                self.answered[prompt] += 1


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the default 5 drops connections when many clients connect at once

    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client hanging up is not a server error
            super().handle_error(request, client_address)


def completion(model: str, content: str, prompt: str) -> dict:
    """An OpenAI chat.completion object, with usage counted as characters / 4."""
    usage = {"prompt_tokens": len(prompt) // 4, "completion_tokens": len(content) // 4}
    return {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": "stop"}],
            "usage": usage | {"total_tokens": sum(usage.values())}}


def _handler_for(fake: FakeLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            if self.path.rstrip("/").endswith("/models"):
                self._send(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})
            else:
                self._send(404, {"error": {"message": "not found"}})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            if not self.path.rstrip("/").endswith("/chat/completions"):
                self._send(404, {"error": {"message": "not found"}})
                return
            reply, prompt = fake.reply_to(body)
            answered = False
            try:
                time.sleep(fake.latency_s + reply.delay_s)
                if reply.status == 200:
                    self._send(200, completion(body.get("model", "fake"), reply.content, prompt))
                    answered = True
                else:
                    self._send(reply.status, {"error": {"message": reply.content or f"status {reply.status}",
                                                        "type": "fake_error"}}, reply.headers)
            except OSError:  # the client gave up (timeout) and closed the connection
                pass
            finally:
                fake.done(prompt, answered)

        def _send(self, status: int, payload: dict, headers: dict | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()

        def log_message(self, *args) -> None:  # keep test output quiet
            pass

    return Handler
