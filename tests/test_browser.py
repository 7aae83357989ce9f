"""Browser tests: Debian's Chromium drives the real stack (live server, a django-q2 cluster, the Luma simulator)
and each test checks what a team member sees. With LUMAWEB_SCREENSHOTS=<dir> they also save the main pages."""

import io
import os
import re
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from PIL import Image
from playwright.sync_api import Locator, Page, expect

from generations import tasks
from generations.models import ArchiveState, Generation, KeyframeImage, Kind, State
from tests.plugins.browser import VIEWPORT
from tests.plugins.stack import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

SCREENSHOTS = os.environ.get("LUMAWEB_SCREENSHOTS", "")
ALICE, BOB = ("alice", "wonderland-42"), ("bob", "builder-4242")
# The page polls its live cards every 2 s and the jobs run in another process, so a card can take a few seconds.
CARD_CHANGE = 20_000
# Hide or show the tab as the browser would, for the page's scripts.
SET_HIDDEN = """(hidden) => {
    Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => hidden ? 'hidden' : 'visible'});
    document.dispatchEvent(new Event('visibilitychange'));
}"""


def shot(target: Page | Locator, name: str, top: Locator | None = None) -> None:
    """Save a screenshot when asked to (LUMAWEB_SCREENSHOTS); the viewport only, so long pages stay small. With top,
    the page is scrolled first to put that element at the top of the viewport."""
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        if top is not None:
            top.evaluate("element => element.scrollIntoView({block: 'start'})")
        # Blurring hides the caret. Playwright's caret="hide" would instead leave an empty style="" on every input
        # of the page, which htmx copies onto the swapped-in inputs on its next swap (settling attributes): the
        # Content-Security-Policy refuses that inline style and no_broken_pages fails.
        (target if isinstance(target, Page) else target.page).evaluate("document.activeElement?.blur()")
        target.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), animations="disabled", caret="initial")


def ready(page: Page) -> None:
    """Wait until htmx (a deferred script) has wired up the page, as it has long before a person clicks."""
    page.wait_for_load_state()
    page.wait_for_function("() => window.htmx !== undefined")


def log_in(page: Page, url: str, user: tuple[str, str], lands_on: str = "Make something") -> None:
    """Log in and wait for the dashboard: its panel is headed "Make something", or "Watching" for a viewer, who may
    not make anything."""
    page.goto(f"{url}/accounts/login/")
    page.get_by_label("Username").fill(user[0])
    page.get_by_label("Password").fill(user[1])
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name=lands_on)).to_be_visible()
    ready(page)


def generate(page: Page) -> tuple[int, Locator]:
    """Press Generate; return the new generation's number and its card, once the card is in the library."""
    requested = page.locator("#create-panel .success a")
    # The response arrives before htmx swaps it in: until then the panel still shows the last success, if any.
    before = requested.inner_text() if requested.count() else None
    with page.expect_response(lambda response: response.url.endswith("/create/")):
        page.get_by_role("button", name="Generate").click()
    if before is not None:
        expect(requested).not_to_have_text(before)
    expect(requested).to_have_text(re.compile(r"^#\d+$"))
    pk = int(requested.inner_text().lstrip("#"))
    card = page.locator(f"#card-{pk}")
    expect(card).to_be_visible()
    return pk, card


def status_of(card: Locator) -> Locator:
    return card.locator(".status .label")


def choose(page: Page, frame: str, how: str) -> Locator:
    """Pick how a keyframe is given ("Start frame"/"End frame"); returns that frame's fieldset."""
    group = page.get_by_role("group", name=frame)
    group.get_by_label(how).check()
    return group


def card_action(card: Locator, name: str) -> None:
    card.locator("summary").click()
    card.get_by_role("link", name=name, exact=True).click()


