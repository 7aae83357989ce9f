"""First dashboard load: bytes over the wire as Chromium receives them, by kind, and every host it talks to (issue 4).

    .venv/bin/python bench/first_load.py [--finished 30] [--in-flight 3]

Serves the app with gunicorn on a free 127.0.0.1 port (temporary folder, SQLite, static files collected and
gzipped as in production, whitenoise serving them), with a library of --finished archived videos (posters are
640 px JPEGs, as the archiver makes) and --in-flight generations. Chromium logs in, then loads the dashboard
with its cache disabled (a first visit) and once more with it (a later visit). Sizes come from the DevTools
protocol: encodedDataLength is what crossed the wire (headers and body, compressed or not), shown beside the
decoded size. gunicorn compresses nothing itself: the dashboard views gzip their pages (gzip_page) and
whitenoise serves the gzipped static files collectstatic made, so the HTML's raw size is printed too.

The goal (<= 60 KB) is for the page itself: HTML, CSS, scripts and requests they make. Posters are content,
lazily loaded, and listed apart. Fails (exit 1) if any request goes to a host other than 127.0.0.1.
Ends with one line: first_load: page_kb=N (html=N css=N js=N other=N) posters_kb=N ... goal<=60.
"""

import argparse
import gzip
import sys
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.browser import launch, log_in, start_site  # noqa: E402
from bench.harness import Stack  # noqa: E402

LIBRARY = """
import io
from datetime import timedelta
from pathlib import Path
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone
from PIL import Image, ImageDraw, ImageFilter
from generations.models import ArchiveState, Generation, Kind, State

user = get_user_model().objects.get(username="bench")
now = timezone.now()
media = Path(settings.MEDIA_ROOT)
(media / "posters").mkdir(parents=True, exist_ok=True)
(media / "archive").mkdir(parents=True, exist_ok=True)
rows = []
for i in range({finished}):
    # A poster like the archiver's: a 640x360 JPEG (quality 82) of a soft, detailed scene.
    image = Image.new("RGB", (640, 360), (20 + i * 7 % 200, 60, 120))
    draw = ImageDraw.Draw(image)
    for k in range(60):
        x, y = (k * 97 + i * 31) % 640, (k * 53 + i * 17) % 360
        colour = ((k * 40) % 255, (k * 70 + i) % 255, (k * 11) % 255)
        draw.ellipse((x, y, x + 40 + k % 50, y + 30 + k % 40), fill=colour)
    image = image.filter(ImageFilter.GaussianBlur(2))
    image.save(media / f"posters/p{{i}}.jpg", "JPEG", quality=82)
    (media / f"archive/v{{i}}.mp4").write_bytes(b"\\0" * 1024)
    made = now - timedelta(hours=1, minutes=5 * i)
    rows.append(Generation(
        owner=user, kind=[Kind.TEXT_TO_VIDEO, Kind.IMAGE_TO_VIDEO, Kind.EXTEND][i % 3], model="ray-2",
        prompt=f"A lantern-lit night market in the rain, camera drifting past stalls, take {{i}}",
        resolution="720p", duration="5s", aspect_ratio="16:9", state=State.COMPLETED, luma_id=f"done-{{i}}",
        created_at=made, submitted_at=made, completed_at=made + timedelta(seconds=95),
        archive_state=ArchiveState.DONE, archive_file=f"archive/v{{i}}.mp4", poster=f"posters/p{{i}}.jpg",
        archive_size=1024, archive_received=1024))
for i in range({in_flight}):
    sent = now - timedelta(seconds=40 + i)
    rows.append(Generation(owner=user, prompt=f"A fox in fresh snow at dawn, take {{i}}", model="ray-2",
                           state=State.DREAMING, luma_id=f"fly-{{i}}", created_at=sent, submitted_at=sent,
                           dreaming_at=sent))
Generation.objects.bulk_create(rows)
"""

PAGE_TYPES = {"Document": "html", "Stylesheet": "css", "Script": "js"}


