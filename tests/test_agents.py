"""Luma's Agents API (Ray 3.2, Uni-1) as the second provider, against the real simulator with jobs run inline: the
same promises as Dream Machine without callbacks, list, delete or idempotency."""

import hashlib
import io
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from django.conf import settings as django_settings
from django.core.files.base import ContentFile
from django.utils import timezone
from PIL import Image

from generations import admission, luma_agents, providers, tasks
from generations.luma_errors import error_for_status
from generations.models import (ArchiveState, Generation, KeyframeImage, Kind, LumaAccount, Provider, State,
                                _duration_cache)

pytestmark = pytest.mark.django_db


def sim(luma_sim, method: str, path: str, **kwargs):
    answer = requests.request(method, f"{luma_sim.root}/_sim/agents{path}", timeout=30, **kwargs)
    answer.raise_for_status()
    return answer.json()


def made(luma_sim) -> list[dict]:
    return sim(luma_sim, "GET", "/generations")["generations"]


def ask(owner, kind=Kind.TEXT_TO_VIDEO, **fields) -> Generation:
    fields.setdefault("prompt", "A slow dolly shot through a misty greenhouse at sunrise")
    fields.setdefault("model", "uni-1" if kind in (Kind.IMAGE, Kind.IMAGE_EDIT, Kind.LAYERING) else "ray-3.2")
    row, _ = Generation.request(owner, kind=kind, provider=Provider.AGENTS, **fields)
    return row


def run_to_done(row: Generation, luma_sim, jobs) -> Generation:
    """Submit, let Luma finish, let our follower's poll notice it and archive."""
    jobs.run()
    row.refresh_from_db()
    assert row.luma_id, row.reason
    finish = requests.post(f"{luma_sim.root}/_sim/agents/generations/{row.luma_id}/finish",
                           json={"state": "completed"}, timeout=30)
    if finish.status_code == 409:  # submitted with an earlier row, it may have finished on its own meanwhile
        assert sim(luma_sim, "GET", f"/generations/{row.luma_id}")["state"] == "completed"
    else:
        finish.raise_for_status()
    Generation.objects.filter(pk=row.pk).update(next_poll_at=timezone.now())
    tasks.follow()
    jobs.run()
    row.refresh_from_db()
    return row


def assert_archived_like_luma(row: Generation, luma_sim) -> dict:
    assert row.state == State.COMPLETED and row.archive_state == ArchiveState.DONE, (row.reason, row.archive_error)
    truth = sim(luma_sim, "GET", f"/generations/{row.luma_id}")
    stored = hashlib.sha256(Path(row.archive_file.path).read_bytes()).hexdigest()
    assert stored == row.sha256 == truth["outputs"][0]["sha256"]
    return truth


def upload(owner) -> KeyframeImage:
    buffer = io.BytesIO()
    Image.new("RGB", (640, 360), (200, 80, 40)).save(buffer, "PNG")
    return KeyframeImage.objects.create(file=ContentFile(buffer.getvalue(), name="k.png"), content_type="image/png",
                                        width=640, height=360, uploaded_by=owner)


def test_a_ray_32_hdr_video_is_made_once_polled_and_archived_with_lumas_bytes(alice, luma_sim, luma_settings, jobs):
    row = ask(alice, resolution="1080p", duration="5s", aspect_ratio="16:9", options={"hdr": True, "exr_export": True})

    row = run_to_done(row, luma_sim, jobs)

    truth = assert_archived_like_luma(row, luma_sim)
    assert truth["request"]["video"] == {"resolution": "1080p", "duration": "5s", "hdr": True, "exr_export": True}
    # The EXR export is kept too, beside the MP4.
    video, exr = row.extra_files
    assert (video["type"], exr["type"]) == ("video", "exr") and exr["file"].endswith(".exr")
    assert exr["sha256"] == truth["outputs"][1]["sha256"] == hashlib.sha256(
        Path(row.archive_file.storage.path(exr["file"])).read_bytes()).hexdigest()
    assert truth["hdr"] and (truth["width"], truth["height"]) == (1920, 1080)
    assert truth["user_id"] == providers.user_token(alice) != str(alice.pk) and len(truth["user_id"]) == 32
    assert len(made(luma_sim)) == 1