def png(size=(320, 180), colour=(40, 90, 200)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


def upload(name: str, data: bytes, mime: str = "image/png") -> dict:
    return {"name": name, "mimeType": mime, "buffer": data}


def request_generation(owner, prompt: str, kind=Kind.TEXT_TO_VIDEO, **fields) -> Generation:
    """Precondition: a generation asked for the way the form does, not yet finished."""
    if kind == Kind.IMAGE:
        fields.setdefault("model", "photon-1")
    else:
        fields = {"model": "ray-2", "resolution": "720p", "duration": "5s", **fields}
    row, _ = Generation.request(owner, kind=kind, prompt=prompt, aspect_ratio="16:9", **fields)
    return row


def settled(*rows: Generation, timeout: float = 30) -> list[Generation]:
    """Wait until each row is finished: archived when it completed, or failed."""

    def check():
        fresh = [Generation.objects.get(pk=row.pk) for row in rows]
        if all(r.state in (State.FAILED, State.REJECTED) or r.archive_state == ArchiveState.DONE for r in fresh):
            return fresh
        return None

    return wait_until(check, timeout=timeout, interval=0.1, message="the generations to finish")


def luma_request(sim, pk: int) -> dict:
    """What Luma received for our generation pk (the page shows only part of it)."""
    return sim.get(Generation.objects.get(pk=pk).luma_id)["request"]


# --- logging in ----------------------------------------------------------------------------------


def test_logging_in_through_the_form_opens_the_dashboard(page, live_server, transactional_db, alice):
    page.goto(live_server.url + "/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/$"))
    expect(page.get_by_role("heading", name="Log in to lumaweb")).to_be_visible()
    shot(page, "login")

    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("not her password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("Please enter a correct username and password")

    page.get_by_label("Password").fill(ALICE[1])
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(live_server.url + "/")
    expect(page.get_by_role("heading", name="Make something")).to_be_visible()
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="alice")).to_be_visible()
    expect(page.locator("#cards .empty")).to_have_text("Nothing here yet. Make the team's first video on the left.")


# --- the life of a card ----------------------------------------------------------------------------


def test_a_video_card_goes_from_queued_through_dreaming_to_done_and_plays(page, luma_stack, alice):
    sim = luma_stack.sim
    sim.config(queued_seconds=600, dreaming_seconds=600)  # the test moves Luma's clock on by itself
    log_in(page, luma_stack.url, ALICE)

    page.get_by_label("Prompt", exact=True).fill("A paper lantern drifting over a dark lake")
    pk, card = generate(page)
    expect(page.get_by_label("Prompt", exact=True)).to_have_value("")  # ready for the next take
    expect(card.locator(".kind")).to_have_text("Text to video")
    expect(card.locator(".prompt")).to_have_text("A paper lantern drifting over a dark lake")
    expect(status_of(card)).to_have_text("Queued", timeout=CARD_CHANGE)

    (remote,) = sim.generations()
    sim.finish(remote["id"], "dreaming")
    expect(status_of(card)).to_have_text("Dreaming", timeout=CARD_CHANGE)
    expect(card.locator(".eta")).to_have_text(re.compile(r"^(about .+ left|taking longer than usual)$"))

    sim.finish(remote["id"], "completed")
    expect(status_of(card)).to_have_text("Done", timeout=CARD_CHANGE)
    expect(card.locator(".took")).to_have_text(re.compile(r"^in \d+ s$"))
    poster = card.locator(".media img")
    expect(poster).to_have_js_property("complete", True)
    assert poster.evaluate("img => img.naturalWidth") == 640  # our poster: the first frame, at most 640 wide

    card.get_by_role("link", name=f"Play video #{pk}").click()
    video = card.locator("video")
    expect(video).to_be_visible()
    # Real H.264 from the simulator, archived by our job, decoded by Chromium: time moves and frames have a size.
    page.wait_for_function("v => !v.paused && v.currentTime > 0.3", arg=video.element_handle(), timeout=10_000)
    assert video.evaluate("v => [v.error, v.videoWidth, v.videoHeight]") == [None, 1280, 720]  # 720p 16:9 as asked


# --- every seed mode through the form --------------------------------------------------------------


