"""llmpack smoke test: the seed's last manual steps, run by the bundle's verify/ Job once serving is up.

It sends the seed's two requests to the predictor, POST /openai/v1/completions and /openai/v1/chat/completions
for the model named like the InferenceService, and checks each answer as vLLM's OpenAI server gives it: the
object type, the model name, non-empty choices, a finish_reason vLLM uses, token usage that adds up, and the
time it took. Then it asks the head's cluster status endpoint whether Ray has the expected nodes and GPUs (the
seed's nvidia-smi step: the Job has no API token and cannot exec into pods).

Until LLMPACK_SMOKE_WAIT_SECONDS have passed, no connection, 502/503/504, and a 404 while the server lists no
model yet mean "not ready yet" and are asked again after growing pauses; anything else that is wrong fails its
check at once. Every network wait has a time limit. Output: one line per check (ok, FAIL or skip) and a summary;
exit 0 when every check passed, 1 when one failed, 2 on a configuration error. Standard library only, Python
3.9+, run as `python3 -c "$SCRIPT"`.

Environment:
  LLMPACK_SMOKE_URL                  the predictor's base URL (http://NAME-predictor.NAMESPACE.svc.cluster.local)
  LLMPACK_SMOKE_MODEL                the served model's name: the InferenceService's name
  LLMPACK_SMOKE_STATUS_URL           the head's cluster status (http://...:8081/llmpack/v1/cluster); unset: no Ray check
  LLMPACK_SMOKE_EXPECTED_NODES       Ray nodes, the pipeline parallel size (needed with the status URL)
  LLMPACK_SMOKE_EXPECTED_GPUS        GPUs, tensor x pipeline parallel size (needed with the status URL)
  LLMPACK_SMOKE_WAIT_SECONDS         how long the predictor may take to start answering (600)
  LLMPACK_SMOKE_MAX_LATENCY_SECONDS  the longest a request may take, answer included (60)
  LLMPACK_SMOKE_MAX_TOKENS           max_tokens of both requests (100)
"""
from __future__ import annotations

import http.client
import json
import os
import socket
import sys
import time
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

PROMPT = "At what temperature does Nitrogen boil?"
FINISH_REASONS = ("stop", "length")
RETRY_STATUSES = (502, 503, 504)
CONNECT_SECONDS = 10.0
FIRST_PAUSE = 1.0
LAST_PAUSE = 15.0
MAX_BODY = 1 << 20
SHOWN = 160  # characters of an answer quoted in a message
DEFAULTS = {"LLMPACK_SMOKE_WAIT_SECONDS": "600", "LLMPACK_SMOKE_MAX_LATENCY_SECONDS": "60",
            "LLMPACK_SMOKE_MAX_TOKENS": "100"}

Document = dict[str, Any]  # subscripted at run time: fine from Python 3.9


class Usage(Exception):
    """A missing or malformed environment variable."""


class NotReady(Exception):
    """The server does not serve yet: worth asking again until the wait is over."""


class Failed(Exception):
    """A check failed; the message says how."""


class Config(NamedTuple):
    url: str
    model: str
    status_url: str | None
    nodes: int
    gpus: int
    wait: float
    latency: float
    max_tokens: int


class Answer(NamedTuple):
    status: int
    reason: str
    content_type: str
    body: bytes
    seconds: float


class Deadline(NamedTuple):
    start: float
    seconds: float

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def remaining(self) -> float:
        return max(0.0, self.seconds - self.elapsed())


# --- configuration ---------------------------------------------------------------------------------------------

def read_config(env: Mapping[str, str]) -> Config:
    status_url = _value(env, "LLMPACK_SMOKE_STATUS_URL")
    expected = "LLMPACK_SMOKE_EXPECTED_NODES", "LLMPACK_SMOKE_EXPECTED_GPUS"
    return Config(
        url=_url(env, "LLMPACK_SMOKE_URL").rstrip("/"),
        model=_required(env, "LLMPACK_SMOKE_MODEL"),
        status_url=_url(env, "LLMPACK_SMOKE_STATUS_URL") if status_url else None,
        nodes=_whole(env, expected[0]) if status_url else 0,
        gpus=_whole(env, expected[1]) if status_url else 0,
        wait=_seconds(env, "LLMPACK_SMOKE_WAIT_SECONDS"),
        latency=_seconds(env, "LLMPACK_SMOKE_MAX_LATENCY_SECONDS"),
        max_tokens=_whole(env, "LLMPACK_SMOKE_MAX_TOKENS"),
    )


def _value(env: Mapping[str, str], name: str) -> str:
    return env.get(name, "").strip() or DEFAULTS.get(name, "")


