"""The Django admin for operators: find generations, read their history and raw JSON, and repair them."""

import json

import pytest
from django.conf import settings

from generations.models import ArchiveState, Generation, Kind, State
from tests.test_tasks import ask, assert_archived_like_luma

pytestmark = pytest.mark.django_db
LIST = "/admin/generations/generation/"


@pytest.fixture
def admin_client_for(client, staff):
    client.force_login(staff)
    return client


def run_action(client, action: str, *rows: Generation):
    return client.post(LIST, {"action": action, "_selected_action": [row.pk for row in rows]}, follow=True)


def submitted(owner, luma_sim, jobs, prompt: str) -> Generation:
    """A generation sent to the simulator, whose callbacks are lost, finished on Luma's side."""
    luma_sim.faults(drop_callbacks=1.0)
    row = ask(owner, prompt=prompt)
    jobs.run()
    row.refresh_from_db()
    luma_sim.finish(row.luma_id, "completed")
    return row


def test_generations_can_be_filtered_by_state_and_searched_by_prompt(admin_client_for, alice):
    fox = Generation.objects.create(owner=alice, prompt="A fox in the snow", state=State.COMPLETED, luma_id="l-1")
    Generation.objects.create(owner=alice, prompt="A fox at night", state=State.FAILED, luma_id="l-2")
    Generation.objects.create(owner=alice, prompt="A bee on a flower", state=State.COMPLETED, luma_id="l-3")

    page = admin_client_for.get(LIST, {"state__exact": "completed", "q": "fox"}).content.decode()

    assert "A fox in the snow" in page and "A fox at night" not in page and "A bee on a flower" not in page
    assert f"/admin/generations/generation/{fox.pk}/change/" in page
    for facet in ("By state", "By kind", "By model", "By owner"):
        assert facet in page


def test_a_generation_shows_its_events_and_raw_json_read_only(admin_client_for, alice):
    row = Generation.objects.create(owner=alice, prompt="A fox", state=State.COMPLETED, luma_id="luma-raw-1",
                                    raw={"id": "luma-raw-1", "state": "completed", "unknown_field": 7})
    row.record("webhook", "webhook: Luma says completed; now completed")

    page = admin_client_for.get(f"{LIST}{row.pk}/change/").content.decode()

    assert "webhook: Luma says completed; now completed" in page
    assert "&quot;unknown_field&quot;: 7" in page
    assert 'name="raw"' not in page and 'name="state"' not in page  # read-only, not editable


def test_refresh_from_luma_brings_in_what_a_lost_callback_did_not(admin_client_for, alice, luma_sim, luma_settings, jobs):
    row = submitted(alice, luma_sim, jobs, "A lighthouse in a storm")

    response = run_action(admin_client_for, "refresh_from_luma", row)
    jobs.run()

    row.refresh_from_db()
    assert "Asked Luma about 1 generation(s)." in response.content.decode()
    assert_archived_like_luma(row, luma_sim)


def test_retry_archive_archives_a_completed_generation_whose_download_failed(admin_client_for, alice, luma_sim,
                                                                             luma_settings, jobs):
    row = submitted(alice, luma_sim, jobs, "A paper boat on a rainy street")
    Generation.objects.filter(pk=row.pk).update(state=State.COMPLETED, archive_state=ArchiveState.FAILED,
                                                archive_attempts=5, archive_error="Archive failed: broke off")

    response = run_action(admin_client_for, "retry_archive", row)
    jobs.run()

    row.refresh_from_db()
    assert "Archiving 1 generation(s) again." in response.content.decode()
    assert row.archive_error == "" and row.luma_id
    assert row.archive_state == ArchiveState.DONE


def test_retry_archive_leaves_a_download_in_progress_to_its_owner(admin_client_for, alice, luma_sim, luma_settings,
                                                                  jobs):
    from generations import archive

    row = submitted(alice, luma_sim, jobs, "A kite over the sea")
    Generation.objects.filter(pk=row.pk).update(state=State.COMPLETED, archive_state=ArchiveState.WAITING)
    owner = archive.claim(row.pk)  # a worker is downloading it right now

    response = run_action(admin_client_for, "retry_archive", row)

    row.refresh_from_db()
    assert "1 still downloading, left to finish." in response.content.decode()
    assert (row.archive_state, row.archive_claim) == (ArchiveState.DOWNLOADING, owner)
    assert "archive" not in jobs.names()


def test_delete_removes_the_generation_here_and_on_luma(admin_client_for, alice, luma_sim, luma_settings, jobs):
    row = submitted(alice, luma_sim, jobs, "A hot air balloon over a desert")

    response = run_action(admin_client_for, "delete_on_luma", row)
    jobs.run()

    row.refresh_from_db()
    assert "Deleting 1 generation(s)." in response.content.decode()
    assert row.deleted_at is not None and row.luma_deleted_at is not None
    assert [g["deleted"] for g in luma_sim.generations() if g["id"] == row.luma_id] == [True]


