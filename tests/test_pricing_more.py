"""The price estimate as people read it: a set of takes, modify and reframe priced from their source, and the
upscale and add-audio pages; and the credit badge, read again soon after every generation ends."""

from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone
from django_q.models import Schedule

from generations.models import Generation, KeyframeImage, Kind, LumaAccount, State
from tests.test_views import HTMX, account, finished, make, media, text  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db


def estimate(client, **query) -> str:
    return text(client.get("/estimate/", query, headers=HTMX))


def test_a_set_of_takes_shows_each_price_and_the_total(alice_client, account):
    four = estimate(alice_client, what="video", model="ray-2", resolution="720p", duration="5s",
                    aspect_ratio="16:9", count="4")
    assert "Estimated price: 4 × $1.75 = $7.00 (Ray 2 · 720p · 5 s · 16:9)." in four
    one = estimate(alice_client, what="video", model="ray-2", resolution="720p", duration="5s", count="1")
    assert "Estimated price: $1.75 (Ray 2 · 720p · 5 s)." in one
    images = estimate(alice_client, what="image", image_model="photon-1", aspect_ratio="1:1", count="3")
    assert "Estimated price: 3 × $0.02 = $0.06 (Photon 1 · 1:1)." in images
    html = alice_client.get("/").content.decode()
    assert "aspect_ratio,count," in html  # the form sends How many with each change


def test_modify_and_reframe_are_priced_from_the_library_video_picked(alice_client, alice, account):
    source = finished(alice, "A tall one", resolution="1080p", duration="9s", aspect_ratio="9:16")
    modify = estimate(alice_client, what="modify", model="ray-2", resolution="720p", duration="5s",
                      aspect_ratio="16:9", media_from="library", video_source=str(source.pk))
    assert f"Estimated price: $7.09 (Ray 2 · 1080p · 9 s, as long as #{source.pk} · 9:16)." in modify
    reframe = estimate(alice_client, what="reframe_video", model="ray-flash-2", aspect_ratio="1:1",
                       media_from="library", video_source=str(source.pk), count="2")
    assert f"2 × $2.44 = $4.88 (Ray Flash 2 · 1080p · 9 s, as long as #{source.pk} · 1:1)." in reframe
    nothing = estimate(alice_client, what="modify", model="ray-2", media_from="library")
    assert "Estimated price: $1.75 (Ray 2 · as long as the source (720p and 5 s until you choose it))." in nothing
    # What the row records agrees with what the form said.
    assert Generation.objects.create(owner=alice, kind=Kind.MODIFY_VIDEO, model="ray-2", source=source,
                                     resolution=source.resolution, duration=source.duration).price_cents == 709


def test_an_uploaded_video_is_priced_from_what_was_measured(alice_client, alice, bob, account):
    mine = KeyframeImage.objects.create(file=ContentFile(b"v", name="v.mp4"), content_type="video/mp4",
                                        media_type="video", width=1080, height=1920, duration=7.04, uploaded_by=alice)
    theirs = KeyframeImage.objects.create(file=ContentFile(b"v", name="w.mp4"), content_type="video/mp4",
                                          media_type="video", width=3840, height=2160, duration=9, uploaded_by=bob)
    modify = estimate(alice_client, what="modify", model="ray-2", media_from="upload", video_upload=mine.token)
    assert "Estimated price: $5.54 (Ray 2 · 1080p · 7 s, as long as the uploaded video · 9:16)." in modify
    other = estimate(alice_client, what="modify", model="ray-2", media_from="upload", video_upload=theirs.token)
    assert "(720p and 5 s until you choose it)" in other  # someone else's upload tells nothing
    html = alice_client.get("/").content.decode()
    assert 'hx-trigger="htmx:load from:#create-form target:#video-upload"' in html  # asked again once uploaded


def test_the_upscale_and_add_audio_pages_show_the_price(alice_client, alice, account):
    source = finished(alice, "A fox", resolution="720p", duration="5s")
    upscale = alice_client.get(f"/generations/{source.pk}/upscale/")
    assert f"Estimated price: $3.94 (Ray 2 · 1080p · 5 s, as long as #{source.pk})." in text(upscale)
    four_k = estimate(alice_client, what="upscale", source=str(source.pk), resolution="4k")
    assert f"Estimated price: $15.75 (Ray 2 · 4k · 5 s, as long as #{source.pk})." in four_k
    assert 'hx-params="what,source,resolution"' in upscale.content.decode()
    audio = text(alice_client.get(f"/generations/{source.pk}/audio/"))
    assert "Estimated price: $0.20 (Ray 2 · a guess: Luma publishes no price for sound)." in audio


