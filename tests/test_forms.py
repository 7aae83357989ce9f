"""The create form applies Luma's rules before anything is sent; uploads are checked with Pillow."""

import io
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from generations.forms import AddAudioForm, CreateForm, UpscaleForm, check_upload, initial_for
from generations.models import Generation, Kind, LumaAccount, State
from generations.uploads import megabytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def account():
    account = LumaAccount.get()
    account.concepts = ["dolly_zoom", "handheld"]
    account.camera_motions = ["camera orbit left", "camera push in"]
    account.save()
    return account


def finished_video(owner, **fields) -> Generation:
    defaults = {"prompt": "A fox in the snow", "state": State.COMPLETED, "luma_id": str(uuid.uuid4()), "model": "ray-2"}
    return Generation.objects.create(owner=owner, **{**defaults, **fields})


def image_bytes(fmt="PNG", size=(128, 96)) -> bytes:
    buffer = io.BytesIO()
    picture = Image.new("RGB", size, (200, 40, 90))
    if fmt == "MPO":  # a phone's multi-picture JPEG
        picture.save(buffer, fmt, save_all=True, append_images=[Image.new("RGB", size)])
    else:
        picture.save(buffer, fmt)
    return buffer.getvalue()


def upload(fmt="PNG", size=(128, 96), name=None, data=None) -> SimpleUploadedFile:
    extension = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp", "GIF": "gif"}.get(fmt, "bin")
    return SimpleUploadedFile(name or f"frame.{extension}", data if data is not None else image_bytes(fmt, size))


def form(account, files=None, **data) -> CreateForm:
    return CreateForm({"what": "video", **data}, files or {}, account=account)


def error(form: CreateForm, field: str) -> str:
    assert not form.is_valid()
    return " ".join(form.errors.get(field, []))


# --- prompt rules --------------------------------------------------------------------------------


def test_a_text_to_video_without_a_prompt_says_prompt_is_required(account):
    assert error(form(account, prompt=""), "prompt") == "Prompt is required"


def test_a_prompt_shorter_than_three_characters_is_too_short(account):
    assert error(form(account, prompt="hi"), "prompt") == "Prompt is too short, minimum length is 3 characters"


def test_a_prompt_longer_than_5000_characters_is_too_long(account):
    assert error(form(account, prompt="x" * 5001), "prompt") == (
        "Prompt is too long, maximum length is 5000 characters"
    )


def test_prompts_of_exactly_3_and_5000_characters_are_accepted(account):
    assert form(account, prompt="fox").is_valid()
    assert form(account, prompt="x" * 5000).is_valid()


def test_an_image_start_frame_makes_the_prompt_optional(account):
    assert form(account, frame0="url", frame0_url="https://example.com/start.jpg").is_valid()


def test_an_end_frame_image_alone_also_makes_the_prompt_optional(account):
    assert form(account, frame1="url", frame1_url="https://example.com/end.jpg").is_valid()


def test_extending_a_video_still_needs_a_prompt(account, alice):
    source = finished_video(alice)
    assert error(form(account, frame0="generation", frame0_generation=source.pk), "prompt") == "Prompt is required"


def test_an_image_generation_needs_a_prompt(account):
    assert error(form(account, what="image", prompt=""), "prompt") == "Prompt is required"


def test_a_camera_motion_is_added_to_the_prompt(account):
    created = form(account, prompt="A fox in the snow", camera_motion="camera orbit left")
    assert created.is_valid()
    assert created.full_prompt() == "A fox in the snow, camera orbit left"


def test_a_camera_motion_alone_is_a_prompt(account):
    created = form(account, prompt="", camera_motion="camera push in")
    assert created.is_valid()
    assert created.full_prompt() == "camera push in"


def test_a_camera_motion_not_in_lumas_list_is_refused(account):
    assert "Select a valid choice" in error(form(account, prompt="fox", camera_motion="barrel roll"), "camera_motion")


# --- loop rules ----------------------------------------------------------------------------------

END_FRAME = "A loop ends where it starts, so it cannot also have an end frame: untick Loop, or make it without an end frame."
KEYFRAMES = ("A loop ends where it starts, so it cannot have both a start and an end image: untick Loop, or make it "
             "without an end frame.")
