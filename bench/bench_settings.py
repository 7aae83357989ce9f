"""Settings for bench runs: the product's settings with the bench URLconf (adds one bare view)."""

from lumaweb.settings import *  # noqa: F401,F403

ROOT_URLCONF = "bench.bench_urls"
