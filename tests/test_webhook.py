"""The Luma callback endpoint: only a row's own token works, forged or broken bodies change nothing."""

import json
import uuid

import pytest
from django.test import Client

from generations.models import ArchiveState, Generation, Kind, State


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
def queued(alice):
    return Generation.objects.create(
        owner=alice, kind=Kind.TEXT_TO_VIDEO, prompt="a teddy bear", model="ray-2",
        state=State.QUEUED, luma_id=str(uuid.uuid4()),
    )


@pytest.fixture
def luma():
    # Luma sends no cookie and no CSRF token.
    return Client(enforce_csrf_checks=True)


def post(client, generation, body, token=None):
    url = f"/webhooks/luma/{token or generation.callback_token}/"
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(url, data=data, content_type="application/json")


@pytest.mark.django_db
def test_a_callback_moves_the_card_forward_without_login_or_csrf(luma, queued, jobs):
    response = post(luma, queued, callback_body(queued.luma_id, "dreaming"))

    assert response.status_code == 200
    queued.refresh_from_db()
    assert queued.state == State.DREAMING
    assert queued.dreaming_at is not None
    assert queued.events.last().source == "webhook"


@pytest.mark.django_db
def test_a_completed_callback_starts_the_archive(luma, queued, jobs):
    post(luma, queued, callback_body(queued.luma_id, "completed"))

    queued.refresh_from_db()
    assert queued.state == State.COMPLETED
    assert queued.archive_state == ArchiveState.WAITING
    assert ("archive", (queued.pk,)) in jobs.queue


@pytest.mark.django_db
def test_a_failed_callback_keeps_lumas_reason(luma, queued, jobs):
    post(luma, queued, callback_body(queued.luma_id, "failed", failure_reason="Contains blacklisted words"))

    queued.refresh_from_db()
    assert queued.state == State.FAILED
    assert queued.reason == "Contains blacklisted words"


@pytest.mark.django_db
def test_a_repeated_callback_changes_nothing(luma, queued, jobs):
    post(luma, queued, callback_body(queued.luma_id, "completed"))
    post(luma, queued, callback_body(queued.luma_id, "completed"))

    queued.refresh_from_db()
    assert queued.state == State.COMPLETED
    assert jobs.names().count("archive") == 1
    assert "already known" in queued.events.last().summary


@pytest.mark.django_db
def test_an_old_callback_arriving_late_does_not_move_the_state_back(luma, queued, jobs):
    post(luma, queued, callback_body(queued.luma_id, "completed"))
    response = post(luma, queued, callback_body(queued.luma_id, "dreaming"))

    assert response.status_code == 200
    queued.refresh_from_db()
    assert queued.state == State.COMPLETED
    assert "stale" in queued.events.last().summary


@pytest.mark.django_db
def test_news_applied_to_an_out_of_date_copy_lands_on_the_row_as_it_is_now(queued, jobs):
    """Two workers hold the same row; the second one's copy is out of date when it applies its news."""
    from generations.luma import Generation as RemoteGeneration

    first, second = Generation.objects.get(pk=queued.pk), Generation.objects.get(pk=queued.pk)
    first.apply_remote(RemoteGeneration.from_json(callback_body(queued.luma_id, "dreaming")), source="webhook")
    moved = second.apply_remote(RemoteGeneration.from_json(callback_body(queued.luma_id, "completed")), source="poll")

    queued.refresh_from_db()
    assert moved and queued.state == State.COMPLETED and queued.dreaming_at and queued.completed_at
    assert (second.state, second.dreaming_at, second.archive_state) == (State.COMPLETED, queued.dreaming_at,
                                                                       ArchiveState.WAITING)
    assert list(queued.events.values_list("summary", flat=True)) == [
        "webhook: Luma says dreaming; now dreaming", "poll: Luma says completed; now completed"]
    assert jobs.names() == ["archive"]


@pytest.mark.django_db
def test_a_wrong_token_gets_404_and_changes_nothing(luma, queued, jobs):
    response = post(luma, queued, callback_body(queued.luma_id, "completed"), token="not-a-real-token")

    assert response.status_code == 404
    queued.refresh_from_db()
    assert queued.state == State.QUEUED
    assert not queued.events.exists()


@pytest.mark.django_db
def test_another_rows_token_cannot_change_this_row(luma, queued, alice, jobs):
    other = Generation.objects.create(owner=alice, prompt="other", state=State.QUEUED, luma_id=str(uuid.uuid4()))

    response = post(luma, other, callback_body(queued.luma_id, "completed"))

    assert response.status_code == 400
    queued.refresh_from_db()
    other.refresh_from_db()
    assert (queued.state, other.state) == (State.QUEUED, State.QUEUED)


@pytest.mark.django_db
@pytest.mark.parametrize("body", ["{not json", "[1, 2, 3]", '{"state": "completed"}', b"\xff\xfe"])
def test_a_malformed_body_gets_400_and_changes_nothing(luma, queued, body, jobs):
    response = post(luma, queued, body)

    assert response.status_code == 400
    queued.refresh_from_db()
    assert queued.state == State.QUEUED


@pytest.mark.django_db
def test_a_body_over_256_kb_gets_413(luma, queued, jobs):
    body = callback_body(queued.luma_id, "completed", padding="x" * (257 * 1024))

    response = post(luma, queued, body)

    assert response.status_code == 413
    queued.refresh_from_db()
    assert queued.state == State.QUEUED


@pytest.mark.django_db
def test_only_post_is_accepted(luma, queued):
    assert luma.get(f"/webhooks/luma/{queued.callback_token}/").status_code == 405


@pytest.mark.django_db
def test_a_forged_asset_url_on_a_foreign_host_is_never_fetched(luma, queued, jobs, luma_settings):
    body = callback_body(queued.luma_id, "completed")
    body["assets"]["video"] = "http://169.254.169.254/latest/meta-data/"

    post(luma, queued, body)
    jobs.run()

    queued.refresh_from_db()
    assert queued.archive_state == ArchiveState.FAILED
    assert "not allowed" in queued.archive_error
    assert not queued.archive_file


@pytest.mark.django_db
def test_callback_tokens_are_unguessable_and_distinct(alice):
    a, _ = Generation.request(alice, kind=Kind.TEXT_TO_VIDEO, prompt="one")
    b, _ = Generation.request(alice, kind=Kind.TEXT_TO_VIDEO, prompt="two")

    assert a.callback_token != b.callback_token
    assert len(a.callback_token) >= 32
    assert a.callback_url.endswith(f"/webhooks/luma/{a.callback_token}/")
