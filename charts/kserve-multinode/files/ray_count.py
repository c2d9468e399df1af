# Prints "<alive Ray nodes> <their GPUs>" for the cluster at RAY_ADDRESS (llmpack head and probes).
import ray

ray.init(address="auto", logging_level="ERROR", log_to_driver=False)
alive = [n for n in ray.nodes() if n["Alive"]]
print(len(alive), int(sum(n["Resources"].get("GPU", 0) for n in alive)))
