"""The smoke test Job's script (charts/kserve-multinode/files/smoke.py), run as the Job runs it (`python3 -c TEXT`).

Against a real HTTP server on 127.0.0.1 that stands in for vLLM's OpenAI server (vLLM needs a GPU;
tests/vllm_openai_standin.py): success, a model still loading, another model's name, malformed answers, silence.
Against a real Ray cluster (vllm-runtime/tests/runtime_harness.py): both cluster status endpoints, the runtime's
`status` command and the chart's status.py started by the chart's head.sh, with every node and after one died.
"""

from __future__ import annotations

import ast
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from vllm_openai_standin import VllmOpenAIStandin, json_answer

from helpers import REPO

sys.path.insert(0, str(REPO / "vllm-runtime"))
sys.path.insert(0, str(REPO / "vllm-runtime" / "tests"))

from runtime_harness import FAKE_SERVER, Runtime, free_port, get_json, wait_until

FILES = REPO / "charts" / "kserve-multinode" / "files"


def answers(url: str, expected: object) -> bool:
    return bool(get_json(url) == expected)
SCRIPT = (FILES / "smoke.py").read_text()
MODEL = "huggingface-llama3"
OK_COMPLETIONS = re.compile(r'^ok   completions: 26 tokens in \d+\.\d s, finish_reason "stop": "Nitrogen boils at '
                            r'-195\.8 degrees Celsius \(-320\.4 degrees Fah\.\.\."$', re.M)
OK_CHAT = re.compile(OK_COMPLETIONS.pattern.replace("completions", "chat"), re.M)


def smoke_env(url: str, **env: str) -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "LLMPACK_SMOKE_URL": url, "LLMPACK_SMOKE_MODEL": MODEL,
            "LLMPACK_SMOKE_WAIT_SECONDS": "20", "LLMPACK_SMOKE_MAX_LATENCY_SECONDS": "10", **env}


def smoke(url: str, **env: str) -> tuple[int, str]:
    """Run the script to its end (its waits are bounded; this bounds the test too)."""
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=smoke_env(url, **env), capture_output=True, text=True,
                          timeout=120, check=False)
    return done.returncode, done.stdout + done.stderr


# --- against the vLLM stand-in -----------------------------------------------------------------------------------

def test_smoke_passes_against_the_vllm_standin_sending_the_seeds_two_requests() -> None:
    with VllmOpenAIStandin(MODEL) as server:
        code, out = smoke(server.url)

    assert code == 0, out
    assert out.splitlines()[0] == (f'llmpack smoke test of model "{MODEL}" at {server.url} (no Ray check); waiting up '
                                   "to 20 s for the predictor, 10 s per request")
    assert OK_COMPLETIONS.search(out) and OK_CHAT.search(out), out
    assert out.splitlines()[-2:] == ["skip ray: LLMPACK_SMOKE_STATUS_URL is not set",
                                     "smoke test passed: 2 checks ok, 1 skipped (ray)"]
    prompt = "At what temperature does Nitrogen boil?"
    assert [(r.path, r.body) for r in server.generations()] == [
        ("/openai/v1/completions", {"model": MODEL, "prompt": prompt, "max_tokens": 100, "temperature": 0}),
        ("/openai/v1/chat/completions", {"model": MODEL, "messages": [{"role": "system", "content": prompt}],
                                         "max_tokens": 100, "stream": False}),
    ]


@pytest.mark.parametrize(("loading", "unregistered", "waiting"), [
    (2, 0, 'not ready yet: 503 Service Unavailable: {"error": "Model with name huggingface-llama3 is not ready."}'),
    (0, 2, "not ready yet: 404 Not Found: {\"object\": \"error\", \"message\": \"The model `huggingface-llama3` does "
           'not exist.", "type": "NotFoundError", "param": null, "code": 404} (no model is listed yet)'),
])
def test_smoke_waits_while_the_vllm_standin_loads_the_model(loading: int, unregistered: int, waiting: str) -> None:
    with VllmOpenAIStandin(MODEL, loading=loading, unregistered=unregistered) as server:
        code, out = smoke(server.url)

    assert code == 0, out
    waits = [line for line in out.splitlines() if line.startswith("wait ")]
    assert [line.split("; next try")[0] for line in waits] == [f"wait completions: {waiting}"] * 2, out
    assert OK_COMPLETIONS.search(out) and OK_CHAT.search(out), out
    assert len(server.generations()) == 4