INTERPOLATION = "An interpolation runs from one frame to another, so it cannot loop: untick Loop."
# (frames, what Luma would say, what the form says instead)
LOOP_CASES = [
    ({"frame1": "url", "frame1_url": "https://example.com/e.jpg"}, "end frame", END_FRAME),
    (
        {"frame0": "url", "frame0_url": "https://example.com/s.jpg", "frame1": "url",
         "frame1_url": "https://example.com/e.jpg"},
        "keyframes", KEYFRAMES,
    ),
    ({"frame1": "generation", "frame1_generation": "B"}, "extend reverse",
     "A reverse extend leads into a video, so it cannot loop: untick Loop."),
    (
        {"frame0": "generation", "frame0_generation": "A", "frame1": "url", "frame1_url": "https://example.com/e.jpg"},
        "interpolate video to image", INTERPOLATION,
    ),
    (
        {"frame0": "url", "frame0_url": "https://example.com/s.jpg", "frame1": "generation", "frame1_generation": "B"},
        "interpolate image to video", INTERPOLATION,
    ),
    (
        {"frame0": "generation", "frame0_generation": "A", "frame1": "generation", "frame1_generation": "B"},
        "interpolate between two videos", INTERPOLATION,
    ),
]


@pytest.mark.parametrize(("frames", "luma_case", "message"), LOOP_CASES, ids=[case for _, case, _ in LOOP_CASES])
def test_loop_with_an_end_frame_is_refused_in_plain_words(account, alice, frames, luma_case, message):
    videos = {"A": finished_video(alice).pk, "B": finished_video(alice).pk}
    frames = {key: videos.get(value, value) for key, value in frames.items()}
    said = error(form(account, prompt="A fox in the snow", loop="on", **frames), "loop")
    assert said == message and "not supported" not in said  # not Luma's terse "Loop is not supported for ..."


def test_loop_is_allowed_for_text_to_video_a_start_image_and_extend(account, alice):
    assert form(account, prompt="A fox", loop="on").is_valid()
    assert form(account, loop="on", frame0="url", frame0_url="https://example.com/s.jpg").is_valid()
    assert form(account, prompt="A fox", loop="on", frame0="generation", frame0_generation=finished_video(alice).pk).is_valid()


# --- sources, concepts, urls ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"state": State.DREAMING},
        {"state": State.FAILED},
        {"kind": Kind.IMAGE},
        {"luma_id": None},
    ],
    ids=["still dreaming", "failed", "an image", "unknown to Luma"],
)
def test_only_completed_videos_can_be_extended(account, alice, fields):
    source = finished_video(alice, **fields)
    message = error(form(account, prompt="A fox", frame0="generation", frame0_generation=source.pk), "frame0_generation")
    assert message == "Choose a finished video: Luma extends and interpolates only completed generations."


def test_a_deleted_video_cannot_be_continued(account, alice):
    from django.utils import timezone

    source = finished_video(alice, deleted_at=timezone.now())
    assert "finished video" in error(
        form(account, prompt="A fox", frame1="generation", frame1_generation=source.pk), "frame1_generation"
    )


def test_choosing_a_video_slot_without_a_video_asks_for_one(account):
    assert error(form(account, prompt="A fox", frame0="generation"), "frame0_generation") == "Choose a finished video."


def test_concepts_are_refused_for_ray_flash_2(account):
    assert error(form(account, prompt="A fox", model="ray-flash-2", concepts=["dolly_zoom"]), "concepts") == (
        "Concepts work with Ray 2 only: remove them or switch to Ray 2."
    )


def test_concepts_are_accepted_for_ray_2(account):
    assert form(account, prompt="A fox", model="ray-2", concepts=["dolly_zoom", "handheld"]).is_valid()


def test_a_concept_luma_does_not_list_is_refused(account):
    assert "Select a valid choice" in error(form(account, prompt="A fox", concepts=["warp_drive"]), "concepts")


def test_an_image_url_slot_needs_an_address(account):
    assert error(form(account, frame0="url", frame0_url=""), "frame0_url") == "Enter the image's web address."


def test_an_image_address_must_be_http_or_https(account):
    assert "https://" in error(form(account, frame0="url", frame0_url="ftp://example.com/a.jpg"), "frame0_url")


def test_an_upload_slot_needs_a_file(account):
    assert error(form(account, frame0="upload"), "frame0_file") == "Choose an image file to upload."


def test_unknown_models_resolutions_durations_and_ratios_are_refused(account):
    bad = form(account, prompt="A fox", model="ray-9", resolution="8k", duration="60s", aspect_ratio="2:1")
    assert not bad.is_valid()
    assert set(bad.errors) == {"model", "resolution", "duration", "aspect_ratio"}


def test_lumas_defaults_are_preselected(account):
    html = str(CreateForm(account=account))
    for name, value in (("model", "ray-2"), ("resolution", "720p"), ("duration", "5s"), ("aspect_ratio", "16:9"),
                        ("image_model", "photon-1")):
        assert f'<option value="{value}" selected>' in html, name


def test_every_form_carries_a_fresh_client_token(account):
    first, second = CreateForm(account=account), CreateForm(account=account)
    assert first.initial["client_token"] != second.initial["client_token"]
    assert len(first.initial["client_token"]) == 32


