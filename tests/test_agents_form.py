"""The create form with Luma's Agents models (Ray 3.2, Uni-1, Uni-1 Max): each type offered by model, Luma's rules
refused before anything is sent (luma-agents-api.md sections 4.1-4.7, the documented messages of 9.3 word for word),
the rows each type becomes, and the price estimate for them."""

import io
import re
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from generations.forms import CreateForm
from generations.models import Generation, KeyframeImage, Kind, LumaAccount, Provider, State

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}


@pytest.fixture(autouse=True)
def both_providers(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PUBLIC_BASE_URL = "https://team.example.com"
    settings.LUMAAI_API_KEY = "luma-dm-test"
    settings.LUMA_AGENTS_API_KEY = "luma-api-test"
    return settings


@pytest.fixture
def account():
    return LumaAccount.get()


def png(size=(128, 96)) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(buffer, "PNG")
    return SimpleUploadedFile(f"{uuid.uuid4().hex[:6]}.png", buffer.getvalue(), content_type="image/png")


def finished(owner, kind=Kind.TEXT_TO_VIDEO, model="ray-3.2", **fields) -> Generation:
    is_image = kind in (Kind.IMAGE, Kind.IMAGE_EDIT, Kind.LAYERING)
    luma_id = str(uuid.uuid4())
    defaults = {"state": State.COMPLETED, "luma_id": luma_id, "model": model, "aspect_ratio": "16:9",
                "provider": Provider.AGENTS if model in ("ray-3.2", "uni-1", "uni-1-max") else Provider.DREAM_MACHINE,
                "duration": "" if is_image else "5s", "prompt": "A fox in the snow",
                ("image_url" if is_image else "video_url"): f"https://cdn.example.com/{luma_id}"}
    return Generation.objects.create(owner=owner, kind=kind, **{**defaults, **fields})


RAY = {"what": "video", "model": "ray-3.2", "resolution": "720p", "duration": "5s", "aspect_ratio": "16:9",
       "prompt": "A slow dolly shot through a misty greenhouse"}


def form(account, alice, files=None, **data) -> CreateForm:
    return CreateForm(data, files or {}, account=account, user=alice)


def error(made: CreateForm, field: str) -> str:
    assert not made.is_valid()
    return " ".join(made.errors.get(field, []))


def saved(made: CreateForm, owner) -> Generation:
    assert made.is_valid(), made.errors
    row, created = made.save(owner)
    assert created
    return row


# --- what is offered -------------------------------------------------------------------------------------------


def test_the_model_selects_list_each_configured_providers_models(account, alice, settings):
    offered = CreateForm(account=account, user=alice)
    assert [value for value, _ in offered.fields["model"].choices] == ["ray-2", "ray-flash-2", "ray-3.2"]
    assert [value for value, _ in offered.fields["image_model"].choices] == ["photon-1", "photon-flash-1", "uni-1",
                                                                              "uni-1-max"]
    assert ("image_edit", "Edit image") in offered.fields["what"].choices

    settings.LUMA_AGENTS_API_KEY = ""
    dream_only = CreateForm(account=account, user=alice)
    assert "ray-3.2" not in dict(dream_only.fields["model"].choices)
    assert "layering" not in dict(dream_only.fields["what"].choices)

    settings.LUMA_AGENTS_API_KEY, settings.LUMAAI_API_KEY = "luma-api-test", ""
    agents_only = CreateForm(account=account, user=alice)
    assert list(dict(agents_only.fields["model"].choices)) == ["ray-3.2"]
    assert list(dict(agents_only.fields["image_model"].choices)) == ["uni-1", "uni-1-max"]
    assert "reframe_image" not in dict(agents_only.fields["what"].choices)


def test_the_dashboard_offers_ray_32s_and_uni_1s_settings(alice_client):
    html = alice_client.get("/").content.decode()
    for words in ('<option value="ray-3.2">Ray 3.2', '<option value="uni-1">Uni-1</option>', "HDR (720p or 1080p)",
                  "Also export EXR", "Keyframe 1", "At frame", "Automatic", "Depth", "Face", "Normals", "Pose",
                  "Trajectory", "Blur", "Sparsity", "Up to 9 images", "Layer resolution", "Edit image", "Layers",
                  'id="create-allowed"'):
        assert words in html, words


# --- Ray 3.2 video: section 4.5's constraint matrix ------------------------------------------------------------


def test_a_ray_32_hdr_exr_video_becomes_an_agents_row(account, alice):
    row = saved(form(account, alice, **{**RAY, "resolution": "1080p", "hdr": "on", "exr_export": "on"}), alice)

    assert (row.provider, row.kind, row.model, row.resolution, row.duration) == (
        Provider.AGENTS, Kind.TEXT_TO_VIDEO, "ray-3.2", "1080p", "5s")
    assert row.options == {"hdr": True, "exr_export": True}


def test_a_ray_32_prompt_is_between_1_and_6000_characters(account, alice):
    assert error(form(account, alice, **{**RAY, "prompt": ""}), "prompt") == (
        "Prompt must be between 1 and 6000 characters")
    assert error(form(account, alice, **{**RAY, "prompt": "x" * 6001}), "prompt") == (
        "Prompt must be between 1 and 6000 characters")
    assert form(account, alice, **{**RAY, "prompt": "Go"}).is_valid()  # Dream Machine wants 3 at least; Luma's Agents 1


def test_hdr_needs_720p_or_1080p_and_exr_needs_hdr(account, alice):
    for low in ("360p", "540p"):
        assert error(form(account, alice, **{**RAY, "resolution": low, "hdr": "on"}), "hdr") == (
            "video.hdr requires video.resolution '720p' or '1080p'")
    assert error(form(account, alice, **{**RAY, "exr_export": "on"}), "exr_export") == (
        "video.exr_export requires video.hdr")
    assert form(account, alice, **{**RAY, "resolution": "360p"}).is_valid()  # the draft tier, SDR


def test_ten_seconds_takes_no_start_or_end_frame_and_no_hdr(account, alice):
    ten = {**RAY, "duration": "10s"}
    assert form(account, alice, **ten).is_valid()
    made = form(account, alice, **{**ten, "frame0": "url", "frame0_url": "https://cdn.example.com/a.jpg"})
    assert error(made, "duration") == "video.duration '10s' is not supported with video.start_frame or video.end_frame"
    assert error(form(account, alice, **{**ten, "hdr": "on"}), "hdr") == (
        "video.hdr is not supported with video.duration '10s' (except with video.keyframes)")


def test_loop_takes_no_ten_seconds_hdr_or_end_frame(account, alice):
    loop = {**RAY, "loop": "on"}
    assert form(account, alice, **loop).is_valid()
    assert error(form(account, alice, **{**loop, "duration": "10s"}), "loop") == (
        "video.loop is not supported with video.duration '10s'")
    assert error(form(account, alice, **{**loop, "hdr": "on"}), "loop") == "video.loop is not supported with video.hdr"
    made = form(account, alice, **{**loop, "frame1": "url", "frame1_url": "https://cdn.example.com/b.jpg"})
    assert error(made, "loop") == "video.loop is not supported with video.end_frame"


def test_keyframes_are_pinned_to_frames_inside_the_clip_and_exclusive_with_start_end_and_loop(account, alice):
    first, last = finished(alice, Kind.IMAGE, "uni-1"), finished(alice, Kind.IMAGE, "uni-1")
    keys = {**RAY, "duration": "10s", "hdr": "on", "keyframe_1": first.pk, "keyframe_1_index": "0",
            "keyframe_2": last.pk, "keyframe_2_index": "240"}
    row = saved(form(account, alice, **keys), alice)  # keyframes allow 10 s and HDR
    assert row.kind == Kind.IMAGE_TO_VIDEO
    assert row.options["keyframes"] == [{"url": first.image_url, "generation": first.pk, "index": 0},
                                        {"url": last.image_url, "generation": last.pk, "index": 240}]

    five = {**keys, "duration": "5s", "client_token": "x"}
    assert error(form(account, alice, **five), "keyframe_2_index") == (
        "video.keyframes_indexes[1] must be between 0 and 120")
    same = {**keys, "keyframe_2_index": "0"}
    assert "must be unique" in error(form(account, alice, **same), "keyframe_2_index")
    no_index = {**keys, "keyframe_2_index": ""}
    assert error(form(account, alice, **no_index), "keyframe_2_index") == (
        "Give the frame this image is pinned to, 0 to 240.")
    with_start = {**keys, "duration": "5s", "hdr": "", "keyframe_2_index": "120", "loop": "on", "frame0": "url",
                  "frame0_url": "https://cdn.example.com/a.jpg"}
    assert error(form(account, alice, **with_start), "keyframe_1") == (
        "video.keyframes cannot be combined with video.start_frame, video.loop")


def test_an_uploaded_keyframe_is_kept_and_sent_by_its_upload(account, alice):
    made = form(account, alice, {"keyframe_1_file": png()}, **{**RAY, "keyframe_1_index": "60"})
    row = saved(made, alice)
    (key,) = row.options["keyframes"]
    assert key["index"] == 60 and KeyframeImage.from_public_url(key["url"]).uploaded_by == alice


def test_extend_takes_one_ray_32_video_sdr_only(account, alice):
    clip = finished(alice)
    extend = {**RAY, "frame0": "generation", "frame0_generation": clip.pk, "prompt": "It keeps walking"}
    row = saved(form(account, alice, **extend), alice)
    assert (row.kind, row.frame0_generation, row.provider) == (Kind.EXTEND, clip, Provider.AGENTS)

    assert error(form(account, alice, **{**extend, "hdr": "on"}), "hdr") == (
        "video.hdr is not supported when extending a video (extend is SDR only)")
    both = {**extend, "frame1": "url", "frame1_url": "https://cdn.example.com/b.jpg"}
    assert error(form(account, alice, **both), "frame1") == (
        "extending a video takes exactly one anchor frame (video.start_frame or video.end_frame)")
    ray2 = finished(alice, model="ray-2")
    made = form(account, alice, **{**extend, "frame0_generation": ray2.pk})
    assert error(made, "frame0_generation") == f"Ray 3.2 extends only videos it made: #{ray2.pk} is ray-2."


def test_ray_32_video_ratios_are_lumas_six(account, alice):
    assert error(form(account, alice, **{**RAY, "aspect_ratio": "9:21"}), "aspect_ratio") == (
        "Invalid aspect_ratio '9:21'. Valid: 1:1, 16:9, 21:9, 3:4, 4:3, 9:16")


def test_dream_machine_models_refuse_what_only_the_agents_models_take(account, alice):
    ray2 = {**RAY, "model": "ray-2"}
    assert error(form(account, alice, **{**ray2, "resolution": "360p"}), "resolution") == (
        "360p is Ray 3.2's draft tier; Ray 2 makes 540p to 4K.")
    assert error(form(account, alice, **{**ray2, "duration": "10s"}), "duration") == (
        "Ray 2 makes 5 or 9 second clips; 10 seconds is Ray 3.2's.")
    assert "Edit image is Uni-1's" in error(form(account, alice, what="image_edit", image_model="photon-1",
                                                  prompt="Night", image_source=finished(alice, Kind.IMAGE, "uni-1").pk),
                                             "image_model")
    row = saved(form(account, alice, **{**ray2, "hdr": "on"}), alice)  # a hidden Ray 3.2 setting is left out
    assert (row.provider, row.options) == (Provider.DREAM_MACHINE, {})


# --- video_edit and video_reframe ------------------------------------------------------------------------------


def test_a_video_edit_with_a_strength_and_controls(account, alice):
    clip = finished(alice)
    edit = {"what": "modify", "model": "ray-3.2", "resolution": "720p", "video_source": clip.pk, "mode": "flex_2",
            "prompt": "Same shot on a snowy peak", "control_depth": "on", "depth_blur": "0.3", "control_pose": "on",
            "pose_strength": "coarse", "control_face": "on", "control_trajectory": "on", "trajectory_sparsity": "0.7",
            "control_normals": "on", "normals_augmentation": "0.2"}
    row = saved(form(account, alice, **edit), alice)

    assert (row.kind, row.provider, row.source, row.mode) == (Kind.MODIFY_VIDEO, Provider.AGENTS, clip, "flex_2")
    assert row.options["controls"] == {"depth": {"enabled": True, "blur": 0.3}, "face": {"enabled": True},
                                       "normals": {"enabled": True, "augmentation": 0.2},
                                       "pose": {"enabled": True, "strength": "coarse"},
                                       "trajectory": {"enabled": True, "sparsity": 0.7}}


def test_an_automatic_video_edit_takes_no_controls(account, alice):
    clip = finished(alice)
    auto = {"what": "modify", "model": "ray-3.2", "video_source": clip.pk, "mode": "auto", "prompt": "As anime"}
    row = saved(form(account, alice, **auto), alice)
    assert row.mode == "" and "controls" not in row.options  # providers sends auto_controls

    made = form(account, alice, **{**auto, "control_face": "on"})
    assert error(made, "mode").startswith("video.edit.auto_controls cannot be combined with strength or controls")
    made = form(account, alice, **{**auto, "mode": "flex_1", "depth_blur": "0.8"})
    assert error(made, "control_depth") == "Tick Depth to use its blur."
    made = form(account, alice, **{**auto, "model": "ray-2"})
    assert error(made, "mode") == "Automatic is Ray 3.2's; choose how far Ray 2 may go from the source."


def test_a_video_edit_source_is_at_most_18_seconds_and_takes_hdr_at_720p(account, alice):
    long = finished(alice, duration="20s")
    made = form(account, alice, what="modify", model="ray-3.2", video_source=long.pk, mode="flex_1", prompt="Snow")
    assert error(made, "video_source") == "source: video is longer than 18 s"
    made = form(account, alice, what="modify", model="ray-3.2", video_source=finished(alice).pk, mode="flex_1",
                prompt="Snow", resolution="540p", hdr="on")
    assert error(made, "hdr") == "video.hdr requires video.resolution '720p' or '1080p'"


def test_a_reframe_with_a_source_position_as_fractions_of_the_canvas(account, alice):
    clip = finished(alice)
    reframe = {"what": "reframe_video", "model": "ray-3.2", "resolution": "720p", "aspect_ratio": "9:16",
               "video_source": clip.pk, "prompt": "Extend the sky above and the street below",
               "grid_position_x": "0", "grid_position_y": "700", "resized_width": "1152", "resized_height": "648"}
    row = saved(form(account, alice, **reframe), alice)

    assert (row.kind, row.provider, row.aspect_ratio, row.source) == (Kind.REFRAME_VIDEO, Provider.AGENTS, "9:16", clip)
    assert row.options == {"source_position": {"x_norm": 0.0, "y_norm": 0.3418, "w_norm": 1.0, "h_norm": 0.3164}}
    centred = saved(form(account, alice, **{name: value for name, value in reframe.items() if "_" not in name
                                            or name in ("aspect_ratio", "video_source")}), alice)
    assert centred.options == {}


def test_reframe_refuses_hdr_vertical_1080p_crops_and_a_first_frame(account, alice):
    clip = finished(alice)
    reframe = {"what": "reframe_video", "model": "ray-3.2", "resolution": "720p", "aspect_ratio": "9:16",
               "video_source": clip.pk, "prompt": "More sky"}
    assert error(form(account, alice, **{**reframe, "hdr": "on"}), "hdr") == (
        "video.hdr is not supported for type 'video_reframe'")
    assert error(form(account, alice, **{**reframe, "resolution": "1080p"}), "resolution") == (
        "video_reframe at 1080p to a vertical aspect ratio (9:16, 3:4) is coming soon; use 720p")
    assert form(account, alice, **{**reframe, "resolution": "1080p", "aspect_ratio": "1:1"}).is_valid()
    crop = {**reframe, "x_start": "0", "x_end": "100", "y_start": "0", "y_end": "100"}
    assert "does not crop" in error(form(account, alice, **crop), "x_start")
    first = {**reframe, "first_frame": "url", "first_frame_url": "https://cdn.example.com/a.jpg"}
    assert error(form(account, alice, **first), "first_frame") == (
        "video.start_frame is not supported for type 'video_reframe'")
    assert error(form(account, alice, **{**reframe, "aspect_ratio": "9:21"}), "aspect_ratio") == (
        "Invalid aspect_ratio '9:21'. Valid: 1:1, 16:9, 21:9, 3:4, 4:3, 9:16")


# --- Uni-1: image, image_edit, layering --------------------------------------------------------------------------


def test_a_uni_1_image_takes_up_to_9_references_from_the_library_or_uploads(account, alice):
    pictures = [finished(alice, Kind.IMAGE, "uni-1") for _ in range(8)]
    data = {"what": "image", "image_model": "uni-1-max", "aspect_ratio": "3:2", "prompt": "A fox in a library",
            "style": "manga", "output_format": "jpeg", **{f"uni_ref_{n}": p.pk for n, p in enumerate(pictures, 1)}}
    row = saved(form(account, alice, {"uni_ref_9_file": png()}, **data), alice)

    assert (row.kind, row.provider, row.model, row.aspect_ratio) == (Kind.IMAGE, Provider.AGENTS, "uni-1-max", "3:2")
    refs = row.options["image_ref"]
    assert [r["url"] for r in refs[:8]] == [p.image_url for p in pictures] and len(refs) == 9
    assert KeyframeImage.from_public_url(refs[8]["url"]) is not None
    assert (row.options["style"], row.options["format"]) == ("manga", "jpeg")


def test_uni_1_image_ratios_are_lumas_nine(account, alice):
    made = form(account, alice, what="image", image_model="uni-1", aspect_ratio="4:3", prompt="A fox")
    assert error(made, "aspect_ratio") == (
        "Invalid aspect_ratio '4:3'. Valid: 1:1, 1:2, 1:3, 16:9, 2:1, 2:3, 3:1, 3:2, 9:16")


def test_an_image_edit_takes_a_source_and_up_to_8_references(account, alice):
    source = finished(alice, Kind.IMAGE, "uni-1")
    refs = {f"uni_ref_{n}": finished(alice, Kind.IMAGE, "uni-1").pk for n in range(1, 10)}
    data = {"what": "image_edit", "image_model": "uni-1", "image_source": source.pk, "prompt": "Make it night", **refs}
    assert error(form(account, alice, **data), "uni_ref_9") == (
        "image_edit supports up to 8 reference images (source occupies one slot)")
    del data["uni_ref_9"]
    row = saved(form(account, alice, **data), alice)
    assert (row.kind, row.source, len(row.options["image_ref"])) == (Kind.IMAGE_EDIT, source, 8)
    made = form(account, alice, what="image_edit", image_model="uni-1", prompt="Make it night")
    assert error(made, "image_source") == "Choose a finished image from the library."


def test_a_layering_of_an_upload_at_2k(account, alice):
    made = form(account, alice, {"image_source_file": png()}, what="layering", image_model="uni-1",
                media_from="upload", layering_resolution="2k", prompt="")
    row = saved(made, alice)
    assert (row.kind, row.provider, row.options) == (Kind.LAYERING, Provider.AGENTS, {"layering_resolution": "2k"})
    assert KeyframeImage.from_public_url(row.media_url).uploaded_by == alice

    long = form(account, alice, {"image_source_file": png()}, what="layering", image_model="uni-1",
                media_from="upload", prompt="x" * 501)
    assert error(long, "prompt") == "Prompt must be at most 500 characters for type 'layering'"
    max_model = form(account, alice, what="layering", image_model="uni-1-max", prompt="",
                     image_source=finished(alice, Kind.IMAGE, "uni-1").pk)
    assert error(max_model, "image_model") == "Type 'layering' is not supported for model 'uni-1-max'"
    reframe = form(account, alice, what="reframe_image", image_model="uni-1", prompt="",
                   image_source=finished(alice, Kind.IMAGE, "uni-1").pk)
    assert "Uni-1 does not reframe images" in error(reframe, "image_model")


# --- through the view, and the price -----------------------------------------------------------------------------


def test_the_create_view_makes_an_agents_row_and_keeps_its_settings(alice_client):
    answer = alice_client.post("/create/", {**RAY, "resolution": "1080p", "hdr": "on", "client_token": "t1"},
                               headers=HTMX)
    assert answer.status_code == 200
    row = Generation.objects.get(client_token="t1")
    assert (row.provider, row.options) == (Provider.AGENTS, {"hdr": True})
    html = answer.content.decode()
    assert re.search(r'<option value="ray-3.2" selected>', html)
    assert re.search(r'name="hdr"[^>]*checked', html)

    refused = alice_client.post("/create/", {**RAY, "resolution": "540p", "hdr": "on", "client_token": "t2"},
                                headers=HTMX)
    assert "video.hdr requires video.resolution &#x27;720p&#x27; or &#x27;1080p&#x27;" in refused.content.decode()
    assert not Generation.objects.filter(client_token="t2").exists()


def estimate(client, **query) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", client.get("/estimate/", query).content.decode()).split())


def test_the_estimate_prices_agents_models_with_hdr_exr_and_references(alice_client):
    assert "$0.30 (Ray 3.2 · 720p · 5 s · 16:9)" in estimate(alice_client, what="video", model="ray-3.2",
                                                              resolution="720p", duration="5s", aspect_ratio="16:9")
    assert "$0.60 (Ray 3.2 · 720p HDR · 5 s" in estimate(alice_client, what="video", model="ray-3.2",
                                                          resolution="720p", duration="5s", hdr="on")
    assert "$3.60 (Ray 3.2 · 1080p HDR + EXR · 5 s" in estimate(alice_client, what="video", model="ray-3.2",
                                                                 resolution="1080p", hdr="on", exr_export="on")
    assert "$0.04 (Uni-1 · 1:1)" in estimate(alice_client, what="image", image_model="uni-1", aspect_ratio="1:1")
    assert "$0.05 (Uni-1 · 1:1 · 3 references)" in estimate(alice_client, what="image", image_model="uni-1",
                                                            aspect_ratio="1:1", uni_ref_1="4", uni_ref_files="2")
    assert "$0.12 (Uni-1 Max · 1:1 · 6 references)" in estimate(alice_client, what="image", image_model="uni-1-max",
                                                                aspect_ratio="1:1", uni_ref_files="6")
    assert "(Uni-1 · 2k layers)" in estimate(alice_client, what="layering", image_model="uni-1",
                                             layering_resolution="2k")
    assert "$0.60 (Ray 3.2 · 720p · as long as the source" in estimate(alice_client, what="reframe_video",
                                                                        model="ray-3.2", resolution="720p")


def test_try_again_and_card_uses_fill_the_form_in_with_the_agents_model(alice_client, alice):
    clip = finished(alice, resolution="1080p", options={"hdr": True, "exr_export": True})
    html = alice_client.get(f"/generations/{clip.pk}/continue/again/").content.decode()
    assert re.search(r'<option value="ray-3.2" selected>', html)
    assert re.search(r'name="hdr"[^>]*checked', html) and re.search(r'name="exr_export"[^>]*checked', html)

    edit = finished(alice, Kind.MODIFY_VIDEO, source=clip, mode="", options={})
    html = alice_client.get(f"/generations/{edit.pk}/continue/again/").content.decode()
    assert re.search(r'value="auto"[^>]*checked', html)

    picture = finished(alice, Kind.IMAGE, "uni-1-max")
    html = alice_client.get(f"/generations/{picture.pk}/continue/reference/").content.decode()
    assert re.search(r'<option value="uni-1-max" selected>', html)
    assert re.search(rf'name="uni_ref_1"[^>]*value="{picture.pk}"', html)
    html = alice_client.get(f"/generations/{picture.pk}/continue/modify/").content.decode()
    assert re.search(r'value="image_edit"[^>]*checked', html)
    assert re.search(rf'name="image_source"[^>]*value="{picture.pk}"', html)


def test_with_only_the_agents_api_a_dream_machine_cards_settings_choose_its_models(alice_client, alice, settings):
    settings.LUMAAI_API_KEY = ""
    picture = finished(alice, Kind.IMAGE, "photon-1")
    html = alice_client.get(f"/generations/{picture.pk}/continue/start-frame/").content.decode()
    assert re.search(r'<option value="ray-3.2" selected>', html)
    assert "ray-2" not in re.search(r'<select name="model".*?</select>', html, re.S).group(0)
