"""Plan stage, verify part: the smoke test Job that proves a release serves, after every sync.

It runs the seed's last checks (files/smoke.py): waits for the predictor Service, sends the
completion and chat requests, checks the answers (model = the InferenceService name, choices,
finish_reason, usage) and their latency, and asks the head's status endpoint (port 8081, which
KServe's predictor Service exposes as it does every port of kserve-container) whether the Ray
cluster holds PP nodes and TP x PP GPUs: the seed's nvidia-smi step, without exec or a token.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from generator.plan.parallelism import Parallelism
from generator.plan.resources import Container, container
from generator.plan.values import Issue, Values

STATUS_PORT = 8081
STATUS_PATH = "/llmpack/v1/cluster"
REQUESTS = 6          # the most requests smoke.py sends per wait (its own bound: WAIT + 6 x LATENCY + 30 s)


@dataclass(frozen=True)
class Verify:
    """The smoke test Job: what it calls and what it expects of the Ray cluster."""

    job: str
    image: str
    url: str                      # the predictor Service
    status_url: str               # the head's status endpoint through it
    expected_nodes: int
    expected_gpus: int
    wait_seconds: int
    max_latency_seconds: int
    max_tokens: int
    resources: Container

    @property
    def deadline_seconds(self) -> int:
        """The Job's activeDeadlineSeconds: the script's own bound, and a minute to start."""
        return self.wait_seconds + REQUESTS * self.max_latency_seconds + 90


def verify(values: Values, parallel: Parallelism, image: str) -> tuple[Verify | None, list[Issue]]:
    """The smoke test of a release, named by what it tests, so a change of model, parallelism or image runs it
    anew (Jobs are immutable; Argo CD re-creates its hooks on every sync anyway)."""
    given = values.verify
    resources, issues = container(values, ("verify", "resources"), given.resources, 0)
    if not given.enabled:
        return None, issues
    service = f"http://{values.name}-predictor.{values.namespace}.svc.cluster.local"
    key = "\0".join((values.model.id, values.model.revision, str(parallel.tensor), str(parallel.pipeline), image,
                     given.image or "")).encode()
    job = f"{values.name}-smoke-{hashlib.sha256(key).hexdigest()[:8]}"
    return Verify(job, given.image or image, service, f"{service}:{STATUS_PORT}{STATUS_PATH}", parallel.pipeline,
                  parallel.total, given.wait_seconds, given.max_latency_seconds, given.max_tokens, resources), issues