# --- kinds ---------------------------------------------------------------------------------------


def test_the_kind_follows_the_keyframes(account, alice):
    a, b = finished_video(alice).pk, finished_video(alice).pk
    url = {"frame0": "url", "frame0_url": "https://example.com/s.jpg"}
    cases = [
        ({"prompt": "A fox"}, Kind.TEXT_TO_VIDEO),
        (url, Kind.IMAGE_TO_VIDEO),
        ({"frame1": "url", "frame1_url": "https://example.com/e.jpg"}, Kind.IMAGE_TO_VIDEO),
        ({"prompt": "A fox", "frame0": "generation", "frame0_generation": a}, Kind.EXTEND),
        ({"prompt": "A fox", "frame1": "generation", "frame1_generation": b}, Kind.REVERSE_EXTEND),
        ({"prompt": "A fox", "frame0": "generation", "frame0_generation": a, "frame1": "generation",
          "frame1_generation": b}, Kind.INTERPOLATE),
        ({"what": "image", "prompt": "A fox", **url}, Kind.IMAGE),
    ]
    for data, kind in cases:
        made = form(account, **data)
        assert made.is_valid(), made.errors
        assert made.kind == kind, data


# --- uploads -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "stored"), [("PNG", "PNG"), ("JPEG", "JPEG"), ("WEBP", "JPEG"), ("MPO", "JPEG")])
def test_png_jpeg_webp_and_phone_uploads_are_accepted_and_stored_as_png_or_jpeg(fmt, stored):
    checked = check_upload(upload(fmt))
    assert (checked.format, checked.width, checked.height) == (stored, 128, 96)
    with Image.open(io.BytesIO(checked.data)) as picture:
        assert (picture.format, picture.size) == (stored, (128, 96))


def test_a_text_file_is_not_an_image():
    with pytest.raises(Exception, match="not an image we can read"):
        check_upload(upload(name="notes.png", data=b"just some words, not pixels"))


def test_a_gif_is_refused_by_format():
    with pytest.raises(Exception, match="GIF images are not accepted"):
        check_upload(upload("GIF"))


def test_an_image_wider_than_4096_pixels_is_refused():
    with pytest.raises(Exception, match="5000×64 pixels; the limit is 4096×4096"):
        check_upload(upload("PNG", size=(5000, 64)))


def test_an_image_smaller_than_64_pixels_is_refused():
    with pytest.raises(Exception, match="32×32 pixels; it must be at least 64×64"):
        check_upload(upload("PNG", size=(32, 32)))


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(settings):
    settings.UPLOAD_MAX_BYTES = 1024 * 1024
    big = upload(name="big.png", data=b"\0" * (1024 * 1024 + 1))
    with pytest.raises(Exception, match=r"1\.0 MB; images can be at most 1 MB"):
        check_upload(big)