def test_smoke_waits_until_the_vllm_standin_accepts_connections(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "smoke.log"
    with log.open("w") as out:
        job = subprocess.Popen([sys.executable, "-c", SCRIPT], env=smoke_env(f"http://127.0.0.1:{port}"),
                               stdout=out, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until(lambda: "wait completions: not ready yet: connection refused; next try in" in log.read_text(), 20,
                   "the smoke test to find nothing listening")
        with VllmOpenAIStandin(MODEL, port=port):
            code = job.wait(timeout=60)
    finally:
        job.kill()
        job.wait()
    assert code == 0, log.read_text()
    assert OK_CHAT.search(log.read_text())


def test_smoke_fails_when_the_vllm_standin_answers_for_another_model() -> None:
    with VllmOpenAIStandin(MODEL, reply_model="mistral-7b") as server:
        code, out = smoke(server.url)

    assert code == 1
    assert out.splitlines()[1:] == [
        f'FAIL completions: model is "mistral-7b", expected "{MODEL}"',
        f'FAIL chat: model is "mistral-7b", expected "{MODEL}"',
        "skip ray: LLMPACK_SMOKE_STATUS_URL is not set",
        "smoke test FAILED: 2 of 2 checks failed (completions, chat), 1 skipped (ray)",
    ]


def test_smoke_fails_at_once_when_the_vllm_standin_serves_the_model_under_another_name() -> None:
    with VllmOpenAIStandin("llama3") as server:
        code, out = smoke(server.url, LLMPACK_SMOKE_WAIT_SECONDS="600")

    assert code == 1
    assert "wait " not in out, "a model served under another name is no reason to wait"
    assert ('FAIL completions: the server serves ["llama3"], not "huggingface-llama3" (LLMPACK_SMOKE_MODEL); it '
            'answered 404: {"object": "error", "message": "The model `huggingface-llama3` does not exist."') in out


def _replace(document: dict[str, Any], **fields: Any) -> bytes:
    return json.dumps({**document, **fields}).encode()


COMPLETION = VllmOpenAIStandin(MODEL).generation("completions", {"max_tokens": 100})
USAGE = COMPLETION["usage"]
CHOICE = COMPLETION["choices"][0]
MALFORMED = {
    "no usage": (_replace(COMPLETION, usage=None),
                 "usage is null, expected prompt_tokens, completion_tokens and total_tokens"),
    "usage that does not add up": (_replace(COMPLETION, usage={**USAGE, "total_tokens": 10}),
                                   "usage.total_tokens is 10, expected prompt_tokens + completion_tokens = 35"),
    "token counts as text": (_replace(COMPLETION, usage={**USAGE, "prompt_tokens": "9"}),
                             'usage.prompt_tokens is "9", expected a whole number'),
    "more tokens than asked": (_replace(COMPLETION, usage={**USAGE, "completion_tokens": 101, "total_tokens": 110}),
                               "usage.completion_tokens is 101, expected 1 to 100 (max_tokens)"),
    "no choices": (_replace(COMPLETION, choices=[]), "choices is [], expected a list of at least one choice"),
    "empty text": (_replace(COMPLETION, choices=[{**CHOICE, "text": ""}]), 'choices[0].text is "", expected text'),
    "an aborted request": (_replace(COMPLETION, choices=[{**CHOICE, "finish_reason": "abort"}]),
                           'choices[0].finish_reason is "abort", expected "stop" or "length"'),
    "a chat answer": (_replace(COMPLETION, object="chat.completion"),
                      'object is "chat.completion", expected "text_completion"'),
    "several problems": (_replace(COMPLETION, object=None, usage={}),
                         "object is null, expected \"text_completion\"; usage.prompt_tokens is null, expected a whole "
                         "number; usage.completion_tokens is null, expected a whole number; usage.total_tokens is "
                         "null, expected a whole number"),
}


@pytest.mark.parametrize(("body", "problem"), MALFORMED.values(), ids=MALFORMED.keys())
def test_smoke_fails_on_a_malformed_answer_of_the_vllm_standin(body: bytes, problem: str) -> None:
    def answer(route: str, request: dict[str, Any]) -> tuple[int, bytes, str] | None:
        return (200, body, "application/json") if route == "completions" else None

    with VllmOpenAIStandin(MODEL, override=answer) as server:
        code, out = smoke(server.url)

    assert code == 1
    assert f"FAIL completions: {problem}\n" in out, out
    assert OK_CHAT.search(out), out
    assert out.splitlines()[-1] == "smoke test FAILED: 1 of 2 checks failed (completions), 1 skipped (ray)"


@pytest.mark.parametrize(("answer", "problem"), [
    ((200, b"<html><body>Welcome to nginx!</body></html>", "text/html"),
     "the answer is not JSON (text/html): <html><body>Welcome to nginx!</body></html>"),
    ((200, b"", "application/json"), "the answer is not JSON (application/json): (empty)"),
    ((200, b'[{"text": "hi"}]', "application/json"), 'the answer is not a JSON object: [{"text": "hi"}]'),
    (json_answer(500, {"object": "error", "message": "EngineDeadError", "type": "InternalServerError", "code": 500}),
     'answered 500 Internal Server Error: {"object": "error", "message": "EngineDeadError", "type": '
     '"InternalServerError", "code": 500}'),
    (json_answer(400, {"object": "error", "message": "max_tokens is too large", "type": "BadRequestError",
                       "code": 400}),
     'answered 400 Bad Request: {"object": "error", "message": "max_tokens is too large", "type": '
     '"BadRequestError", "code": 400}'),
], ids=["html", "empty", "a list", "500", "400"])
def test_smoke_fails_at_once_on_an_answer_that_is_no_completion(answer: tuple[int, bytes, str], problem: str) -> None:
    with VllmOpenAIStandin(MODEL, override=lambda route, request: answer) as server:
        code, out = smoke(server.url, LLMPACK_SMOKE_WAIT_SECONDS="600")

    assert code == 1
    assert out.splitlines()[1:3] == [f"FAIL completions: {problem}", f"FAIL chat: {problem}"], out
    assert len(server.generations()) == 2, "an answer that is no completion is no reason to ask again"


def test_smoke_fails_when_the_vllm_standin_never_answers_within_the_latency_bound() -> None:
    with VllmOpenAIStandin(MODEL, silent=True) as server:
        code, out = smoke(server.url, LLMPACK_SMOKE_MAX_LATENCY_SECONDS="1")

    assert code == 1
    assert out.splitlines()[1:3] == [
        "FAIL completions: no complete answer within 1 s (LLMPACK_SMOKE_MAX_LATENCY_SECONDS)",
        "FAIL chat: no complete answer within 1 s (LLMPACK_SMOKE_MAX_LATENCY_SECONDS)",
    ]
    assert len(server.generations()) == 2


def test_smoke_fails_when_the_vllm_standin_is_still_loading_when_the_wait_ends() -> None:
    with VllmOpenAIStandin(MODEL, loading=1000) as server:
        code, out = smoke(server.url, LLMPACK_SMOKE_WAIT_SECONDS="2")

    assert code == 1
    assert ('FAIL completions: not ready within the wait of 2 s (last: 503 Service Unavailable: {"error": "Model '
            f'with name {MODEL} is not ready."}})') in out, out
    assert out.splitlines()[-1] == "smoke test FAILED: 2 of 2 checks failed (completions, chat), 1 skipped (ray)"


@pytest.mark.parametrize(("env", "message"), [
    ({"LLMPACK_SMOKE_URL": ""}, "environment variable LLMPACK_SMOKE_URL is not set"),
    ({"LLMPACK_SMOKE_URL": "predictor:80"}, "LLMPACK_SMOKE_URL is 'predictor:80': expected an http:// or https:// URL"),
    ({"LLMPACK_SMOKE_MODEL": ""}, "environment variable LLMPACK_SMOKE_MODEL is not set"),
    ({"LLMPACK_SMOKE_STATUS_URL": "http://h:8081/llmpack/v1/cluster"},
     "environment variable LLMPACK_SMOKE_EXPECTED_NODES is not set"),
    ({"LLMPACK_SMOKE_MAX_TOKENS": "0"}, "LLMPACK_SMOKE_MAX_TOKENS is '0': expected a whole number of at least 1"),
    ({"LLMPACK_SMOKE_WAIT_SECONDS": "forever"},
     "LLMPACK_SMOKE_WAIT_SECONDS is 'forever': expected a positive number of seconds"),
])
def test_a_configuration_error_exits_2_naming_the_variable(env: dict[str, str], message: str) -> None:
    code, out = smoke("http://127.0.0.1:9", **env)
    assert code == 2
    assert out.startswith("llmpack smoke test: ") and message in out, out


@pytest.mark.parametrize("name", ["smoke.py", "status.py"])
def test_the_job_and_status_scripts_need_only_python_3_9_and_its_standard_library(name: str) -> None:
    tree = ast.parse((FILES / name).read_text(), feature_version=(3, 9))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {(node.module or "").split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported - set(sys.stdlib_module_names)


# --- against a real Ray cluster ------------------------------------------------------------------------------------

COUNTS = {"expected_nodes": 2, "expected_gpus": 2, "tensor_parallel_size": 1, "pipeline_parallel_size": 2}


def start_cluster(runtime: Runtime, kserve_status_port: int) -> None:
    """The chart's head.sh (runtime.flavor kserve) as the head, and the runtime's worker, which joins the same way
    worker.sh does (`ray start --address --block`) but at a loopback address instead of the cluster DNS name.

    head.sh's `python3 -m huggingfaceserver` is the runtime tests' recorder: vLLM cannot run without a GPU.
    Ray counts one logical GPU per node (RAY_OVERRIDE_RESOURCES, LLMPACK_RAY_NUM_GPUS).
    """
    standin = runtime.root / "standin" / "huggingfaceserver"
    standin.mkdir(parents=True)
    (standin / "__main__.py").write_text(f"import runpy\nrunpy.run_path({str(FAKE_SERVER)!r}, run_name='__main__')\n")
    (runtime.root / "k").mkdir()
    runtime.spawn("head.sh", ["bash", "-c", (FILES / "head.sh").read_text(), "llmpack-head"],
                  PYTHONPATH=str(standin.parent), LLMPACK_MARKER_FILE=".llmpack-complete",
                  LLMPACK_RAY_COUNT=(FILES / "ray_count.py").read_text(),
                  LLMPACK_STATUS=(FILES / "status.py").read_text(), LLMPACK_STATUS_PORT=str(kserve_status_port),
                  RAY_TMPDIR=str(runtime.root / "k"), RAY_OVERRIDE_RESOURCES='{"CPU": 1, "GPU": 1}')
    runtime.start("worker")
    wait_until(runtime.record.exists, 180, "head.sh to see the worker and exec the server", interval=2)


@pytest.mark.xdist_group("ray")     # one Ray cluster at a time (vllm-runtime/tests/conftest.py)
def test_smoke_checks_the_real_ray_cluster_through_both_status_endpoints_and_fails_when_a_node_died() -> None:
    root = Path(tempfile.mkdtemp(prefix="llmrt-", dir="/tmp"))
    runtime = Runtime(root)
    try:
        kserve_port = free_port()
        start_cluster(runtime, kserve_port)
        worker = runtime.sessions[-1]
        runtime.start("status")  # the runtime's endpoint, which its own head starts (test_head.py), on the same Ray
        endpoints = {"kserve": f"http://127.0.0.1:{kserve_port}/llmpack/v1/cluster", "runtime": runtime.status_url}

        complete = (200, {**COUNTS, "state": "complete", "alive_nodes": 2, "gpus": 2})
        for url in endpoints.values():
            wait_until(functools.partial(answers, url, complete), 90, f"{url} to see both nodes", interval=2)

        with VllmOpenAIStandin(MODEL) as server:
            for flavor, url in endpoints.items():
                code, out = smoke(server.url, LLMPACK_SMOKE_STATUS_URL=url, LLMPACK_SMOKE_EXPECTED_NODES="2",
                                  LLMPACK_SMOKE_EXPECTED_GPUS="2", LLMPACK_SMOKE_WAIT_SECONDS="60",
                                  LLMPACK_SMOKE_MAX_LATENCY_SECONDS="30")
                assert code == 0, f"{flavor}: {out}"
                assert out.splitlines()[-2:] == ["ok   ray: 2 of 2 nodes, 2 of 2 GPUs",
                                                 "smoke test passed: 3 checks ok"], f"{flavor}: {out}"

            runtime.kill(worker)  # a rank dies
            incomplete = (200, {**COUNTS, "state": "incomplete", "alive_nodes": 1, "gpus": 1})
            for url in endpoints.values():
                wait_until(functools.partial(answers, url, incomplete), 90, f"{url} to see the dead node",
                           interval=2)
            for flavor, url in endpoints.items():
                code, out = smoke(server.url, LLMPACK_SMOKE_STATUS_URL=url, LLMPACK_SMOKE_EXPECTED_NODES="2",
                                  LLMPACK_SMOKE_EXPECTED_GPUS="2", LLMPACK_SMOKE_MAX_LATENCY_SECONDS="30")
                assert code == 1, f"{flavor}: {out}"
                assert out.splitlines()[-2:] == [
                    "FAIL ray: alive Ray nodes: 1, expected 2 (LLMPACK_SMOKE_EXPECTED_NODES); GPUs: 1, expected 2 "
                    '(LLMPACK_SMOKE_EXPECTED_GPUS); the head reports the cluster "incomplete"',
                    "smoke test FAILED: 1 of 3 checks failed (ray)"], f"{flavor}: {out}"
    finally:
        runtime.cleanup()
        shutil.rmtree(root, ignore_errors=True)