def test_image_to_video_from_a_start_frame_by_address_or_upload_an_end_frame_and_both(page, luma_stack, alice):
    sim = luma_stack.sim
    # An image already uploaded to us: the simulator, like Luma, fetches it from its public address.
    kept = KeyframeImage.objects.create(file=ContentFile(png(), name="start.png"), content_type="image/png",
                                        width=320, height=180, uploaded_by=alice)
    address = kept.public_url()
    log_in(page, luma_stack.url, ALICE)
    prompt = page.get_by_label("Prompt", exact=True)

    start = choose(page, "Start frame", "Image from a web address")
    start.get_by_label("Start image address").fill(address)
    prompt.fill("The lantern lifts off the water")
    by_address, by_address_card = generate(page)

    start = choose(page, "Start frame", "Upload an image")
    start.get_by_label("Start image file").set_input_files(upload("start.png", png(colour=(200, 80, 40))))
    by_upload, by_upload_card = generate(page)  # no prompt: an image is enough

    end = choose(page, "End frame", "Upload an image")
    end.get_by_label("End image file").set_input_files(upload("end.png", png(colour=(20, 160, 90))))
    prompt.fill("A lantern settles onto the lake")
    end_only, end_only_card = generate(page)

    choose(page, "Start frame", "Image from a web address").get_by_label("Start image address").fill(address)
    end = choose(page, "End frame", "Upload an image")
    end.get_by_label("End image file").set_input_files(upload("end.png", png(colour=(90, 20, 160))))
    prompt.fill("From blue to violet")
    both, both_card = generate(page)

    cards = [by_address_card, by_upload_card, end_only_card, both_card]
    for card in cards:
        expect(card.locator(".kind")).to_have_text("Image to video")
    # Done means the simulator fetched every keyframe (otherwise: "Failed to read user input frames").
    for card in cards:
        expect(status_of(card)).to_have_text("Done", timeout=CARD_CHANGE)

    sent = {pk: luma_request(sim, pk)["keyframes"] for pk in (by_address, by_upload, end_only, both)}
    assert sent[by_address] == {"frame0": {"type": "image", "url": address}, "frame1": None}
    assert sent[by_upload]["frame1"] is None and sent[end_only]["frame0"] is None
    uploaded = [sent[by_upload]["frame0"], sent[end_only]["frame1"], sent[both]["frame1"]]
    assert all(frame["url"].startswith(f"{luma_stack.url}/k/") for frame in uploaded)
    assert len({frame["url"] for frame in uploaded}) == 3
    assert sent[both]["frame0"]["url"] == address


def test_loop_camera_motion_and_image_generation(page, luma_stack, alice):
    sim = luma_stack.sim
    tasks.refresh_catalog()  # the job that fetches Luma's camera motions for the form
    log_in(page, luma_stack.url, ALICE)
    prompt = page.get_by_label("Prompt", exact=True)

    prompt.fill("A cat chasing its own tail")
    page.get_by_label("Loop (the clip ends where it starts)").check()
    looped, looped_card = generate(page)
    expect(page.get_by_label("Loop (the clip ends where it starts)")).not_to_be_checked()

    prompt.fill("A lighthouse at dusk")
    page.get_by_label("Camera motion").select_option("camera orbit left")
    moving, moving_card = generate(page)
    expect(moving_card.locator(".prompt")).to_have_text("A lighthouse at dusk, camera orbit left")

    page.get_by_role("group", name="Make").get_by_text("Image", exact=True).click()
    expect(page.get_by_label("Image model")).to_be_visible()
    expect(page.get_by_label("Resolution")).to_be_hidden()
    expect(page.get_by_role("group", name="Start frame")).to_be_hidden()
    prompt.fill("A watercolour map of an island")
    image, image_card = generate(page)
    expect(image_card.locator(".kind")).to_have_text("Image")

    for card in (looped_card, moving_card, image_card):
        expect(status_of(card)).to_have_text("Done", timeout=CARD_CHANGE)
    expect(looped_card.locator(".kind")).to_have_text("Text to video")
    picture = image_card.get_by_role("img", name=f"Image #{image}")
    expect(picture).to_have_js_property("complete", True)
    assert picture.evaluate("img => img.naturalWidth") == 2048  # the archived image itself: Photon 16:9

    assert luma_request(sim, looped)["loop"] is True
    assert luma_request(sim, moving)["prompt"] == "A lighthouse at dusk, camera orbit left"
    assert luma_request(sim, image)["model"] == "photon-1"


