# llmpack head probe: startup | readiness | liveness.
# A dead rank makes the head unready even while the server's health route still answers.
set -uo pipefail
case "${1:-}" in
  startup|readiness|liveness) ;;
  *) echo "usage: probe startup|readiness|liveness" >&2; exit 2 ;;
esac
nodes_wanted="${RAY_NODE_COUNT:-${PIPELINE_PARALLEL_SIZE}}"  # KServe 0.15.0 sets no RAY_NODE_COUNT
gpus_wanted=$((TENSOR_PARALLEL_SIZE * PIPELINE_PARALLEL_SIZE))
export RAY_ADDRESS="${POD_IP}:${RAY_PORT}"
read -r nodes gpus < <(python3 -c "${LLMPACK_RAY_COUNT}" 2>/dev/null || echo "0 0")
if [ "${nodes}" -lt "${nodes_wanted}" ] || [ "${gpus}" -lt "${gpus_wanted}" ]; then
  echo "Ray cluster incomplete: ${nodes} of ${nodes_wanted} nodes, ${gpus} of ${gpus_wanted} GPUs"
  exit 1
fi
if [ "$1" != liveness ]; then
  curl --silent --fail --max-time 5 "http://127.0.0.1:8080/v1/models/${MODEL_NAME}" >/dev/null || {
    echo "model server not ready"; exit 1; }
fi
