"""Simulator media: what matching the request costs (issue 8 item 9), the old renderer against the current one.

    .venv/bin/python bench/simulator_media.py [--rounds 7]                  # renders only, about a minute
    .venv/bin/python bench/simulator_media.py --rounds 7 --chaos 60         # and a short chaos run with each

The old renderer is the media.py of commit 4c1660d, read with `git show 4c1660d:generations/simulator/media.py`
into a temporary module; the current one is generations/simulator/media.py. The old one has another API: it takes
the generation id, an aspect ratio and seconds and picks the size itself (320x180 for 16:9, a still twice that), so
it is called the way the engine of its time called it: the request's aspect ratio, 2 s for a 5 s request and 3 s for
a 9 s one (engine.py before a029f3c), no sound for add audio. The current one is called as engine.asset() calls it
now: width and height from the resolution or canvas, the length asked for, a tone for add audio.

For each case (the files the test suite and bench/chaos.py ask the simulator for) the script renders one file per
round with each renderer, the cache emptied first, alternating which goes first; it prints median wall and CPU time
(CPU: every thread of this process, x264's included), the bytes, and the ratio new/old; then the ratio weighted by
how often the suite asks for each case and by bench/chaos.py's mix (exact, from its REQUEST_CODE). Evidence first:
each file decoded with PyAV (videos) or Pillow (images), with the size and length it has against what was asked.

--chaos N runs `bench/chaos.py --generations N` twice, once with each renderer, and prints both wall times and
summary lines. chaos.py is run as a child of this script with its simulator started through this script too
(`--serve old|new`), which puts the old renderer behind the current engine in that simulator process only: nothing
in the simulator or harness is changed; both runs start their simulator the same way.
"""

import argparse
import io
import os
import statistics
import subprocess
import sys
import time
import types
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OLD_COMMIT = "4c1660d"


def load_old_media() -> types.ModuleType:
    source = subprocess.run(["git", "show", f"{OLD_COMMIT}:generations/simulator/media.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    module = types.ModuleType(f"lumasim_media_{OLD_COMMIT}")
    module.__file__ = f"<{OLD_COMMIT}:generations/simulator/media.py>"
    sys.modules[module.__name__] = module  # dataclasses look their module up while the class is made
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    return module


def old_seconds(seconds: float) -> float:
    """What the old engine rendered for a request of this length: 3 s for 9 s, 2 s otherwise."""
    return 3.0 if seconds >= 9 else 2.0


# -- cases ----------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    name: str
    title: str  # what the current engine draws (title_of), which also picks the pattern
    aspect: str
    width: int  # asked of the current renderer (engine._shape)
    height: int
    seconds: float
    image: bool = False
    audio: bool = False
    suite: int = 0  # how often the test suite asks (see SUITE_WEIGHTS_HOW)
    chaos: float = 0.0  # share of bench/chaos.py's Dream Machine rows


# chaos.py asks for N/5 rows of ["text_to_video", "image_to_video", "image"], then 4N/5 of eight kinds (those three,
# extend, reverse_extend, interpolate, upscale to 1080p, add_audio), all ray-2 720p 5 s 16:9 or photon-1 16:9:
# a third of 1/5 plus an eighth of 4/5 each. Extend, reverse extend and interpolate keep their 5 s source.
CHAOS_BASIC, CHAOS_EVERY = 1 / 15, 1 / 10
SUITE_WEIGHTS_HOW = ("suite weights: lines in the test files that use the simulator (luma_sim, luma_settings, "
                     "luma_stack) naming each kind of request (grep, comments left out; a proxy for how often the "
                     "suite asks, not counted at run time)")
CASES = [
    Case("text to video 720p 5 s", "Text to video", "16:9", 1280, 720, 5.0, suite=95,
         chaos=2 * CHAOS_BASIC + 5 * CHAOS_EVERY),  # t2v and i2v in both batches; extend, reverse extend, interpolate
    Case("text to video 720p 9 s", "Text to video", "16:9", 1280, 720, 9.0, suite=13),
    Case("text to video 720p 5 s 9:16", "Text to video", "9:16", 720, 1280, 5.0, suite=32),
    Case("upscale to 1080p 5 s", "Upscale to 1080p", "16:9", 1920, 1080, 5.0, suite=26, chaos=CHAOS_EVERY),
    Case("upscale to 4k 5 s", "Upscale to 4k", "16:9", 3840, 2160, 5.0, suite=11),
    Case("add audio 720p 5 s", "Add audio", "16:9", 1280, 720, 5.0, audio=True, suite=10, chaos=CHAOS_EVERY),
    Case("reframe video 16:9 canvas 5 s", "Reframe video to 16:9", "16:9", 2048, 1152, 5.0, suite=25),
    Case("image 16:9 JPEG", "Image", "16:9", 2048, 1152, 0.0, image=True, suite=68, chaos=CHAOS_BASIC + CHAOS_EVERY),
]


def render_old(old, case: Case, gen_id: str):
    old._cache.clear()
    if case.image:
        return old.image_asset(gen_id, case.aspect, "jpg")
    return old.video_asset(gen_id, "video", case.aspect, old_seconds(case.seconds))


def render_new(new, case: Case, gen_id: str, seq: int):
    with new._cache_lock:
        new._cache.clear()
        new._cache_size = 0
    look = new.Look(gen_id, seq, case.title, "a lantern over a quiet harbour at dusk")
    if case.image:
        return new.image_asset(look, case.width, case.height, "jpg")
    return new.video_asset(look, "video", case.width, case.height, case.seconds, audio=case.audio)


def measure(render) -> tuple[float, float, object]:
    cpu, wall = time.process_time(), time.perf_counter()
    asset = render()
    return time.perf_counter() - wall, time.process_time() - cpu, asset


def shape_of(data: bytes, image: bool) -> str:
    if image:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as picture:
            return f"{picture.width}x{picture.height} {picture.format}"
    import av

    with av.open(io.BytesIO(data)) as container:
        video = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video))
        seconds = container.duration / 1_000_000
        sound = " +audio" if container.streams.audio else ""
        return f"{video.width}x{video.height} {seconds:.2f} s {frames} frames{sound}"