def test_extend_reverse_extend_and_interpolate_start_from_the_cards(page, luma_stack, alice, bob):
    sim = luma_stack.sim
    first, second = settled(request_generation(alice, "A red fox trotting through fresh snow"),
                            request_generation(bob, "A fox curled up asleep in the snow"))
    log_in(page, luma_stack.url, ALICE)
    first_card, second_card = page.locator(f"#card-{first.pk}"), page.locator(f"#card-{second.pk}")
    prompt = page.get_by_label("Prompt", exact=True)

    card_action(first_card, "Extend")
    expect(page.locator("#create-panel .note")).to_have_text(f"Extend from #{first.pk}.")
    expect(prompt).to_be_focused()
    start = page.get_by_role("group", name="Start frame")
    expect(start.get_by_label("Continue a finished video (extend)")).to_be_checked()
    expect(start.get_by_label("Video to continue")).to_have_value(str(first.pk))
    expect(prompt).to_have_value(first.prompt)
    prompt.fill("The fox trots on into a dark pine forest")
    extended, extended_card = generate(page)

    card_action(second_card, "Reverse extend")
    expect(page.locator("#create-panel .note")).to_have_text(f"Reverse extend from #{second.pk}.")
    end = page.get_by_role("group", name="End frame")
    expect(end.get_by_label("Lead into a finished video (reverse extend)")).to_be_checked()
    expect(end.get_by_label("Video to lead into")).to_have_value(str(second.pk))
    prompt.fill("A fox wanders in and lies down")
    led_in, led_in_card = generate(page)

    card_action(first_card, "Interpolate with another")
    expect(page.locator("#create-panel .note")).to_have_text(f"Interpolate from #{first.pk}.")
    expect(page.get_by_label("Video to continue")).to_have_value(str(first.pk))
    end = page.get_by_role("group", name="End frame")
    end.get_by_label("Lead into a finished video (reverse extend)").check()
    picker = end.locator("[data-picker]").filter(has=page.locator("input[name=frame1_generation]"))
    picker.locator("summary").click()
    picker.locator(f".pick-item[data-pick='{second.pk}']").click()
    expect(page.get_by_label("Video to lead into")).to_have_value(str(second.pk))
    prompt.fill("The fox runs, then curls up to sleep")
    between, between_card = generate(page)

    for card, kind in ((extended_card, "Extend"), (led_in_card, "Reverse extend"), (between_card, "Interpolate")):
        expect(card.locator(".kind")).to_have_text(kind)
        expect(status_of(card)).to_have_text("Done", timeout=CARD_CHANGE)
    by_luma = lambda row: {"type": "generation", "id": row.luma_id}  # noqa: E731
    assert luma_request(sim, extended)["keyframes"] == {"frame0": by_luma(first), "frame1": None}
    assert luma_request(sim, led_in)["keyframes"] == {"frame0": None, "frame1": by_luma(second)}
    assert luma_request(sim, between)["keyframes"] == {"frame0": by_luma(first), "frame1": by_luma(second)}

    between_card.get_by_role("link", name=f"#{between}", exact=True).click()
    expect(page.get_by_role("heading", name=f"Interpolate #{between}")).to_be_visible()
    made_from = page.get_by_role("region", name="Lineage")
    expect(made_from.locator(".tree > li")).to_have_text([
        re.compile(rf"start frame\s+#{first.pk}\s+completed · alice\s+{first.prompt}"),
        re.compile(rf"end frame\s+#{second.pk}\s+completed · bob\s+{second.prompt}"),
    ])
    expect(page.locator("video.player")).to_have_js_property("readyState", 4, timeout=10_000)
    made_from.evaluate("lineage => lineage.scrollIntoView({block: 'end'})")
    shot(page, "detail")

    made_from.get_by_role("link", name=f"#{first.pk}", exact=True).click()
    expect(page.get_by_role("heading", name=f"Text to video #{first.pk}")).to_be_visible()
    made_into = page.get_by_role("region", name="Lineage").locator(".cols > div").nth(1)
    expect(made_into.locator(".tree > li > a")).to_have_text([f"#{extended}", f"#{between}"])


def spills_out(page: Page, region: str) -> list[str]:
    """Controls and cards in the region whose right edge is past the region's own (cut off or overlapping)."""
    return page.evaluate(
        """region => {
            const box = document.querySelector(region).getBoundingClientRect();
            return [...document.querySelectorAll(region + " :is(input, select, button, label, article)")]
                .filter(el => el.getBoundingClientRect().right > box.right + 0.5)
                .map(el => el.outerHTML.slice(0, 80));
        }""",
        region,
    )


# --- the library ---------------------------------------------------------------------------------


