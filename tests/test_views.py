"""The dashboard as a team member uses it: create every seed mode, live cards, the library, detail, delete."""

import io
import re
import uuid
from pathlib import Path
from datetime import datetime, timedelta

import pytest
import responses
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image

from generations.models import ArchiveState, Favourite, Generation, GenerationEvent, KeyframeImage, Kind, LumaAccount
from generations.models import State, _duration_cache
from generations.views_library import PAGE_SIZE

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PUBLIC_BASE_URL = "https://team.example.com"
    settings.LUMA_BASE_URL = "http://127.0.0.1:9011/dream-machine/v1"
    return settings.MEDIA_ROOT


@pytest.fixture
def account():
    account = LumaAccount.get()
    account.concepts = ["dolly_zoom", "handheld"]
    account.camera_motions = ["camera orbit left"]
    account.credit_balance = 184250.0
    account.credits_checked_at = timezone.now()
    account.save()
    return account


@pytest.fixture
def bob_client(client, bob):
    from django.test import Client

    other = Client()
    other.force_login(bob)
    return other


@pytest.fixture
def staff_client(staff):
    from django.test import Client

    other = Client()
    other.force_login(staff)
    return other


def make(owner, prompt="A fox in the snow", **fields) -> Generation:
    return Generation.objects.create(owner=owner, prompt=prompt, model=fields.pop("model", "ray-2"), **fields)


def finished(owner, prompt="A fox in the snow", archived=True, **fields) -> Generation:
    now = timezone.now()
    row = make(owner, prompt, state=State.COMPLETED, luma_id=str(uuid.uuid4()), submitted_at=now - timedelta(seconds=90),
               completed_at=now, resolution=fields.pop("resolution", "720p"), duration=fields.pop("duration", "5s"),
               **fields)
    if archived:
        row.archive_state = ArchiveState.DONE
        row.archive_file.save(f"v{row.pk}.mp4", ContentFile(b"\0\0\0\x18ftypmp42" + b"\0" * 64), save=False)
        row.poster.save(f"p{row.pk}.jpg", ContentFile(png((32, 18), "JPEG")), save=False)
        row.save()
    return row


def png(size=(128, 96), fmt="PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(buffer, fmt)
    return buffer.getvalue()


def text(response) -> str:
    """What a person reads: the HTML without tags, whitespace collapsed."""
    html = response.content.decode()
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def card_ids(response) -> list[int]:
    return [int(pk) for pk in re.findall(r'<article id="card-(\d+)"', response.content.decode())]


def video_form(**fields) -> dict:
    return {"what": "video", "model": "ray-2", "resolution": "720p", "duration": "5s", "aspect_ratio": "16:9",
            "client_token": uuid.uuid4().hex, **fields}


# --- accounts ------------------------------------------------------------------------------------

PAGES = ["/", "/library/", "/poll/", "/create/", "/me/", "/generations/{pk}/", "/generations/{pk}/delete/",
         "/generations/{pk}/favourite/", "/generations/{pk}/upscale/", "/generations/{pk}/audio/",
         "/generations/{pk}/continue/extend/", "/generations/{pk}/video/", "/generations/{pk}/poster.jpg",
         "/generations/{pk}/download/"]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_sends_an_anonymous_visitor_to_log_in(client, alice, path):
    row = finished(alice)
    response = client.get(path.format(pk=row.pk))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_the_login_page_keyframes_and_the_webhook_need_no_login(client, alice):
    image = KeyframeImage.objects.create(file=ContentFile(png(), name="k.png"), content_type="image/png", width=128,
                                         height=96, uploaded_by=alice)
    assert client.get("/accounts/login/").status_code == 200
    assert client.get(f"/k/{image.token}/").status_code == 200
    webhook = client.post("/webhooks/luma/not-a-token/", data="{}", content_type="application/json")
    assert webhook.status_code != 302


def test_the_login_page_has_the_apps_look(client):
    response = client.get("/accounts/login/")
    assert "Log in to lumaweb" in text(response)
    assert "generations/app" in response.content.decode()


# --- dashboard and create ------------------------------------------------------------------------


def test_the_dashboard_shows_the_create_form_with_lumas_defaults_and_the_library(alice_client, alice, account):
    finished(alice, "A red fox trotting through snow")
    response = alice_client.get("/")
    page = text(response)
    assert "Make something" in page and "Library" in page
    assert "A red fox trotting through snow" in page
    html = response.content.decode()
    assert '<option value="ray-2" selected>' in html and '<option value="720p" selected>' in html
    assert '<option value="5s" selected>' in html and '<option value="16:9" selected>' in html
    assert 'value="camera orbit left"' in html and 'value="dolly_zoom"' in html


def test_the_credit_badge_shows_dollars(alice_client, account):
    assert "$1,842.50 credit" in text(alice_client.get("/"))


def test_text_to_video_makes_a_pending_row_and_redirects_to_its_card(alice_client, alice):
    response = alice_client.post("/create/", video_form(prompt="A tiger walking in snow", resolution="1080p"))
    row = Generation.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/#card-{row.pk}"
    assert (row.kind, row.state, row.owner, row.prompt, row.resolution) == (
        Kind.TEXT_TO_VIDEO, State.PENDING, alice, "A tiger walking in snow", "1080p")
    assert row.callback_url.startswith("https://team.example.com/webhooks/luma/")


def test_the_same_form_posted_twice_makes_one_row(alice_client):
    data = video_form(prompt="A tiger walking in snow")
    alice_client.post("/create/", data)
    second = alice_client.post("/create/", data, headers=HTMX)
    assert Generation.objects.count() == 1
    assert second.status_code == 200 and 'hx-swap-oob="afterbegin:#cards"' not in second.content.decode()


def test_with_htmx_the_new_card_arrives_at_the_top_with_a_fresh_form(alice_client):
    data = video_form(prompt="A tiger walking in snow", model="ray-flash-2", resolution="540p")
    response = alice_client.post("/create/", data, headers=HTMX)
    row = Generation.objects.get()
    html = response.content.decode()
    assert 'hx-swap-oob="afterbegin:#cards"' in html and f'id="card-{row.pk}"' in html
    assert f"Requested #{row.pk}" in text(response)
    assert data["client_token"] not in html
    assert '<option value="ray-flash-2" selected>' in html and '<option value="540p" selected>' in html
    assert '"generation-created"' in response["HX-Trigger"]


def test_an_invalid_form_shows_the_message_next_to_the_field_and_makes_nothing(alice_client):
    response = alice_client.post("/create/", video_form(prompt="hi"), headers=HTMX)
    assert response.status_code == 200
    assert "Prompt is too short, minimum length is 3 characters" in text(response)
    assert Generation.objects.count() == 0
    without_js = alice_client.post("/create/", video_form(prompt="", loop="on", frame1="url",
                                                         frame1_url="https://example.com/e.jpg"))
    assert "so it cannot also have an end frame: untick Loop, or make it without an end frame." in text(without_js)
    assert "Library" in text(without_js)
    assert Generation.objects.count() == 0


def test_image_to_video_by_url_with_start_and_end_frames(alice_client):
    alice_client.post("/create/", video_form(frame0="url", frame0_url="https://example.com/start.jpg",
                                            frame1="url", frame1_url="https://example.com/end.jpg"))
    row = Generation.objects.get()
    assert (row.kind, row.frame0_url, row.frame1_url, row.prompt) == (
        Kind.IMAGE_TO_VIDEO, "https://example.com/start.jpg", "https://example.com/end.jpg", "")


def test_image_to_video_with_a_start_frame_and_loop(alice_client):
    alice_client.post("/create/", video_form(prompt="Tiger prowling", loop="on", frame0="url",
                                            frame0_url="https://example.com/start.jpg"))
    row = Generation.objects.get()
    assert (row.kind, row.loop, row.frame0_url, row.frame1_url) == (Kind.IMAGE_TO_VIDEO, True,
                                                                     "https://example.com/start.jpg", "")


@pytest.mark.parametrize(("fmt", "stored"), [("PNG", "PNG"), ("JPEG", "JPEG"), ("WEBP", "JPEG")])
def test_an_uploaded_start_frame_is_stored_and_served_publicly_for_luma(alice_client, client, fmt, stored):
    upload = SimpleUploadedFile(f"start.{fmt.lower()}", png((640, 360), fmt))
    alice_client.post("/create/", {**video_form(prompt="Tiger prowling"), "frame0": "upload", "frame0_file": upload})
    row, image = Generation.objects.get(), KeyframeImage.objects.get()
    assert row.frame0_url == f"https://team.example.com/k/{image.token}/"
    assert (image.width, image.height, image.content_type) == (640, 360, f"image/{stored.lower()}")
    client.logout()
    served = client.get(f"/k/{image.token}/")
    assert served.status_code == 200 and served["Content-Type"] == f"image/{stored.lower()}"
    with Image.open(io.BytesIO(b"".join(served.streaming_content))) as picture:  # re-encoded, same picture
        assert (picture.format, picture.size) == (stored, (640, 360))
        assert max(abs(a - b) for a, b in zip(picture.convert("RGB").getpixel((320, 180)), (10, 120, 200))) < 4


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("notes.png", b"these are words, not pixels", "This is not an image we can read"),
        ("huge.png", png((4097, 80)), "the limit is 4096×4096"),
        ("big.png", b"\0" * (10 * 1024 * 1024 + 1), "images can be at most 10 MB"),
    ],
    ids=["a text file", "a huge image", "an oversized file"],
)
def test_a_bad_upload_is_refused_with_a_message_and_no_rows(alice_client, settings, name, content, message):
    settings.UPLOAD_MAX_BYTES = 10 * 1024 * 1024
    data = {**video_form(prompt="Tiger prowling"), "frame1": "upload", "frame1_file": SimpleUploadedFile(name, content)}
    response = alice_client.post("/create/", data, headers=HTMX)
    assert message in text(response)
    assert Generation.objects.count() == 0 and KeyframeImage.objects.count() == 0


