"""Each bundle README's runbook, read as an SRE would: the download first, then the rollout, the smoke
test's logs, then by hand every pod's GPUs (whatever the pipeline size) and the API through the
predictor Service, each with the output to expect; its commands are valid bash; its diagram shows
every object, the headless Services included."""

from __future__ import annotations

import re
import subprocess

import pytest

from generator.pipeline import build
from generator.project import Extras, Project
from helpers import REPO


def readme(env: str, *sets: str) -> tuple[str, str]:
    bundle = build(Project.at(REPO), env, Extras(sets=sets))
    planned = bundle.plans[0]
    return planned.name, bundle.texts()[f"{planned.release}/README.md"]


@pytest.mark.parametrize("pp", [2, 4])
def test_the_runbook_covers_every_pod_in_order(pp: int) -> None:
    name, text = readme("staging", f'model.env=[{{name: PIPELINE_PARALLEL_SIZE, value: "{pp}"}}]')
    steps = ["logs -f job/", "wait --for=condition=complete", "rollout status deployment/", "logs job/",
             "nvidia-smi", "port-forward svc/", "/openai/v1/completions", "/openai/v1/chat/completions"]
    positions = [text.index(step) for step in steps]
    assert positions == sorted(positions), "the runbook's steps are out of order"
    assert f"kubectl -n \"$ns\" port-forward svc/{name}-predictor 8080:80" in text
    assert "cut -d" not in text, "picking one pod name breaks for more than one worker"
    assert f"-l app=isvc.{name}-predictor-worker -o name" in text
    expected = text[text.index("Expected output: " + str(pp) + " pods"):]
    assert len(re.findall(r"^pod/", expected.split("```")[1], re.M)) == pp
    assert f"ok   ray: {pp} of {pp} nodes" in text
    assert len(re.findall(r"^  w[0-9]+\[", text, re.M)) == pp - 1


@pytest.mark.parametrize(("env", "sets"), [("prod", ()), ("staging", ()), ("dev", ("target=raw",))])
def test_the_runbook_commands_are_valid_bash(env: str, sets: tuple[str, ...]) -> None:
    _, text = readme(env, *sets)
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    assert len(blocks) >= 4
    for block in blocks:
        done = subprocess.run(["bash", "-n"], input=block, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr + block


def test_the_diagram_shows_every_object_kserve_creates() -> None:
    name, text = readme("staging")
    diagram = text[text.index("```mermaid"):].split("```")[1]
    for node in (f"Service {name}-predictor", f"head pod {name}-predictor", f"headless Service {name}-head-GEN",
                 f"headless Service {name}-workers-GEN", f"{name}-predictor-worker", "PVC ", "Job ",
                 "smoke test Job "):
        assert node in diagram, node
    _, raw = readme("dev", "target=raw")
    assert "headless Service llama3-8b-dev-head\"" in raw