def test_uploads_reach_the_agents_api_through_its_files_api_not_a_public_address(alice, luma_sim, luma_settings,
                                                                                  jobs):
    start = upload(alice)
    reference = upload(alice)
    row = ask(alice, frame0_url=start.public_url(), prompt="It begins to rain")
    image = ask(alice, kind=Kind.IMAGE, prompt="A fox in a library", options={"image_ref": [{"url": reference.public_url()}]})

    row, image = run_to_done(row, luma_sim, jobs), run_to_done(image, luma_sim, jobs)

    assert_archived_like_luma(row, luma_sim)
    assert_archived_like_luma(image, luma_sim)
    start.refresh_from_db()
    reference.refresh_from_db()
    sent = {g["id"]: g["request"] for g in made(luma_sim)}
    assert sent[row.luma_id]["video"]["start_frame"] == {"file_id": start.agents_file_id}
    assert sent[image.luma_id]["image_ref"] == [{"file_id": reference.agents_file_id}]
    assert {f["id"] for f in sim(luma_sim, "GET", "/files")["files"]} == {start.agents_file_id, reference.agents_file_id}


def test_extend_edit_and_reframe_a_ray_32_clip_by_its_id(alice, luma_sim, luma_settings, jobs):
    first = run_to_done(ask(alice), luma_sim, jobs)
    extended = run_to_done(ask(alice, kind=Kind.EXTEND, frame0_generation=first, prompt="It keeps walking"),
                           luma_sim, jobs)
    edited = run_to_done(ask(alice, kind=Kind.MODIFY_VIDEO, source=first, mode="flex_2",
                             options={"controls": {"depth": {"enabled": True, "blur": 0.3}}}), luma_sim, jobs)
    wide = run_to_done(ask(alice, kind=Kind.REFRAME_VIDEO, source=first, aspect_ratio="9:16", resolution="720p"),
                       luma_sim, jobs)

    for row in (extended, edited, wide):
        assert_archived_like_luma(row, luma_sim)
    sent = {g["id"]: g["request"] for g in made(luma_sim)}
    assert sent[extended.luma_id]["video"]["start_frame"] == {"generation_id": first.luma_id}
    assert sent[edited.luma_id]["source"] == {"generation_id": first.luma_id}
    assert sent[edited.luma_id]["video"]["edit"] == {"strength": "flex_2",
                                                    "controls": {"depth": {"enabled": True, "blur": 0.3}}}
    assert sent[wide.luma_id]["type"] == "video_reframe" and sent[wide.luma_id]["aspect_ratio"] == "9:16"


def test_a_layering_keeps_every_layer(alice, luma_sim, luma_settings, jobs):
    photo = run_to_done(ask(alice, kind=Kind.IMAGE, prompt="A red bicycle against a brick wall"), luma_sim, jobs)

    layered = run_to_done(ask(alice, kind=Kind.LAYERING, source=photo, prompt="Separate the bicycle"), luma_sim, jobs)

    truth = assert_archived_like_luma(layered, luma_sim)
    assert len(layered.extra_files) == len(truth["outputs"]) >= 2
    for kept, output in zip(layered.extra_files, truth["outputs"]):
        path = Path(layered.archive_file.storage.path(kept["file"]))
        assert hashlib.sha256(path.read_bytes()).hexdigest() == kept["sha256"] == output["sha256"]
        assert kept["index"] == output["layer"]["index"] and kept["alpha_hint"] == output["layer"]["alpha_hint"]
    assert layered.extra_files[-1]["alpha_hint"] == "none"  # the background comes last


