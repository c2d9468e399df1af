"""Benchmark peer's model download: fetch one pinned revision into the claim, check it, mark it done.

Re-running is harmless: when the marker already names this model and revision, it exits at once.
The Hugging Face token is read from HF_TOKEN (set from a Secret) and never printed.
"""
import fnmatch
import json
import os
import pathlib
import sys

from huggingface_hub import HfApi, snapshot_download

MODEL, REVISION = os.environ["MODEL_ID"], os.environ["MODEL_REVISION"]
DEST = pathlib.Path(os.environ["TARGET_DIR"])
DONE = DEST / os.environ["MARKER_FILE"]
WANT = os.environ["MARKER"]
SKIP = json.loads(os.environ.get("IGNORE_PATTERNS", "[]"))
TOKEN = os.environ.get("HF_TOKEN") or None


def skipped(name):
    return any(fnmatch.fnmatch(name, pattern) for pattern in SKIP)


if DONE.is_file() and DONE.read_text().strip() == WANT:
    print(f"{WANT} already present in {DEST}")
    sys.exit(0)
DONE.unlink(missing_ok=True)
DEST.mkdir(parents=True, exist_ok=True)
listing = HfApi(token=TOKEN).model_info(MODEL, revision=REVISION, files_metadata=True).siblings
sizes = {entry.rfilename: entry.size for entry in listing if not skipped(entry.rfilename)}
print(f"fetching {len(sizes)} files of {WANT} into {DEST}")
snapshot_download(repo_id=MODEL, revision=REVISION, local_dir=DEST, token=TOKEN, ignore_patterns=SKIP or None)
wrong = []
for name, size in sorted(sizes.items()):
    path = DEST / name
    if not path.is_file() or (size is not None and path.stat().st_size != size):
        wrong.append(name)
if wrong:
    print(f"{len(wrong)} files missing or truncated, first ones: {wrong[:10]}", file=sys.stderr)
    sys.exit(1)
pending = DONE.with_name(DONE.name + ".partial")
pending.write_text(WANT + "\n")
os.replace(pending, DONE)
print(f"checked {len(sizes)} files; marked {DONE}")
