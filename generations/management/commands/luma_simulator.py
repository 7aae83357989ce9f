"""`python manage.py luma_simulator --port 9011 [flags]`: runs the Luma simulator with the flags of
`python -m generations.simulator` (see `--help`); Django only forwards them.
"""

import os

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run the Luma simulator (a stand-in for Luma's Dream Machine API). Same flags as python -m generations.simulator."

    def run_from_argv(self, argv):
        # Django's own parser would reject the simulator's flags, so hand the raw arguments over untouched.
        from generations.simulator.cli import main

        raise SystemExit(main(argv[2:], prog=f"{os.path.basename(argv[0])} {argv[1]}"))

    def add_arguments(self, parser):
        parser.add_argument("args", nargs="*", help="simulator flags, e.g. --port 9011 --time-scale 0.1")

    def handle(self, *args, **options):
        from generations.simulator.cli import main

        return str(main(list(args)) or "")