def test_an_unfinished_source_is_described_in_plain_words(alice_client, alice):
    failed = make(alice, "Broken", state=State.FAILED, failed_at=timezone.now())
    assert f"#{failed.pk} failed." in text(alice_client.get(f"/generations/{failed.pk}/upscale/"))
    dreaming = make(alice, "Busy", state=State.DREAMING)
    assert f"#{dreaming.pk} is not finished yet (dreaming)." in text(alice_client.get(f"/generations/{dreaming.pk}/audio/"))


# --- the credit badge after a generation ends ----------------------------------------------------------------------


def ended(owner, prompt="Done") -> Generation:
    now = timezone.now()
    return make(owner, prompt, state=State.COMPLETED, submitted_at=now, completed_at=now)


def credit_reads(sim) -> int:
    return sim.stats()["requests"].get("GET /credits", 0)


def credit_reads_after_the_booked_one_runs(sim) -> int:
    """Run the one-off Schedule a debounced refresh booked, as the cluster's scheduler does once it is due."""
    import ast

    from generations import tasks

    (booked,) = Schedule.objects.filter(name=tasks.CREDITS_READ)
    assert (booked.func, booked.schedule_type, booked.repeats) == ("generations.tasks.refresh_credits", "O", -1)
    assert booked.next_run == LumaAccount.get().credits_checked_at  # the end of the debounce window, booked
    tasks.refresh_credits(**ast.literal_eval(booked.kwargs))
    booked.delete()
    return credit_reads(sim)


def test_a_generation_ending_right_after_a_balance_read_is_counted_soon(alice_client, alice, luma_settings,
                                                                         luma_sim, monkeypatch):
    from generations import tasks

    monkeypatch.setattr(tasks, "CREDITS_DEBOUNCE", timedelta(seconds=1))  # 10 s in production
    ended(alice, "first")
    tasks.refresh_credits()  # the first end: read at once
    assert text(alice_client.get("/credits/", headers=HTMX)) == "$1,000.00 credit"
    read_at = LumaAccount.get().credits_checked_at
    luma_sim.config(credits=99825.0)  # Luma charged another generation, which now ends, within a second
    ended(alice, "second")
    tasks.refresh_credits()  # too soon after the last read to read now, but not forgotten: booked for when it is up
    assert LumaAccount.get().credits_checked_at == read_at + timedelta(seconds=1)
    assert text(alice_client.get("/credits/", headers=HTMX)) == "$1,000.00 credit"
    assert credit_reads_after_the_booked_one_runs(luma_sim) == 2
    assert text(alice_client.get("/credits/", headers=HTMX)) == "$998.25 credit"
    reads = credit_reads(luma_sim)
    tasks.refresh_credits()  # nothing ended since: no read, nothing booked
    assert credit_reads(luma_sim) == reads and not Schedule.objects.filter(name=tasks.CREDITS_READ).exists()


def test_a_burst_of_ends_costs_one_read_and_the_sweep_catches_an_end_a_read_missed(alice, luma_settings, luma_sim,
                                                                                    jobs, monkeypatch):
    from generations import tasks

    monkeypatch.setattr(tasks, "CREDITS_DEBOUNCE", timedelta(seconds=1))
    tasks.refresh_credits()
    reads = credit_reads(luma_sim)
    for n in range(3):
        ended(alice, f"take {n}")
    for _ in range(3):
        tasks.refresh_credits()  # the first books the next read; the others find it booked
    assert Schedule.objects.filter(name=tasks.CREDITS_READ).count() == 1
    assert credit_reads_after_the_booked_one_runs(luma_sim) == reads + 1
    jobs.queue.clear()
    tasks.sweep()
    assert "refresh_credits" not in jobs.names()  # every end was read
    LumaAccount.objects.filter(pk=1).update(credits_checked_at=timezone.now() - timedelta(seconds=30))
    ended(alice, "ended after the last read began")  # its own refresh was lost (a worker killed)
    jobs.queue.clear()
    tasks.sweep()
    assert "refresh_credits" in jobs.names()


def test_the_me_page_compares_lumas_balance_with_dream_machine_spend_only(alice_client, alice, account):
    from datetime import timedelta as td

    from generations.credits import record_balance

    start = timezone.now() - td(hours=1)
    record_balance(100000.0, start)
    finished(alice, "a clip", created_at=start + td(minutes=5))  # $1.75 from Dream Machine's balance
    finished(alice, "an agents clip", model="ray-3.2", provider="agents", created_at=start + td(minutes=6))
    record_balance(99825.0, timezone.now() - td(minutes=1))
    page = text(alice_client.get("/me/"))
    assert "In that time Luma's balance went down by $1.75." in page
    assert "at $1.75 (yours: $1.75). The two agree." in page  # the Agents API bills another account
