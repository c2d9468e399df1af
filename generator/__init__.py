"""llmpack: values files in, validated multi-node vLLM manifests for KServe out."""

__version__ = "0.1.0"

# Exit codes besides 0 (errors.py gives them to its errors; kept here, where the start-up path reads them).
EXIT_INVALID = 1   # invalid values or bundle
EXIT_USAGE = 2     # usage error
