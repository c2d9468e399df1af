"""llmpack cluster status (runtime.flavor kserve): the Ray nodes and GPUs as JSON, for the smoke test Job.

GET /llmpack/v1/cluster on LLMPACK_STATUS_PORT (8081) answers 200 with the alive nodes and GPUs counted by the
probes' own ray_count.py (LLMPACK_RAY_COUNT), or 503 with the reason while Ray does not answer; the document is the
one llmpack_runtime's `status` command serves. Read-only. head.sh starts it in the background before Ray; it stops
when that process (the head, then the model server) is gone. Standard library only (Python 3.9+).
"""
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time

PATH = "/llmpack/v1/cluster"
CACHE_SECONDS = 5.0  # at most one count (a Ray driver) per this many seconds, however many requests come

try:
    tensor = int(os.environ["TENSOR_PARALLEL_SIZE"])
    pipeline = int(os.environ["PIPELINE_PARALLEL_SIZE"])
    nodes_wanted = int(os.environ.get("RAY_NODE_COUNT") or pipeline)  # KServe 0.15.0 sets no RAY_NODE_COUNT
    ray_host, ray_port = os.environ["POD_IP"], int(os.environ.get("RAY_PORT") or 6379)
    count_script = os.environ["LLMPACK_RAY_COUNT"]
    timeout = float(os.environ.get("LLMPACK_PROBE_TIMEOUT_SECONDS") or 15)  # ray.init takes a few seconds
    # every interface: the predictor Service reaches the endpoint at the pod IP
    host = os.environ.get("LLMPACK_STATUS_ADDRESS") or "0.0.0.0"  # noqa: S104
    listen = (host, int(os.environ.get("LLMPACK_STATUS_PORT") or 8081))
except (KeyError, ValueError) as err:
    print(f"llmpack: status: bad environment ({type(err).__name__}: {err}); no cluster status endpoint",
          file=sys.stderr)
    sys.exit(2)
ray_address = f"{ray_host}:{ray_port}"
expected = {"expected_nodes": nodes_wanted, "expected_gpus": tensor * pipeline,
            "tensor_parallel_size": tensor, "pipeline_parallel_size": pipeline}


def unavailable(reason):
    return 503, dict(expected, state="unavailable", reason=f"Ray at {ray_address} does not answer: {reason}")


def count():
    try:  # fail fast when nothing listens: ray.init would retry for most of a minute
        socket.create_connection((ray_host, ray_port), timeout=min(timeout, 3)).close()
    except ConnectionRefusedError:
        return unavailable("connection refused (nothing listens there yet)")
    except OSError as err:
        return unavailable(f"cannot connect ({err})")
    env = dict(os.environ, RAY_ADDRESS=ray_address)
    try:
        done = subprocess.run([sys.executable, "-c", count_script], env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return unavailable(f"no answer within {timeout:g}s")
    fields = done.stdout.split()
    if done.returncode != 0 or len(fields) != 2 or not all(f.isdigit() for f in fields):
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        return unavailable(lines[-1].strip() if lines else f"the count exited with code {done.returncode}")
    nodes, gpus = int(fields[0]), int(fields[1])
    state = "complete" if nodes >= nodes_wanted and gpus >= tensor * pipeline else "incomplete"
    return 200, dict(expected, state=state, alive_nodes=nodes, gpus=gpus)


lock = threading.Lock()
last = {"at": 0.0, "answer": None}


def cached():
    with lock:
        if last["answer"] is None or time.monotonic() - last["at"] >= CACHE_SECONDS:
            try:
                last["answer"] = count()
            except Exception as err:  # a bug costs one answer, never the endpoint
                last["answer"] = (500, {"state": "error", "reason": f"{type(err).__name__}: {err}"})
            last["at"] = time.monotonic()
        return last["answer"]


class Handler(http.server.BaseHTTPRequestHandler):
    timeout = 10  # a client that sends nothing for this long is dropped

    def do_GET(self):
        if self.path.partition("?")[0] == PATH:
            code, document = cached()
        else:
            code, document = 404, {"state": "error", "reason": f"no such path; ask GET {PATH}"}
        body = (json.dumps(document, sort_keys=True) + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def version_string(self):
        return "llmpack-status"

    def log_message(self, format, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    address_family = socket.AF_INET6 if ":" in listen[0] else socket.AF_INET


def stop_with_parent(server):
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(1)
    server.shutdown()


try:
    server = Server(listen, Handler)
except OSError as err:
    print(f"llmpack: status: cannot listen on {listen[0]}:{listen[1]} ({err.strerror or err}); "
          "the head serves on without the cluster status endpoint", file=sys.stderr)
    sys.exit(1)
print(f"llmpack: status: serving the Ray cluster's nodes and GPUs at http://{listen[0]}:{listen[1]}{PATH}",
      file=sys.stderr, flush=True)
threading.Thread(target=stop_with_parent, args=(server,), daemon=True).start()
server.serve_forever(poll_interval=0.5)
