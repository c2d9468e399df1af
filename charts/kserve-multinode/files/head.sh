# llmpack head: check the model, start the Ray head, wait for every node, then serve.
# Env: KServe injects TENSOR_PARALLEL_SIZE, PIPELINE_PARALLEL_SIZE, MODEL_NAME, MODEL_DIR;
# the runtime sets RAY_PORT, POD_IP and the LLMPACK_* variables (LLMPACK_RAY_COUNT: ray_count.py,
# LLMPACK_STATUS: status.py).
set -euo pipefail
nodes_wanted="${RAY_NODE_COUNT:-${PIPELINE_PARALLEL_SIZE}}"  # KServe 0.15.0 sets no RAY_NODE_COUNT
gpus_wanted=$((TENSOR_PARALLEL_SIZE * PIPELINE_PARALLEL_SIZE))
marker="${MODEL_DIR}/${LLMPACK_MARKER_FILE}"
if [ "$(cat "${marker}" 2>/dev/null)" != "${LLMPACK_MODEL}" ]; then
  echo "llmpack: ${marker} does not name ${LLMPACK_MODEL}: the download Job has not finished for this model and revision" >&2
  exit 1
fi
# The smoke test Job's view of the cluster (GET :LLMPACK_STATUS_PORT/llmpack/v1/cluster), in the background:
# it answers while Ray starts and outlives the exec into the server; its failure never stops the head.
if [ -n "${LLMPACK_STATUS:-}" ]; then
  python3 -c "${LLMPACK_STATUS}" </dev/null &
fi
ray start --head --port="${RAY_PORT}" --node-ip-address="${POD_IP}" --disable-usage-stats --include-dashboard=false
export RAY_ADDRESS="${POD_IP}:${RAY_PORT}"
deadline=$((SECONDS + LLMPACK_RAY_WAIT_SECONDS))
while :; do
  read -r nodes gpus < <(python3 -c "${LLMPACK_RAY_COUNT}" 2>/dev/null || echo "0 0")
  if [ "${nodes}" -ge "${nodes_wanted}" ] && [ "${gpus}" -ge "${gpus_wanted}" ]; then
    break
  fi
  if [ "${SECONDS}" -ge "${deadline}" ]; then
    echo "llmpack: only ${nodes} of ${nodes_wanted} Ray nodes (${gpus} of ${gpus_wanted} GPUs) after ${LLMPACK_RAY_WAIT_SECONDS}s" >&2
    exit 1
  fi
  echo "llmpack: waiting for Ray nodes: ${nodes} of ${nodes_wanted}, GPUs ${gpus} of ${gpus_wanted}"
  sleep 5
done
echo "llmpack: ${nodes} Ray nodes with ${gpus} GPUs; starting the server"
exec python3 -m huggingfaceserver --model_name="${MODEL_NAME}" --model_dir="${MODEL_DIR}" \
  --tensor-parallel-size="${TENSOR_PARALLEL_SIZE}" \
  --pipeline-parallel-size="${PIPELINE_PARALLEL_SIZE}" "$@"
