"""The Luma callback endpoint. Luma does not sign callbacks, so a callback with a valid token may at most make us look
sooner: outcomes, asset URLs and Luma's id come only from Luma's own answers (checked here against the simulator)."""

import hashlib
import json
import uuid
from pathlib import Path

import pytest
import requests
from django.test import Client
from django.utils import timezone

from generations import tasks
from generations.models import ArchiveState, Generation, Kind, State

pytestmark = pytest.mark.django_db


def callback_body(luma_id: str, state: str, **extra) -> dict:
    body = {
        "id": luma_id,
        "generation_type": "video",
        "state": state,
        "failure_reason": None,
        "created_at": "2026-11-24T10:00:00.000000Z",
        "assets": None,
        "model": "ray-2",
        "request": {"prompt": "a teddy bear", "model": "ray-2"},
    }
    if state == "completed":
        body["assets"] = {"video": f"http://127.0.0.1:9011/assets/{luma_id}/video.mp4", "image": None}
    body.update(extra)
    return body


@pytest.fixture
def luma():
    # Luma sends no cookie and no CSRF token.
    return Client(enforce_csrf_checks=True)


@pytest.fixture
def slow_sim(luma_sim, luma_settings):
    """Generations stay queued (about 30 s) until a test finishes them with luma_sim.finish."""
    luma_sim.config(time_scale=10)
    return luma_sim


def send(owner, jobs, prompt="a teddy bear") -> Generation:
    """A generation really sent to the simulator, queued there, with no callback reaching us."""
    row, _ = Generation.request(owner, kind=Kind.TEXT_TO_VIDEO, prompt=prompt, model="ray-2")
    jobs.run()
    row.refresh_from_db()
    assert row.state == State.QUEUED and row.luma_id
    return row


@pytest.fixture
def queued(alice, slow_sim, jobs):
    return send(alice, jobs)


def post(client, generation, body, token=None):
    url = f"/webhooks/luma/{token or generation.callback_token}/"
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(url, data=data, content_type="application/json")


def reads(sim) -> int:
    return sim.stats()["requests"].get("GET /generations/{id}", 0)


def sim_sha256(sim, luma_id: str) -> str:
    url = sim.get(luma_id)["assets"]["video"]
    return hashlib.sha256(requests.get(url, timeout=30).content).hexdigest()


def test_a_callback_moves_the_card_forward_without_login_or_csrf(luma, queued, jobs, slow_sim):
    before = reads(slow_sim)

    response = post(luma, queued, callback_body(queued.luma_id, "dreaming"))

    assert response.status_code == 200
    queued.refresh_from_db()
    assert queued.state == State.DREAMING
    assert queued.dreaming_at is not None
    assert queued.events.last().source == "webhook"
    assert reads(slow_sim) == before and not jobs.queue  # progress costs no call to Luma


def test_a_real_completed_callback_is_confirmed_with_one_read_and_archived_with_lumas_bytes(luma, queued, jobs,
                                                                                            slow_sim):
    real = slow_sim.finish(queued.luma_id)
    before = reads(slow_sim)

    assert post(luma, queued, real).status_code == 200
    jobs.run()

    queued.refresh_from_db()
    assert queued.state == State.COMPLETED and queued.archive_state == ArchiveState.DONE, queued.archive_error
    assert queued.sha256 == sim_sha256(slow_sim, queued.luma_id)
    assert reads(slow_sim) - before == 2  # our confirming read, and the test's own in sim_sha256


def test_a_forged_completed_before_luma_finishes_changes_nothing(luma, queued, jobs):
    post(luma, queued, callback_body(queued.luma_id, "completed"))
    jobs.run()

    queued.refresh_from_db()
    assert queued.state == State.QUEUED
    assert queued.archive_state == ArchiveState.NONE and not queued.video_url


def test_a_forged_completed_pointing_at_another_generations_video_archives_only_lumas_own(luma, alice, queued, jobs,
                                                                                          slow_sim):
    other = send(alice, jobs, prompt="something else")
    other_video = slow_sim.finish(other.luma_id)["assets"]["video"]
    slow_sim.finish(queued.luma_id)

    body = callback_body(queued.luma_id, "completed")
    body["assets"]["video"] = other_video
    post(luma, queued, body)
    jobs.run()

    queued.refresh_from_db()
    assert queued.archive_state == ArchiveState.DONE, queued.archive_error
    assert queued.video_url != other_video
    assert queued.sha256 == sim_sha256(slow_sim, queued.luma_id) != sim_sha256(slow_sim, other.luma_id)