def test_the_job_queue_and_the_sweep_schedule_are_in_the_admin(admin_client_for):
    page = admin_client_for.get("/admin/django_q/schedule/").content.decode()
    assert "generations.tasks.sweep" in page
    assert admin_client_for.get("/admin/django_q/success/").status_code == 200
    assert admin_client_for.get("/admin/django_q/failure/").status_code == 200
    if "orm" in settings.Q_CLUSTER:  # the queue itself is in the database only with the ORM broker
        assert admin_client_for.get("/admin/django_q/ormq/").status_code == 200


def test_team_members_without_staff_rights_cannot_open_the_admin(client, alice):
    client.force_login(alice)
    response = client.get(LIST)
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


# --- history stays as it happened ----------------------------------------------------------------


def change_form(row: Generation, **changes) -> dict:
    """What the admin's change form posts for `row`, with some fields changed."""
    data = {"owner": row.owner_id or "", "kind": row.kind, "prompt": row.prompt, "negative_prompt": row.negative_prompt,
            "model": row.model, "resolution": row.resolution, "duration": row.duration,
            "aspect_ratio": row.aspect_ratio, "concepts": json.dumps(row.concepts), "frame0_url": row.frame0_url,
            "frame1_url": row.frame1_url, "frame0_generation": "", "frame1_generation": "", "source": "",
            "events-TOTAL_FORMS": "0", "events-INITIAL_FORMS": "0", "events-MIN_NUM_FORMS": "0",
            "events-MAX_NUM_FORMS": "1000", "_save": "Save"}
    return {**data, **changes}


@pytest.mark.parametrize(
    "sent",
    [{"state": State.COMPLETED, "luma_id": "luma-done-1"}, {"state": State.SUBMITTING},
     {"state": State.UNCONFIRMED, "submitted_at": "now"}],
    ids=["completed", "submitting", "unconfirmed"],
)
def test_a_sent_generation_is_read_only_in_the_admin(admin_client_for, alice, bob, sent):
    from django.utils import timezone

    fields = {name: timezone.now() if value == "now" else value for name, value in sent.items()}
    row = Generation.objects.create(owner=alice, prompt="A fox in the snow", kind=Kind.TEXT_TO_VIDEO, model="ray-2",
                                    **fields)
    page = admin_client_for.get(f"{LIST}{row.pk}/change/").content.decode()
    assert "A fox in the snow" in page
    assert 'name="prompt"' not in page and 'name="owner"' not in page and 'name="_save"' not in page

    response = admin_client_for.post(f"{LIST}{row.pk}/change/", change_form(
        row, prompt="A video Luma never made", owner=bob.pk, kind=Kind.IMAGE, model="photon-1"))

    assert response.status_code == 403
    row.refresh_from_db()
    assert (row.prompt, row.owner, row.kind, row.model) == ("A fox in the snow", alice, Kind.TEXT_TO_VIDEO, "ray-2")


def test_a_generation_still_waiting_for_a_slot_can_be_corrected_and_says_so(admin_client_for, alice):
    row = Generation.objects.create(owner=alice, prompt="A fox in the snwo", model="ray-2")

    response = admin_client_for.post(f"{LIST}{row.pk}/change/", change_form(row, prompt="A fox in the snow"))

    assert response.status_code == 302
    row.refresh_from_db()
    assert row.prompt == "A fox in the snow" and row.state == State.PENDING
    assert list(row.events.values_list("summary", flat=True)) == ["edited in the admin by carol: prompt"]


def test_generations_are_asked_for_on_the_dashboard_not_added_in_the_admin(admin_client_for):
    page = admin_client_for.get(LIST).content.decode()

    assert "Ask for a generation on the dashboard" in page and f'href="{LIST}add/"' not in page
    assert admin_client_for.get(f"{LIST}add/").status_code == 403
    assert admin_client_for.post(f"{LIST}add/", change_form(Generation(prompt="A fox", model="ray-2"))).status_code == 403
    assert Generation.objects.count() == 0


def test_the_admin_cannot_erase_a_generation_or_its_history(admin_client_for, alice):
    row = Generation.objects.create(owner=alice, prompt="A fox", state=State.COMPLETED, luma_id="luma-keep-1")
    event = row.record("webhook", "webhook: Luma says completed; now completed")

    assert admin_client_for.post(f"{LIST}{row.pk}/delete/", {"post": "yes"}).status_code == 403
    run_action(admin_client_for, "delete_selected", row)
    assert admin_client_for.post(f"/admin/generations/generationevent/{event.pk}/delete/",
                                 {"post": "yes"}).status_code == 403

    assert Generation.objects.filter(pk=row.pk, deleted_at__isnull=True).exists()
    assert row.events.filter(pk=event.pk).exists()


def test_keyframes_are_not_uploaded_or_replaced_in_the_admin(admin_client_for):
    assert admin_client_for.get("/admin/generations/keyframeimage/add/").status_code == 403
