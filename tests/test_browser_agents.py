"""Browser test of the create form with Luma's Agents models against the whole stack (live server, a django-q2 cluster,
the simulator's Agents API): a Ray 3.2 HDR video, a video_edit with a control, a reframe and a Uni-1 image with
references, each chosen by model on one logged-in page, each reaching done and playing or shown; and a Uni-1
layering whose every layer then shows on the generation's page."""

import re
from datetime import timedelta

import pytest
import requests
from django.utils import timezone
from playwright.sync_api import Page, expect

from generations.models import Generation, Kind, Provider, State
from tests.test_browser import ALICE, generate, log_in, png, request_generation, settled, shot, upload
from tests.test_browser_modes import make, pick, plays, shows

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


def learned_timings(owner) -> None:
    """Precondition: the team's earlier Agents generations of these kinds took a second (the simulator is fast), so
    the follower asks about new ones seconds after they are sent, not after Ray 3.2's first-minute guess. Deleted
    long ago: they are history only."""
    now = timezone.now()
    for kind, model in ((Kind.TEXT_TO_VIDEO, "ray-3.2"), (Kind.MODIFY_VIDEO, "ray-3.2"),
                        (Kind.REFRAME_VIDEO, "ray-3.2"), (Kind.IMAGE, "uni-1"), (Kind.LAYERING, "uni-1")):
        Generation.objects.create(owner=owner, kind=kind, model=model, provider=Provider.AGENTS, prompt="earlier",
                                  state=State.COMPLETED, submitted_at=now - timedelta(seconds=2),
                                  completed_at=now - timedelta(seconds=1), deleted_at=now, luma_deleted_at=now)


def agents_generation(sim, pk: int) -> dict:
    """The Agents API's record of our generation pk: what it received ("request") and what it made ("outputs")."""
    luma_id = Generation.objects.get(pk=pk).luma_id
    answer = requests.get(f"{sim.root}/_sim/agents/generations/{luma_id}", timeout=10)
    answer.raise_for_status()
    return answer.json()


def agents_request(sim, pk: int) -> dict:
    """What the Agents API received for our generation pk."""
    return agents_generation(sim, pk)["request"]


def estimate(page: Page):
    return page.locator("#estimate")


def test_ray_32_and_uni_1_by_model_each_reach_done_and_show(page: Page, luma_stack, alice):
    sim = luma_stack.sim
    learned_timings(alice)
    (source,) = settled(request_generation(alice, "A red fox trotting through fresh snow"))
    log_in(page, luma_stack.url, ALICE)
    panel = page.locator("#create-panel")
    prompt = page.get_by_label("Prompt", exact=True)
    model = panel.get_by_label("Model", exact=True)

    # Ray 3.2: HDR and EXR appear with the model; 360p and 10 s join the choices, 4K and 9 s leave them.
    expect(page.get_by_label("HDR (720p or 1080p)")).to_be_hidden()
    model.select_option("ray-3.2")
    expect(page.get_by_label("HDR (720p or 1080p)")).to_be_visible()
    expect(page.get_by_text("Keyframes", exact=False).first).to_be_visible()
    resolutions = panel.get_by_label("Resolution").locator("option:not([hidden])").all_inner_texts()
    assert "360p draft" in resolutions and "4K" not in resolutions
    panel.get_by_label("Resolution").select_option("1080p")
    page.get_by_label("HDR (720p or 1080p)").check()
    page.get_by_label("Also export EXR (16-bit ACES; needs HDR)").check()
    expect(estimate(page)).to_contain_text("$3.60")
    expect(estimate(page)).to_contain_text("1080p HDR + EXR")
    prompt.fill("A slow dolly shot through a misty greenhouse at sunrise")
    hdr_video, hdr_card = generate(page)

    # video_edit of a library video, with a strength and the depth control.
    make(page, "Modify video")
    expect(page.get_by_label("Automatic")).to_be_visible()
    pick(page, "video_source", source.pk)
    page.get_by_label("HDR (720p or 1080p)").uncheck()
    panel.get_by_label("Resolution").select_option("720p")
    page.get_by_label("Flex 2").check()
    page.get_by_label("Depth", exact=True).check()
    page.get_by_label("Blur", exact=True).fill("0.4")
    prompt.fill("Same shot, on a snowy mountain peak")
    edited, edited_card = generate(page)

    # video_reframe to 9:16, the source placed by the box (sent as fractions).
    make(page, "Reframe video")
    page.get_by_role("radio", name="From the library", exact=True).check()
    panel.get_by_label("Aspect ratio").select_option("9:16")
    pick(page, "video_source", source.pk)
    expect(page.locator("input[name=resized_width]")).to_have_value("1152")
    prompt.fill("Extend the sky above and the snow below")
    reframed, reframed_card = generate(page)

    # Uni-1: its references replace Photon's; each one shows in the price.
    make(page, "Image")
    image_model = panel.get_by_label("Image model")
    image_model.select_option("uni-1")
    expect(page.get_by_text("Image references")).to_be_hidden()
    page.get_by_label("Reference image 1, or upload it").set_input_files(upload("a.png", png(colour=(200, 60, 40))))
    page.get_by_text("More references").click()
    page.get_by_label("Reference image 2, or upload it").set_input_files(upload("b.png", png(colour=(40, 200, 90))))
    expect(estimate(page)).to_contain_text("2 references")
    expect(estimate(page)).to_contain_text("$0.05")
    panel.get_by_label("Aspect ratio").select_option("1:1")
    prompt.fill("A fox reading in a library, in the colours of these two")
    image, image_card = generate(page)

    plays(page, hdr_card, hdr_video)
    plays(page, edited_card, edited)
    plays(page, reframed_card, reframed)
    shows(image_card)

    rows = {row.pk: row for row in Generation.objects.filter(pk__in=[hdr_video, edited, reframed, image])}
    assert {row.provider for row in rows.values()} == {Provider.AGENTS}
    sent = agents_request(sim, hdr_video)
    assert (sent["type"], sent["video"]["resolution"], sent["video"]["hdr"], sent["video"]["exr_export"]) == (
        "video", "1080p", True, True)
    sent = agents_request(sim, edited)
    assert sent["type"] == "video_edit" and sent["video"]["edit"] == {
        "strength": "flex_2", "controls": {"depth": {"enabled": True, "blur": 0.4}}}
    sent = agents_request(sim, reframed)
    assert (sent["type"], sent["aspect_ratio"]) == ("video_reframe", "9:16")
    assert sent["video"]["source_position"]["w_norm"] == 1.0
    sent = agents_request(sim, image)
    assert sent["type"] == "image" and len(sent["image_ref"]) == 2 and all("file_id" in r for r in sent["image_ref"])