def test_extend_reverse_extend_and_interpolate_point_at_the_source_generations(alice_client, alice, bob):
    first, second = finished(alice), finished(bob)
    alice_client.post("/create/", video_form(prompt="Keep going", frame0="generation", frame0_generation=first.pk))
    alice_client.post("/create/", video_form(prompt="Lead in", frame1="generation", frame1_generation=second.pk))
    alice_client.post("/create/", video_form(prompt="Morph", frame0="generation", frame0_generation=first.pk,
                                            frame1="generation", frame1_generation=second.pk))
    rows = Generation.objects.filter(state=State.PENDING).order_by("pk")
    assert [(r.kind, r.frame0_generation_id, r.frame1_generation_id) for r in rows] == [
        (Kind.EXTEND, first.pk, None), (Kind.REVERSE_EXTEND, None, second.pk),
        (Kind.INTERPOLATE, first.pk, second.pk)]


def test_extending_an_unfinished_generation_is_refused(alice_client, alice):
    dreaming = make(alice, state=State.DREAMING, luma_id=str(uuid.uuid4()))
    response = alice_client.post("/create/", video_form(prompt="Go on", frame0="generation",
                                                       frame0_generation=dreaming.pk), headers=HTMX)
    assert "Luma extends and interpolates only completed generations" in text(response)
    assert Generation.objects.count() == 1


def test_an_image_generation_uses_photon(alice_client):
    alice_client.post("/create/", {"what": "image", "prompt": "A lighthouse at night", "image_model": "photon-flash-1",
                                   "aspect_ratio": "1:1"})
    row = Generation.objects.get()
    assert (row.kind, row.model, row.aspect_ratio, row.resolution) == (Kind.IMAGE, "photon-flash-1", "1:1", "")


def test_camera_motion_and_concepts_are_saved(alice_client, account):
    alice_client.post("/create/", video_form(prompt="A fox", camera_motion="camera orbit left", concepts=["dolly_zoom"]))
    row = Generation.objects.get()
    assert (row.prompt, row.concepts) == ("A fox, camera orbit left", ["dolly_zoom"])


def test_the_form_warns_when_luma_cannot_reach_us(alice_client, settings):
    settings.LUMAAI_API_KEY = "luma-real-key"
    settings.LUMA_BASE_URL = "https://api.lumalabs.ai/dream-machine/v1"
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:8000"
    assert "Luma cannot reach http://127.0.0.1:8000" in text(alice_client.get("/"))
    settings.PUBLIC_BASE_URL = "https://team.example.com"
    assert "Luma cannot reach" not in text(alice_client.get("/"))


def test_no_warning_with_the_agents_api_alone_which_needs_no_address_of_ours(alice_client, settings):
    settings.LUMAAI_API_KEY = ""
    settings.LUMA_AGENTS_API_KEY = "agents-real-key"
    settings.LUMA_BASE_URL = "https://api.lumalabs.ai/dream-machine/v1"  # the default, unused without its key
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:8000"
    assert "Luma cannot reach" not in text(alice_client.get("/"))


def test_no_warning_against_the_simulator(alice_client, settings):
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:8000"
    assert "Luma cannot reach" not in text(alice_client.get("/"))


# --- continue from a card ------------------------------------------------------------------------