def test_a_forged_failed_before_the_real_completion_leaves_the_row_to_lumas_truth(luma, queued, jobs, slow_sim):
    post(luma, queued, callback_body(queued.luma_id, "failed", failure_reason="Job failed"))
    jobs.run()
    queued.refresh_from_db()
    assert queued.state == State.QUEUED and not queued.reason

    real = slow_sim.finish(queued.luma_id)
    queued.nudged_at = None
    Generation.objects.filter(pk=queued.pk).update(nudged_at=None)
    post(luma, queued, real)
    jobs.run()
    queued.refresh_from_db()
    assert queued.state == State.COMPLETED and queued.archive_state == ArchiveState.DONE


@pytest.mark.parametrize("forged", [
    "http://169.254.169.254/latest/meta-data/",
    "https://evil.invalid/x.mp4",
    "http://127.0.0.1:8200\\@127.0.0.1:9011/x",
])
def test_a_forged_asset_host_cannot_block_the_real_archive(luma, queued, jobs, slow_sim, forged):
    slow_sim.finish(queued.luma_id)
    body = callback_body(queued.luma_id, "completed")
    body["assets"]["video"] = forged

    post(luma, queued, body)
    jobs.run()

    queued.refresh_from_db()
    assert queued.archive_state == ArchiveState.DONE, queued.archive_error
    assert queued.archive_attempts == 1
    assert queued.video_url != forged


def test_a_forged_callback_before_the_create_answer_binds_nothing_and_the_real_one_is_adopted(luma, alice, slow_sim,
                                                                                             jobs):
    row, _ = Generation.request(alice, kind=Kind.TEXT_TO_VIDEO, prompt="a teddy bear", model="ray-2")
    tasks.admit()
    jobs.queue.clear()  # the submit task has not run: Luma's answer is not here yet

    post(luma, row, callback_body(str(uuid.uuid4()), "completed"))
    jobs.run()
    row.refresh_from_db()
    assert row.luma_id is None and row.state == State.SUBMITTING

    # Luma made it (our create's answer was lost), and its own callback names the real id.
    real = slow_sim.create(prompt="a teddy bear", callback_url=row.callback_url)
    Generation.objects.filter(pk=row.pk).update(nudged_at=None)
    post(luma, row, real)
    jobs.run()
    row.refresh_from_db()
    assert row.luma_id == real["id"] and row.state == State.QUEUED


def test_callbacks_are_rate_limited_to_one_check_per_generation(luma, queued, jobs, slow_sim):
    before = reads(slow_sim)
    for _ in range(20):
        post(luma, queued, callback_body(queued.luma_id, "completed"))
    jobs.run()

    assert reads(slow_sim) - before == 1


def test_repeated_callbacks_do_not_grow_the_event_log(luma, queued, jobs, slow_sim):
    post(luma, queued, callback_body(queued.luma_id, "dreaming"))
    count = queued.events.count()
    for _ in range(50):
        post(luma, queued, callback_body(queued.luma_id, "dreaming"))
        post(luma, queued, callback_body(queued.luma_id, "queued"))

    assert queued.events.count() == count


def test_a_finished_row_luma_confirmed_costs_nothing_more(luma, queued, jobs, slow_sim):
    real = slow_sim.finish(queued.luma_id)
    post(luma, queued, real)
    jobs.run()
    Generation.objects.filter(pk=queued.pk).update(nudged_at=None)
    before = reads(slow_sim)

    post(luma, queued, real)
    post(luma, queued, callback_body(queued.luma_id, "failed"))
    jobs.run()

    queued.refresh_from_db()
    assert reads(slow_sim) == before
    assert queued.state == State.COMPLETED


def test_a_local_failure_is_corrected_when_luma_says_completed(luma, queued, jobs, slow_sim):
    queued.fail("Luma says it has no such generation", "poll")
    queued.refresh_from_db()
    assert queued.state == State.FAILED and queued.failed_locally

    real = slow_sim.finish(queued.luma_id)
    post(luma, queued, real)
    jobs.run()

    queued.refresh_from_db()
    assert queued.state == State.COMPLETED and not queued.failed_locally and not queued.reason
    assert queued.archive_state == ArchiveState.DONE
    assert queued.sha256 == sim_sha256(slow_sim, queued.luma_id)


