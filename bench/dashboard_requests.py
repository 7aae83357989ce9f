"""Browser requests per minute for one open dashboard with 24 cards in flight, in a hidden tab, and when idle (issue 4).

    .venv/bin/python bench/dashboard_requests.py [--seconds 20] [--hidden-seconds 10] [--in-flight 24]

Serves the app with gunicorn on a free 127.0.0.1 port (temporary folder, SQLite, no job cluster, so the rows
stay as the script leaves them), makes --in-flight generations in the ORM, logs in with Debian's Chromium and
scrolls until every in-flight card is on the page. Then it counts the requests the page makes:

1. with the cards in flight, for --seconds (the rate comes from the spacing of the polls, so a short window
   is enough; goal <= 30 a minute, where polling each card every 3 s would make in_flight x 20);
2. with the tab hidden (document.visibilityState overridden to "hidden" and visibilitychange dispatched),
   for --hidden-seconds (goal 0), then checks that polling resumes once the tab is visible again;
3. after the script marks every generation completed: the next poll swaps the cards, then it counts for
   --seconds with nothing in flight (goal 0).

Ends with one line: dashboard_requests: in_flight=24 live_cards_on_page=24 requests_per_min=N
hidden_requests_per_min=N idle_requests_per_min=N per_card_polling_would_be=480 other_hosts=0 goal<=30.
"""

import argparse
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.browser import launch, log_in, start_site  # noqa: E402
from bench.harness import Stack  # noqa: E402

IN_FLIGHT = """
from datetime import timedelta
from django.contrib.auth import get_user_model
from django.utils import timezone
from generations.models import Generation, Kind, State
user = get_user_model().objects.get(username="bench")
now = timezone.now()
states = [State.DREAMING, State.QUEUED, State.DREAMING, State.PENDING, State.SUBMITTING, State.DREAMING]
rows = []
for i in range({finished}):  # an older, finished part of the library
    rows.append(Generation(owner=user, prompt=f"finished clip {{i}}", model="ray-2", state=State.COMPLETED,
                           luma_id=f"done-{{i}}", created_at=now - timedelta(hours=1, minutes=i),
                           submitted_at=now - timedelta(hours=1, minutes=i), completed_at=now - timedelta(minutes=50)))
for i in range({in_flight}):
    state = states[i % len(states)]
    sent = now - timedelta(seconds=30 + i)
    rows.append(Generation(owner=user, prompt=f"in flight {{i}}", kind=[Kind.TEXT_TO_VIDEO, Kind.EXTEND][i % 2],
                           model="ray-2", state=state, created_at=sent - timedelta(seconds=1),
                           luma_id=None if state in (State.PENDING, State.SUBMITTING) else f"fly-{{i}}",
                           submitted_at=None if state == State.PENDING else sent,
                           dreaming_at=sent + timedelta(seconds=5) if state == State.DREAMING else None))
Generation.objects.bulk_create(rows)
"""
COMPLETE_ALL = """
from django.utils import timezone
from generations.models import Generation, State
print(Generation.objects.live().update(state=State.COMPLETED, completed_at=timezone.now()))
"""
HIDE = """() => {
  Object.defineProperty(document, "visibilityState", {configurable: true, get: () => "hidden"});
  Object.defineProperty(document, "hidden", {configurable: true, get: () => true});
  document.dispatchEvent(new Event("visibilitychange"));
}"""
SHOW = """() => {
  delete document.visibilityState;
  delete document.hidden;
  document.dispatchEvent(new Event("visibilitychange"));
  return document.visibilityState;
}"""
LIVE_CARDS = "document.querySelectorAll('input.live').length"


class Recorder:
    """Every request the page makes, with when it was made."""

    def __init__(self, page):
        self.requests: list[tuple[float, str, str, str]] = []
        page.on("request", lambda request: self.requests.append(
            (time.monotonic(), request.method, request.url, request.resource_type)))

    def between(self, start: float, end: float) -> list[tuple[float, str, str, str]]:
        return [r for r in self.requests if start <= r[0] < end]

    def count(self, page, seconds: float) -> tuple[list, float]:
        start = time.monotonic()
        page.wait_for_timeout(seconds * 1000)
        end = time.monotonic()
        return self.between(start, end), end - start


