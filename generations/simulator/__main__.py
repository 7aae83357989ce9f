"""Entry point: `python -m generations.simulator --port 9011 [flags]` (see `--help`)."""

import sys

from .cli import main

sys.exit(main(prog="python -m generations.simulator"))
