"""A stand-in for vLLM's OpenAI-compatible server behind KServe's /openai prefix: vLLM cannot run here without a GPU.

A real HTTP server on 127.0.0.1 that answers POST /openai/v1/completions, POST /openai/v1/chat/completions and
GET /openai/v1/models in the shape vLLM gives them (object, id, created, model, choices with finish_reason, usage),
with a fixed text instead of a model's, so every answer is the same on every run. Tests make it misbehave the ways
a real deployment does: 503 while the model loads, 404 before the model is registered, another model's name, a
malformed body, or no answer at all. Every request it receives is recorded.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

TEXT = ("Nitrogen boils at -195.8 degrees Celsius (-320.4 degrees Fahrenheit) at standard atmospheric pressure, "
        "which is why liquid nitrogen is used to freeze and store biological samples.")
ANSWER = TEXT.split(" ")  # one word, one token
PROMPT_TOKENS = 9
CREATED = 1728348255  # a fixed time stamp: answers are the same on every run

# (route, request body) -> None for the normal answer, else (status, body, content type)
Override = Callable[[str, dict[str, Any]], tuple[int, bytes, str] | None]


@dataclass
class Received:
    method: str
    path: str
    body: dict[str, Any] = field(default_factory=dict)


class VllmOpenAIStandin:
    """Use as a context manager; `url` is the base the smoke test's LLMPACK_SMOKE_URL points at."""

    def __init__(self, model: str, port: int = 0, *, loading: int = 0, unregistered: int = 0,
                 reply_model: str | None = None, override: Override | None = None, silent: bool = False) -> None:
        self.model = model
        self.loading = loading            # this many generation requests get 503 (the model is loading)
        self.unregistered = unregistered  # then this many get 404, while /v1/models lists nothing
        self.reply_model = reply_model or model
        self.override = override
        self.silent = silent              # read each request, never answer
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> VllmOpenAIStandin:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join()

    def generations(self) -> list[Received]:
        return [r for r in self.received if r.method == "POST"]

    def answer(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, bytes, str]:
        with self._lock:
            self.received.append(Received(method, path, body))
            phase = "serving"
            if method == "POST" and self.loading > 0:
                self.loading -= 1
                phase = "loading"
            elif method == "POST" and self.unregistered > 0:
                self.unregistered -= 1
                phase = "unregistered"
        if method == "GET" and path == "/openai/v1/models":
            listed = [] if self.loading or self.unregistered else [self.reply_model]
            return json_answer(200, {"object": "list", "data": [{"id": name, "object": "model", "created": CREATED,
                                                           "owned_by": "vllm"} for name in listed]})
        route = {"/openai/v1/completions": "completions", "/openai/v1/chat/completions": "chat"}.get(path)
        if method != "POST" or route is None:
            return json_answer(404, {"detail": "Not Found"})
        if phase == "loading":
            return json_answer(503, {"error": f"Model with name {self.model} is not ready."})
        if phase == "unregistered" or body.get("model") != self.model:
            return json_answer(404, {"object": "error", "message": f"The model `{body.get('model')}` does not exist.",
                               "type": "NotFoundError", "param": None, "code": 404})
        if self.override is not None:
            special = self.override(route, body)
            if special is not None:
                return special
        return json_answer(200, self.generation(route, body))

    def generation(self, route: str, body: dict[str, Any]) -> dict[str, Any]:
        """What vLLM answers, with the fixed text cut at max_tokens words (one word, one token)."""
        limit = int(body.get("max_tokens") or 16)
        words = ANSWER[:limit]
        finish = "length" if len(ANSWER) > limit else "stop"
        usage = {"prompt_tokens": PROMPT_TOKENS, "total_tokens": PROMPT_TOKENS + len(words),
                 "completion_tokens": len(words), "prompt_tokens_details": None}
        text = " ".join(words)
        if route == "completions":
            choice: dict[str, Any] = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish,
                                      "stop_reason": None, "prompt_logprobs": None}
            kind, ident = "text_completion", "cmpl-0123456789abcdef0123456789abcdef"
        else:
            choice = {"index": 0, "message": {"role": "assistant", "reasoning_content": None, "content": text,
                                              "tool_calls": []},
                      "logprobs": None, "finish_reason": finish, "stop_reason": None}
            kind, ident = "chat.completion", "chatcmpl-0123456789abcdef0123456789abcdef"
        return {"id": ident, "object": kind, "created": CREATED, "model": self.reply_model, "choices": [choice],
                "usage": usage, "prompt_logprobs": None}

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self._reply(owner.answer("GET", self.path, {}))

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {"unreadable": raw.decode(errors="replace")}
                if owner.silent:
                    owner.received.append(Received("POST", self.path, body))
                    owner._stop.wait(60)  # until the test ends; the client must give up first
                    return
                self._reply(owner.answer("POST", self.path, body))

            def _reply(self, answer: tuple[int, bytes, str]) -> None:
                status, body, content_type = answer
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler


def json_answer(status: int, document: Any) -> tuple[int, bytes, str]:
    """An answer with a JSON body, as the stand-in's handler sends it."""
    return status, json.dumps(document).encode(), "application/json"