def test_extend_from_a_card_fills_in_the_form(alice_client, alice):
    source = finished(alice, "A fox in the snow")
    response = alice_client.get(f"/generations/{source.pk}/continue/extend/", headers=HTMX)
    html = response.content.decode()
    assert 'id="create-panel"' in html and "<html" not in html
    assert f"Extend from #{source.pk}." in text(response)
    assert 'name="frame0" value="generation" class="" id="id_frame0_3" checked' in html.replace('  ', ' ') or re.search(
        r'name="frame0" value="generation"[^>]*checked', html)
    # The picker holds the number and shows the chosen video's thumbnail.
    assert re.search(rf'name="frame0_generation" value="{source.pk}"', html)
    assert f"#{source.pk}</strong> A fox in the snow" in html
    assert "create-prefilled" in response["HX-Trigger"]


def test_continue_links_work_without_javascript(alice_client, alice):
    source = finished(alice)
    response = alice_client.get(f"/generations/{source.pk}/continue/interpolate/")
    assert "Interpolate from #" in text(response) and "Library" in text(response)


def test_try_again_brings_back_a_failed_generations_settings(alice_client, alice):
    failed = make(alice, "Kite surfing at dusk", state=State.FAILED, reason="Job failed", resolution="1080p",
                  duration="9s", aspect_ratio="9:16")
    html = alice_client.get(f"/generations/{failed.pk}/continue/again/").content.decode()
    assert "Kite surfing at dusk</textarea>" in html
    assert '<option value="1080p" selected>' in html and '<option value="9s" selected>' in html
    assert '<option value="9:16" selected>' in html


def test_continuing_an_unfinished_generation_says_so(alice_client, alice):
    dreaming = make(alice, state=State.DREAMING)
    assert "not a finished video" in text(alice_client.get(f"/generations/{dreaming.pk}/continue/extend/"))


def test_upscale_and_add_audio_make_rows_from_the_source(alice_client, alice):
    source = finished(alice, resolution="720p")
    page = alice_client.get(f"/generations/{source.pk}/upscale/")
    token = re.search(r'name="client_token" value="(\w+)"', page.content.decode())[1]
    alice_client.post(f"/generations/{source.pk}/upscale/", {"resolution": "4k", "client_token": token})
    alice_client.post(f"/generations/{source.pk}/upscale/", {"resolution": "4k", "client_token": token})
    alice_client.post(f"/generations/{source.pk}/audio/", {"prompt": "Wind and birds", "negative_prompt": "music"})
    upscale, audio = Generation.objects.exclude(pk=source.pk).order_by("pk")
    assert (upscale.kind, upscale.source, upscale.resolution) == (Kind.UPSCALE, source, "4k")
    assert (audio.kind, audio.source, audio.prompt, audio.negative_prompt) == (
        Kind.ADD_AUDIO, source, "Wind and birds", "music")


def test_only_a_finished_video_can_be_upscaled(alice_client, alice):
    queued = make(alice, state=State.QUEUED, luma_id=str(uuid.uuid4()))
    assert "can only upscale a finished video" in text(alice_client.get(f"/generations/{queued.pk}/upscale/"))
    response = alice_client.post(f"/generations/{queued.pk}/upscale/", {"resolution": "4k"})
    assert response.status_code == 400 and Generation.objects.count() == 1


# --- cards ---------------------------------------------------------------------------------------


def test_cards_say_each_state_in_words(alice_client, alice, bob):
    now = timezone.now()
    make(alice, "waiting one", created_at=now - timedelta(seconds=30))
    make(bob, "waiting two", created_at=now - timedelta(seconds=20))
    make(alice, "sent", state=State.UNCONFIRMED, submitted_at=now)
    make(alice, "queued", state=State.QUEUED, submitted_at=now, queued_at=now)
    make(alice, "dreaming", state=State.DREAMING, submitted_at=now - timedelta(seconds=10), dreaming_at=now)
    make(alice, "archiving", state=State.COMPLETED, archive_state=ArchiveState.DOWNLOADING, archive_size=1000,
         archive_received=450, completed_at=now)
    make(alice, "failed", state=State.FAILED, reason="Contains blacklisted words", failed_at=now)
    make(alice, "rejected", state=State.REJECTED, reason="Failed to read user input frames", failed_at=now)
    page = text(alice_client.get("/"))
    # The clock goes on while the page is made: a second or two more on a busy machine.
    assert re.search(r"Waiting for a slot 3[0-2] s 1st in line", page)
    assert re.search(r"Waiting for a slot 2[0-2] s 2nd in line", page)
    assert re.search(r"Submitted [0-2] s checking that Luma has it", page)
    assert re.search(r"Queued [0-2] s", page)
    # Nothing similar has finished yet: the model's prior (Ray 2, 60 s) and a word on how sure that is.
    assert re.search(r"Dreaming [0-2] s about [45]\d s left \(a guess: nothing similar finished here yet\)", page)
    assert "Archiving" in page and 'value="45"' in alice_client.get("/").content.decode()
    assert "Contains blacklisted words Luma refused the prompt. Reword it and try again. Edit the prompt" in page
    assert "Failed to read user input frames Luma could not use the image" in page and "Fix the image" in page


def test_a_finished_card_plays_the_archived_video_with_its_poster(alice_client, alice):
    row = finished(alice)
    html = alice_client.get("/").content.decode()
    assert f'data-video="/generations/{row.pk}/video/"' in html
    assert f'data-poster="/generations/{row.pk}/poster.jpg"' in html
    assert "Done" in text(alice_client.get("/"))
    assert alice_client.get(f"/generations/{row.pk}/video/").status_code == 200


# --- the poll ------------------------------------------------------------------------------------


def live_values(response) -> list[str]:
    return re.findall(r'class="live" name="live" value="([^"]+)"', response.content.decode())


def test_only_live_cards_ask_to_be_polled(alice_client, alice):
    dreaming = make(alice, state=State.DREAMING)
    finished(alice)
    values = live_values(alice_client.get("/"))
    assert [value.split(":")[0] for value in values] == [str(dreaming.pk)]
    assert 'id="poller"' in alice_client.get("/").content.decode()


def test_a_page_with_nothing_live_has_nothing_to_poll(alice_client, alice):
    finished(alice)
    make(alice, state=State.FAILED, reason="Job failed")
    assert live_values(alice_client.get("/")) == []


@responses.activate  # any call to Luma would fail the test: the poll reads only our database
def test_the_poll_answers_only_cards_that_changed(alice_client, alice):
    queued = make(alice, "queued one", state=State.QUEUED)
    steady = make(alice, "steady one", state=State.DREAMING)
    values = live_values(alice_client.get("/"))
    assert alice_client.get("/poll/", {"live": values}, headers=HTMX).status_code == 204
    Generation.objects.filter(pk=queued.pk).update(state=State.DREAMING, dreaming_at=timezone.now())
    response = alice_client.get("/poll/", {"live": values}, headers=HTMX)
    assert card_ids(response) == [queued.pk]
    assert 'hx-swap-oob="true"' in response.content.decode()
    assert "Dreaming" in text(response) and str(steady.pk) not in str(card_ids(response))