def run_renders(rounds: int) -> list[dict]:
    from generations.simulator import media as new

    old = load_old_media()
    # Untimed: load PyAV, x264, numpy, Pillow and the font in both, as a running simulator has.
    for case in CASES:
        render_old(old, case, str(uuid.uuid4()))
        render_new(new, case, str(uuid.uuid4()), 1)

    print("evidence (the file each renderer makes; asked: what the request means):")
    for case in CASES:
        gen_id = str(uuid.uuid4())
        asked = f"{case.width}x{case.height}" + ("" if case.image else f" {case.seconds:g} s") + (
            " +audio" if case.audio else "")
        got_new = shape_of(render_new(new, case, gen_id, 7).head, case.image)
        got_old = shape_of(render_old(old, case, gen_id).head, case.image)
        print(f"  {case.name:32} asked {asked:22} new: {got_new:36} old: {got_old}")

    times = {(case.name, which): ([], []) for case in CASES for which in ("old", "new")}
    sizes = {}
    for round_no in range(rounds):
        for index, case in enumerate(CASES):
            gen_id = str(uuid.uuid4())  # a new generation each round: its own colour, id box and cache key
            order = ("old", "new") if (round_no + index) % 2 == 0 else ("new", "old")
            for which in order:
                if which == "old":
                    wall, cpu, asset = measure(lambda: render_old(old, case, gen_id))
                else:
                    wall, cpu, asset = measure(lambda: render_new(new, case, gen_id, round_no + 1))
                times[(case.name, which)][0].append(wall)
                times[(case.name, which)][1].append(cpu)
                sizes[(case.name, which)] = asset.size
        print(f"  round {round_no + 1}/{rounds} done", file=sys.stderr)

    results = []
    for case in CASES:
        row = {"case": case}
        for which in ("old", "new"):
            walls, cpus = times[(case.name, which)]
            row[which] = (statistics.median(walls) * 1000, statistics.median(cpus) * 1000, sizes[(case.name, which)])
        results.append(row)
    return results


