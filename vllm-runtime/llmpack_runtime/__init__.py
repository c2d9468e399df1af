"""llmpack's runtime entrypoint for multi-node vLLM on KServe: `python3 -m llmpack_runtime head|worker|probe`.

It follows KServe's environment contract (TENSOR_PARALLEL_SIZE, PIPELINE_PARALLEL_SIZE, RAY_NODE_COUNT, HEAD_SVC,
...) and adds what the stock shell scripts lack: a model completion check, bounded waits, a worker that leaves when
its head goes away, and probes that count Ray nodes and GPUs as well as the server's health.
"""

__version__ = "0.1.0"