def test_a_card_that_finished_stops_asking_to_be_polled(alice_client, alice):
    row = make(alice, state=State.DREAMING)
    values = live_values(alice_client.get("/"))
    Generation.objects.filter(pk=row.pk).update(state=State.FAILED, reason="Job failed")
    response = alice_client.get("/poll/", {"live": values})
    assert card_ids(response) == [row.pk] and live_values(response) == []
    assert "Job failed" in text(response)


def test_archiving_progress_shows_up_in_the_poll(alice_client, alice):
    row = make(alice, state=State.COMPLETED, archive_state=ArchiveState.DOWNLOADING, archive_size=1000,
               archive_received=100)
    values = live_values(alice_client.get("/"))
    Generation.objects.filter(pk=row.pk).update(archive_received=800)
    assert 'value="80"' in alice_client.get("/poll/", {"live": values}).content.decode()


def test_a_deleted_card_is_removed_by_the_poll(alice_client, alice):
    row = make(alice, state=State.QUEUED)
    values = live_values(alice_client.get("/"))
    row.mark_deleted(alice)
    response = alice_client.get("/poll/", {"live": values})
    assert f'<article id="card-{row.pk}" hx-swap-oob="delete">' in response.content.decode()


def test_a_new_place_in_the_queue_updates_the_card(alice_client, alice, bob):
    first = make(bob, "first", created_at=timezone.now() - timedelta(seconds=9))
    second = make(alice, "second")
    values = live_values(alice_client.get("/"))
    Generation.objects.filter(pk=first.pk).update(state=State.SUBMITTING)
    response = alice_client.get("/poll/", {"live": values})
    assert sorted(card_ids(response)) == sorted([first.pk, second.pk])
    assert "1st in line" in text(response)


def test_the_poll_ignores_nonsense(alice_client):
    assert alice_client.get("/poll/", {"live": ["x:1", ":", "12"]}).status_code in (200, 204)


# --- library -------------------------------------------------------------------------------------


def test_everyone_sees_every_visible_generation_newest_first(bob_client, alice, bob):
    old = finished(alice, "old one", created_at=timezone.now() - timedelta(hours=1))
    new = make(bob, "new one")
    gone = finished(alice, "gone one")
    gone.mark_deleted(alice)
    assert card_ids(bob_client.get("/")) == [new.pk, old.pk]


def test_filters_narrow_the_library(alice_client, alice, bob):
    fox = finished(alice, "A fox in the snow")
    bee = finished(bob, "A bee on lavender", model="ray-flash-2")
    failed = make(bob, "A failed cathedral", state=State.FAILED, reason="Job failed")
    flying = make(alice, "A hummingbird", state=State.DREAMING)
    picture = make(bob, "A lighthouse", kind=Kind.IMAGE, model="photon-1", state=State.COMPLETED)

    def ids(**query):
        return card_ids(alice_client.get("/library/", query, headers=HTMX))

    assert ids(state="completed") == [picture.pk, bee.pk, fox.pk]
    assert ids(state="failed") == [failed.pk]
    assert ids(state="live") == [flying.pk]
    assert ids(kind="image") == [picture.pk]
    assert ids(model="ray-flash-2") == [bee.pk]
    assert ids(owner="mine") == [flying.pk, fox.pk]
    assert ids(q="LAVENDER") == [bee.pk]
    assert ids(q="bee", owner="mine") == []
    assert "Nothing matches these filters." in text(alice_client.get("/library/", {"q": "zebra"}, headers=HTMX))


def test_the_filtered_list_replaces_the_address_and_works_without_javascript(alice_client, alice):
    finished(alice, "A fox")
    response = alice_client.get("/library/", {"q": "fox", "state": "completed"}, headers=HTMX)
    assert response["HX-Replace-Url"] == "/?q=fox&state=completed"
    assert 'id="library-results"' in response.content.decode() and "<html" not in response.content.decode()
    plain = alice_client.get("/library/", {"q": "fox"})
    assert plain.status_code == 302 and plain["Location"] == "/?q=fox"
    assert "A fox" in text(alice_client.get("/", {"q": "fox"}))


def test_the_library_loads_older_pages_as_you_scroll(alice_client, alice):
    start = timezone.now()
    rows = [make(alice, f"clip {i}", state=State.FAILED, reason="Job failed", created_at=start - timedelta(minutes=i))
            for i in range(PAGE_SIZE + 3)]
    first = alice_client.get("/")
    assert card_ids(first) == [row.pk for row in rows[:PAGE_SIZE]]
    more = re.search(r'hx-get="(/library/\?[^"]+)" hx-trigger="revealed"', first.content.decode())[1]
    second = alice_client.get(more.replace("&amp;", "&"), headers=HTMX)
    assert card_ids(second) == [row.pk for row in rows[PAGE_SIZE:]]
    assert "Older generations" not in text(second)
    without_js = alice_client.get("/", {"before": rows[PAGE_SIZE - 1].pk})
    assert card_ids(without_js) == [row.pk for row in rows[PAGE_SIZE:]] and "Newest first" in text(without_js)


def test_favourites_are_per_user_and_filterable(alice_client, bob_client, alice):
    fox, bee = finished(alice, "fox"), finished(alice, "bee")
    response = alice_client.post(f"/generations/{fox.pk}/favourite/", headers=HTMX)
    assert 'aria-pressed="true"' in response.content.decode() and "<article" not in response.content.decode()
    assert Favourite.objects.filter(user__username="alice", generation=fox).exists()
    assert card_ids(alice_client.get("/library/", {"favourites": "on"}, headers=HTMX)) == [fox.pk]
    assert card_ids(bob_client.get("/library/", {"favourites": "on"}, headers=HTMX)) == []
    again = alice_client.post(f"/generations/{fox.pk}/favourite/", headers=HTMX)
    assert 'aria-pressed="false"' in again.content.decode() and not Favourite.objects.exists()
    plain = alice_client.post(f"/generations/{bee.pk}/favourite/", HTTP_REFERER="http://testserver/?q=bee")
    assert plain.status_code == 302 and plain["Location"] == "http://testserver/?q=bee"


# --- delete --------------------------------------------------------------------------------------


def test_the_owner_deletes_after_a_confirmation(alice_client, alice):
    row = finished(alice, "A fox in the snow")
    confirm = alice_client.get(f"/generations/{row.pk}/delete/")
    assert "Delete #" in text(confirm) and "deleted on Luma too" in text(confirm)
    Generation.objects.get(pk=row.pk, deleted_at__isnull=True)
    response = alice_client.post(f"/generations/{row.pk}/delete/", follow=True)
    assert f"Deleted #{row.pk}" in text(response)
    assert Generation.objects.get(pk=row.pk).deleted_at is not None
    assert card_ids(response) == []
    assert alice_client.get(f"/generations/{row.pk}/").status_code == 404


