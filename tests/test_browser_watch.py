"""Browser tests for watching and choosing: the hover preview, the large player and its keys, the price estimate,
what an image's card offers, the first page after a fresh start and the library filters at 1366 px. Debian's
Chromium drives the real stack (live server, a django-q2 cluster, the Luma simulator), as in test_browser.py."""

import re

import pytest
from playwright.sync_api import Page, expect

from generations.models import Kind
from tests.test_browser import ALICE, log_in, request_generation, settled

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

PLAYING = "v => !v.paused && v.currentTime > 0.1"


def lightbox_title(page: Page):
    return page.locator("dialog#lightbox h2")


def test_hover_previews_play_and_the_large_player_steps_through_the_library_by_keyboard(page, luma_stack, alice):
    clips = settled(*(request_generation(alice, f"Clip number {n} of a paper boat") for n in range(3)))
    newest, middle, oldest = sorted(clips, key=lambda row: -row.pk)
    log_in(page, luma_stack.url, ALICE)
    card = page.locator(f"#card-{middle.pk}")

    # Hovering plays a muted preview over the poster; leaving stops it.
    card.locator(".media").hover()
    preview = card.locator("video.preview")
    expect(preview).to_have_count(1)
    page.wait_for_function(PLAYING, arg=preview.element_handle(), timeout=10_000)
    assert preview.evaluate("v => v.muted") is True
    page.get_by_role("heading", name="Make something").hover()
    expect(card.locator("video.preview")).to_have_count(0)

    # Keyboard focus does the same, and blur stops it.
    play = card.get_by_role("link", name=f"Play video #{middle.pk}")
    play.focus()
    page.wait_for_function(PLAYING, arg=card.locator("video.preview").element_handle(), timeout=10_000)
    play.evaluate("a => a.blur()")
    expect(card.locator("video.preview")).to_have_count(0)

    # The large player: a dialog, previous and next through the cards on the page, keys for each.
    card.locator(".media").hover()
    card.get_by_role("link", name=f"Watch #{middle.pk} large").click()
    dialog = page.locator("dialog#lightbox")
    expect(dialog).to_be_visible()
    expect(lightbox_title(page)).to_have_text(f"Text to video #{middle.pk}")
    big = dialog.locator("video.lightbox-media")
    page.wait_for_function(PLAYING, arg=big.element_handle(), timeout=10_000)
    expect(dialog.locator(".lightbox-prompt")).to_have_text("Clip number 1 of a paper boat")

    page.keyboard.press("Space")
    expect(big).to_have_js_property("paused", True)
    page.keyboard.press("Space")
    page.wait_for_function("v => !v.paused", arg=big.element_handle())

    page.keyboard.press("ArrowRight")
    expect(lightbox_title(page)).to_have_text(f"Text to video #{oldest.pk}")
    expect(dialog.locator(".lightbox-count")).to_have_text("3 of 3")
    expect(dialog.get_by_role("button", name="Next →")).to_be_disabled()
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    expect(lightbox_title(page)).to_have_text(f"Text to video #{newest.pk}")
    expect(dialog.get_by_role("button", name="← Previous")).to_be_disabled()
    dialog.get_by_role("button", name="Next →").click()
    expect(lightbox_title(page)).to_have_text(f"Text to video #{middle.pk}")

    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert dialog.locator("video").count() == 0  # nothing keeps playing behind the page


def test_a_loop_clip_loops_when_played_on_its_card_and_another_stops_at_its_end(page, luma_stack, alice):
    loop, once = settled(request_generation(alice, "A paper boat going round", loop=True),
                         request_generation(alice, "A paper boat going by"))
    log_in(page, luma_stack.url, ALICE)

    def play(row):
        card = page.locator(f"#card-{row.pk}")
        card.get_by_role("link", name=f"Play video #{row.pk}").click()
        video = card.locator(".media > video")
        page.wait_for_function(PLAYING, arg=video.element_handle(), timeout=10_000)
        video.evaluate("v => { v.muted = true; v.playbackRate = 4; }")  # to its end in a second or two
        return video

    video = play(loop)
    # Past its end: it has been near the end, then plays again from the start, never ended.
    page.wait_for_function("v => v.duration && v.currentTime > v.duration - 1.5", arg=video.element_handle(),
                           timeout=20_000)
    page.wait_for_function("v => !v.paused && v.currentTime > 0.1 && v.currentTime < 1.5", arg=video.element_handle(),
                           timeout=20_000)
    assert video.evaluate("v => v.ended") is False

    video = play(once)
    page.wait_for_function("v => v.ended", arg=video.element_handle(), timeout=20_000)