def test_filter_search_and_favourite_in_the_library(page, luma_stack, alice, bob):
    sim = luma_stack.sim
    fox, lighthouse, tiger, island, refused = settled(
        request_generation(alice, "A red fox trotting through fresh snow"),
        request_generation(alice, "A lighthouse in a winter storm"),
        request_generation(bob, "A tiger walking through tall grass at dawn"),
        request_generation(alice, "A watercolour map of an island", kind=Kind.IMAGE),
        request_generation(alice, "A blacklisted dance routine"),
    )
    sim.config(queued_seconds=600, dreaming_seconds=600)
    boat = request_generation(bob, "A paper boat on a rainy street")
    balloon = request_generation(alice, "A hot air balloon over red desert")
    wait_until(lambda: Generation.objects.filter(state=State.QUEUED).count() == 2, message="two queued")
    sim.finish(Generation.objects.get(pk=balloon.pk).luma_id, "dreaming")
    wait_until(lambda: Generation.objects.filter(pk=balloon.pk, state=State.DREAMING).exists(), message="dreaming")

    tasks.refresh_credits()  # the sweep's job: the credit badge and the "me" page show it
    log_in(page, luma_stack.url, ALICE)
    cards = page.locator("#cards article")
    expect(cards).to_have_count(7)
    expect(page.get_by_role("link", name=re.compile(r"^\$[\d,]+\.\d\d credit$"))).to_be_visible()
    assert spills_out(page, "#library") == []
    labels = {row.pk: text for row, text in ((fox, "Done"), (island, "Done"), (refused, "Failed"),
                                             (boat, "Queued"), (balloon, "Dreaming"))}
    for pk, label in labels.items():
        expect(status_of(page.locator(f"#card-{pk}"))).to_have_text(label)
    shot(page, "dashboard")

    filters = page.get_by_role("search", name="Filter the library")
    filters.get_by_label("Search prompts").fill("lighthouse")
    expect(cards).to_have_count(1)
    expect(cards.first.locator(".prompt")).to_have_text(lighthouse.prompt)
    expect(page).to_have_url(re.compile(r"/\?q=lighthouse$"))
    filters.get_by_label("Search prompts").fill("")
    expect(cards).to_have_count(7)

    filters.get_by_label("State").select_option(label="Failed or rejected")
    expect(cards).to_have_count(1)
    expect(cards.first.locator(".problem .reason")).to_have_text("Contains blacklisted words")
    filters.get_by_label("State").select_option(label="Done")
    expect(cards).to_have_count(4)
    filters.get_by_label("Made by").select_option(label="Me")
    expect(cards).to_have_count(3)
    filters.get_by_label("Kind").select_option(label="Image")
    expect(cards).to_have_count(1)
    expect(cards.first.locator(".prompt")).to_have_text(island.prompt)
    filters.get_by_label("Kind").select_option(label="Any kind")
    filters.get_by_label("Model").select_option(label="Ray 2")
    expect(cards.locator(".prompt")).to_have_text([lighthouse.prompt, fox.prompt])
    shot(page, "library-filtered")

    star = page.locator(f"#card-{fox.pk}").get_by_role("button", name=f"Favourite #{fox.pk}")
    expect(star).to_have_attribute("aria-pressed", "false")
    star.click()
    expect(star).to_have_attribute("aria-pressed", "true")
    expect(star).to_have_text("★" + f"Favourite #{fox.pk}")
    filters.get_by_label("Favourites only").check()
    expect(cards).to_have_count(1)
    expect(cards.first).to_have_id(f"card-{fox.pk}")

    page.reload()  # the filters live in the address, the star in the database
    expect(filters.get_by_label("Favourites only")).to_be_checked()
    expect(cards).to_have_count(1)
    expect(star).to_have_attribute("aria-pressed", "true")
    filters.get_by_label("Favourites only").uncheck()
    expect(cards).to_have_count(2)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="alice").click()
    expect(page.get_by_role("heading", name="alice", exact=True)).to_be_visible()
    expect(page.get_by_role("region", name="This month")).to_contain_text("3 done · 1 in progress · 1 failed")
    expect(page.get_by_role("region", name="How it adds up").locator("tbody tr")).to_have_count(2)
    shot(page, "me")

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(luma_stack.url + "/")
    expect(cards).to_have_count(7)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing sticks out sideways
    assert spills_out(page, "#library") == []
    shot(page, "dashboard-phone")
    page.evaluate("document.getElementById('library').scrollIntoView()")
    shot(page, "library-phone")