def test_a_lost_create_answer_is_said_plainly_and_never_sent_again(alice_client, alice, luma_sim, luma_settings,
                                                                    jobs):
    sim(luma_sim, "POST", "/faults", json={"lost_creates": 1})
    row = ask(alice)

    jobs.run()
    for _ in range(2):
        tasks.sweep()
        jobs.run()

    row.refresh_from_db()
    assert row.state == State.FAILED and row.failed_locally and row.luma_id is None
    assert "may have made and billed this" in row.reason
    assert len(made(luma_sim)) == 1  # Luma made it once; we never sent it again
    # Its card says it once, then what a person may do, and no "in 0 s" of a wait that says nothing about Luma.
    page = alice_client.get("/").content.decode()
    card = page[page.index(f'id="card-{row.pk}"'):]
    card = card[:card.index("</article>")]
    assert card.count("may have made and billed") == 1 and 'class="took"' not in card
    assert "Only a person decides: send it again if paying for it twice is acceptable." in card


def test_an_expired_output_url_is_replaced_by_a_fresh_one(alice, luma_sim, luma_settings, jobs):
    sim(luma_sim, "POST", "/faults", json={"expired_downloads": 1})
    row = run_to_done(ask(alice, kind=Kind.IMAGE), luma_sim, jobs)

    assert_archived_like_luma(row, luma_sim)


def test_a_failure_code_is_shown_in_words_with_the_next_step(alice_client, alice, luma_sim, luma_settings, jobs):
    row = ask(alice, kind=Kind.IMAGE, prompt="A fox [sim-fail:content_moderated]")
    jobs.run()
    row.refresh_from_db()
    sim(luma_sim, "POST", f"/generations/{row.luma_id}/finish", json={"state": "failed",
                                                                        "failure_code": "content_moderated"})
    tasks.refresh(row.pk)
    row.refresh_from_db()

    assert row.state == State.FAILED and "content_moderated" in row.reason
    page = alice_client.get(f"/generations/{row.pk}/").content.decode()
    assert "moderation flagged the prompt, an input or the result" in page


def test_deleting_removes_our_copy_and_says_luma_keeps_it(alice_client, alice, luma_sim, luma_settings, jobs):
    row = run_to_done(ask(alice, kind=Kind.IMAGE), luma_sim, jobs)
    path = Path(row.archive_file.path)

    alice_client.post(f"/generations/{row.pk}/delete/")
    tasks.delete_generation(row.pk)

    assert not path.exists()
    assert "Luma's Agents API has no delete" in row.events.last().summary
    assert sim(luma_sim, "GET", f"/generations/{row.luma_id}")["state"] == "completed"


def test_a_completed_generation_costs_at_most_four_calls(alice, luma_sim, luma_settings, jobs):
    row = ask(alice, kind=Kind.IMAGE)
    jobs.run()
    row.refresh_from_db()
    luma_sim_done = sim(luma_sim, "POST", f"/generations/{row.luma_id}/finish", json={"state": "completed"})
    assert luma_sim_done["state"] == "completed"
    Generation.objects.filter(pk=row.pk).update(next_poll_at=timezone.now())
    tasks.follow()
    jobs.run()

    row.refresh_from_db()
    assert row.archive_state == ArchiveState.DONE
    routes = sim(luma_sim, "GET", "/stats")["requests"]
    calls = sum(n for route, n in routes.items() if route.split(" ")[1].startswith("/generations"))
    assert calls <= 4, routes


def test_each_provider_has_its_own_admission_budget(alice, luma_sim, luma_settings, jobs):
    luma_settings.LUMA_MAX_CONCURRENT = 0  # Dream Machine is full
    LumaAccount.get()
    LumaAccount.objects.update(paused_until=timezone.now() + timedelta(minutes=5))
    v1, _ = Generation.request(alice, kind=Kind.TEXT_TO_VIDEO, prompt="a teddy bear", model="ray-2")
    agents = ask(alice)

    assert set(admission.admit()) == {agents.pk}
    assert Generation.objects.get(pk=v1.pk).state == State.PENDING