def test_the_price_estimate_follows_the_options(page, live_server, transactional_db, alice):
    log_in(page, live_server.url, ALICE)
    estimate = page.locator("#estimate")
    expect(estimate).to_contain_text("Estimated price: $1.75 (Ray 2 · 720p · 5 s · 16:9).")
    form = page.locator("#create-form")
    form.get_by_label("Resolution").select_option("1080p")
    expect(estimate).to_contain_text("$3.94 (Ray 2 · 1080p · 5 s · 16:9)")
    form.get_by_label("Duration").select_option("9s")
    expect(estimate).to_contain_text("$7.09 (Ray 2 · 1080p · 9 s · 16:9)")
    form.get_by_label("Model", exact=True).select_option("ray-flash-2")
    expect(estimate).to_contain_text("$2.44 (Ray Flash 2 · 1080p · 9 s · 16:9)")


def test_an_images_card_offers_no_extend_upscale_or_audio(page, luma_stack, alice):
    image, video = settled(request_generation(alice, "A watercolour map of an island", kind=Kind.IMAGE),
                           request_generation(alice, "A lighthouse in a winter storm"))
    log_in(page, luma_stack.url, ALICE)

    def offers(pk: int) -> list[str]:
        card = page.locator(f"#card-{pk}")
        card.locator("summary").click()
        labels = [label.strip() for label in card.locator(".menu li").all_inner_texts()]
        card.locator("summary").click()
        return labels

    image_actions = offers(image.pk)
    assert {"Use as start frame", "Use as end frame", "Use as reference", "Modify image", "Reframe image"} <= set(
        image_actions)
    assert not {"Extend", "Reverse extend", "Upscale", "Add audio", "Loop remix"} & set(image_actions)
    video_actions = offers(video.pk)
    assert {"Extend", "Upscale", "Add audio", "Loop remix", "Reframe video"} <= set(video_actions)
    assert "Use as reference" not in video_actions


def test_the_first_page_after_a_fresh_start_offers_camera_motions_and_concepts(page, luma_stack, alice):
    log_in(page, luma_stack.url, ALICE)  # the catalog job has not run: the page reads it itself
    expect(page.get_by_label("Camera motion")).to_contain_text("camera orbit left")
    page.locator("details.concepts summary").click()
    expect(page.get_by_label("dolly zoom")).to_be_visible()


# The words of a select's option, and how much of them shows when it is the one chosen (its box less its padding and
# the arrow); a probe span in the select's font measures the words.
LONGEST_OPTION = """select => [...select.options].map(o => o.text).reduce((a, b) => {
    const probe = document.createElement('span');
    probe.style.font = getComputedStyle(select).font;
    document.body.appendChild(probe);
    probe.textContent = a; const wa = probe.getBoundingClientRect().width;
    probe.textContent = b; const wb = probe.getBoundingClientRect().width;
    probe.remove();
    return wb > wa ? b : a;
})"""
SHOWN_IN_FULL = """select => {
    const style = getComputedStyle(select);
    const probe = document.createElement('span');
    probe.style.font = style.font;
    probe.textContent = select.options[select.selectedIndex].text;
    document.body.appendChild(probe);
    const needed = probe.getBoundingClientRect().width;
    probe.remove();
    const room = select.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight) - 16;
    return needed <= room;
}"""


def test_the_library_filters_show_their_words_in_full_at_1366_px(page, live_server, transactional_db, alice,
                                                                    django_user_model):
    # A teammate with a long name has made something, so "Made by" offers it.
    carol = django_user_model.objects.create_user("carol_from_post_production", password="staff-pass-42")
    request_generation(carol, "A fox in the snow")
    page.set_viewport_size({"width": 1366, "height": 768})
    log_in(page, live_server.url, ALICE)
    expect(page.locator("#filter_owner")).to_have_value("")
    assert re.search(r"Everyone", page.locator("#filter_owner").inner_text())
    models = page.locator("#filter_model option").all_inner_texts()
    assert {"Ray 3.2", "Uni-1", "Uni-1 Max", "Photon Flash 1", "Ray Flash 2"} <= set(models)  # as the form offers

    # Each select shows its default in full, then its longest choice once chosen (all of them chosen at once).
    selects = page.locator("#filters select")
    for select in selects.all():
        assert select.evaluate(SHOWN_IN_FULL), select.evaluate("s => s.options[s.selectedIndex].text")
    chosen = {}
    for select in selects.all():
        chosen[select.get_attribute("id")] = longest = select.evaluate(LONGEST_OPTION)
        select.select_option(label=longest)
        expect(select).to_have_js_property("selectedIndex", select.evaluate(
            "(s, words) => [...s.options].findIndex(o => o.text === words)", longest))
    assert chosen["filter_owner"] == "carol_from_post_production"
    assert chosen["filter_model"] == "Photon Flash 1"
    for select in selects.all():
        assert select.evaluate(SHOWN_IN_FULL), select.evaluate("s => s.options[s.selectedIndex].text")
    # The filters still fit the library beside the create panel: nothing sticks out to the right.
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
