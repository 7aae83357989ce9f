"""Shared plumbing for the browser benches: a site on gunicorn with generations made in the ORM, and Chromium.

Builds on harness.Stack (temporary folder, SQLite, gunicorn); no simulator and no job cluster, so rows stay in
whatever state the bench gives them. Nothing leaves 127.0.0.1.
"""

from urllib.parse import urlsplit

from bench.harness import Stack

USERNAME, PASSWORD = "bench", "bench-pass-4242"
# Debian's Chromium, kept off the closed network (as tests/conftest.py does).
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]

MAKE_USER = f"""
from django.contrib.auth import get_user_model
from generations.models import LumaAccount
get_user_model().objects.create_user({USERNAME!r}, password={PASSWORD!r})
LumaAccount.get()
"""


def start_site(stack: Stack, setup: str = "") -> None:
    """Migrate, collect static files (hashed and gzipped, as in production), add the user, run `setup`, serve."""
    stack.migrate()
    stack.manage("collectstatic", "--noinput")
    stack.shell(MAKE_USER + setup)
    stack.start_web(workers=2, threads=4)


def launch(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def log_in(page, root: str) -> None:
    page.goto(f"{root}/accounts/login/")
    page.fill("input[name=username]", USERNAME)
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    if urlsplit(page.url).path != "/":
        raise SystemExit(f"login failed: ended on {page.url}")