def test_a_library_image_as_a_reference_is_sent_as_our_copy_and_layering_needs_no_prompt(alice, luma_sim,
                                                                                          luma_settings, jobs):
    photo = run_to_done(ask(alice, kind=Kind.IMAGE, prompt="A red bicycle"), luma_sim, jobs)
    styled = run_to_done(ask(alice, kind=Kind.IMAGE, prompt="The same bicycle at night",
                             options={"image_ref": [{"url": photo.image_url, "generation": photo.pk}]}),
                         luma_sim, jobs)
    layered = run_to_done(ask(alice, kind=Kind.LAYERING, source=photo, prompt=""), luma_sim, jobs)

    assert_archived_like_luma(styled, luma_sim)
    assert_archived_like_luma(layered, luma_sim)
    sent = {g["id"]: g["request"] for g in made(luma_sim)}
    (ref,) = sent[styled.luma_id]["image_ref"]
    assert set(ref) == {"file_id"}  # our archived copy, uploaded: Luma's output URL would expire within the hour
    files = {f["id"]: f for f in sim(luma_sim, "GET", "/files")["files"]}
    assert files[ref["file_id"]]["size_bytes"] == Path(photo.archive_file.path).stat().st_size
    assert sent[layered.luma_id]["source"] == {"generation_id": photo.luma_id}


def test_the_first_poll_and_the_eta_follow_lumas_clock_when_the_simulator_runs_faster(alice, settings):
    """`./dev run` on a sped-up simulator sets LUMA_TIME_SCALE: with no history, a Uni-1 image (prior 45 s) is first
    asked about at 0.8 of the scaled prior, and later polls come at the scaled POLL_EVERY."""
    row = Generation.objects.create(owner=alice, prompt="A lantern", kind=Kind.IMAGE, model="uni-1",
                                    provider=Provider.AGENTS, state=State.QUEUED, luma_id="scaled-1")
    submitted = row.submitted_at = timezone.now()
    row.schedule_next_poll(now=submitted)
    assert row.expected_duration() == timedelta(seconds=45) and row.next_poll_at == submitted + timedelta(seconds=36)

    settings.LUMA_TIME_SCALE = 0.1  # set at start in a real process, before anything was cached
    _duration_cache.clear()
    row.schedule_next_poll(now=submitted)
    assert row.next_poll_at == submitted + timedelta(seconds=3.6)
    row.schedule_next_poll(now=submitted + timedelta(seconds=4), news=False)
    _duration_cache.clear()  # no scaled guess outlives this test
    assert row.next_poll_at == submitted + timedelta(seconds=5.5)


def expired_library_image(alice, luma_sim, jobs) -> Generation:
    """A Uni-1 image made, archived, and whose Luma output URL has since expired (the simulator signs them for a
    second instead of an hour)."""
    sim(luma_sim, "POST", "/faults", json={"expire_output_urls": 1})
    photo = run_to_done(ask(alice, kind=Kind.IMAGE, prompt="A lighthouse at dusk"), luma_sim, jobs)
    assert photo.is_archived, photo.archive_error
    time.sleep(2.2)
    assert requests.get(photo.image_url, timeout=10).status_code == 403  # Luma refuses the old address now
    return photo


def test_a_library_image_whose_luma_url_expired_still_starts_and_ends_a_ray_32_video(alice, luma_sim,
                                                                                     luma_settings, jobs):
    photo = expired_library_image(alice, luma_sim, jobs)

    # "Use as start frame" stores the library image's address; an end frame picked from the library names the row.
    row = run_to_done(ask(alice, frame0_url=photo.image_url, frame1_generation=photo, prompt="The light turns on"),
                      luma_sim, jobs)

    assert_archived_like_luma(row, luma_sim)
    video = {g["id"]: g["request"] for g in made(luma_sim)}[row.luma_id]["video"]
    # Both frames went as our archived copy, uploaded through the Files API: never the expired URL, and never the
    # image's generation_id (Luma extends only videos by id).
    files = {f["id"]: f for f in sim(luma_sim, "GET", "/files")["files"]}
    for frame in (video["start_frame"], video["end_frame"]):
        assert set(frame) == {"file_id"}, video
        assert files[frame["file_id"]]["size_bytes"] == Path(photo.archive_file.path).stat().st_size