def per_minute(requests: list, window: float) -> float:
    """From the spacing of the requests when there are several (a short window cannot round it), else the count."""
    if len(requests) >= 3:
        times = [r[0] for r in requests]
        return (len(times) - 1) / (times[-1] - times[0]) * 60
    return len(requests) / window * 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20, help="each counting window (in flight, idle)")
    parser.add_argument("--hidden-seconds", type=float, default=10)
    parser.add_argument("--in-flight", type=int, default=24)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with Stack(keep=args.keep) as stack:
        start_site(stack, IN_FLIGHT.format(in_flight=args.in_flight, finished=6))
        root = stack.web_root
        with sync_playwright() as playwright:
            browser = launch(playwright)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            log_in(page, root)
            recorder = Recorder(page)
            page.goto(f"{root}/")
            # The library shows 12 cards and loads older ones as they scroll into view: bring every live card in.
            for _ in range(20):
                if page.evaluate(LIVE_CARDS) >= args.in_flight or not page.locator("a.more").count():
                    break
                page.locator("a.more").last.scroll_into_view_if_needed()
                page.wait_for_timeout(500)
            page.evaluate("window.scrollTo(0, 0)")
            live = page.evaluate(LIVE_CARDS)
            print(f"dashboard: {live} live cards on the page ({args.in_flight} in flight)")
            page.wait_for_timeout(2500)  # past the loads: from here on only what the page does by itself

            busy, busy_window = recorder.count(page, args.seconds)
            kinds = sorted({urlsplit(r[2]).path for r in busy})
            polls = [r for r in busy if urlsplit(r[2]).path == "/poll/"]
            busy_rate = per_minute(busy, busy_window)
            print(f"in flight: {len(busy)} requests in {busy_window:.1f} s ({len(polls)} polls) to {kinds}: "
                  f"{busy_rate:.2f} a minute; per-card polling every 3 s would make {live * 20}")

            page.evaluate(HIDE)
            hidden, hidden_window = recorder.count(page, args.hidden_seconds)
            hidden_rate = len(hidden) / hidden_window * 60
            print(f"hidden tab: {len(hidden)} requests in {hidden_window:.1f} s")
            shown_at = time.monotonic()
            state = page.evaluate(SHOW)
            page.wait_for_timeout(3000)
            resumed = recorder.between(shown_at, time.monotonic())
            print(f"visible again ({state}): {len(resumed)} requests within 3 s (polling resumed: "
                  f"{'yes' if resumed else 'NO'})")

            done = stack.shell(COMPLETE_ALL).strip().splitlines()[-1]
            deadline = time.monotonic() + 15
            while page.evaluate(LIVE_CARDS) and time.monotonic() < deadline:
                page.wait_for_timeout(250)
            left = page.evaluate(LIVE_CARDS)
            print(f"marked {done} generations completed; live cards left after the next poll: {left}")
            page.wait_for_timeout(2500)
            idle, idle_window = recorder.count(page, args.seconds)
            idle_rate = len(idle) / idle_window * 60
            idle_urls = sorted({r[2].removeprefix(root)[:100] for r in idle})
            print(f"nothing in flight: {len(idle)} requests in {idle_window:.1f} s" + (f" to {idle_urls}" if idle else ""))

            hosts = {urlsplit(r[2]).hostname for r in recorder.requests if not r[2].startswith("data:")}
            foreign = sorted(hosts - {"127.0.0.1"})
            if foreign:
                print(f"requests to other hosts: {foreign}")
            browser.close()
    print(f"dashboard_requests: in_flight={args.in_flight} live_cards_on_page={live} "
          f"requests_per_min={busy_rate:.2f} hidden_requests_per_min={hidden_rate:.1f} "
          f"idle_requests_per_min={idle_rate:.1f} per_card_polling_would_be={live * 20} "
          f"other_hosts={len(foreign)} goal<=30")


if __name__ == "__main__":
    main()
