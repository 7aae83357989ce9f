"""Command line of the Luma simulator, shared by `python -m generations.simulator` and `manage.py luma_simulator`."""

import argparse
import logging
import signal
import sys
import threading

from . import media
from .config import Config
from .agents_config import AgentsConfig, AgentsFaults
from .agents_engine import AgentsEngine
from .agents_server import API_PREFIX as AGENTS_PREFIX
from .engine import Engine
from .faults import CHANCE_FAULTS, SECONDS_FAULTS, Faults, parse_chance, parse_seconds
from .server import API_PREFIX, SimServer


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    defaults = Config()
    p = argparse.ArgumentParser(prog=prog, description="A stand-in for Luma's Dream Machine API, with fault "
                                "injection and an introspection API under /_sim.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9011, help="0 picks a free port (printed on start)")
    p.add_argument("--public-url", default="", help="root URL put into asset links (default http://HOST:PORT)")
    p.add_argument("--seed", type=int, default=None, help="seed for jitter, random failures and faults")
    p.add_argument("--state-file", default=None, help="keep generations (both APIs) and Agents files in this JSON "
                   "file: loaded on start, saved after every change (a killed simulator loses at most 0.2 s) and on "
                   "shutdown")
    p.add_argument("--verbose", "-v", action="store_true", help="log one line per request to stderr")
    g = p.add_argument_group("clock")
    g.add_argument("--queued-seconds", type=float, default=defaults.queued_seconds)
    g.add_argument("--dreaming-seconds", type=float, default=defaults.dreaming_seconds)
    g.add_argument("--jitter", type=float, default=defaults.jitter, help="share by which durations vary (+/-)")
    g.add_argument("--time-scale", type=float, default=defaults.time_scale,
                   help="multiplies every duration: 0.05 makes a generation take about a second")
    g = p.add_argument_group("limits, credits, assets")
    g.add_argument("--concurrent-limit", type=int, default=defaults.concurrent_limit, help="Ray generations in flight")
    g.add_argument("--creates-per-minute", type=int, default=defaults.creates_per_minute, help="Ray creates per minute")
    g.add_argument("--image-concurrent-limit", type=int, default=defaults.image_concurrent_limit)
    g.add_argument("--image-creates-per-minute", type=int, default=defaults.image_creates_per_minute)
    g.add_argument("--no-limits", action="store_true", help="never answer 429 for limits")
    g.add_argument("--credits", type=float, default=defaults.credits, help="start balance in USD cents")
    g.add_argument("--asset-bytes", type=int, default=0, help="pad every video to at least this many bytes")
    g.add_argument("--asset-rate", type=int, default=0, help="throttle asset downloads to this many bytes/s")
    g.add_argument("--failure-rate", type=float, default=0.0, help='share of generations failing with "Job failed"')
    g.add_argument("--api-key", action="append", default=[], help="accept only this key (repeatable)")
    g.add_argument("--remote-keyframes", choices=("accept", "fail"), default="accept",
                   help="non-loopback keyframe URLs are never fetched: accept them, or fail the generation")
    g.add_argument("--allow-remote-callbacks", action="store_true", help="also call back non-loopback hosts")
    g.add_argument("--callback-retries", type=int, default=defaults.callback_retries)
    g.add_argument("--callback-timeout", type=float, default=defaults.callback_timeout)
    agents = AgentsConfig()
    g = p.add_argument_group("Agents API (/agents)", "timings follow --time-scale; faults via POST /_sim/agents/faults")
    g.add_argument("--agents-requests-per-minute", type=int, default=agents.requests_per_minute,
                   help="creates per key in a sliding 60 s window")
    g.add_argument("--agents-concurrent-jobs", type=int, default=agents.concurrent_jobs, help="active jobs per key")
    g.add_argument("--agents-failure-rate", type=float, default=0.0, help="share failing with generation_failed")
    g.add_argument("--agents-remote-refs", choices=("accept", "fail"), default=agents.remote_refs,
                   help="non-loopback reference URLs are never fetched: accept them as images, or answer 422")
    g.add_argument("--agents-api-key", action="append", default=[],
                   help="accept only this luma-api-... key (repeatable; default: any luma-api-... key)")
    g = p.add_argument_group("faults", "probability (0.0-1.0) or, as an integer N >= 1, the next N times")
    for name, text in CHANCE_FAULTS.items():
        g.add_argument(f"--{name.replace('_', '-')}", type=parse_chance, default=0, help=text)
    for name, text in SECONDS_FAULTS.items():
        g.add_argument(f"--{name.replace('_', '-')}", type=parse_seconds, default=0.0, help=f"seconds: {text}")
    return p


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args = build_parser(prog).parse_args(argv)
    # Our own handler, not basicConfig: under manage.py, Django's logging setup would otherwise decide the level.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s lumasim %(message)s"))
    log = logging.getLogger("lumasim")
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO if args.verbose else logging.WARNING)
    log.propagate = False
    config = Config(
        queued_seconds=args.queued_seconds, dreaming_seconds=args.dreaming_seconds, jitter=args.jitter,
        time_scale=args.time_scale, limits=not args.no_limits, concurrent_limit=args.concurrent_limit,
        asset_rate=args.asset_rate,
        creates_per_minute=args.creates_per_minute, image_concurrent_limit=args.image_concurrent_limit,
        image_creates_per_minute=args.image_creates_per_minute, asset_bytes=args.asset_bytes,
        failure_rate=args.failure_rate, credits=args.credits, remote_keyframes=args.remote_keyframes,
        allow_remote_callbacks=args.allow_remote_callbacks, callback_retries=args.callback_retries,
        callback_timeout=args.callback_timeout, api_keys=list(args.api_key),
    )
    faults = Faults(**{name: getattr(args, name) for name in [*CHANCE_FAULTS, *SECONDS_FAULTS]})
    server = SimServer((args.host, args.port), None)
    host, port = server.server_address[:2]
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    root = args.public_url.rstrip("/") or f"http://{shown}:{port}"
    server.engine = Engine(config, faults, args.seed, root, args.state_file)
    agents = AgentsConfig(limits=not args.no_limits, requests_per_minute=args.agents_requests_per_minute,
                          concurrent_jobs=args.agents_concurrent_jobs, failure_rate=args.agents_failure_rate,
                          remote_refs=args.agents_remote_refs, api_keys=list(args.agents_api_key))
    server.agents = AgentsEngine(agents, AgentsFaults(), args.seed, root, lambda: server.engine.config.time_scale,
                                 server.engine.state)
    threading.Thread(target=media.warm_up, daemon=True, name="warm-up").start()

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    serving.start()
    print(f"Luma simulator listening on {root}{API_PREFIX} and {root}{AGENTS_PREFIX} (introspection: {root}/_sim)",
          file=sys.stderr, flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.shutdown()
        server.server_close()
        server.engine.save_state()
    return 0
