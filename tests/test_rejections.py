"""Every rule KServe's admission (and llmpack) enforces is refused at render time, at the
file and line that set the value, with exactly these messages. Nothing is written."""

from __future__ import annotations

import pytest

from generator.errors import CheckError, ValuesError
from generator.pipeline import build, render_env
from helpers import ProjectFactory

V = "overlays/test/values.yaml"
NAME_RULE = ("must be at most 41 characters of a-z, 0-9 and '-', start with a letter and end with a letter or digit "
             "(KServe builds 63-character pod labels from the InferenceService name: isvc.NAME-predictor-worker)")

CASES = [
    ("name-too-long", "name: a-name-that-is-far-too-long-for-kserve-labels-x\n",
     [f"{V}:1 at /name: {NAME_RULE}; got string \"a-name-that-is-far-too-long-for-kserve-labels-x\""]),
    ("name-not-dns", "name: Llama_3\n", [f"{V}:1 at /name: {NAME_RULE}; got string \"Llama_3\""]),
    ("storage-not-pvc", "model:\n  storageUri: s3://bucket/llama\n",
     [f"{V}:2 at /model/storageUri: multi-node serving needs a shared volume: storageUri must be "
      "pvc://CLAIM/PATH or oci://IMAGE; got 's3://bucket/llama'"]),
    ("storage-oci-before-0.16", 'kserve: {version: "0.15"}\nmodel:\n  storageUri: oci://reg/llama:1\n',
     [f"{V}:3 at /model/storageUri: KServe 0.15 accepts only pvc:// storage for multi-node; oci:// needs "
      "0.16 or later"]),
    ("storage-pvc-without-path", "model:\n  storageUri: pvc://claim-only\n",
     [f"{V}:2 at /model/storageUri: multi-node serving needs a shared volume: storageUri must be "
      "pvc://CLAIM/PATH or oci://IMAGE; got 'pvc://claim-only'"]),
    ("storage-path-escapes", "model:\n  storageUri: pvc://models/../etc\n",
     [f"{V}:2 at /model/storageUri: path '../etc' in storageUri must be a relative path of letters, digits, "
      "'.', '_', '-' and '/' without '..'"]),
    ("claim-neither-created-nor-existing", "pvc:\n  create: true\n  name: other-claim\n",
     [f"{V}:3 at /pvc/name: claim 'llama-3-8b-pvc' of model.storageUri is neither created by this bundle "
      "(pvc.name is 'other-claim') nor declared existing (pvc.create: false)"]),
    ("claim-without-rwx", "pvc:\n  accessModes: [ReadWriteOnce]\n",
     [f"{V}:2 at /pvc/accessModes: claim 'llama-3-8b-pvc' must offer ReadWriteMany: head and 1 worker pod(s) "
      "mount it from different nodes (got ReadWriteOnce)"]),
    ("two-heads", "predictor:\n  minReplicas: 2\n  maxReplicas: 2\n",
     [f"{V}:2 at /predictor/minReplicas: multi-node serving needs exactly one head pod; got minReplicas 2 "
      "(more heads are left out of the Ray cluster; add nodes with PIPELINE_PARALLEL_SIZE)",
      f"{V}:3 at /predictor/maxReplicas: multi-node serving needs exactly one head pod; got maxReplicas 2 "
      "(more heads are left out of the Ray cluster; add nodes with PIPELINE_PARALLEL_SIZE)"]),
    ("triton", "model:\n  format: triton\n",
     [f"{V}:2 at /model/format: Triton cannot serve multi-node: the multi-node runtime is vLLM with Ray; "
      "use format huggingface"]),
    ("not-huggingface", "model:\n  format: sklearn\n",
     [f"{V}:2 at /model/format: model format 'sklearn' is not supported: multi-node serving runs KServe's "
      "huggingface (vLLM) runtime; use format huggingface"]),
    ("pp-below-minimum-0.15.0", 'kserve: {version: "0.15.0"}\nmodel:\n  env:\n'
     '    - {name: PIPELINE_PARALLEL_SIZE, value: "1"}\n',
     [f"{V}:4 at /model/env/0/value: KServe 0.15.0 needs a pipeline parallel size of at least 2 (head + "
      "workers) (0.15.1 and later accept 1); got 1"]),
    ("pp-zero", 'model:\n  env:\n    - {name: PIPELINE_PARALLEL_SIZE, value: "0"}\n',
     [f"{V}:3 at /model/env/0/value: KServe 0.19 needs a pipeline parallel size of at least 1 (head + "
      "workers); got 0"]),
    ("python-path-blocked", 'model:\n  env:\n    - {name: PYTHONPATH, value: /opt/extra}\n',
     [f"{V}:3 at /model/env/0/name: KServe 0.19 refuses PYTHONPATH in any container (\"not allowed for security "
      "reasons\"); remove it"]),
    ("tp-zero", 'model:\n  env:\n    - {name: TENSOR_PARALLEL_SIZE, value: "0"}\n',
     [f"{V}:3 at /model/env/0/value: tensor parallel size must be at least 1; got 0"]),
    ("tp-not-a-number", 'model:\n  env:\n    - {name: TENSOR_PARALLEL_SIZE, value: "two"}\n',
     [f"{V}:3 at /model/env/0/value: TENSOR_PARALLEL_SIZE must be a whole number such as \"2\"; got 'two'"]),
    ("tp-from-secret", "model:\n  env:\n    - name: TENSOR_PARALLEL_SIZE\n      valueFrom: {configMapKeyRef: "
     "{name: a, key: b}}\n",
     [f"{V}:4 at /model/env/0/valueFrom: TENSOR_PARALLEL_SIZE must be a literal value: llmpack derives GPU "
      "counts and pod counts from it"]),
    ("env-twice", 'model:\n  env:\n    - {name: A, value: "1"}\n    - {name: A, value: "2"}\n',
     [f"{V}:4 at /model/env/1/name: A is set twice (also at index 0)"]),
    ("controller-env", 'model:\n  env:\n    - {name: RAY_NODE_COUNT, value: "3"}\n',
     [f"{V}:3 at /model/env/0/name: RAY_NODE_COUNT is set by the KServe controller, which would overwrite "
      "it; remove it"]),
    ("server-arg-owned-by-llmpack", "model:\n  args: [--tensor-parallel-size=4]\n",
     [f"{V}:2 at /model/args/0: --tensor-parallel-size is set by llmpack from the values (parallel sizes, "
      "model name and directory); remove it"]),
    ("unknown-gpu", "gpu:\n  resourceName: example.com/gpu\n",
     [f"{V}:2 at /gpu/resourceName: unknown GPU resource 'example.com/gpu': KServe knows nvidia.com/gpu, "
      "amd.com/gpu, intel.com/gpu, habana.ai/gaudi; list others in gpu.customResourceTypes"]),
    ("gpu-in-resources", "model:\n  resources:\n    limits: {nvidia.com/gpu: 2}\n",
     [f"{V}:3 at /model/resources/limits/nvidia.com~1gpu: GPUs are set by llmpack: nvidia.com/gpu = tensor "
      "parallel size (1) on head and workers; remove this entry"]),
    ("request-above-limit", "model:\n  resources:\n    requests: {cpu: \"8\"}\n",
     [f"{V}:3 at /model/resources/requests/cpu: request 8 is above the limit 6"]),
    ("shm-above-memory", "shm: {sizeLimit: 32Gi}\n",
     [f"{V}:1 at /shm/sizeLimit: /dev/shm of 32Gi is memory-backed and must fit in the pod's memory limit of "
      "24Gi"]),
    ("cluster-runtime-unnamed", "runtime: {create: false}\n",
     [f"{V}:1 at /runtime/create: runtime.name is required when runtime.create is false: it names the "
      "cluster's (Cluster)ServingRuntime to use"]),
    ("oci-with-download", "model:\n  storageUri: oci://reg/llama:1\ndownload: {enabled: true}\n",
     [f"{V}:3 at /download/enabled: must be false with an oci:// storageUri: the model comes from the image"]),
    # schema violations, reported all at once
    ("version-unquoted", "kserve: {version: 0.20}\n",
     [f"{V}:1 at /kserve/version: must be one of \"0.15.0\", \"0.15\", \"0.16\", \"0.17\", \"0.18\", "
      "\"0.19\", \"0.20\"; got number 0.2; quote it (unquoted, 0.20 is the number 0.2)"]),
    ("env-value-number", "model:\n  env:\n    - {name: TENSOR_PARALLEL_SIZE, value: 2}\n",
     [f"{V}:3 at /model/env/0/value: expected a string, got integer 2; quote it to keep it text (YAML reads "
      "it as a number or boolean)"]),
    ("yes-is-not-a-boolean", "pvc: {create: yes}\n",
     [f"{V}:1 at /pvc/create: expected true or false, got string \"yes\"; write true or false (YAML 1.2 reads "
      "yes/no/on/off as text)"]),
    ("typo", "pvc: {acessModes: [ReadWriteMany]}\n",
     [f"{V}:1 at /pvc/acessModes: unknown key; did you mean 'accessModes'?"]),
    ("required-deleted", "pvc: {accessModes: null}\n",
     [f"{V}:1 at /pvc/accessModes: required, but deleted by null here"]),
    ("secret-not-echoed", "download: {tokenSecret: hf_AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEfGh}\n",
     [f"{V}:1 at /download/tokenSecret: looks like a Hugging Face token (hf_...): never put a token in values; "
      "create a Secret and name it in download.tokenSecret"]),
    ("secret-named-key-not-echoed", "download: {tokenSecret: not-a-mapping}\n",
     [f"{V}:1 at /download/tokenSecret: a literal value under a key named like a secret is refused; reference a "
      "Kubernetes Secret instead"]),
]