def test_a_local_failure_is_rechecked_by_the_sweep_without_any_callback(queued, jobs, slow_sim):
    queued.fail("Luma says it has no such generation", "poll")
    slow_sim.finish(queued.luma_id)
    Generation.objects.filter(pk=queued.pk).update(next_poll_at=timezone.now())

    tasks.sweep()
    jobs.run()

    queued.refresh_from_db()
    assert queued.state == State.COMPLETED and queued.archive_state == ArchiveState.DONE
    assert Path(queued.archive_file.path).exists()


def test_news_applied_to_an_out_of_date_copy_lands_on_the_row_as_it_is_now(alice, jobs):
    """Two workers hold the same row; the second one's copy is out of date when it applies its news."""
    from generations.luma import Generation as RemoteGeneration

    queued = Generation.objects.create(owner=alice, kind=Kind.TEXT_TO_VIDEO, prompt="a teddy bear", model="ray-2",
                                       state=State.QUEUED, luma_id=str(uuid.uuid4()))
    first, second = Generation.objects.get(pk=queued.pk), Generation.objects.get(pk=queued.pk)
    first.apply_remote(RemoteGeneration.from_json(callback_body(queued.luma_id, "dreaming")), source="poll")
    moved = second.apply_remote(RemoteGeneration.from_json(callback_body(queued.luma_id, "completed")), source="poll")

    queued.refresh_from_db()
    assert moved and queued.state == State.COMPLETED and queued.dreaming_at and queued.completed_at
    assert (second.state, second.dreaming_at, second.archive_state) == (State.COMPLETED, queued.dreaming_at,
                                                                       ArchiveState.WAITING)
    assert list(queued.events.values_list("summary", flat=True)) == [
        "poll: Luma says dreaming; now dreaming", "poll: Luma says completed; now completed"]
    assert jobs.names() == ["archive", "refresh_credits", "notify_ended"]


def test_a_wrong_token_gets_404_and_changes_nothing(luma, queued, jobs):
    events = queued.events.count()
    response = post(luma, queued, callback_body(queued.luma_id, "completed"), token="not-a-real-token")

    assert response.status_code == 404
    queued.refresh_from_db()
    assert queued.state == State.QUEUED
    assert queued.events.count() == events and not jobs.queue


def test_another_rows_token_cannot_change_this_row(luma, queued, alice, jobs):
    other = send(alice, jobs, prompt="other")

    response = post(luma, other, callback_body(queued.luma_id, "dreaming"))

    assert response.status_code == 400
    queued.refresh_from_db()
    other.refresh_from_db()
    assert (queued.state, other.state) == (State.QUEUED, State.QUEUED)


@pytest.mark.parametrize("body", [
    "{not json", "[1, 2, 3]", '{"state": "completed"}', b"\xff\xfe",
    "[" * 100_000 + "]" * 100_000,
    '{"id": ' + '{"a": ' * 20_000 + "1" + "}" * 20_000 + "}",
])
def test_a_malformed_body_gets_400_and_changes_nothing(luma, queued, body, jobs):
    response = post(luma, queued, body)

    assert response.status_code == 400
    queued.refresh_from_db()
    assert queued.state == State.QUEUED


def test_a_body_over_256_kb_gets_413(luma, queued, jobs):
    body = callback_body(queued.luma_id, "completed", padding="x" * (257 * 1024))

    response = post(luma, queued, body)

    assert response.status_code == 413
    queued.refresh_from_db()
    assert queued.state == State.QUEUED


def test_only_post_is_accepted(luma, queued):
    assert luma.get(f"/webhooks/luma/{queued.callback_token}/").status_code == 405


def test_callback_tokens_are_unguessable_and_distinct(alice):
    a, _ = Generation.request(alice, kind=Kind.TEXT_TO_VIDEO, prompt="one")
    b, _ = Generation.request(alice, kind=Kind.TEXT_TO_VIDEO, prompt="two")

    assert a.callback_token != b.callback_token
    assert len(a.callback_token) >= 32
    assert a.callback_url.endswith(f"/webhooks/luma/{a.callback_token}/")