def test_a_video_edits_guide_frame_from_an_expired_library_image_is_sent_as_our_copy(alice, luma_sim,
                                                                                    luma_settings, jobs):
    clip = run_to_done(ask(alice), luma_sim, jobs)
    photo = expired_library_image(alice, luma_sim, jobs)

    # "Try again" pre-fills the guide frame with the address the first request stored.
    edited = run_to_done(ask(alice, kind=Kind.MODIFY_VIDEO, source=clip, mode="flex_2",
                             first_frame_url=photo.image_url), luma_sim, jobs)

    assert_archived_like_luma(edited, luma_sim)
    sent = {g["id"]: g["request"] for g in made(luma_sim)}[edited.luma_id]
    assert sent["source"] == {"generation_id": clip.luma_id}
    assert set(sent["video"]["start_frame"]) == {"file_id"}


def sim_files(luma_sim) -> list[dict]:
    return sim(luma_sim, "GET", "/files")["files"]


def send_again(row: Generation, jobs) -> Generation:
    """The next admission (the 10 s pause after the first try has passed) and its submit."""
    LumaAccount.objects.update(agents_paused_until=None)
    tasks.admit()
    jobs.run()
    row.refresh_from_db()
    return row


def test_a_slow_file_ingest_makes_the_request_wait_and_go_later_with_the_same_file(alice, luma_sim, luma_settings,
                                                                                   jobs, monkeypatch):
    monkeypatch.setattr(luma_agents, "FILE_READY_SECONDS", 0.3)
    sim(luma_sim, "POST", "/config", json={"file_ingest_seconds": 50})  # 2.5 s at the tests' time scale
    start = upload(alice)
    row = ask(alice, frame0_url=start.public_url(), prompt="It begins to rain")

    jobs.run()
    row.refresh_from_db()
    assert row.state == State.PENDING and not row.luma_id, (row.state, row.reason)
    assert "Luma was still reading the uploaded file" in row.events.last().summary
    assert made(luma_sim) == []
    # Tried again while Luma still reads it: it waits for the same file, and still nothing is refused.
    row = send_again(row, jobs)
    assert row.state == State.PENDING and len(sim_files(luma_sim)) == 1

    deadline = time.monotonic() + 20
    while sim_files(luma_sim)[0]["state"] != "ready" and time.monotonic() < deadline:
        time.sleep(0.2)
    row = send_again(row, jobs)
    row = run_to_done(row, luma_sim, jobs)

    assert_archived_like_luma(row, luma_sim)
    (file,) = sim_files(luma_sim)  # uploaded once
    sent = {g["id"]: g["request"] for g in made(luma_sim)}
    assert sent[row.luma_id]["video"]["start_frame"] == {"file_id": file["id"]}


@pytest.mark.parametrize("failing", ["/files", "/complete"])
def test_a_5xx_on_an_upload_makes_the_request_wait_not_refused(failing, alice, luma_sim, luma_settings, jobs,
                                                               monkeypatch):
    post_json, failures = luma_agents.AgentsClient._post_json, []

    def once_503(client, path, body):
        if path.endswith(failing) and not failures:
            failures.append(path)
            raise error_for_status(503, {}, "Service Unavailable", f"POST {path}")
        return post_json(client, path, body)

    monkeypatch.setattr(luma_agents.AgentsClient, "_post_json", once_503)
    start = upload(alice)
    row = ask(alice, frame0_url=start.public_url(), prompt="It begins to rain")

    jobs.run()
    row.refresh_from_db()
    assert row.state == State.PENDING and not row.luma_id, (row.state, row.reason)
    assert "Luma had a server error (503)" in row.events.last().summary and made(luma_sim) == []

    row = run_to_done(send_again(row, jobs), luma_sim, jobs)
    assert_archived_like_luma(row, luma_sim)


DREAM_MACHINE_URL, AGENTS_URL = "https://api.lumalabs.ai/dream-machine/v1", "https://agents.lumalabs.ai/v1"