def test_someone_else_cannot_delete_and_sees_no_delete_button(bob_client, alice):
    row = finished(alice)
    assert bob_client.get(f"/generations/{row.pk}/delete/").status_code == 403
    assert bob_client.post(f"/generations/{row.pk}/delete/").status_code == 403
    assert Generation.objects.get(pk=row.pk).deleted_at is None
    assert f"/generations/{row.pk}/delete/" not in bob_client.get("/").content.decode()
    assert f"/generations/{row.pk}/delete/" not in bob_client.get(f"/generations/{row.pk}/").content.decode()


def test_staff_may_delete_anyones_generation(staff_client, alice):
    row = finished(alice)
    assert f"/generations/{row.pk}/delete/" in staff_client.get("/").content.decode()
    staff_client.post(f"/generations/{row.pk}/delete/")
    assert Generation.objects.get(pk=row.pk).deleted_at is not None


# --- detail --------------------------------------------------------------------------------------


def test_the_detail_page_shows_the_video_every_parameter_and_the_events(alice_client, alice):
    row = finished(alice, "A fox in the snow", aspect_ratio="21:9", concepts=["dolly_zoom"], loop=True)
    GenerationEvent.objects.create(generation=row, source="webhook", state="dreaming", summary="webhook: Luma says dreaming")
    response = alice_client.get(f"/generations/{row.pk}/")
    page, html = text(response), response.content.decode()
    assert f'<video class="player" controls preload="metadata" playsinline src="/generations/{row.pk}/video/"' in html
    for fact in ("Model ray-2", "Resolution 720p", "Duration 5s", "Loop yes", "Concepts dolly_zoom",
                 "Aspect ratio 21:9", "Made by alice", f"Luma id {row.luma_id}", "Cost (estimate) $1.75",
                 "webhook: Luma says dreaming"):
        assert fact in page, fact


def test_the_detail_page_shows_the_lineage_both_ways(alice_client, alice, bob):
    origin = finished(alice, "origin")
    other = finished(bob, "other")
    extended = finished(alice, "extended", kind=Kind.EXTEND, frame0_generation=origin)
    morph = make(bob, "morph", kind=Kind.INTERPOLATE, frame0_generation=extended, frame1_generation=other)
    upscaled = make(alice, "bigger", kind=Kind.UPSCALE, source=extended, resolution="4k")
    html = alice_client.get(f"/generations/{extended.pk}/").content.decode()
    made_from, made_into = html.split("Made from it")
    assert f'href="/generations/{origin.pk}/"' in made_from.split("Made from")[-1]
    assert f'href="/generations/{morph.pk}/"' in made_into and f'href="/generations/{upscaled.pk}/"' in made_into
    deeper = alice_client.get(f"/generations/{morph.pk}/").content.decode().split("Made from it")[0]
    for pk in (extended.pk, other.pk, origin.pk):
        assert f'href="/generations/{pk}/"' in deeper


def test_raw_luma_json_is_for_staff_only(alice_client, staff_client, alice):
    row = finished(alice, raw={"id": "abc", "state": "completed", "marker": "raw-json-marker"})
    assert "raw-json-marker" not in alice_client.get(f"/generations/{row.pk}/").content.decode()
    assert "raw-json-marker" in staff_client.get(f"/generations/{row.pk}/").content.decode()


def test_the_api_key_never_appears_on_any_page(staff_client, staff, settings, account):
    settings.LUMAAI_API_KEY = "luma-secret-key-do-not-show"
    row = finished(staff, raw={"id": "abc", "request": {"callback_url": "https://team.example.com/webhooks/luma/x/"}})
    failed = make(staff, state=State.FAILED, reason="Job failed")
    pages = ["/", "/me/", f"/generations/{row.pk}/", f"/generations/{row.pk}/delete/", f"/generations/{row.pk}/upscale/",
             f"/generations/{row.pk}/audio/", f"/generations/{failed.pk}/continue/again/", "/accounts/login/"]
    for path in pages:
        assert b"luma-secret-key-do-not-show" not in staff_client.get(path).content, path
    assert b"luma-secret-key-do-not-show" not in staff_client.post("/create/", video_form(prompt="x")).content


# --- archived files ------------------------------------------------------------------------------