def test_a_uni_1_layering_reaches_done_and_every_layer_shows_on_its_page(page: Page, luma_stack, alice):
    sim = luma_stack.sim
    learned_timings(alice)
    log_in(page, luma_stack.url, ALICE)

    # Layers: Uni-1's (the mode brings the model), from an uploaded picture, at 2k.
    make(page, "Layers")
    expect(page.locator("#create-panel").get_by_label("Image model")).to_have_value("uni-1")
    page.get_by_role("radio", name="Upload a file", exact=True).check()
    lamp = upload("lamp.png", png(size=(640, 480), colour=(90, 90, 160)))
    page.get_by_label("Image file", exact=True).set_input_files(lamp)
    page.get_by_label("2k (finer, dearer per layer)").check()
    expect(estimate(page)).to_contain_text("2k layers")
    page.get_by_label("Prompt", exact=True).fill("Separate the lamp from the wall")
    layered, layered_card = generate(page)
    shows(layered_card)

    made = agents_generation(sim, layered)
    sent = made["request"]
    assert (sent["type"], sent["layering"]) == ("layering", {"resolution": "2k"}) and "file_id" in sent["source"]
    outputs = made["outputs"]
    assert len(outputs) >= 2

    # Its page shows every layer Luma made, in order, each loaded and labelled, each linked to its file.
    layered_card.get_by_role("link", name=f"#{layered}", exact=True).first.click()
    expect(page).to_have_url(f"{luma_stack.url}/generations/{layered}/")
    gallery = page.get_by_role("region", name=re.compile(r"^Layers"))
    layers = gallery.locator(".layer-list > li")
    expect(layers).to_have_count(len(outputs))
    for number, output in enumerate(outputs, start=1):
        layer = layers.nth(number - 1)
        picture = layer.get_by_role("img", name=f"Layer {number} of {len(outputs)}: {output['layer']['label']}")
        picture.scroll_into_view_if_needed()
        expect(picture).to_be_visible()
        expect(picture).to_have_js_property("complete", True)
        assert picture.evaluate("img => img.naturalWidth") > 0
        expect(layer).to_contain_text(f"Layer {number} of {len(outputs)} · {output['layer']['label']}")
        expect(layer.get_by_role("link", name="Download")).to_have_attribute("download", re.compile(r"\.png$"))
    gallery.scroll_into_view_if_needed()
    shot(gallery, "layers")
