"""llmpack: values files in, validated multi-node vLLM manifests for KServe out."""

__version__ = "0.1.0"
