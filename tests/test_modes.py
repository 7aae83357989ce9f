"""The create form's new modes: modify video, reframe video and image, Photon's references, the library pickers,
the source video upload and the card actions that fill the form in. Every limit has its message here."""

import io
import os
import re
import uuid
from datetime import timedelta

import av
import numpy
import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image

from generations.forms import CreateForm
from generations import pricing
from generations.models import ArchiveState, Generation, KeyframeImage, Kind, LumaAccount, State

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PUBLIC_BASE_URL = "https://team.example.com"
    return settings.MEDIA_ROOT


@pytest.fixture
def account():
    return LumaAccount.get()


def mp4(seconds=1.0, size=(160, 96), fps=10, codec="h264", fmt="mp4") -> bytes:
    """A small real video, made with PyAV."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(max(1, round(seconds * fps))):
            pixels = numpy.full((size[1], size[0], 3), (i * 20) % 255, numpy.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buffer.getvalue()


def png(size=(128, 96)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(buffer, "PNG")
    return buffer.getvalue()


def finished(owner, kind=Kind.TEXT_TO_VIDEO, prompt="A fox in the snow", **fields) -> Generation:
    is_image = kind in (Kind.IMAGE, Kind.REFRAME_IMAGE)
    luma_id = str(uuid.uuid4())
    defaults = {"state": State.COMPLETED, "luma_id": luma_id, "model": "photon-1" if is_image else "ray-2",
                "aspect_ratio": "16:9", "duration": "" if is_image else "5s",
                ("image_url" if is_image else "video_url"): f"https://cdn.example.com/{luma_id}.{'jpg' if is_image else 'mp4'}"}
    return Generation.objects.create(owner=owner, kind=kind, prompt=prompt, **{**defaults, **fields})


def image(owner, prompt="A lighthouse at dusk", **fields) -> Generation:
    return finished(owner, Kind.IMAGE, prompt, **fields)


def make(account, user=None, files=None, **data) -> CreateForm:
    return CreateForm(data, files or {}, account=account, user=user)


def error(form: CreateForm, field: str) -> str:
    assert not form.is_valid()
    return " ".join(form.errors.get(field, []))


def video_file(seconds=1.0, **kwargs) -> SimpleUploadedFile:
    return SimpleUploadedFile("clip.mp4", mp4(seconds, **kwargs), content_type="video/mp4")


# --- modify video: the source and its limits -----------------------------------------------------


def test_modify_a_library_video_sends_its_address_mode_and_model(account, alice):
    source = finished(alice)
    form = make(account, what="modify", media_from="library", video_source=source.pk, mode="reimagine_3",
                model="ray-flash-2", prompt="as a watercolour")
    assert form.is_valid(), form.errors
    row, _ = form.save(alice)
    assert (row.kind, row.source, row.mode, row.model) == (Kind.MODIFY_VIDEO, source, "reimagine_3", "ray-flash-2")
    sent = row.luma_request()
    assert sent["media"] == source.video_url and sent["mode"] == "reimagine_3" and sent["prompt"] == "as a watercolour"


def test_modify_needs_a_finished_video_not_an_image_or_an_unfinished_one(account, alice):
    assert error(make(account, what="modify", media_from="library"), "video_source") == (
        "Choose a finished video from the library.")
    for wrong in (image(alice), finished(alice, state=State.DREAMING)):
        assert error(make(account, what="modify", video_source=wrong.pk), "video_source") == (
            "Choose a finished video from the library: Luma can only use a completed video it still has.")


@pytest.mark.parametrize("model,seconds,ok", [("ray-2", "9s", True), ("ray-2", "12s", False),
                                                ("ray-flash-2", "15s", True), ("ray-flash-2", "16s", False)])
def test_a_library_video_longer_than_the_model_modifies_is_refused(account, alice, model, seconds, ok):
    source = finished(alice, duration=seconds)
    form = make(account, what="modify", video_source=source.pk, model=model)
    if ok:
        assert form.is_valid(), form.errors
    else:
        limit = 10 if model == "ray-2" else 15
        assert error(form, "video_source").startswith(f"#{source.pk} is {seconds[:-1]} s long; {model} can modify at "
                                                      f"most {limit} s.")


def test_a_library_video_over_100_mb_is_refused(account, alice):
    source = finished(alice, archive_size=101 * 1024 * 1024)
    assert error(make(account, what="modify", video_source=source.pk), "video_source") == (
        f"#{source.pk} is 101 MB; Luma takes at most 100 MB.")


def test_an_uploaded_mp4_is_checked_remuxed_and_served_to_luma(account, alice, client):
    form = make(account, alice, {"video_file": video_file(2)}, what="modify", media_from="upload", mode="adhere_1")
    assert form.is_valid(), form.errors
    row, _ = form.save(alice)
    stored = KeyframeImage.objects.get()
    assert (stored.media_type, stored.codec, stored.duration, stored.width, stored.height) == ("video", "h264", 2.0,
                                                                                                160, 96)
    assert row.media_url == stored.public_url() and row.luma_request()["media"] == row.media_url
    assert row.aspect_ratio == "16:9"
    # Priced as Luma charges it, by the source's pixels and seconds: 160x96 is nearest 540p, for 2 s.
    assert (row.resolution, row.duration) == ("540p", "2.00s")
    assert row.price_cents == pricing.estimate_cents(Kind.MODIFY_VIDEO, "ray-2", "540p", "2.00s")
    served = client.get(row.media_url.removeprefix("https://team.example.com"))  # no login: Luma fetches it
    assert served.status_code == 200 and served["Content-Type"] == "video/mp4"
    body = b"".join(served.streaming_content)
    with av.open(io.BytesIO(body)) as container:  # a fresh MP4 with the picture track only
        assert [s.type for s in container.streams] == ["video"]


@pytest.mark.parametrize("model,seconds,message", [
    ("ray-2", 11, "This video is 11 s long; ray-2 can modify at most 10 s. Choose Ray Flash 2, or trim it."),
    ("ray-flash-2", 16, "This video is 16 s long; ray-flash-2 can modify at most 15 s. Trim it first."),
])
def test_an_uploaded_video_longer_than_the_model_takes_is_refused(account, alice, model, seconds, message):
    form = make(account, alice, {"video_file": video_file(seconds, fps=2)}, what="modify", media_from="upload",
                model=model)
    assert error(form, "video_file") == message


@pytest.mark.parametrize("data,codec,message", [
    (b"not a video at all" * 50, None, "This is not a video we can read. Use an MP4 or MOV file (H.264 or H.265)."),
    (None, "mpeg4", "This video is encoded as mpeg4; Luma needs H.264 or H.265 (HEVC). Export it again as an MP4."),
])
def test_an_unreadable_or_wrongly_encoded_video_is_refused(account, alice, data, codec, message):
    upload = SimpleUploadedFile("clip.mp4", data if data is not None else mp4(1, codec=codec))
    form = make(account, alice, {"video_file": upload}, what="modify", media_from="upload")
    assert error(form, "video_file") == message


def test_a_video_in_another_container_is_refused(account, alice):
    upload = SimpleUploadedFile("clip.mkv", mp4(1, fmt="matroska"))
    form = make(account, alice, {"video_file": upload}, what="modify", media_from="upload")
    assert error(form, "video_file") == "Matroska / WebM files are not accepted. Use an MP4 or MOV file (H.264 or H.265)."


def test_a_video_over_100_mb_is_refused_before_it_is_read(account, alice):
    upload = SimpleUploadedFile("clip.mp4", b"\0" * 16)
    upload.size = 100 * 1024 * 1024 + 1
    form = make(account, alice, {"video_file": upload}, what="modify", media_from="upload")
    assert error(form, "video_file") == "This video is 100.0 MB; Luma takes at most 100 MB."


def test_a_checked_video_in_a_form_with_other_mistakes_leaves_no_temporary_file(account, alice):
    form = make(account, alice, {"video_file": video_file(1)}, what="modify", media_from="upload", prompt="x" * 5001)
    assert error(form, "prompt") == "Prompt is too long, maximum length is 5000 characters"
    assert not os.path.exists(form.video.path) and KeyframeImage.objects.count() == 0


def test_uploads_no_generation_needs_are_deleted_after_a_day(account, alice):
    from generations.files import forget_unneeded_uploads

    form = make(account, alice, {"video_file": video_file(1)}, what="modify", media_from="upload")
    assert form.is_valid(), form.errors
    running, _ = form.save(alice)
    unused = KeyframeImage.objects.create(file=ContentFile(png(), name="u.png"), content_type="image/png", width=128,
                                          height=96, uploaded_by=alice)
    KeyframeImage.objects.update(created_at=timezone.now() - timedelta(days=2))
    unused_path = unused.file.path
    assert forget_unneeded_uploads() == 1  # the running modify's video stays
    assert not os.path.exists(unused_path) and list(KeyframeImage.objects.values_list("media_type", flat=True)) == ["video"]
    Generation.objects.filter(pk=running.pk).update(state=State.COMPLETED)
    assert forget_unneeded_uploads() == 0  # a kept generation's page still shows what it was made from
    Generation.objects.filter(pk=running.pk).update(deleted_at=timezone.now())
    assert forget_unneeded_uploads() == 1 and KeyframeImage.objects.count() == 0


def test_modify_without_an_upload_says_so(account, alice):
    assert error(make(account, alice, what="modify", media_from="upload"), "video_file") == (
        "Choose a video file to upload.")


def test_modify_takes_an_optional_first_frame(account, alice):
    source, still = finished(alice), image(alice)
    form = make(account, what="modify", video_source=source.pk, first_frame="image", first_frame_image=still.pk)
    assert form.is_valid(), form.errors
    row, _ = form.save(alice)
    assert row.luma_request()["first_frame"] == still.image_url
    assert error(make(account, what="modify", video_source=source.pk, first_frame="url"), "first_frame_url") == (
        "Enter the image's web address.")


def test_the_modify_modes_are_explained_in_plain_words(alice_client):
    page = alice_client.get("/").content.decode()
    for words in ("Adhere</strong> stays closest to your video", "Flex</strong> in between",
                  "Reimagine</strong> the loosest", "1 is the gentlest and 3 the strongest"):
        assert words in page
    assert len(re.findall(r'name="mode" value="(adhere|flex|reimagine)_[123]"', page)) == 9


# --- the video upload sent ahead (htmx) ----------------------------------------------------------


def test_a_video_sent_ahead_gives_a_token_the_form_then_uses(alice_client, alice, account):
    response = alice_client.post("/uploads/video/", {"video_file": video_file(3)}, headers=HTMX)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Uploaded: 3.0 s, 160×96, H.264" in page
    token = re.search(r'name="video_upload" value="([^"]+)"', page)[1]
    response = alice_client.post("/create/", {"what": "modify", "media_from": "upload", "video_upload": token,
                                              "model": "ray-2", "mode": "flex_2"})
    assert response.status_code == 302
    row = Generation.objects.get()
    assert row.kind == Kind.MODIFY_VIDEO and row.media_url.endswith(f"/k/{token}/")


def test_a_video_sent_ahead_is_checked_against_the_chosen_model_when_the_form_is_sent(alice_client):
    token_page = alice_client.post("/uploads/video/", {"video_file": video_file(12, fps=2)}, headers=HTMX)
    token = re.search(r'name="video_upload" value="([^"]+)"', token_page.content.decode())[1]
    response = alice_client.post("/create/", {"what": "modify", "media_from": "upload", "video_upload": token,
                                              "model": "ray-2"})
    assert response.status_code == 200
    assert "This video is 12 s long; ray-2 can modify at most 10 s." in response.content.decode()
    assert Generation.objects.count() == 0


def test_someone_elses_or_an_expired_upload_token_is_refused(alice_client, bob, account, alice):
    theirs = KeyframeImage.objects.create(file=ContentFile(mp4(1), name="v.mp4"), content_type="video/mp4",
                                          media_type="video", width=160, height=96, duration=1, uploaded_by=bob)
    form = make(account, alice, what="modify", media_from="upload", video_upload=theirs.token)
    assert error(form, "video_file") == "That upload has expired; choose the file again."
    mine = KeyframeImage.objects.create(file=ContentFile(mp4(1), name="w.mp4"), content_type="video/mp4",
                                        media_type="video", width=160, height=96, duration=1, uploaded_by=alice)
    KeyframeImage.objects.filter(pk=mine.pk).update(created_at=timezone.now() - timedelta(hours=2))
    form = make(account, alice, what="modify", media_from="upload", video_upload=mine.token)
    assert error(form, "video_file") == "That upload has expired; choose the file again."


def test_a_bad_video_sent_ahead_shows_why_where_it_was_chosen(alice_client):
    response = alice_client.post("/uploads/video/", {"video_file": SimpleUploadedFile("x.mp4", b"nope" * 100)},
                                 headers=HTMX)
    assert response.status_code == 200  # htmx swaps only 2xx answers
    assert "This is not a video we can read." in response.content.decode()
    assert KeyframeImage.objects.count() == 0


def test_the_video_upload_may_carry_100_mb_but_no_more(alice_client):
    response = alice_client.generic("POST", "/uploads/video/", b"", CONTENT_LENGTH=str(102 * 1024 * 1024),
                                     CONTENT_TYPE="multipart/form-data; boundary=x")
    assert response.status_code == 413
    assert "This video is 102 MB; Luma takes at most 100 MB." in response.content.decode()


def test_an_uploaded_video_is_served_while_its_generation_runs_and_not_after(client, alice, account):
    form = make(account, alice, {"video_file": video_file(1)}, what="reframe_video", media_from="upload")
    assert form.is_valid(), form.errors
    row, _ = form.save(alice)
    path = row.media_url.removeprefix("https://team.example.com")
    KeyframeImage.objects.update(created_at=timezone.now() - timedelta(hours=3))
    assert client.get(path).status_code == 200  # its generation is still pending
    Generation.objects.filter(pk=row.pk).update(state=State.COMPLETED)
    assert client.get(path).status_code == 404


def test_a_reference_upload_is_served_while_its_image_is_made(client, alice, account):
    form = make(account, alice, {"image_ref_1_file": SimpleUploadedFile("r.png", png())}, what="image",
                prompt="A fox")
    assert form.is_valid(), form.errors
    row, _ = form.save(alice)
    url = row.options["image_ref"][0]["url"]
    KeyframeImage.objects.update(created_at=timezone.now() - timedelta(hours=3))
    assert client.get(url.removeprefix("https://team.example.com")).status_code == 200
    Generation.objects.filter(pk=row.pk).update(state=State.FAILED)
    assert client.get(url.removeprefix("https://team.example.com")).status_code == 404


# --- reframe: geometry and limits ------------------------------------------------------------------


def test_reframe_a_video_sends_the_box_and_crop_in_canvas_pixels(account, alice):
    source = finished(alice, duration="9s")
    form = make(account, what="reframe_video", video_source=source.pk, aspect_ratio="9:16", model="ray-flash-2",
                grid_position_x="0", grid_position_y="724", resized_width="1152", resized_height="648",
                x_start="0", x_end="1152", y_start="724", y_end="1372")
    assert form.is_valid(), form.errors
    row, _ = form.save(alice)
    sent = row.luma_request()
    assert row.kind == Kind.REFRAME_VIDEO and sent["aspect_ratio"] == "9:16" and sent["media"] == source.video_url
    assert {k: sent[k] for k in ("grid_position_x", "grid_position_y", "resized_width", "resized_height", "x_start",
                                 "x_end", "y_start", "y_end")} == {
        "grid_position_x": 0, "grid_position_y": 724, "resized_width": 1152, "resized_height": 648, "x_start": 0,
        "x_end": 1152, "y_start": 724, "y_end": 1372}


def test_reframe_without_numbers_leaves_the_placement_to_luma(account, alice):
    form = make(account, what="reframe_video", video_source=finished(alice).pk, aspect_ratio="1:1")
    assert form.is_valid(), form.errors
    row, _ = form.save(alice)
    assert "grid_position_x" not in row.luma_request() and row.options == {}


@pytest.mark.parametrize("numbers,field,message", [
    ({"grid_position_x": "10"}, "grid_position_y", "Give the position and the size together: x, y, width and height."),
    ({"grid_position_x": "1.5", "grid_position_y": "0", "resized_width": "100", "resized_height": "100"},
     "grid_position_x", "Use whole pixels, like 640."),
    ({"grid_position_x": "-1", "grid_position_y": "0", "resized_width": "100", "resized_height": "100"},
     "grid_position_x", "Pixels count from 0: use 0 or more."),
    ({"grid_position_x": "0", "grid_position_y": "0", "resized_width": "0", "resized_height": "100"},
     "resized_width", "The width must be at least 1 pixel."),
    ({"grid_position_x": "1000", "grid_position_y": "0", "resized_width": "1100", "resized_height": "100"},
     "resized_width", "The source must stay inside the 2048×1152 canvas of 16:9: x + width is 2100."),
    ({"grid_position_x": "0", "grid_position_y": "100", "resized_width": "100", "resized_height": "1100"},
     "resized_height", "The source must stay inside the 2048×1152 canvas of 16:9: y + height is 1200."),
    ({"x_start": "10"}, "x_end", "Give all four crop bounds, or none."),
    ({"x_start": "500", "x_end": "500", "y_start": "0", "y_end": "10"}, "x_end", "x_end must be larger than x_start."),
    ({"x_start": "0", "x_end": "10", "y_start": "0", "y_end": "1153"}, "y_end",
     "The crop must stay inside the 2048×1152 canvas of 16:9: y_end is at most 1152."),
])
def test_reframe_numbers_are_checked_with_a_clear_message(account, alice, numbers, field, message):
    form = make(account, what="reframe_video", video_source=finished(alice).pk, aspect_ratio="16:9", **numbers)
    assert error(form, field) == message


def test_the_canvas_follows_the_target_aspect_ratio(account, alice):
    numbers = {"grid_position_x": "0", "grid_position_y": "0", "resized_width": "1152", "resized_height": "2048"}
    source = finished(alice).pk
    assert make(account, what="reframe_video", video_source=source, aspect_ratio="9:16", **numbers).is_valid()
    assert error(make(account, what="reframe_video", video_source=source, aspect_ratio="16:9", **numbers),
                 "resized_height") == "The source must stay inside the 2048×1152 canvas of 16:9: y + height is 2048."


def test_reframe_video_takes_30_s_with_ray_flash_2_and_10_s_with_ray_2(account, alice):
    long = finished(alice, duration="20s")
    assert make(account, what="reframe_video", video_source=long.pk, model="ray-flash-2").is_valid()
    assert error(make(account, what="reframe_video", video_source=long.pk, model="ray-2"), "video_source") == (
        f"#{long.pk} is 20 s long; ray-2 can reframe at most 10 s. Choose Ray Flash 2, or trim it.")


def test_reframe_an_image_from_the_library_or_an_upload(account, alice):
    still = image(alice)
    form = make(account, what="reframe_image", image_source=still.pk, aspect_ratio="21:9", image_model="photon-flash-1")
    assert form.is_valid(), form.errors
    row, _ = form.save(alice)
    assert (row.kind, row.model, row.luma_request()["media"]) == (Kind.REFRAME_IMAGE, "photon-flash-1", still.image_url)
    form = make(account, alice, {"image_source_file": SimpleUploadedFile("s.png", png())}, what="reframe_image",
                media_from="upload", aspect_ratio="1:1", client_token="second")
    assert form.is_valid(), form.errors
    row, _ = form.save(alice)
    assert row.media_url == KeyframeImage.objects.get().public_url()


def test_reframe_image_refuses_a_video_and_an_image_over_10_mb(account, alice, settings):
    assert error(make(account, what="reframe_image", image_source=finished(alice).pk), "image_source") == (
        "Choose a finished image from the library: Luma can only use a completed image it still has.")
    big = image(alice, archive_size=11 * 1024 * 1024)
    assert error(make(account, what="reframe_image", image_source=big.pk), "image_source") == (
        f"#{big.pk} is 11 MB; Photon reframes images of at most 10 MB.")
    settings.UPLOAD_MAX_BYTES = 20 * 1024 * 1024  # even where uploads may be larger
    upload = SimpleUploadedFile("s.png", png())
    upload.size = 10 * 1024 * 1024 + 512 * 1024
    form = make(account, alice, {"image_source_file": upload}, what="reframe_image", media_from="upload")
    assert error(form, "image_source_file") == "This image is 10.5 MB; Photon reframes images of at most 10 MB."


# --- Photon's references ------------------------------------------------------------------------


def test_photon_references_from_the_library_and_uploads_are_sent_as_luma_takes_them(account, alice):
    a, b, c = image(alice, "a"), image(alice, "b"), image(alice, "c")
    files = {"character_ref_2_file": SimpleUploadedFile("face.png", png())}
    form = make(account, alice, files, what="image", prompt="A portrait in a garden", image_model="photon-flash-1",
                image_ref_1=a.pk, image_ref_1_weight="0.3", image_ref_2=b.pk, style_ref=c.pk,
                style_ref_weight="0.6", character_ref_1=a.pk, modify_image_ref=b.pk, modify_image_ref_weight="0.05")
    assert form.is_valid(), form.errors
    row, _ = form.save(alice)
    sent = row.luma_request()
    assert sent["model"] == "photon-flash-1"
    assert sent["image_ref"] == [{"url": a.image_url, "weight": 0.3}, {"url": b.image_url, "weight": 0.85}]
    assert sent["style_ref"] == [{"url": c.image_url, "weight": 0.6}]
    assert sent["character_ref"] == {"identity0": {"images": [a.image_url, KeyframeImage.objects.get().public_url()]}}
    assert sent["modify_image_ref"] == {"url": b.image_url, "weight": 0.05}


def test_a_reference_makes_the_prompt_optional(account, alice):
    assert error(make(account, what="image"), "prompt") == "Prompt is required"
    assert make(account, what="image", image_ref_1=image(alice).pk).is_valid()


@pytest.mark.parametrize("weight", ["1.5", "-0.1", "heavy"])
def test_a_weight_outside_0_to_1_is_refused(account, alice, weight):
    form = make(account, what="image", prompt="A fox", image_ref_1=image(alice).pk, image_ref_1_weight=weight)
    assert error(form, "image_ref_1_weight") == "A weight is a number from 0 to 1."


def test_a_video_cannot_be_a_reference(account, alice):
    form = make(account, what="image", prompt="A fox", image_ref_1=finished(alice).pk)
    assert error(form, "image_ref_1") == (
        "Choose a finished image from the library: Luma can only use a completed image it still has.")


def test_a_reference_slot_takes_a_library_image_or_an_upload_not_both(account, alice):
    form = make(account, alice, {"style_ref_file": SimpleUploadedFile("s.png", png())}, what="image", prompt="A fox",
                style_ref=image(alice).pk)
    assert error(form, "style_ref_file") == "Pick a library image or upload one, not both."


def test_the_form_offers_4_image_references_4_character_images_a_style_and_a_modify_image(alice_client):
    page = alice_client.get("/").content.decode()
    for name, count in (("image_ref", 4), ("character_ref", 4)):
        assert re.findall(rf'name="{name}_(\d)"', page) == [str(n) for n in range(1, count + 1)]
    assert 'name="style_ref"' in page and 'name="modify_image_ref"' in page
    assert "for colour changes Luma advises a small weight, 0.0 to 0.1" in page
    assert "Up to 4 images of the same person" in page


# --- pickers ------------------------------------------------------------------------------------


def test_the_picker_shows_only_what_the_mode_accepts_newest_first(alice_client, alice):
    older, newer = finished(alice, prompt="older fox"), finished(alice, prompt="newer fox")
    still = image(alice, "a still fox")
    finished(alice, prompt="dreaming fox", state=State.DREAMING)
    gone = finished(alice, prompt="deleted fox")
    gone.deleted_at = timezone.now()
    gone.save()
    videos = alice_client.get("/pick/", {"field": "video_source", "accept": "video"}, headers=HTMX).content.decode()
    assert re.findall(r'data-pick="(\d+)"', videos) == [str(newer.pk), str(older.pk)]
    images = alice_client.get("/pick/", {"field": "image_ref_1", "accept": "image"}).content.decode()
    assert re.findall(r'data-pick="(\d+)"', images) == [str(still.pk)]


def test_the_picker_searches_prompts_and_says_when_nothing_matches(alice_client, alice):
    fox, _ = finished(alice, prompt="A red fox"), finished(alice, prompt="An owl at night")
    found = alice_client.get("/pick/", {"field": "video_source", "accept": "video", "q": "fox"}).content.decode()
    assert re.findall(r'data-pick="(\d+)"', found) == [str(fox.pk)]
    assert f"#{fox.pk}</strong> A red fox" in found
    none = alice_client.get("/pick/", {"field": "video_source", "accept": "video", "q": "whale"}).content.decode()
    assert "No finished video matches “whale”." in none


def test_the_picker_shows_posters_and_refuses_unknown_arguments(alice_client, alice):
    row = finished(alice, archive_state=ArchiveState.DONE)
    row.poster.save("p.jpg", ContentFile(png()), save=True)
    page = alice_client.get("/pick/", {"field": "frame0_generation", "accept": "video"}).content.decode()
    assert f'src="/generations/{row.pk}/poster.jpg"' in page
    assert alice_client.get("/pick/", {"field": "x", "accept": "audio"}).status_code == 404
    assert alice_client.get("/pick/", {"field": "<script>", "accept": "video"}).status_code == 404


def test_without_javascript_a_picker_is_a_number_field(alice_client, alice):
    """No <select> of every finished video: a number field that the grid fills, and that a person can type."""
    first = finished(alice)
    page = alice_client.get("/").content.decode()
    assert '<select name="frame0_generation"' not in page
    assert re.search(r'<input type="number" name="frame0_generation"', page)
    response = alice_client.post("/create/", {"what": "video", "prompt": "Keep going", "frame0": "generation",
                                              "frame0_generation": str(first.pk)})
    assert response.status_code == 302
    assert Generation.objects.get(kind=Kind.EXTEND).frame0_generation == first


def test_a_library_image_can_be_a_start_frame(account, alice):
    still = image(alice)
    form = make(account, what="video", frame0="image", frame0_image=still.pk)
    assert form.is_valid(), form.errors
    row, _ = form.save(alice)
    assert row.kind == Kind.IMAGE_TO_VIDEO and row.frame0_url == still.image_url


# --- card actions fill the form in ---------------------------------------------------------------


@pytest.mark.parametrize("how,what,fields", [
    ("start-frame", "video", {"frame0": "image", "frame0_image": "{image}"}),
    ("end-frame", "video", {"frame1": "image", "frame1_image": "{image}"}),
    ("reference", "image", {"image_ref_1": "{image}"}),
    ("modify", "image", {"modify_image_ref": "{image}"}),
    ("reframe", "reframe_image", {"image_source": "{image}"}),
])
def test_an_image_card_action_fills_in_the_form(alice_client, alice, how, what, fields):
    still = image(alice)
    page = alice_client.get(f"/generations/{still.pk}/continue/{how}/", headers=HTMX).content.decode()
    assert re.search(rf'name="what" value="{what}"[^>]*checked', page)
    if what == "image":  # the references it filled in are shown, not folded away
        assert '<details class="references" open>' in page
    for name, value in fields.items():
        value = value.format(image=still.pk)
        assert re.search(rf'name="{name}" value="{value}"', page) or re.search(
            rf'name="{name}" value="{value}"[^>]*checked', page), name


@pytest.mark.parametrize("how,what,fields", [
    ("modify", "modify", {"video_source": "{video}"}),
    ("reframe", "reframe_video", {"video_source": "{video}"}),
    ("extend", "video", {"frame0_generation": "{video}"}),
    ("reverse-extend", "video", {"frame1_generation": "{video}"}),
])
def test_a_video_card_action_fills_in_the_form(alice_client, alice, how, what, fields):
    clip = finished(alice)
    page = alice_client.get(f"/generations/{clip.pk}/continue/{how}/").content.decode()
    assert re.search(rf'name="what" value="{what}"[^>]*checked', page)
    for name, value in fields.items():
        assert re.search(rf'name="{name}" value="{value.format(video=clip.pk)}"', page), name


@pytest.mark.parametrize("how,message", [
    ("extend", "#{pk} is an image: Luma can only extend a video."),
    ("interpolate", "#{pk} is an image: Luma can only interpolate a video."),
])
def test_an_image_cannot_be_extended(alice_client, alice, how, message):
    still = image(alice)
    page = alice_client.get(f"/generations/{still.pk}/continue/{how}/").content.decode()
    assert message.format(pk=still.pk) in page
    assert not re.search(rf'name="frame0_generation" value="{still.pk}"', page)


def test_a_video_cannot_be_an_image_reference_nor_a_start_frame(alice_client, alice):
    clip = finished(alice)
    page = alice_client.get(f"/generations/{clip.pk}/continue/reference/").content.decode()
    assert f"#{clip.pk} is a video: Photon takes only images as references." in page
    assert not re.search(rf'name="image_ref_1" value="{clip.pk}"', page)
    page = alice_client.get(f"/generations/{clip.pk}/continue/start-frame/").content.decode()
    assert f"#{clip.pk} is a video: to use it as a start frame, extend it instead." in page


def test_an_unfinished_generation_says_it_is_not_ready(alice_client, alice):
    clip = finished(alice, state=State.DREAMING)
    page = alice_client.get(f"/generations/{clip.pk}/continue/modify/").content.decode()
    assert f"#{clip.pk} is not a finished video yet (dreaming)" in page


def test_try_again_of_a_reframe_keeps_its_source_and_numbers(alice_client, alice, account):
    source = finished(alice)
    form = make(account, what="reframe_video", video_source=source.pk, aspect_ratio="1:1", grid_position_x="10",
                grid_position_y="20", resized_width="300", resized_height="200")
    assert form.is_valid(), form.errors
    row, _ = form.save(alice)
    page = alice_client.get(f"/generations/{row.pk}/continue/again/").content.decode()
    assert re.search(r'name="what" value="reframe_video"[^>]*checked', page)
    assert re.search(rf'name="video_source" value="{source.pk}"', page)
    assert re.search(r'name="resized_width" value="300"', page)