def test_deleting_asks_first_and_only_the_owner_may(page, browser, luma_stack, alice, bob):
    sim = luma_stack.sim
    (snowman,) = settled(request_generation(alice, "A snowman waving goodbye"))

    bobs = browser.new_context(viewport=VIEWPORT)
    bob_page = bobs.new_page()
    log_in(bob_page, luma_stack.url, BOB)
    card = bob_page.locator(f"#card-{snowman.pk}")
    card.locator("summary").click()
    expect(card.get_by_role("link", name="Details")).to_be_visible()
    expect(card.get_by_role("link", name="Delete…")).to_have_count(0)
    answer = bob_page.goto(f"{luma_stack.url}/generations/{snowman.pk}/delete/")
    assert answer.status == 403
    expect(bob_page.get_by_role("heading", name="Not allowed")).to_be_visible()
    expect(bob_page.get_by_text("Only the owner or staff may change this generation.")).to_be_visible()
    token = next(c["value"] for c in bobs.cookies() if c["name"] == "csrftoken")
    forged = bob_page.request.post(f"{luma_stack.url}/generations/{snowman.pk}/delete/",
                                   headers={"X-CSRFToken": token}, max_redirects=0)
    assert forged.status == 403
    bobs.close()
    assert Generation.objects.get(pk=snowman.pk).deleted_at is None

    log_in(page, luma_stack.url, ALICE)
    card = page.locator(f"#card-{snowman.pk}")
    card_action(card, "Delete…")
    expect(page.get_by_role("heading", name=f"Delete #{snowman.pk}?")).to_be_visible()
    expect(page.get_by_text("“A snowman waving goodbye”")).to_be_visible()
    page.get_by_role("link", name="Keep it").click()
    expect(page.get_by_role("heading", name=f"Text to video #{snowman.pk}")).to_be_visible()

    page.get_by_role("link", name="Library").first.click()
    ready(page)
    card_action(card, "Delete…")
    page.get_by_role("button", name=f"Delete #{snowman.pk}").click()
    expect(page.get_by_role("status")).to_have_text(f"Deleted #{snowman.pk}. It is being removed from Luma too.")
    expect(card).to_have_count(0)
    expect(page.locator("#cards .empty")).to_be_visible()
    # The job deletes it on Luma too.
    wait_until(lambda: sim.generations()[0]["deleted"], timeout=20, message="the delete on Luma")


# --- when something is wrong -------------------------------------------------------------------------


def field_error(page: Page, label: str) -> Locator:
    """The message shown beside the field with this label (inside the same field box)."""
    return page.locator(".field.has-error", has=page.get_by_label(label, exact=True)).locator(".field-error")


def test_bad_input_shows_its_message_beside_the_field_and_makes_nothing(page, live_server, transactional_db, alice):
    log_in(page, live_server.url, ALICE)
    prompt = page.get_by_label("Prompt", exact=True)
    generate_button = page.get_by_role("button", name="Generate")
    summary = page.locator("#create-panel").get_by_role("alert").first

    prompt.fill("ab")
    generate_button.click()
    expect(summary).to_have_text("Please fix what is marked below; nothing was sent to Luma.")
    expect(field_error(page, "Prompt")).to_have_text("Prompt is too short, minimum length is 3 characters")
    expect(prompt).to_have_value("ab")

    prompt.fill("")
    generate_button.click()
    expect(field_error(page, "Prompt")).to_have_text("Prompt is required")

    prompt.fill("A tiger in the snow")
    choose(page, "Start frame", "Image from a web address").get_by_label("Start image address").fill(
        "ftp://example.com/tiger.png")
    generate_button.click()
    expect(field_error(page, "Start image address")).to_have_text(
        "Enter a web address starting with https:// that Luma can fetch.")
    expect(field_error(page, "Prompt")).to_have_count(0)

    start = choose(page, "Start frame", "Upload an image")
    start.get_by_label("Start image file").set_input_files(upload("tiger.png", b"these are words, not pixels"))
    generate_button.click()
    expect(field_error(page, "Start image file")).to_have_text(
        "This is not an image we can read. Use a JPEG, PNG or WebP file.")

    start = choose(page, "Start frame", "Upload an image")
    start.get_by_label("Start image file").set_input_files(upload("tiny.png", png((20, 20))))
    generate_button.click()
    expect(field_error(page, "Start image file")).to_have_text(
        "This image is 20×20 pixels; it must be at least 64×64.")

    choose(page, "Start frame", "Nothing")
    end = choose(page, "End frame", "Upload an image")
    end.get_by_label("End image file").set_input_files(upload("end.png", png()))
    page.get_by_label("Loop (the clip ends where it starts)").check()
    generate_button.click()
    expect(field_error(page, "Loop (the clip ends where it starts)")).to_have_text(
        "A loop ends where it starts, so it cannot also have an end frame: untick Loop, or make it without an end frame.")

    assert Generation.objects.count() == 0
    assert KeyframeImage.objects.count() == 0