def print_renders(results: list[dict], rounds: int) -> None:
    print(f"\nmedians of {rounds} interleaved rounds, cache emptied before each render:")
    print("| file | old ms | new ms | new/old | old CPU ms | new CPU ms | CPU new/old | old bytes | new bytes "
          "| suite weight | chaos share |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for row in results:
        case, (ow, oc, ob), (nw, nc, nb) = row["case"], row["old"], row["new"]
        print(f"| {case.name} | {ow:.1f} | {nw:.1f} | {nw / ow:.2f} | {oc:.1f} | {nc:.1f} | {nc / oc:.2f} | "
              f"{ob:,} | {nb:,} | {case.suite} | {case.chaos:.3f} |")
    for label, weight in (("suite", lambda c: c.suite), ("chaos", lambda c: c.chaos)):
        total = sum(weight(r["case"]) for r in results)
        old_wall = sum(weight(r["case"]) * r["old"][0] for r in results) / total
        new_wall = sum(weight(r["case"]) * r["new"][0] for r in results) / total
        old_cpu = sum(weight(r["case"]) * r["old"][1] for r in results) / total
        new_cpu = sum(weight(r["case"]) * r["new"][1] for r in results) / total
        print(f"weighted by {label}: old {old_wall:.1f} ms, new {new_wall:.1f} ms per file, wall new/old "
              f"{new_wall / old_wall:.2f}; CPU old {old_cpu:.1f} ms, new {new_cpu:.1f} ms, new/old "
              f"{new_cpu / old_cpu:.2f}")
    print(SUITE_WEIGHTS_HOW)


# -- chaos runs -----------------------------------------------------------------------------------------------------

def serve(which: str, argv: list[str]) -> int:
    """Run the simulator (generations.simulator's own main); with "old", behind the current engine sits the old
    renderer, called as the old engine called it."""
    import generations.simulator as package
    from generations.simulator import media as new

    if which == "old":
        old = load_old_media()
        adapter = types.ModuleType(new.__name__)
        adapter.__dict__.update(new.__dict__)  # sizes, Look, probe_video, render_ahead... stay the current ones

        def video_asset(look, label, width, height, seconds, min_bytes=0, audio=False):
            aspect = new.nearest_aspect_ratio(width, height)
            return old.video_asset(look.generation_id, label, aspect, old_seconds(seconds), min_bytes)

        def image_asset(look, width, height, fmt="jpg"):
            return old.image_asset(look.generation_id, new.nearest_aspect_ratio(width, height), fmt)

        def clip(width, height, seconds, look, audio=False):
            return old.base_clip(new.nearest_aspect_ratio(width, height), old_seconds(seconds),
                                 old.look_of(look.generation_id))

        adapter.video_asset, adapter.image_asset, adapter.clip, adapter.warm_up = (
            video_asset, image_asset, clip, old.warm_up)
        sys.modules[new.__name__] = adapter
        package.media = adapter
    from generations.simulator.cli import main

    return main(argv, prog="python -m generations.simulator")


def chaos_child(which: str, argv: list[str]) -> int:
    """bench/chaos.py's main, its simulator started through this script (`--serve which`)."""
    from bench import chaos, harness

    def start_simulator(stack, *flags):
        stack.others.append(stack.spawn([harness.PY, str(Path(__file__).resolve()), "--serve", which, "--",
                                         "--host", "127.0.0.1", "--port", str(stack.sim_port), *flags], "simulator"))
        harness.wait_http(f"{stack.sim_root}/dream-machine/v1/ping",
                          headers={"Authorization": f"Bearer {harness.KEY}"})

    harness.Stack.start_simulator = start_simulator
    sys.argv = ["bench/chaos.py", *argv]
    return chaos.main()


def run_chaos(generations: int, order: list[str]) -> None:
    print(f"\nchaos: bench/chaos.py --generations {generations}, once with each renderer ({' then '.join(order)})")
    for which in order:
        started = time.perf_counter()
        done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--chaos-child", which, "--",
                               "--generations", str(generations)], cwd=ROOT, capture_output=True, text=True)
        wall = time.perf_counter() - started
        lines = [line for line in done.stdout.splitlines() if line.startswith(("chaos:", "faults:"))]
        print(f"  {which}: exit {done.returncode}, wall {wall:.0f} s")
        for line in lines:
            print(f"    {line}")
        if done.returncode:
            print("    " + "\n    ".join((done.stdout + done.stderr).strip().splitlines()[-15:]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--chaos", type=int, default=0, metavar="N",
                        help="also run bench/chaos.py --generations N with each renderer")
    parser.add_argument("--chaos-first", choices=("old", "new"), default="old")
    parser.add_argument("--skip-renders", action="store_true")
    parser.add_argument("--serve", choices=("old", "new"), help=argparse.SUPPRESS)
    parser.add_argument("--chaos-child", choices=("old", "new"), help=argparse.SUPPRESS)
    parser.add_argument("rest", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args.serve, args.rest)
    if args.chaos_child:
        return chaos_child(args.chaos_child, args.rest)
    if not args.skip_renders:
        print_renders(run_renders(args.rounds), args.rounds)
    if args.chaos:
        first = args.chaos_first
        run_chaos(args.chaos, [first, "new" if first == "old" else "old"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