def _required(env: Mapping[str, str], name: str) -> str:
    value = _value(env, name)
    if not value:
        raise Usage(f"environment variable {name} is not set")
    return value


def _url(env: Mapping[str, str], name: str) -> str:
    value = _required(env, name)
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Usage(f"environment variable {name} is {value!r}: expected an http:// or https:// URL")
    return value


def _whole(env: Mapping[str, str], name: str) -> int:
    value = _required(env, name)
    if not value.isdigit() or int(value) < 1:
        raise Usage(f"environment variable {name} is {value!r}: expected a whole number of at least 1")
    return int(value)


def _seconds(env: Mapping[str, str], name: str) -> float:
    value = _required(env, name)
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not 0 < number < float("inf"):
        raise Usage(f"environment variable {name} is {value!r}: expected a positive number of seconds")
    return number


# --- HTTP ------------------------------------------------------------------------------------------------------

def exchange(method: str, url: str, payload: Document | None, latency: float, connect: float) -> Answer:
    """One request. NotReady when no connection is made within `connect` seconds or it is closed unanswered;
    Failed when the whole answer has not arrived `latency` seconds after sending. Never uses a proxy."""
    parts = urllib.parse.urlsplit(url)
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = kind(parts.hostname or "", parts.port, timeout=connect)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    body = None if payload is None else json.dumps(payload).encode()
    headers = {"Accept": "application/json", "User-Agent": "llmpack-smoke"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    try:
        _connect(connection, parts.hostname or "", connect)
        started = time.monotonic()
        try:
            _set_timeout(connection, latency)
            connection.request(method, target, body=body, headers=headers)
            response = connection.getresponse()
            data = _read(connection, response, started + latency)
        except socket.timeout:  # noqa: UP041 (before Python 3.10 it is not TimeoutError)
            raise Failed(f"no complete answer within {latency:g} s (LLMPACK_SMOKE_MAX_LATENCY_SECONDS)") from None
        except ConnectionError as err:  # reset, broken pipe, http.client.RemoteDisconnected: restarting, not wrong
            raise NotReady(f"the connection was closed without an answer ({err})") from None
        except (http.client.HTTPException, OSError) as err:
            raise Failed(f"the answer cannot be read ({type(err).__name__}: {err})") from None
        content_type = response.getheader("Content-Type") or ""
        return Answer(response.status, response.reason, content_type, data, time.monotonic() - started)
    finally:
        connection.close()


def _connect(connection: http.client.HTTPConnection, host: str, limit: float) -> None:
    try:
        connection.connect()
    except socket.gaierror as err:
        raise NotReady(f"cannot resolve {host} ({err.strerror})") from None
    except ConnectionRefusedError:
        raise NotReady("connection refused") from None
    except socket.timeout:  # noqa: UP041 (Python 3.9)
        raise NotReady(f"no connection within {limit:g} s") from None
    except OSError as err:
        raise NotReady(f"cannot connect ({err.strerror or err})") from None


def _set_timeout(connection: http.client.HTTPConnection, seconds: float) -> None:
    if connection.sock is not None:
        connection.sock.settimeout(max(seconds, 0.001))


def _read(connection: http.client.HTTPConnection, response: http.client.HTTPResponse, deadline: float) -> bytes:
    """The whole body by the deadline: each read waits only for what is left, so a trickle cannot stretch it."""
    chunks: list[bytes] = []
    size = 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout  # noqa: UP041 (Python 3.9)
        _set_timeout(connection, left)
        chunk = response.read1(65536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_BODY:
            raise Failed(f"the answer is larger than {MAX_BODY} bytes")
        chunks.append(chunk)


def call(config: Config, name: str, url: str, payload: Document | None, deadline: Deadline,
         not_ready: Callable[[Answer], str | None]) -> Answer:
    """Ask until the answer is not a "not ready yet" (as `not_ready` judges it) or the wait is over."""
    pause = FIRST_PAUSE
    while True:
        try:
            answer = exchange("GET" if payload is None else "POST", url, payload, config.latency,
                              max(min(CONNECT_SECONDS, deadline.remaining()), 1.0))
            reason = not_ready(answer)
        except NotReady as err:
            reason = str(err)
        if reason is None:
            return answer
        if deadline.remaining() <= 0:
            raise Failed(f"not ready within the wait of {config.wait:g} s (last: {reason})")
        sleep = min(pause, deadline.remaining())
        say("wait", name, f"not ready yet: {reason}; next try in {sleep:.0f} s "
                          f"({deadline.elapsed():.0f} of {config.wait:g} s)")
        time.sleep(sleep)
        pause = min(pause * 2, LAST_PAUSE)


def predictor_not_ready(config: Config) -> Callable[[Answer], str | None]:
    """502/503/504 are not ready; a 404 too, unless the server already lists models and ours is not one of them."""
    def judge(answer: Answer) -> str | None:
        if answer.status in RETRY_STATUSES:
            return f"{answer.status} {answer.reason}: {snippet(answer.body)}"
        if answer.status != 404:
            return None
        served = served_models(config)
        if served and config.model not in served:
            raise Failed(f"the server serves {_show(served)}, not {_show(config.model)} (LLMPACK_SMOKE_MODEL); "
                         f"it answered 404: {snippet(answer.body)}")
        return f"404 {answer.reason}: {snippet(answer.body)} (no model is listed yet)"
    return judge


def served_models(config: Config) -> list[str]:
    """The model names GET /openai/v1/models lists; empty when it lists none or cannot tell."""
    try:
        answer = exchange("GET", f"{config.url}/openai/v1/models", None, config.latency, CONNECT_SECONDS)
        listed = json.loads(answer.body)["data"] if answer.status == 200 else []
        return [str(m["id"]) for m in listed if isinstance(m, dict) and "id" in m]
    except (NotReady, Failed, ValueError, KeyError, TypeError):
        return []


def status_not_ready(answer: Answer) -> str | None:
    if answer.status not in RETRY_STATUSES:
        return None
    reason = _json_object(answer.body).get("reason")
    return f"{answer.status} {answer.reason}: {reason if isinstance(reason, str) else snippet(answer.body)}"


# --- checks ----------------------------------------------------------------------------------------------------

def check_completions(config: Config, deadline: Deadline) -> str:
    payload = {"model": config.model, "prompt": PROMPT, "max_tokens": config.max_tokens, "temperature": 0}
    answer = call(config, "completions", f"{config.url}/openai/v1/completions", payload, deadline,
                  predictor_not_ready(config))
    return generation(config, answer, "text_completion", lambda choice: ("text", choice.get("text")))


def check_chat(config: Config, deadline: Deadline) -> str:
    payload = {"model": config.model, "messages": [{"role": "system", "content": PROMPT}],
               "max_tokens": config.max_tokens, "stream": False}
    answer = call(config, "chat", f"{config.url}/openai/v1/chat/completions", payload, deadline,
                  predictor_not_ready(config))

    def content(choice: Document) -> tuple[str, Any]:
        message = choice.get("message")
        if not isinstance(message, dict):
            return "message", message
        if message.get("role") != "assistant":
            return "message.role", message.get("role")
        return "message.content", message.get("content")

    return generation(config, answer, "chat.completion", content)


def generation(config: Config, answer: Answer, kind: str, text_of: Callable[[Document], tuple[str, Any]]) -> str:
    """Check a completion or chat answer as vLLM gives it; the ok message, or Failed listing every problem."""
    document = answer_document(answer)
    problems: list[str] = []
    if document.get("object") != kind:
        problems.append(f"object is {_show(document.get('object'))}, expected {_show(kind)}")
    if document.get("model") != config.model:
        problems.append(f"model is {_show(document.get('model'))}, expected {_show(config.model)}")
    text, finish = "", None
    choices = document.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        problems.append(f"choices is {_show(choices)}, expected a list of at least one choice")
    else:
        field, text = text_of(choices[0])
        if not isinstance(text, str) or not text:
            problems.append(f"choices[0].{field} is {_show(text)}, expected text")
        finish = choices[0].get("finish_reason")
        if finish not in FINISH_REASONS:
            problems.append(f"choices[0].finish_reason is {_show(finish)}, expected \"stop\" or \"length\"")
    tokens = usage(config, document.get("usage"), problems)
    if answer.seconds > config.latency:
        problems.append(f"took {answer.seconds:.1f} s, above the bound of {config.latency:g} s")
    if problems:
        raise Failed("; ".join(problems))
    shown = text if len(text) <= 60 else text[:60] + "..."
    return f"{tokens} tokens in {answer.seconds:.1f} s, finish_reason {_show(finish)}: {_show(shown)}"


def usage(config: Config, found: Any, problems: list[str]) -> int:
    """Append what is wrong with `usage`; the completion tokens."""
    if not isinstance(found, dict):
        problems.append(f"usage is {_show(found)}, expected prompt_tokens, completion_tokens and total_tokens")
        return 0
    counts = {}
    for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
        value = found.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            counts[key] = value
        else:
            problems.append(f"usage.{key} is {_show(value)}, expected a whole number")
    if len(counts) < 3:
        return counts.get("completion_tokens", 0)
    prompt, completion, total = counts["prompt_tokens"], counts["completion_tokens"], counts["total_tokens"]
    if total != prompt + completion:
        problems.append(f"usage.total_tokens is {total}, expected prompt_tokens + completion_tokens = "
                        f"{prompt + completion}")
    if not 1 <= completion <= config.max_tokens:
        problems.append(f"usage.completion_tokens is {completion}, expected 1 to {config.max_tokens} (max_tokens)")
    return completion


def check_ray(config: Config, deadline: Deadline) -> str:
    assert config.status_url is not None
    answer = call(config, "ray", config.status_url, None, deadline, status_not_ready)
    document = answer_document(answer)
    nodes, gpus = document.get("alive_nodes"), document.get("gpus")
    if not all(isinstance(n, (int, float)) and not isinstance(n, bool) for n in (nodes, gpus)):
        raise Failed(f"the status endpoint's answer has no alive_nodes and gpus: {snippet(answer.body)}")
    problems = []
    if nodes != config.nodes:
        problems.append(f"alive Ray nodes: {nodes}, expected {config.nodes} (LLMPACK_SMOKE_EXPECTED_NODES)")
    if gpus != config.gpus:
        problems.append(f"GPUs: {gpus:g}, expected {config.gpus} (LLMPACK_SMOKE_EXPECTED_GPUS)")
    if problems:
        head = (document.get("expected_nodes"), document.get("expected_gpus"))
        if head != (config.nodes, config.gpus):
            problems.append(f"the head itself expects {_show(head[0])} nodes and {_show(head[1])} GPUs")
        if "state" in document:
            problems.append(f"the head reports the cluster {_show(document['state'])}")
        raise Failed("; ".join(problems))
    return f"{nodes} of {config.nodes} nodes, {gpus:g} of {config.gpus} GPUs"


def answer_document(answer: Answer) -> Document:
    """The answer's JSON object; Failed for an error status, a body that is not JSON, or JSON of another kind."""
    if answer.status != 200:
        raise Failed(f"answered {answer.status} {answer.reason}: {snippet(answer.body)}")
    try:
        document = json.loads(answer.body)
    except ValueError:
        raise Failed(f"the answer is not JSON ({answer.content_type or 'no Content-Type'}): "
                     f"{snippet(answer.body)}") from None
    if not isinstance(document, dict):
        raise Failed(f"the answer is not a JSON object: {snippet(answer.body)}")
    return document


def _json_object(body: bytes) -> Document:
    try:
        document = json.loads(body)
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def snippet(body: bytes) -> str:
    text = " ".join(body.decode("utf-8", errors="replace").split())
    return (text if len(text) <= SHOWN else text[:SHOWN] + "...") or "(empty)"


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


# --- the run ---------------------------------------------------------------------------------------------------

def say(mark: str, name: str, message: str) -> None:
    print(f"{mark:<4} {name}: {message}", flush=True)


def run(config: Config) -> int:
    ray = f"Ray status at {config.status_url}" if config.status_url else "no Ray check"
    print(f"llmpack smoke test of model {_show(config.model)} at {config.url} ({ray}); waiting up to "
          f"{config.wait:g} s for the predictor, {config.latency:g} s per request", flush=True)
    deadline = Deadline(time.monotonic(), config.wait)
    checks: list[tuple[str, Callable[[Config, Deadline], str] | None]] = [
        ("completions", check_completions), ("chat", check_chat),
        ("ray", check_ray if config.status_url else None),
    ]
    passed, failed, skipped = [], [], []
    for name, check in checks:
        if check is None:
            say("skip", name, "LLMPACK_SMOKE_STATUS_URL is not set")
            skipped.append(name)
            continue
        try:
            say("ok", name, check(config, deadline))
            passed.append(name)
        except Failed as err:
            say("FAIL", name, str(err))
            failed.append(name)
    total = len(passed) + len(failed)
    skip = f", {len(skipped)} skipped ({', '.join(skipped)})" if skipped else ""
    if failed:
        print(f"smoke test FAILED: {len(failed)} of {total} checks failed ({', '.join(failed)}){skip}", flush=True)
        return 1
    print(f"smoke test passed: {total} checks ok{skip}", flush=True)
    return 0


def main() -> int:
    try:
        config = read_config(os.environ)
    except Usage as err:
        print(f"llmpack smoke test: {err}", file=sys.stderr, flush=True)
        return 2
    return run(config)


if __name__ == "__main__":
    sys.exit(main())
