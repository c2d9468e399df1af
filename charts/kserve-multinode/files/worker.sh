# llmpack worker: wait for the head's Ray GCS with bounded backoff, then join and stay attached.
# `ray start --block` exits when the head goes away, so the pod restarts and rejoins.
set -euo pipefail
head="${HEAD_SVC}.${POD_NAMESPACE}.svc.cluster.local:${RAY_PORT}"
deadline=$((SECONDS + LLMPACK_RAY_WAIT_SECONDS))
delay=1
until ray health-check --address "${head}" >/dev/null 2>&1; do
  if [ "${SECONDS}" -ge "${deadline}" ]; then
    echo "llmpack: no Ray head at ${head} after ${LLMPACK_RAY_WAIT_SECONDS}s" >&2
    exit 1
  fi
  echo "llmpack: waiting for the Ray head at ${head} (${SECONDS}s)"
  sleep "${delay}"
  delay=$((delay < 16 ? delay * 2 : 16))
done
exec ray start --address="${head}" --node-ip-address="${POD_IP}" --disable-usage-stats --block
