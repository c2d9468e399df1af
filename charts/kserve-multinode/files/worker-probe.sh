# llmpack worker probe: startup | liveness. The worker is alive while the head's Ray GCS answers.
set -uo pipefail
ray health-check --address "${HEAD_SVC}.${POD_NAMESPACE}.svc.cluster.local:${RAY_PORT}" >/dev/null 2>&1 || {
  echo "Ray head ${HEAD_SVC} unreachable (${1:-probe})"; exit 1; }