def test_a_failed_generation_says_why_in_plain_words(page, luma_stack, alice):
    log_in(page, luma_stack.url, ALICE)
    prompt = page.get_by_label("Prompt", exact=True)

    prompt.fill("A blacklisted dance routine")
    refused, refused_card = generate(page)

    prompt.fill("A kite over the dunes")
    start = choose(page, "Start frame", "Image from a web address")
    missing = f"{luma_stack.url}/k/no-such-keyframe/"
    start.get_by_label("Start image address").fill(missing)
    unreadable, unreadable_card = generate(page)

    expect(status_of(refused_card)).to_have_text("Failed", timeout=CARD_CHANGE)
    problem = refused_card.locator(".problem")
    expect(problem.locator(".reason")).to_have_text("Contains blacklisted words")
    expect(problem.locator(".step")).to_have_text("Luma refused the prompt. Reword it and try again. Edit the prompt")

    expect(status_of(unreadable_card)).to_have_text("Failed", timeout=CARD_CHANGE)
    problem = unreadable_card.locator(".problem")
    expect(problem.locator(".reason")).to_have_text("Failed to read user input frames")
    expect(problem.locator(".step")).to_have_text(
        "Luma could not use the image. Use a public JPEG or PNG it can fetch, then try again. Fix the image")
    shot(unreadable_card, "failed-card")

    problem.get_by_role("link", name="Fix the image").click()
    expect(page.locator("#create-panel .note")).to_have_text(f"Try again from #{unreadable}.")
    start = page.get_by_role("group", name="Start frame")
    expect(start.get_by_label("Image from a web address")).to_be_checked()
    expect(start.get_by_label("Start image address")).to_have_value(missing)
    expect(prompt).to_have_value("A kite over the dunes")
    assert refused != unreadable


def test_the_page_polls_only_while_something_is_in_flight(page, live_server, transactional_db, alice):
    """One batched poll every 2 s while a card is live and the tab is visible; none otherwise."""
    polls = []
    page.on("request", lambda request: "/poll/" in request.url and polls.append(request.url))
    Generation.objects.create(owner=alice, prompt="An old finished clip", state=State.FAILED, reason="Job failed")
    log_in(page, live_server.url, ALICE)
    page.wait_for_timeout(4500)
    assert polls == []

    live = Generation.objects.create(owner=alice, prompt="A clip in flight", state=State.QUEUED, luma_id="live-1")
    page.reload()
    ready(page)
    expect(status_of(page.locator(f"#card-{live.pk}"))).to_have_text("Queued")
    page.wait_for_timeout(4500)
    assert 2 <= len(polls) <= 3  # every 2 s, one request for the whole page
    assert all(re.search(rf"/poll/\?live={live.pk}%3A\w+$", url) for url in polls)  # the live card, nothing else

    # A hidden tab does not poll, and starts again when it is shown.
    page.evaluate(SET_HIDDEN, True)
    page.wait_for_timeout(500)
    while_hidden = len(polls)
    page.wait_for_timeout(4500)
    assert len(polls) == while_hidden
    page.evaluate(SET_HIDDEN, False)
    page.wait_for_timeout(2500)
    assert len(polls) > while_hidden

    Generation.objects.filter(pk=live.pk).update(state=State.FAILED, reason="Job failed")
    expect(status_of(page.locator(f"#card-{live.pk}"))).to_have_text("Failed", timeout=CARD_CHANGE)
    settled_count = len(polls)
    page.wait_for_timeout(4500)
    assert len(polls) == settled_count
