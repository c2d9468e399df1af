"""llmpack model download: pinned revision -> PVC path, verified, then a completion marker.

Safe to re-run: a marker naming this model and revision means done. The token comes
only from the HF_TOKEN variable (a Secret reference) and is never printed.
"""
import fnmatch
import json
import os
import pathlib
import sys

from huggingface_hub import HfApi, snapshot_download

model, revision = os.environ["MODEL_ID"], os.environ["MODEL_REVISION"]
target = pathlib.Path(os.environ["TARGET_DIR"])
marker = target / os.environ["MARKER_FILE"]
expected = os.environ["MARKER"]
ignore = json.loads(os.environ.get("IGNORE_PATTERNS", "[]"))
token = os.environ.get("HF_TOKEN") or None

if marker.is_file() and marker.read_text().strip() == expected:
    print(f"{model}@{revision} is already complete in {target}")
    sys.exit(0)
marker.unlink(missing_ok=True)
target.mkdir(parents=True, exist_ok=True)

info = HfApi(token=token).model_info(model, revision=revision, files_metadata=True)
wanted = {s.rfilename: s.size for s in info.siblings
          if not any(fnmatch.fnmatch(s.rfilename, p) for p in ignore)}
print(f"downloading {len(wanted)} files of {model}@{revision} to {target}")
snapshot_download(repo_id=model, revision=revision, local_dir=target, token=token,
                  ignore_patterns=ignore or None)

bad = [name for name, size in sorted(wanted.items())
       if not (target / name).is_file() or (size is not None and (target / name).stat().st_size != size)]
if bad:
    print(f"download incomplete: {len(bad)} files missing or of the wrong size: {bad[:10]}", file=sys.stderr)
    sys.exit(1)
partial = marker.with_name(marker.name + ".tmp")
partial.write_text(expected + "\n")
os.replace(partial, marker)
print(f"verified {len(wanted)} files; wrote {marker}")