def body_of(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_an_archived_video_is_served_whole_or_by_range_so_a_browser_can_seek(alice_client, alice):
    row = finished(alice, "A fox in the snow")
    stored = Path(row.archive_file.path).read_bytes()

    whole = alice_client.get(f"/generations/{row.pk}/video/")
    part = alice_client.get(f"/generations/{row.pk}/video/", HTTP_RANGE="bytes=10-19")
    tail = alice_client.get(f"/generations/{row.pk}/video/", HTTP_RANGE="bytes=-5")
    beyond = alice_client.get(f"/generations/{row.pk}/video/", HTTP_RANGE=f"bytes={len(stored)}-")

    assert (whole.status_code, whole["Content-Type"], whole["Accept-Ranges"]) == (200, "video/mp4", "bytes")
    assert body_of(whole) == stored and whole["Content-Length"] == str(len(stored))
    assert (part.status_code, part["Content-Range"], body_of(part)) == (206, f"bytes 10-19/{len(stored)}", stored[10:20])
    assert (tail.status_code, body_of(tail)) == (206, stored[-5:])
    assert (beyond.status_code, beyond["Content-Range"]) == (416, f"bytes */{len(stored)}")


ABSURD_RANGES = {
    "5000 digits": "bytes=" + "9" * 5000 + "-",
    "a 5000-digit end": "bytes=0-" + "9" * 5000,
    "a 5000-digit suffix": "bytes=-" + "9" * 5000,
    "a 19-digit start": "bytes=" + "1" * 19 + "-",
    "several ranges": "bytes=0-1,5-9,-3",
    "garbage": "bytes=ab-cd",
    "another unit": "items=0-5",
    "reversed": "bytes=9-2",
    "nothing": "bytes=-",
}


@pytest.mark.parametrize("header", ABSURD_RANGES.values(), ids=ABSURD_RANGES.keys())
def test_an_absurd_range_gets_the_whole_file_or_416_never_a_server_error(alice_client, alice, header):
    row = finished(alice)
    image = KeyframeImage.objects.create(file=ContentFile(png(), name="k.png"), content_type="image/png", width=128,
                                         height=96, uploaded_by=alice)
    files = {f"/generations/{row.pk}/video/": row.archive_file, f"/generations/{row.pk}/poster.jpg": row.poster,
             f"/generations/{row.pk}/download/": row.archive_file, f"/k/{image.token}/": image.file}
    answers = {}
    for path, stored in files.items():
        if path.startswith("/k/"):
            alice_client.logout()  # keyframes are public: Luma fetches them without a login
        response = alice_client.get(path, HTTP_RANGE=header)
        size = len(Path(stored.path).read_bytes())
        answers[path] = response.status_code
        if response.status_code == 416:
            assert response["Content-Range"] == f"bytes */{size}"
        elif response.status_code == 200:
            assert len(body_of(response)) == size
    assert set(answers.values()) <= {200, 416}, answers


def test_a_download_is_named_after_the_prompt(alice_client, alice):
    row = finished(alice, "A fox in the snow, at dawn!")
    response = alice_client.get(f"/generations/{row.pk}/download/")
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="a-fox-in-the-snow-at-dawn.mp4"'
    assert body_of(response) == Path(row.archive_file.path).read_bytes()


def test_a_generation_without_an_archived_file_has_nothing_to_serve(alice_client, alice):
    row = finished(alice, "Not archived yet", archived=False)
    assert alice_client.get(f"/generations/{row.pk}/video/").status_code == 404
    assert alice_client.get(f"/generations/{row.pk}/download/").status_code == 404


# --- me ------------------------------------------------------------------------------------------


def test_my_page_shows_my_estimated_spend_this_month(alice_client, alice, bob, account):
    finished(alice, resolution="720p", duration="5s")
    finished(alice, resolution="720p", duration="5s")
    finished(alice, model="ray-flash-2", resolution="1080p", duration="9s")
    make(alice, state=State.FAILED, reason="Job failed", resolution="4k")
    finished(bob, resolution="4k", duration="9s")
    finished(alice, resolution="4k", created_at=timezone.now() - timedelta(days=40))
    page = text(alice_client.get("/me/"))
    # ray-2 720p 5 s = $1.75 each; ray-flash-2 1080p 9 s = 2.07 Mpx x 216 frames x $0.00544 = $2.44.
    assert "$5.94" in page
    assert "Text to video ray-2 720p 5s 2 $1.75 $3.50" in page
    assert "3 done · 0 in progress · 1 failed" in page
    assert "$1,842.50" in page
    assert "Checked now; refreshed in the background." in page


def test_a_missing_page_says_so_in_the_apps_look(alice_client, alice):
    gone = finished(alice, "Deleted a moment ago")
    gone.mark_deleted(alice)
    response = alice_client.get(f"/generations/{gone.pk}/")
    page = text(response)
    assert response.status_code == 404
    assert "Not found" in page and "it may have been deleted" in page and "Back to the library" in page


# --- cost of a page ------------------------------------------------------------------------------


def test_the_library_costs_a_fixed_number_of_queries(alice_client, alice, bob, django_assert_max_num_queries):
    now = timezone.now()
    states = [State.COMPLETED, State.DREAMING, State.PENDING, State.QUEUED, State.FAILED]
    kinds = [Kind.TEXT_TO_VIDEO, Kind.EXTEND, Kind.IMAGE_TO_VIDEO, Kind.INTERPOLATE]
    models = ["ray-2", "ray-flash-2", "ray-1-6"]
    # The first page dreams in 12 different kinds of work (each its own ETA: similar ones took an hour);
    # older rows are a mixed library.
    rows = Generation.objects.bulk_create(
        Generation(owner=alice if i % 2 else bob, prompt=f"clip {i}", kind=kinds[i % 4], model=models[i % 3],
                   state=State.DREAMING if i < PAGE_SIZE else states[i % 5], created_at=now - timedelta(seconds=i),
                   submitted_at=now - timedelta(seconds=60 if i < PAGE_SIZE else 7200),
                   completed_at=now - timedelta(seconds=3600) if i >= PAGE_SIZE and i % 5 == 0 else None)
        for i in range(400)
    )
    Favourite.objects.bulk_create(Favourite(user=alice, generation=row) for row in rows[::3])
    LumaAccount.get()
    pages = [
        ("/", {}),
        ("/library/", {}),
        ("/library/", {"q": "clip 3"}),
        ("/library/", {"state": "live", "favourites": "on", "q": "clip"}),
        ("/library/", {"state": "completed", "kind": "extend", "model": "ray-2", "owner": "mine"}),
        ("/library/", {"state": "failed", "favourites": "on"}),
        ("/library/", {"before": rows[200].pk}),
        ("/poll/", {"live": [f"{row.pk}:0" for row in rows[:200]]}),
    ]
    for path, query in pages:
        _duration_cache.clear()  # the most a page costs: no ETA known yet
        # 14 at most, at 400 rows as at 4: session, user, account, role (2), the page's cards and their ETAs, and
        # on the full dashboard the bell, the budget standing, presets, recent prompts, boards and teammates.
        with django_assert_max_num_queries(14):
            response = alice_client.get(path, query, headers=HTMX)
        assert response.status_code == 200, (path, query)
        assert card_ids(response), (path, query)
    first_page = alice_client.get("/library/", headers=HTMX)
    assert len(card_ids(first_page)) == PAGE_SIZE
    # Every dreaming card knows its own kind's ETA (about an hour from its submit a minute ago; 90 s if unknown).
    assert len(re.findall(r"about 5[89]m \d\ds left", text(first_page))) == PAGE_SIZE


# --- issue 8: what a card offers, watching, cost, first impressions, words --------------------------


def actions_of(response, pk: int) -> list[str]:
    """The labels in card #pk's Actions menu, as a person reads them."""
    html = response.content.decode()
    card = html[html.index(f'<article id="card-{pk}"'):]
    menu = card[card.index('<details class="menu">'):card.index("</details>")]
    return [" ".join(re.sub(r"<[^>]+>", " ", label).split()) for label in re.findall(r"<li>(.*?)</li>", menu, re.S)]


def test_an_images_card_and_page_offer_only_what_an_image_can_become(alice_client, alice):
    image = finished(alice, "A red kite", kind=Kind.IMAGE, model="photon-1", resolution="", duration="",
                     image_url="https://storage.cdn-luma.com/i.jpg")
    for page in (alice_client.get("/"), alice_client.get(f"/generations/{image.pk}/")):
        labels = actions_of(page, image.pk)
        for wanted in ("Use as start frame", "Use as end frame", "Use as reference", "Modify image", "Reframe image"):
            assert wanted in labels
        for unwanted in ("Extend", "Reverse extend", "Interpolate with another", "Upscale", "Add audio", "Loop remix",
                         "Reframe video"):
            assert unwanted not in labels


def test_a_videos_card_offers_continuing_it_but_never_use_as_reference(alice_client, alice):
    video = finished(alice, "A fox")
    labels = actions_of(alice_client.get("/"), video.pk)
    for wanted in ("Extend", "Reverse extend", "Interpolate with another", "Upscale", "Add audio", "Loop remix",
                   "Modify video", "Reframe video"):
        assert wanted in labels
    assert "Use as reference" not in labels and "Reframe image" not in labels
    # Nothing to make from a generation that is not finished: only trying again.
    dreaming = make(alice, "still dreaming", state=State.DREAMING, submitted_at=timezone.now())
    assert actions_of(alice_client.get("/"), dreaming.pk) == ["Try again with these settings", "Boards…", "Details",
                                                              "Delete…"]


def test_a_loop_remix_is_called_a_loop_remix_not_an_extend(alice_client, alice):
    source = finished(alice, "A wave")
    remix = finished(alice, "A wave, looping", kind=Kind.EXTEND, frame0_generation=source, loop=True)
    page = alice_client.get(f"/generations/{remix.pk}/")
    assert f"Loop remix #{remix.pk}" in text(page)
    html = alice_client.get("/").content.decode()
    assert re.search(rf'id="card-{remix.pk}".*?<span class="kind">Loop remix</span>', html, re.S)


def test_the_upscale_and_audio_pages_of_an_image_say_it_takes_a_video(alice_client, alice):
    image = finished(alice, "A red kite", kind=Kind.IMAGE, model="photon-1", resolution="", duration="")
    upscale = text(alice_client.get(f"/generations/{image.pk}/upscale/"))
    assert f"#{image.pk} is an image: Luma can only upscale a video." in upscale
    assert "is completed" not in upscale and "· ·" not in upscale and "Image · photon-1" in upscale
    audio = text(alice_client.get(f"/generations/{image.pk}/audio/"))
    assert f"#{image.pk} is an image: Luma can only add audio to a video." in audio
    queued = make(alice, "queued", state=State.QUEUED)
    assert "Luma can only add audio to a finished video" in text(alice_client.get(f"/generations/{queued.pk}/audio/"))


def test_continuing_an_image_says_it_is_an_image_not_an_unfinished_video(alice_client, alice):
    image = finished(alice, "A red kite", kind=Kind.IMAGE, model="photon-1", resolution="", duration="")
    page = text(alice_client.get(f"/generations/{image.pk}/continue/extend/"))
    assert f"#{image.pk} is an image: Luma can only extend a video." in page
    assert "is not a finished video" not in page


def test_a_failed_detail_page_says_there_is_nothing_to_keep(alice_client, alice):
    row = make(alice, "A fox", state=State.FAILED, reason="Job failed", failed_at=timezone.now())
    page = text(alice_client.get(f"/generations/{row.pk}/"))
    assert "Our copy Nothing to keep: the generation failed" in page
    assert "Not yet" not in page


def test_lumas_loop_message_is_shown_in_plain_words_with_lumas_own_beside_it(alice_client, alice):
    row = make(alice, "A fox", state=State.REJECTED, reason="Loop is not supported for end frame",
               failed_at=timezone.now())
    page = text(alice_client.get("/"))
    assert ("A loop ends where it starts, so it cannot also have an end frame: untick Loop, or make it without an "
            "end frame. (Luma said: Loop is not supported for end frame)") in page
    assert "Change the loop or frame settings and try again." in page


def test_dates_are_shown_one_way_on_the_detail_page(alice_client, alice):
    moment = timezone.make_aware(datetime(2026, 12, 1, 13, 20, 26))
    row = finished(alice, "A fox", created_at=moment)
    Generation.objects.filter(pk=row.pk).update(submitted_at=moment, completed_at=moment + timedelta(seconds=22))
    GenerationEvent.objects.create(generation=row, source="poll", state="completed", summary="done",
                                   created_at=moment + timedelta(seconds=22))
    response = alice_client.get(f"/generations/{row.pk}/")
    page, html = text(response), response.content.decode()
    assert "Requested 1 Dec 2026, 13:20:26" in page and "Sent to Luma 1 Dec 2026, 13:20:26" in page
    assert "Finished 1 Dec 2026, 13:20:48" in page and "1 Dec 2026, 13:20:48 Poll done" in page
    assert "p.m." not in page and not re.search(r"Dec\. \d", page)
    assert f'<time datetime="{moment.isoformat()}">1 Dec 2026, 13:20:26</time>' in html


def test_made_by_offers_every_teammate_who_has_made_something(alice_client, alice, bob, staff):
    finished(alice, "alice's fox")
    bobs = finished(bob, "bob's owl")
    html = alice_client.get("/").content.decode()
    select = html[html.index('id="filter_owner"'):]
    select = select[:select.index("</select>")]
    assert re.findall(r">([^<]+)</option>", select) == ["Everyone", "Me", "alice", "bob"]  # staff made nothing
    response = alice_client.get("/library/", {"owner": str(bob.pk)}, headers=HTMX)
    assert card_ids(response) == [bobs.pk]


def test_logging_out_by_address_asks_first_and_the_button_logs_out(alice_client):
    page = alice_client.get("/accounts/logout/")
    assert page.status_code == 200
    assert "Log out of lumaweb?" in text(page) and 'action="/accounts/logout/"' in page.content.decode()
    assert alice_client.get("/").status_code == 200  # still logged in
    alice_client.post("/accounts/logout/")
    assert alice_client.get("/").status_code == 302


def test_favicon_ico_is_served_for_pages_that_name_no_icon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200 and response["Content-Type"] == "image/svg+xml"
    assert b"<svg" in response.content


def test_the_404_page_header_shows_the_credit_badge(alice_client, account):
    response = alice_client.get("/no/such/page/")
    assert response.status_code == 404
    assert "$1,842.50 credit" in text(response) and "Not found" in text(response)


def test_the_create_form_shows_the_price_of_what_it_will_make_and_updates_it(alice_client, account):
    page = text(alice_client.get("/"))
    assert "Estimated price: $1.75 (Ray 2 · 720p · 5 s · 16:9)." in page
    html = alice_client.get("/").content.decode()
    assert 'hx-get="/estimate/" hx-trigger="change from:#create-form"' in html
    bigger = text(alice_client.get("/estimate/", {"what": "video", "model": "ray-2", "resolution": "1080p",
                                                  "duration": "9s", "aspect_ratio": "9:16"}, headers=HTMX))
    assert "Estimated price: $7.09 (Ray 2 · 1080p · 9 s · 9:16)." in bigger
    flash = text(alice_client.get("/estimate/", {"what": "video", "model": "ray-flash-2", "resolution": "540p",
                                                 "duration": "5s"}, headers=HTMX))
    assert "Estimated price: $0.34 (Ray Flash 2 · 540p · 5 s)." in flash
    image = text(alice_client.get("/estimate/", {"what": "image", "image_model": "photon-flash-1",
                                                 "aspect_ratio": "1:1"}, headers=HTMX))
    assert "Estimated price: $0.01 (Photon Flash 1 · 1:1)." in image


def test_the_poll_says_when_a_generation_ended_so_the_credit_badge_refreshes(alice_client, alice, account):
    row = make(alice, "A fox", state=State.DREAMING, submitted_at=timezone.now())
    still = alice_client.get("/poll/", {"live": f"{row.pk}:0"}, headers=HTMX)
    assert "generation-ended" not in still.get("HX-Trigger", "")
    Generation.objects.filter(pk=row.pk).update(state=State.FAILED, reason="Job failed", failed_at=timezone.now())
    ended = alice_client.get("/poll/", {"live": f"{row.pk}:0"}, headers=HTMX)
    assert "generation-ended" in ended["HX-Trigger"]
    assert 'hx-trigger="generation-ended from:body delay:4s, header-refresh"' in alice_client.get("/").content.decode()
    LumaAccount.objects.filter(pk=1).update(credit_balance=100000.0)
    badge = alice_client.get("/credits/", headers=HTMX)
    assert text(badge) == "$1,000.00 credit" and 'id="credits-badge"' in badge.content.decode()


def test_the_me_page_reconciles_estimated_spend_with_lumas_balance(alice_client, alice, bob, account):
    from generations.credits import CreditSnapshot, record_balance

    start = timezone.now() - timedelta(hours=2)
    record_balance(100000.0, start)
    assert not record_balance(100000.0, start + timedelta(minutes=5))  # an unchanged read is not kept again
    finished(alice, "mine", created_at=start + timedelta(minutes=10))  # $1.75
    finished(bob, "bob's", created_at=start + timedelta(minutes=20))  # $1.75
    make(bob, "failed", state=State.FAILED, created_at=start + timedelta(minutes=30))
    record_balance(99500.0, timezone.now() - timedelta(minutes=1))  # Luma: $5.00 gone
    assert CreditSnapshot.objects.count() == 2
    page = text(alice_client.get("/me/"))
    assert "In that time Luma's balance went down by $5.00." in page
    assert "lumaweb estimates the team's finished generations in the same time at $3.50 (yours: $1.75)." in page
    assert "They differ by $1.50." in page
    assert "1 generation failed: Luma charges at the start and refunds a failure" in page
    assert "Someone may use the same Luma key outside lumaweb" in page
    assert "prices are an estimate" in page


def test_refreshing_credits_keeps_a_snapshot(luma_settings, luma_sim):
    from generations import tasks
    from generations.credits import CreditSnapshot

    tasks.refresh_credits()
    tasks.refresh_credits()
    (snapshot,) = CreditSnapshot.objects.all()
    assert snapshot.balance == LumaAccount.get().credit_balance


def test_a_fresh_start_reads_the_catalog_on_the_first_page_and_keeps_it(alice_client, luma_settings, luma_sim):
    assert LumaAccount.get().catalog_checked_at is None  # the job has not run yet
    html = alice_client.get("/").content.decode()
    assert 'name="camera_motion"' in html and "camera orbit left" in html
    assert 'name="concepts" value="dolly_zoom"' in html
    account = LumaAccount.get()
    assert "dolly_zoom" in account.concepts and "camera orbit left" in account.camera_motions


def test_when_luma_cannot_be_reached_the_first_page_has_built_in_lists_quickly(alice_client, settings):
    import socket
    import time as clock

    with socket.socket() as listener:  # a port that accepts connections and never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        settings.LUMAAI_API_KEY = "test-key"
        settings.LUMA_BASE_URL = f"http://127.0.0.1:{listener.getsockname()[1]}/dream-machine/v1"
        started = clock.monotonic()
        html = alice_client.get("/").content.decode()
        took = clock.monotonic() - started
        # The catalogs' short timeout (1.5 s each), not the API client's usual 30 s read timeout and retries;
        # generous, as the machine may be busy.
        assert took < 15, took
        assert "camera orbit left" in html and 'value="dolly_zoom"' in html
        # Not cached as Luma's: the job fills the cache later; the next minute's pages do not ask (nor wait) again.
        assert LumaAccount.get().concepts == [] and LumaAccount.get().catalog_checked_at is not None
        listener.setblocking(False)
        while True:  # the connections the first page made
            try:
                listener.accept()[0].close()
            except BlockingIOError:
                break
        assert "camera orbit left" in alice_client.get("/").content.decode()
        with pytest.raises(BlockingIOError):
            listener.accept()  # the second page did not try to reach Luma


def test_an_eta_says_how_many_similar_runs_it_comes_from(alice_client, alice):
    _duration_cache.clear()
    now = timezone.now()
    for _ in range(3):
        make(alice, "done", state=State.COMPLETED, submitted_at=now - timedelta(seconds=40), completed_at=now)
    make(alice, "dreaming", state=State.DREAMING, submitted_at=now, dreaming_at=now)
    assert re.search(r"about [34]\d s left \(from 3 recent like it\)", text(alice_client.get("/")))


def test_the_detail_page_shows_the_keyframes_references_and_source_it_was_made_from(alice_client, alice, settings):
    image = finished(alice, "A red kite", kind=Kind.IMAGE, model="photon-1",
                     image_url="https://storage.cdn-luma.com/kite.jpg")
    upload = KeyframeImage.objects.create(file=ContentFile(png(), name="k.png"), content_type="image/png", width=128,
                                          height=96, uploaded_by=alice)
    row = finished(alice, "From a kite", kind=Kind.IMAGE_TO_VIDEO, frame0_generation=image,
                   frame1_url=upload.public_url())
    html = alice_client.get(f"/generations/{row.pk}/").content.decode()
    assert f'<img src="/generations/{image.pk}/video/" alt="Start frame: #{image.pk}"' in html
    # The team's own address: Luma's /k/ address stops answering once the generation is finished.
    assert f'<img src="/files/{upload.token}/" alt="End frame"' in html
    styled = finished(alice, "Styled", kind=Kind.IMAGE, model="photon-1", options={
        "image_ref": [{"url": "https://storage.cdn-luma.com/kite.jpg", "weight": 0.8}],
        "style_ref": [{"url": "https://elsewhere.example.org/style.png", "weight": 0.5}],
    })
    page = alice_client.get(f"/generations/{styled.pk}/")
    html = page.content.decode()
    assert f'<img src="/generations/{image.pk}/video/" alt="Image reference: #{image.pk}"' in html
    assert "Image reference · #%d · weight 0.8" % image.pk in text(page)
    # An image on another site is a link, never loaded into the page (the CSP allows this site only).
    assert "on elsewhere.example.org" in text(page) and 'src="https://elsewhere' not in html
    restyled = finished(alice, "Restyled", kind=Kind.MODIFY_VIDEO, source=row, mode="flex_1")
    html = alice_client.get(f"/generations/{restyled.pk}/").content.decode()
    assert f'<img src="/generations/{row.pk}/poster.jpg" alt="Source: video #{row.pk}"' in html
