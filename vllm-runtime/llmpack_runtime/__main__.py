"""`python3 -m llmpack_runtime`."""

import sys

from llmpack_runtime.cli import main

sys.exit(main())