def manage_check(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """`manage.py check` in a fresh process whose settings come from these variables only (not the test run's)."""
    environ = {"PATH": os.environ.get("PATH", ""), "DJANGO_SETTINGS_MODULE": "lumaweb.settings",
               "LUMAWEB_VAR_DIR": str(tmp_path / "var"), "STATIC_ROOT": str(django_settings.STATIC_ROOT), **env}
    return subprocess.run([sys.executable, "manage.py", "check"], cwd=django_settings.BASE_DIR, env=environ,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("env, refused, said", [
    # An older install's name for Dream Machine: still works, and start-up says to rename it.
    ({"LUMA_BASE_URL": DREAM_MACHINE_URL}, False, "(generations.W001) LUMA_BASE_URL is set"),
    # Written for Luma's Agents SDK, which reads LUMA_BASE_URL for its host: Dream Machine would be sent there.
    ({"LUMA_BASE_URL": AGENTS_URL}, True, "(generations.E001) Dream Machine's base URL (LUMA_BASE_URL="),
    ({"LUMAAI_BASE_URL": "https://luma-proxy.example/agents/v1"}, True, "(generations.E001)"),
    ({"LUMA_AGENTS_BASE_URL": DREAM_MACHINE_URL}, True, "(generations.E002) The Agents API's base URL"),
    ({"LUMAAI_BASE_URL": DREAM_MACHINE_URL, "LUMA_BASE_URL": "https://agents-proxy.example/v1"}, False,
     "(generations.W002) LUMA_BASE_URL is set (https://agents-proxy.example/v1) but lumaweb does not use it"),
])
def test_start_up_says_when_lumas_two_base_urls_are_mixed_up(tmp_path, env, refused, said):
    run = manage_check(tmp_path, **env)

    output = run.stdout + run.stderr
    assert (run.returncode != 0) == refused, output
    assert said in output, output
    if "W001" in said:
        assert "HINT: Rename it to LUMAAI_BASE_URL." in output


def test_start_up_is_quiet_when_each_api_has_its_own_base_url(tmp_path):
    run = manage_check(tmp_path, LUMAAI_BASE_URL=DREAM_MACHINE_URL, LUMA_AGENTS_BASE_URL=AGENTS_URL)

    assert run.returncode == 0 and "System check identified no issues" in run.stdout, run.stdout + run.stderr


def test_a_long_upload_is_not_taken_for_a_lost_create_and_a_job_that_died_uploading_gives_the_row_back(
        alice, luma_sim, luma_settings, jobs, settings, monkeypatch):
    """Uploading inputs through the Files API can outlast LUMA_STALL_SECONDS: until the create is about to go, a
    stall means nothing was sent, so the sweep must not say "Luma may have made and billed this" (a person could
    then send it again and pay twice)."""
    settings.LUMA_STALL_SECONDS = 1
    start = upload(alice)
    row = ask(alice, frame0_url=start.public_url(), prompt="It begins to rain")
    real_upload, seen = luma_agents.AgentsClient.upload_file, []

    def upload_outlasting_the_stall_time(client, *args, **kwargs):
        file_id = real_upload(client, *args, **kwargs)
        time.sleep(1.2)
        tasks.sweep()  # runs meanwhile, as it would every minute
        seen.append(Generation.objects.values_list("state", "preparing").get(pk=row.pk))
        return file_id

    monkeypatch.setattr(luma_agents.AgentsClient, "upload_file", upload_outlasting_the_stall_time)
    jobs.run()  # admit, then submit: uploads the start frame, then creates
    row.refresh_from_db()
    assert seen == [(State.SUBMITTING, True)]  # while uploading: nothing to doubt
    assert row.state == State.QUEUED and row.luma_id and len(made(luma_sim)) == 1

    # A job killed while it uploads (past the job time-out) sent nothing: the row waits for its turn again.
    other = ask(alice, prompt="The rain stops")
    Generation.objects.filter(pk=other.pk).update(state=State.SUBMITTING, preparing=True, submit_attempts=1,
                                                  submitted_at=timezone.now() - timedelta(seconds=settings.Q_TIMEOUT + 61))
    tasks.sweep()
    other.refresh_from_db()
    assert other.state == State.PENDING and not other.preparing and not other.failed_locally
    assert "nothing was sent to Luma" in other.events.last().summary
    assert len(made(luma_sim)) == 1