@pytest.mark.parametrize(("values", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rejected_with_exact_located_message(make_project: ProjectFactory, values: str,
                                             expected: list[str]) -> None:
    project = make_project(values)
    with pytest.raises(ValuesError) as caught:
        render_env(project, "test")
    assert [str(p) for p in caught.value.problems] == expected
    assert not (project.root / "rendered").exists(), "nothing may be written on error"
    assert "hf_AbCd" not in str(caught.value)


def test_all_problems_of_all_releases_are_reported_at_once(make_project: ProjectFactory) -> None:
    project = make_project("", releases={"a": "name: A\n", "b": "model: {format: triton}\n"})
    with pytest.raises(ValuesError) as caught:
        build(project, "test")
    assert [p.location.source for p in caught.value.problems if p.location] == [
        "overlays/test/releases/a.yaml", "overlays/test/releases/b.yaml"]
    assert str(caught.value).startswith("invalid values for env test (2 problems):\n  - ")


def test_two_releases_cannot_define_the_same_object(make_project: ProjectFactory) -> None:
    project = make_project("", releases={"a": "name: one\n", "b": "name: two\n"})
    with pytest.raises(CheckError) as caught:
        build(project, "test")
    messages = [str(f) for f in caught.value.findings]
    assert messages[0] == ("rendered/test/b/storage/persistentvolumeclaim.yaml: /metadata/name: "
                           "PersistentVolumeClaim llm-serving/llama-3-8b-pvc is also defined in "
                           "rendered/test/a/storage/persistentvolumeclaim.yaml")


def test_two_models_cannot_share_one_path(make_project: ProjectFactory) -> None:
    project = make_project("", releases={
        "a": "name: one\n",
        "b": "name: two\nmodel: {id: meta-llama/Other, revision: 0123456789abcdef0123456789abcdef01234567,\n"
             "  storageUri: pvc://llama-3-8b-pvc/hf/8b_instruction_tuned}\npvc: {create: false}\n",
    })
    with pytest.raises(CheckError) as caught:
        build(project, "test")
    assert [str(f) for f in caught.value.findings] == [
        "b: /model/storageUri: pvc://llama-3-8b-pvc/hf/8b_instruction_tuned also holds "
        "meta-llama/Meta-Llama-3-8B-Instruct@8afb486c1db24fe5011ec46dfbe5b5dccdb575c2 of release a; give each "
        "model its own path"]
