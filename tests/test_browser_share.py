"""Browser test for share links: made from a card's Actions, opened in a logged-out browser context it plays; once
revoked it is gone. Debian's Chromium drives the real stack, as in test_browser.py."""

import pytest
from playwright.sync_api import expect

from generations.models import ShareLink
from tests.plugins.browser import VIEWPORT
from tests.test_browser import ALICE, card_action, log_in, request_generation, settled

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

PLAYING = "v => !v.paused && v.currentTime > 0.3"


def test_a_share_link_plays_in_a_logged_out_browser_and_is_gone_once_revoked(page, browser, luma_stack, alice):
    (kite,) = settled(request_generation(alice, "A red kite over the dunes at noon"))
    log_in(page, luma_stack.url, ALICE)
    card_action(page.locator(f"#card-{kite.pk}"), "Share…")
    expect(page.get_by_role("heading", name=f"Share #{kite.pk}")).to_be_visible()
    expect(page.get_by_label("7 days")).to_be_checked()
    page.get_by_label("1 day").check()
    page.get_by_role("button", name="Make the link").click()
    expect(page.get_by_role("heading", name="Your share links")).to_be_visible()
    link = ShareLink.objects.get(generation=kite)
    address = page.get_by_label(f"Share link {link.pk}").input_value()
    assert address == f"{luma_stack.url}/s/{link.token}/"

    # A stranger: a fresh context, no cookies, no session.
    stranger = browser.new_context(viewport=VIEWPORT)
    problems = []
    visitor = stranger.new_page()
    visitor.on("console", lambda m: "Content Security Policy" in m.text and problems.append(m.text))
    visitor.on("pageerror", lambda error: problems.append(str(error)))
    answer = visitor.goto(address)
    assert answer.status == 200
    assert answer.headers["cache-control"] == "private, no-store"
    expect(visitor.get_by_role("heading", name="A red kite over the dunes at noon")).to_be_visible()
    expect(visitor.get_by_text("Log in")).to_have_count(0)
    assert visitor.locator("a").count() == 0  # nothing leads into the site
    video = visitor.locator("video")
    video.evaluate("v => { v.muted = true; return v.play(); }")
    visitor.wait_for_function(PLAYING, arg=video.element_handle(), timeout=15_000)
    assert stranger.cookies() == []
    assert not problems

    # Revoked: gone at once, page and media.
    page.get_by_role("row").filter(has_text=f"#{kite.pk}").get_by_role("button", name="Revoke").click()
    expect(page.get_by_text("Link revoked: it stopped working now.")).to_be_visible()
    again = visitor.goto(address)
    assert again.status == 410
    expect(visitor.get_by_role("heading", name="This link was revoked")).to_be_visible()
    assert visitor.request.get(f"{address}media/{kite.pk}/").status == 404
    assert ShareLink.objects.get(pk=link.pk).views == 1  # the revoked visit is not a view
    stranger.close()
