"""Stands in for vLLM's server, which cannot run without a GPU: records how it was started, then stays up.

It writes its argv, its pid (equal to the head command's pid when the head exec'd it) and RAY_ADDRESS to the
file named by FAKE_SERVER_RECORD, then sleeps like a serving process until it is killed.
"""

import json
import os
import sys
import time
from pathlib import Path

record = Path(os.environ["FAKE_SERVER_RECORD"])
partial = record.with_suffix(".partial")
partial.write_text(json.dumps({"argv": sys.argv[1:], "pid": os.getpid(), "ray_address": os.environ.get("RAY_ADDRESS")}))
partial.rename(record)
while True:
    time.sleep(60)