class Wire:
    """What Chromium's network stack saw for one page load, from the DevTools protocol."""

    def __init__(self, cdp):
        self.sent: dict[str, dict] = {}
        self.wire: dict[str, int] = {}
        self.decoded: dict[str, int] = defaultdict(int)
        cdp.on("Network.requestWillBeSent", self.on_request)
        cdp.on("Network.responseReceived", self.on_response)
        cdp.on("Network.dataReceived", lambda e: self.decoded.__setitem__(
            e["requestId"], self.decoded[e["requestId"]] + e["dataLength"]))
        cdp.on("Network.loadingFinished", lambda e: self.wire.__setitem__(e["requestId"], int(e["encodedDataLength"])))

    def on_request(self, event):
        self.sent[event["requestId"]] = {"url": event["request"]["url"], "type": event.get("type", "Other"),
                                         "status": None, "encoding": ""}

    def on_response(self, event):
        row = self.sent.setdefault(event["requestId"], {"url": event["response"]["url"], "type": event["type"]})
        headers = {k.lower(): v for k, v in event["response"]["headers"].items()}
        row.update(type=event["type"], status=event["response"]["status"], encoding=headers.get("content-encoding", ""),
                   cached=event["response"].get("fromDiskCache") or event["response"].get("fromMemoryCache"))

    def rows(self) -> list[dict]:
        return [{**row, "id": rid, "wire": self.wire.get(rid, 0), "decoded": self.decoded.get(rid, 0)}
                for rid, row in self.sent.items() if not row["url"].startswith("data:")]


def load(page, cdp, url: str, cache: bool) -> list[dict]:
    page.goto("about:blank")  # nothing of the previous page still loading into this count
    page.wait_for_timeout(500)
    cdp.send("Network.setCacheDisabled", {"cacheDisabled": not cache})
    wire = Wire(cdp)
    page.goto(url, wait_until="networkidle")
    page.wait_for_timeout(1000)  # lazy posters near the viewport
    rows = wire.rows()
    for row in rows:
        if row["type"] == "Document":
            row["body"] = cdp.send("Network.getResponseBody", {"requestId": row["id"]})["body"]
    return rows


def report(title: str, rows: list[dict]) -> dict:
    sums: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    print(f"{title}: {len(rows)} requests")
    for row in sorted(rows, key=lambda r: -r["wire"]):
        kind = PAGE_TYPES.get(row["type"], "poster" if row["type"] == "Image" else "other")
        sums[kind][0] += row["wire"]
        sums[kind][1] += row["decoded"]
        sums[kind][2] += 1
        if kind != "poster":
            path = urlsplit(row["url"]).path
            print(f"  {row['type']:<10} {row['status']} {row['wire']:>7} B over the wire {row['decoded']:>7} B decoded "
                  f"{row['encoding'] or 'identity':<8} {path}")
    if sums["poster"][2]:
        print(f"  {sums['poster'][2]} posters: {sums['poster'][0]} B over the wire")
    page = sum(v[0] for k, v in sums.items() if k != "poster")
    print(f"  page (html+css+js+other): {page / 1024:.1f} KB over the wire, "
          f"{sum(v[1] for k, v in sums.items() if k != 'poster') / 1024:.1f} KB decoded")
    return {"page": page, **{k: v[0] for k, v in sums.items()}, **{f"{k}_decoded": v[1] for k, v in sums.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--finished", type=int, default=30)
    parser.add_argument("--in-flight", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with Stack(keep=args.keep) as stack:
        start_site(stack, LIBRARY.format(finished=args.finished, in_flight=args.in_flight))
        root = stack.web_root
        with sync_playwright() as playwright:
            browser = launch(playwright)
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            cdp = page.context.new_cdp_session(page)
            cdp.send("Network.enable")
            everything = Wire(cdp)  # every request of the run, for the host check
            log_in(page, root)
            first = load(page, cdp, f"{root}/", cache=False)
            cold = report("first visit (cache disabled)", first)
            document = next(row for row in first if row["type"] == "Document")
            html = document["body"]
            html_gzip = len(gzip.compress(html.encode(), 6))
            print(f"  the HTML is {len(html.encode())} B raw, sent {document['encoding'] or 'uncompressed'} "
                  f"({document['wire']} B with headers); gzip -6 of it makes {html_gzip} B")
            warm = report("later visit (cache on)", load(page, cdp, f"{root}/", cache=True))
            browser.close()
    hosts = sorted({urlsplit(row["url"]).hostname or "" for row in everything.rows()})
    foreign = [host for host in hosts if host != "127.0.0.1"]
    print(f"hosts contacted: {hosts}")
    kb = lambda n: f"{n / 1024:.1f}"  # noqa: E731
    print(f"first_load: page_kb={kb(cold['page'])} (html={kb(cold.get('html', 0))} css={kb(cold.get('css', 0))} "
          f"js={kb(cold.get('js', 0))} other={kb(cold.get('other', 0))}) html_raw_kb={kb(len(html.encode()))} "
          f"html_sent={document['encoding'] or 'identity'} posters_kb={kb(cold.get('poster', 0))} "
          f"repeat_visit_page_kb={kb(warm['page'])} other_hosts={len(foreign)} goal<=60")
    if foreign:
        raise SystemExit(f"requests left 127.0.0.1: {foreign}")


if __name__ == "__main__":
    main()
