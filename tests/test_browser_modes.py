"""Browser tests of the create form's new modes against the whole stack (live server, a django-q2 cluster, the Luma
simulator): modify and reframe videos from the library, an upload and the drag box, reframe an image, and a Photon
image with references picked in the picker. Each result reaches done and plays or shows."""

import io
import re

import av
import numpy
import pytest
from PIL import Image
from playwright.sync_api import Locator, Page, expect

from generations.models import Generation, Kind
from tests.test_browser import (
    ALICE,
    CARD_CHANGE,
    field_error,
    generate,
    log_in,
    luma_request,
    png,
    request_generation,
    settled,
    shot,
    status_of,
    upload,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def mp4(seconds: float = 2.0, size=(320, 180), fps: int = 10) -> bytes:
    """A small real H.264 MP4, made with PyAV, as a phone or an editor would hand one over."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as out:
        stream = out.add_stream("h264", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(round(seconds * fps)):
            pixels = numpy.zeros((size[1], size[0], 3), numpy.uint8)
            pixels[:, : (i * 16) % size[0]] = (40, 160, 220)
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buffer.getvalue()


def make(page: Page, what: str) -> None:
    page.get_by_role("group", name="Make").get_by_text(what, exact=True).click()


def pick(page: Page, field: str, pk: int) -> Locator:
    """Open a picker's library grid, click the thumbnail of #pk; the picker's number field then holds pk."""
    picker = page.locator("[data-picker]").filter(has=page.locator(f"input[name={field}]"))
    picker.locator("summary").click()
    item = picker.locator(f".pick-item[data-pick='{pk}']")
    expect(item).to_be_visible()
    expect(item.locator("img")).to_have_js_property("complete", True)
    item.click()
    expect(picker.locator(f"input[name={field}]")).to_have_value(str(pk))
    expect(picker.locator("[data-picked]")).to_contain_text(f"#{pk}")
    return picker


def numbers(page: Page) -> dict[str, int]:
    names = ("grid_position_x", "grid_position_y", "resized_width", "resized_height")
    return {name: int(page.locator(f"input[name={name}]").input_value() or -1) for name in names}


def plays(page: Page, card: Locator, pk: int) -> None:
    expect(status_of(card)).to_have_text("Done", timeout=CARD_CHANGE)
    card.get_by_role("link", name=f"Play video #{pk}").click()
    video = card.locator("video")
    expect(video).to_be_visible()
    page.wait_for_function("v => !v.paused && v.currentTime > 0.3", arg=video.element_handle(), timeout=10_000)
    assert video.evaluate("v => v.error") is None


def shows(card: Locator) -> None:
    expect(status_of(card)).to_have_text("Done", timeout=CARD_CHANGE)
    picture = card.locator(".media img").first
    expect(picture).to_have_js_property("complete", True)
    assert picture.evaluate("img => img.naturalWidth") > 0


def test_modify_from_the_library_and_an_upload_and_reframe_a_video_with_the_drag_box(page, luma_stack, alice):
    sim = luma_stack.sim
    (source,) = settled(request_generation(alice, "A red fox trotting through fresh snow"))
    log_in(page, luma_stack.url, ALICE)
    prompt = page.get_by_label("Prompt", exact=True)

    # Modify a library video, picked from the thumbnail grid, with a mode explained in words.
    make(page, "Modify video")
    expect(page.get_by_text("stays closest to your video")).to_be_visible()
    expect(page.get_by_label("Resolution")).to_be_hidden()
    pick(page, "video_source", source.pk)
    page.get_by_label("Reimagine 2").check()
    prompt.fill("As a watercolour painting")
    shot(page, "modify-video", top=page.locator("#create-panel .models"))
    from_library, from_library_card = generate(page)
    expect(from_library_card.locator(".kind")).to_have_text("Modify video")

    # Modify an uploaded MP4: sent ahead when chosen, checked, then used by the form.
    page.get_by_role("radio", name="Upload a file", exact=True).check()
    page.get_by_label("Video file").set_input_files(upload("clip.mp4", mp4(2), "video/mp4"))
    expect(page.locator("#video-upload .success")).to_contain_text("Uploaded: 2.0 s, 320×180, H.264")
    prompt.fill("In neon colours")
    from_upload, from_upload_card = generate(page)

    # Reframe a library video to 9:16, placing it with the drag box.
    make(page, "Reframe video")
    page.get_by_role("radio", name="From the library", exact=True).check()
    page.get_by_label("Aspect ratio").select_option("9:16")
    pick(page, "video_source", source.pk)
    fitted = numbers(page)
    assert fitted == {"grid_position_x": 0, "grid_position_y": 700, "resized_width": 1152, "resized_height": 648}
    page.locator("[data-box]").scroll_into_view_if_needed()
    box = page.locator("[data-box]").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2 - 60, steps=5)
    page.mouse.up()
    moved = numbers(page)
    assert moved["grid_position_y"] < fitted["grid_position_y"] and moved["resized_width"] == 1152
    handle = page.locator("[data-handle]").bounding_box()
    page.mouse.move(handle["x"] + 5, handle["y"] + 5)
    page.mouse.down()
    page.mouse.move(handle["x"] - 40, handle["y"] + 5, steps=5)
    page.mouse.up()
    resized = numbers(page)
    assert resized["resized_width"] < 1152 and resized["resized_height"] < 648
    assert abs(resized["resized_width"] / resized["resized_height"] - 16 / 9) < 0.02  # the source keeps its shape
    # Typing a number moves the box too.
    top_before = page.locator("[data-box]").bounding_box()["y"]
    page.locator("input[name=grid_position_y]").fill("0")
    assert page.locator("[data-box]").bounding_box()["y"] < top_before
    placed = numbers(page)
    shot(page.locator("fieldset.reframe"), "reframe-video")
    reframed, reframed_card = generate(page)

    plays(page, from_library_card, from_library)
    plays(page, from_upload_card, from_upload)
    plays(page, reframed_card, reframed)

    sent = luma_request(sim, from_library)
    assert (sent["media"], sent["mode"], sent["prompt"]) == ({"url": source.video_url}, "reimagine_2",
                                                             "As a watercolour painting")
    assert luma_request(sim, from_upload)["media"]["url"].startswith(f"{luma_stack.url}/k/")
    sent = luma_request(sim, reframed)
    assert sent["aspect_ratio"] == "9:16" and {name: sent[name] for name in placed} == placed
    assert Generation.objects.get(pk=reframed).kind == Kind.REFRAME_VIDEO


def test_reframe_an_image_and_a_photon_image_with_references_picked_in_the_picker(page, luma_stack, alice):
    sim = luma_stack.sim
    portrait, landscape = settled(request_generation(alice, "A portrait of a sailor", kind=Kind.IMAGE),
                                  request_generation(alice, "A harbour at dawn", kind=Kind.IMAGE))
    log_in(page, luma_stack.url, ALICE)
    prompt = page.get_by_label("Prompt", exact=True)

    make(page, "Reframe image")
    expect(page.get_by_label("Image model")).to_be_visible()
    page.get_by_label("Aspect ratio").select_option("1:1")
    pick(page, "image_source", landscape.pk)
    wide, wide_card = generate(page)

    make(page, "Image")
    page.locator("details.references > summary").click()
    references = page.get_by_role("group", name="Image references")
    search = references.locator(".pick-search").first
    references.locator("summary").first.click()
    for row in (portrait, landscape):
        expect(references.locator(f".pick-item[data-pick='{row.pk}'] img").first).to_have_js_property("complete", True)
    shot(references.locator("[data-picker]").first, "source-picker")
    search.fill("harbour")  # the picker's search narrows the grid to matching prompts
    expect(references.locator(".pick-item").first).to_have_attribute("data-pick", str(landscape.pk))
    expect(references.locator(".pick-item")).to_have_count(1)
    references.locator(f".pick-item[data-pick='{landscape.pk}']").click()
    expect(page.locator("input[name=image_ref_1]")).to_have_value(str(landscape.pk))
    pick(page, "character_ref_1", portrait.pk)
    prompt.fill("The sailor standing in the harbour")
    shot(page.locator("details.references"), "photon-references")
    made, made_card = generate(page)

    shows(wide_card)
    shows(made_card)
    sent = luma_request(sim, wide)
    assert sent["media"] == {"url": landscape.image_url} and sent["aspect_ratio"] == "1:1"
    sent = luma_request(sim, made)
    assert sent["image_ref"] == [{"url": landscape.image_url, "weight": 0.85}]
    assert sent["character_ref"] == {"identity0": {"images": [portrait.image_url]}}
    assert not re.search(r"Failed", made_card.inner_text())


def drag_corner(page: Page, dx: float) -> None:
    handle = page.locator("[data-handle]").bounding_box()
    page.mouse.move(handle["x"] + 5, handle["y"] + 5)
    page.mouse.down()
    page.mouse.move(handle["x"] + 5 + dx, handle["y"] + 5, steps=5)
    page.mouse.up()


def test_reframing_an_uploaded_portrait_places_a_box_of_its_shape(page, luma_stack, alice):
    """A 600×800 upload reframed to 16:9 sits in a 3:4 box (864×1152, centred), not the 16:9 one that stretched it."""
    sim = luma_stack.sim
    log_in(page, luma_stack.url, ALICE)
    make(page, "Reframe image")
    page.get_by_role("radio", name="Upload a file", exact=True).check()
    page.get_by_label("Aspect ratio").select_option("16:9")
    page.get_by_label("Image file", exact=True).set_input_files(upload("landscape.png", png((800, 600))))
    expect(page.locator("input[name=resized_width]")).to_have_value("1536")
    # Turned upright by its EXIF, as the server measures it: stored 800×600, shown (and reframed) 600×800.
    photo, exif = io.BytesIO(), Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (800, 600), (200, 90, 40)).save(photo, "JPEG", exif=exif)
    page.get_by_label("Image file", exact=True).set_input_files(upload("photo.jpg", photo.getvalue(), "image/jpeg"))
    expect(page.locator("input[name=resized_width]")).to_have_value("864")
    page.get_by_label("Image file", exact=True).set_input_files(upload("portrait.png", png((600, 800))))
    page.locator("input[name=resized_width]").fill("")  # cleared by hand: choosing the file places it again
    page.get_by_label("Image file", exact=True).set_input_files(upload("portrait.png", png((600, 800))))
    expect(page.locator("input[name=resized_width]")).to_have_value("864")
    assert numbers(page) == {"grid_position_x": 592, "grid_position_y": 0, "resized_width": 864, "resized_height": 1152}

    # A box of another shape, typed by hand, is refused with what to type instead.
    page.locator("input[name=grid_position_x]").fill("0")
    page.locator("input[name=resized_width]").fill("2048")
    page.get_by_role("button", name="Generate").click()
    expect(field_error(page, "Width")).to_have_text(
        "The box is 2048×1152, but the uploaded image is 600×800, so Luma would stretch it. Keep its shape: a width "
        "of 864 for a height of 1152.")
    assert not Generation.objects.exists()

    # Chosen again, the file places the box again; its corner keeps the portrait's shape.
    page.get_by_label("Image file", exact=True).set_input_files(upload("portrait.png", png((600, 800))))
    expect(page.locator("input[name=resized_width]")).to_have_value("864")
    page.locator("[data-box]").scroll_into_view_if_needed()
    drag_corner(page, -40)
    placed = numbers(page)
    assert placed["resized_width"] < 864 and abs(placed["resized_width"] / placed["resized_height"] - 3 / 4) < 0.01
    made, card = generate(page)
    shows(card)
    sent = luma_request(sim, made)
    assert sent["aspect_ratio"] == "16:9" and {name: sent[name] for name in placed} == placed

    # An uploaded portrait video is placed by its own shape too (its size comes back with the upload).
    make(page, "Reframe video")
    page.get_by_label("Video file").set_input_files(upload("tall.mp4", mp4(1, size=(180, 320)), "video/mp4"))
    expect(page.locator("#video-upload .success")).to_contain_text("180×320")
    expect(page.locator("input[name=resized_width]")).to_have_value("648")
    assert numbers(page) == {"grid_position_x": 700, "grid_position_y": 0, "resized_width": 648, "resized_height": 1152}


def noise_png(side: int, seed: int) -> bytes:
    """A PNG that does not compress: about side² × 3 bytes."""
    pixels = numpy.random.default_rng(seed).integers(0, 256, (side, side, 3), numpy.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def test_references_too_large_together_are_named_before_sending_and_the_server_answers_in_words(
        page, live_server, transactional_db, alice, settings):
    """Files over what one request may carry: the form names them and sends nothing; sent anyway (no create.js), the
    server reads the body and answers in words above the form, where the connection was reset before."""
    settings.REQUEST_MAX_BYTES = 3 * 1024 * 1024
    sent = []
    page.on("request", lambda request: sent.append(request.url) if request.url.endswith("/create/") else None)
    log_in(page, live_server.url, ALICE)
    make(page, "Image")
    page.get_by_label("Prompt", exact=True).fill("A harbour at dawn")
    pictures = [noise_png(550, n) for n in range(4)]
    for n, picture in enumerate(pictures, 1):
        page.locator(f"input[name=image_ref_{n}_file]").set_input_files(upload(f"harbour-{n}.png", picture))
    total = sum(len(picture) for picture in pictures) / 1_048_576

    page.get_by_role("button", name="Generate").click()
    alert = page.locator("#create-panel [data-too-large]")
    expect(alert).to_contain_text(f"The files chosen add up to {total:.1f} MB, more than the 3 MB one request may "
                                  f"carry: harbour-")
    expect(alert).to_contain_text(f"harbour-1.png ({len(pictures[0]) / 1_048_576:.1f} MB, Reference 1)")
    expect(alert).to_contain_text("Nothing was sent: remove some of them or choose smaller images")
    assert sent == [] and page.locator("input[name=image_ref_4_file]").evaluate("i => i.files.length") == 1

    page.evaluate("document.querySelectorAll('[data-request-max]').forEach(i => i.removeAttribute('data-request-max'))")
    with page.expect_response(lambda response: response.url.endswith("/create/")):
        page.get_by_role("button", name="Generate").click()
    expect(alert).to_contain_text("more than the 3 MB a request may carry (each image at most 10 MB). Nothing was sent "
                                  "to Luma and nothing was kept")
    expect(alert).to_have_count(1)
    expect(page.get_by_label("Prompt", exact=True)).to_have_value("A harbour at dawn")
    assert not Generation.objects.exists()