def test_a_truncated_image_is_refused():
    data = image_bytes("PNG", (200, 200))
    with pytest.raises(Exception, match="damaged"):
        check_upload(upload(name="cut.png", data=data[: len(data) // 2]))


# --- prefill, upscale, audio ---------------------------------------------------------------------


def test_try_again_fills_in_every_setting(alice):
    source = finished_video(alice)
    failed = Generation.objects.create(
        owner=alice, prompt="Kite surfing", model="ray-flash-2", resolution="1080p", duration="9s", aspect_ratio="9:16",
        loop=False, frame0_url="https://example.com/kite.jpg", frame1_generation=source, state=State.FAILED,
    )
    initial = initial_for(failed, "again")
    assert initial | {"client_token": ""} == {
        "client_token": "", "what": "video", "prompt": "Kite surfing", "aspect_ratio": "9:16", "model": "ray-flash-2",
        "resolution": "1080p", "duration": "9s", "loop": False, "concepts": [], "frame0": "url",
        "frame0_url": "https://example.com/kite.jpg", "frame1": "generation", "frame1_generation": source.pk,
    }


def test_continue_actions_prefill_the_right_frames(alice):
    source = finished_video(alice)
    assert initial_for(source, "extend")["frame0_generation"] == source.pk
    assert initial_for(source, "reverse-extend")["frame1_generation"] == source.pk
    interpolate = initial_for(source, "interpolate")
    assert (interpolate["frame0_generation"], interpolate["frame1"]) == (source.pk, "generation")
    loop = initial_for(source, "loop")
    assert (loop["frame0_generation"], loop["loop"]) == (source.pk, True)


def test_a_video_only_action_on_an_image_names_everything_an_image_can_do(alice):
    from generations.access import IMAGE_USES, refusal

    still = finished_video(alice, kind=Kind.IMAGE, model="photon-1", image_url="https://cdn.example.com/i.jpg")
    assert "modify" in IMAGE_USES  # the card offers "Modify image"
    assert refusal(still, "extend") == (
        f"#{still.pk} is an image: Luma can only extend a video. An image can start or end a video, guide an image as "
        "a reference, be modified or be reframed.")


def test_upscale_offers_only_resolutions_above_the_source(alice):
    source = finished_video(alice, resolution="720p")
    assert [value for value, _ in UpscaleForm(source=source).fields["resolution"].choices] == ["1080p", "4k"]
    assert not UpscaleForm({"resolution": "540p"}, source=source).is_valid()


def test_an_audio_prompt_over_5000_characters_is_refused(alice):
    audio = AddAudioForm({"prompt": "x" * 5001}, source=finished_video(alice))
    assert audio.errors["prompt"] == ["Prompt is too long, maximum length is 5000 characters"]


# --- reframe of an upload: the box keeps the source's shape ---------------------------------------


def reframe_upload(account, user, file, what="reframe_image", **data) -> CreateForm:
    field = "image_source_file" if what == "reframe_image" else "video_file"
    return CreateForm({"what": what, "media_from": "upload", "aspect_ratio": "16:9", **data}, {field: file},
                      account=account, user=user)


def portrait_box(**box) -> dict:
    return {"grid_position_x": "0", "grid_position_y": "0", "resized_width": "2048", "resized_height": "1152", **box}


def test_a_portrait_upload_in_a_landscape_box_is_refused_as_it_would_be_stretched(account, alice):
    made = reframe_upload(account, alice, upload(size=(600, 800)), **portrait_box())
    assert error(made, "resized_width") == (
        "The box is 2048×1152, but the uploaded image is 600×800, so Luma would stretch it. Keep its shape: a width "
        "of 864 for a height of 1152.")


def test_a_portrait_upload_in_a_box_of_its_own_shape_is_accepted(account, alice, settings, tmp_path):
    settings.MEDIA_ROOT, settings.PUBLIC_BASE_URL = tmp_path, "https://team.example.com"
    made = reframe_upload(account, alice, upload(size=(600, 800)),
                          **portrait_box(grid_position_x="592", resized_width="864"))
    assert made.is_valid(), made.errors
    row, _ = made.save(alice)
    assert row.options == {"grid_position_x": 592, "grid_position_y": 0, "resized_width": 864, "resized_height": 1152}
    # A pixel of rounding either way is the same shape: 863×1151 is what dragging the corner may leave.
    assert reframe_upload(account, alice, upload(size=(600, 800)),
                          **portrait_box(resized_width="863", resized_height="1151")).is_valid()


def test_an_upload_turned_upright_is_measured_upright(account, alice):
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 800×600, shown turned a quarter: a 600×800 portrait
    Image.new("RGB", (800, 600), (20, 90, 200)).save(buffer, "JPEG", exif=exif)
    made = reframe_upload(account, alice, upload("JPEG", data=buffer.getvalue()), **portrait_box())
    assert "the uploaded image is 600×800" in error(made, "resized_width")


def test_an_uploaded_video_in_a_box_of_another_shape_is_refused(account, alice):
    import av
    import numpy
    from django.core.files.uploadedfile import SimpleUploadedFile

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as out:
        stream = out.add_stream("h264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 180, 320, "yuv420p"
        for _ in range(5):
            for packet in stream.encode(av.VideoFrame.from_ndarray(numpy.zeros((320, 180, 3), numpy.uint8), "rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    clip = SimpleUploadedFile("tall.mp4", buffer.getvalue(), content_type="video/mp4")
    made = reframe_upload(account, alice, clip, what="reframe_video", **portrait_box())
    assert error(made, "resized_width") == (
        "The box is 2048×1152, but the uploaded video is 180×320, so Luma would stretch it. Keep its shape: a width "
        "of 648 for a height of 1152.")


def test_a_reframed_upload_too_large_once_saved_again_is_refused(account, alice, monkeypatch):
    # A coarse JPEG grows when saved again at our quality; Photon's 10 MB counts what Luma fetches, our copy.
    noisy = io.BytesIO()
    Image.effect_noise((400, 400), 90).convert("RGB").save(noisy, "JPEG", quality=40)
    sent = noisy.getvalue()
    stored = len(check_upload(upload("JPEG", data=sent)).data)
    limit = (len(sent) + stored) // 2
    assert len(sent) < limit < stored
    monkeypatch.setattr("generations.create_form.REFRAME_IMAGE_MAX_BYTES", limit)
    made = reframe_upload(account, alice, upload("JPEG", data=sent))
    assert error(made, "image_source_file") == (
        f"Saved again without its metadata, this image is {megabytes(stored)}; Photon reframes images of at most "
        f"{megabytes(limit)}. Use one with fewer pixels, or a JPEG instead of a PNG.")
