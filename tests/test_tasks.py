"""The generation lifecycle against the real simulator, with jobs run inline: nothing lost, nothing billed twice."""

import hashlib
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from django.core.management import call_command
from django.utils import timezone

from generations import admission, tasks
from generations.models import ArchiveState, Generation, Kind, LumaAccount, State

pytestmark = pytest.mark.django_db


def ask(owner, kind=Kind.TEXT_TO_VIDEO, **fields) -> Generation:
    fields.setdefault("prompt", "A teddy bear in sunglasses playing electric guitar and dancing")
    fields.setdefault("model", "photon-1" if kind == Kind.IMAGE else "ray-2")
    row, _ = Generation.request(owner, kind=kind, **fields)
    return row


def sim_sha256(luma_sim, luma_id: str) -> str:
    """What the simulator serves for this generation, hashed here from a clean download."""
    remote = requests.get(
        f"{luma_sim.base_url}/generations/{luma_id}", headers={"Authorization": f"Bearer {luma_sim.api_key}"}, timeout=10
    ).json()
    url = remote["assets"].get("video") or remote["assets"].get("image")
    return hashlib.sha256(requests.get(url, timeout=30).content).hexdigest()


def finish_and_archive(row: Generation, luma_sim, jobs, state="completed", reason=None) -> Generation:
    """Let Luma finish the generation, then let our poll notice it and run the resulting jobs."""
    luma_sim.finish(row.luma_id, state, reason)
    tasks.refresh(row.pk)
    jobs.run()
    row.refresh_from_db()
    return row


def completed_video(owner, luma_sim, jobs, **fields) -> Generation:
    row = ask(owner, **fields)
    jobs.run()
    row.refresh_from_db()
    return finish_and_archive(row, luma_sim, jobs)


def assert_archived_like_luma(row: Generation, luma_sim) -> None:
    assert row.state == State.COMPLETED
    assert row.archive_state == ArchiveState.DONE, row.archive_error
    stored = Path(row.archive_file.path)
    assert stored.exists()
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == row.sha256 == sim_sha256(luma_sim, row.luma_id)
    assert row.archive_size == stored.stat().st_size


def test_a_text_to_video_request_is_sent_once_and_archived_with_lumas_bytes(alice, luma_sim, luma_settings, jobs):
    row = ask(alice)
    assert row.state == State.PENDING

    jobs.run()
    row.refresh_from_db()
    assert row.state == State.QUEUED
    assert row.luma_id
    assert luma_sim.creates(row.callback_token)["count"] == 1

    row = finish_and_archive(row, luma_sim, jobs)

    assert_archived_like_luma(row, luma_sim)
    assert row.poster
    assert Path(row.poster.path).read_bytes()[:2] == b"\xff\xd8"  # a JPEG


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": Kind.IMAGE_TO_VIDEO, "frame0_url": "https://images.example.com/tiger-start.jpg"},
        {"kind": Kind.IMAGE_TO_VIDEO, "frame0_url": "https://images.example.com/tiger-start.jpg", "loop": True},
        {"kind": Kind.IMAGE_TO_VIDEO, "frame1_url": "https://images.example.com/tiger-end.jpg"},
        {"kind": Kind.IMAGE_TO_VIDEO, "frame0_url": "https://images.example.com/a.jpg",
         "frame1_url": "https://images.example.com/b.jpg"},
        {"kind": Kind.TEXT_TO_VIDEO, "aspect_ratio": "9:16", "resolution": "540p", "duration": "9s",
         "concepts": ["dolly_zoom"]},
        {"kind": Kind.IMAGE, "model": "photon-1", "aspect_ratio": "1:1"},
    ],
    ids=["start-frame", "start-frame-loop", "end-frame", "start-and-end", "options-and-concepts", "image"],
)
def test_every_seed_mode_reaches_an_archived_file(alice, luma_sim, luma_settings, jobs, fields):
    row = ask(alice, **fields)
    jobs.run()
    row.refresh_from_db()
    assert row.state == State.QUEUED, row.reason

    row = finish_and_archive(row, luma_sim, jobs)

    assert_archived_like_luma(row, luma_sim)
    sent = row.raw["request"]
    if "frame0_url" in fields:
        assert sent["keyframes"]["frame0"] == {"type": "image", "url": fields["frame0_url"]}
    if fields.get("loop"):
        assert sent["loop"] is True


@pytest.mark.parametrize("kind", [Kind.EXTEND, Kind.REVERSE_EXTEND, Kind.UPSCALE, Kind.ADD_AUDIO])
def test_continuing_a_completed_video_links_the_lineage(alice, luma_sim, luma_settings, jobs, kind):
    first = completed_video(alice, luma_sim, jobs)
    link = {
        Kind.EXTEND: {"frame0_generation": first},
        Kind.REVERSE_EXTEND: {"frame1_generation": first},
        Kind.UPSCALE: {"source": first, "resolution": "1080p", "prompt": ""},
        Kind.ADD_AUDIO: {"source": first, "prompt": "guitar riff"},
    }[kind]

    row = ask(alice, kind=kind, **link)
    jobs.run()
    row.refresh_from_db()
    assert row.state == State.QUEUED, row.reason
    row = finish_and_archive(row, luma_sim, jobs)

    assert_archived_like_luma(row, luma_sim)
    assert list(Generation.objects.lineage_children(first)) == [row]
    if kind in (Kind.EXTEND, Kind.REVERSE_EXTEND):
        frame = "frame0" if kind == Kind.EXTEND else "frame1"
        assert row.raw["request"]["keyframes"][frame] == {"type": "generation", "id": first.luma_id}


def test_interpolating_two_completed_videos(alice, luma_sim, luma_settings, jobs):
    a = completed_video(alice, luma_sim, jobs)
    b = completed_video(alice, luma_sim, jobs, prompt="A tiger prowling through snow")

    row = ask(alice, kind=Kind.INTERPOLATE, frame0_generation=a, frame1_generation=b)
    jobs.run()
    row.refresh_from_db()
    row = finish_and_archive(row, luma_sim, jobs)

    assert_archived_like_luma(row, luma_sim)
    assert row.raw["request"]["keyframes"]["frame1"] == {"type": "generation", "id": b.luma_id}


def test_lumas_refusal_is_shown_in_its_own_words_and_nothing_is_billed(alice, luma_sim, luma_settings, jobs):
    row = ask(alice, prompt="hi")

    jobs.run()

    row.refresh_from_db()
    assert row.state == State.REJECTED
    assert row.reason == "Prompt is too short, minimum length is 3 characters"
    assert row.luma_id is None


def test_a_failed_generation_keeps_lumas_reason(alice, luma_sim, luma_settings, jobs):
    row = ask(alice)
    jobs.run()
    row.refresh_from_db()

    row = finish_and_archive(row, luma_sim, jobs, state="failed", reason="Job failed")

    assert row.state == State.FAILED
    assert row.reason == "Job failed"
    assert row.archive_state == ArchiveState.NONE


def test_a_redelivered_submit_task_sends_nothing_more(alice, luma_sim, luma_settings, jobs):
    row = ask(alice)
    jobs.run()
    row.refresh_from_db()

    tasks.submit(row.pk)
    tasks.submit(row.pk)

    assert luma_sim.creates(row.callback_token)["count"] == 1


def test_a_double_click_makes_one_generation(alice, luma_sim, luma_settings, jobs):
    first, created = Generation.request(alice, kind=Kind.TEXT_TO_VIDEO, prompt="a calm sea", client_token="form-1")
    again, created_again = Generation.request(alice, kind=Kind.TEXT_TO_VIDEO, prompt="a calm sea", client_token="form-1")
    jobs.run()

    assert (created, created_again) == (True, False)
    assert first.pk == again.pk
    assert Generation.objects.count() == 1
    assert luma_sim.creates(first.callback_token)["count"] == 1


def test_a_create_whose_answer_is_lost_is_found_by_the_sweep_not_sent_again(alice, luma_sim, luma_settings, jobs):
    luma_sim.faults(drop_after_create=1.0)
    row = ask(alice)
    jobs.run()
    row.refresh_from_db()
    assert row.state == State.UNCONFIRMED
    luma_sim.faults(drop_after_create=0)

    Generation.objects.filter(pk=row.pk).update(next_poll_at=timezone.now())
    tasks.sweep()
    jobs.run()

    row.refresh_from_db()
    assert row.state in (State.QUEUED, State.DREAMING)
    assert row.luma_id
    assert luma_sim.creates(row.callback_token)["count"] == 1


def test_a_create_whose_outcome_is_unknown_is_never_sent_again(alice, luma_sim, luma_settings, jobs):
    row = ask(alice)
    tasks.admit()
    # The worker died after claiming the row but before its request left: Luma has nothing.
    Generation.objects.filter(pk=row.pk).update(
        state=State.SUBMITTING, submitted_at=timezone.now() - timedelta(minutes=5), submit_attempts=1
    )
    jobs.queue.clear()

    for _ in range(3):
        Generation.objects.filter(pk=row.pk, state=State.UNCONFIRMED).update(next_poll_at=timezone.now())
        tasks.sweep()
        jobs.run()

    row.refresh_from_db()
    assert row.state == State.FAILED and row.failed_locally
    assert "not sent again" in row.reason
    assert luma_sim.creates(row.callback_token)["attempts"] == 0


def test_a_given_up_create_is_adopted_when_it_shows_up_on_luma(alice, luma_sim, luma_settings, jobs):
    row = ask(alice)
    tasks.admit()
    Generation.objects.filter(pk=row.pk).update(state=State.UNCONFIRMED, submitted_at=timezone.now() - timedelta(minutes=5),
                                                submit_attempts=1, next_poll_at=timezone.now())
    jobs.queue.clear()
    tasks.sweep()
    row.refresh_from_db()
    assert row.state == State.FAILED

    # The create did reach Luma after all (late), carrying the row's callback URL.
    made = luma_sim.create(prompt=row.prompt, callback_url=row.callback_url)
    luma_sim.finish(made["id"])
    Generation.objects.filter(pk=row.pk).update(next_poll_at=timezone.now())
    tasks.sweep()
    jobs.run()

    row.refresh_from_db()
    assert row.luma_id == made["id"] and not row.failed_locally
    assert_archived_like_luma(row, luma_sim)


def test_reconcile_searches_lumas_list_back_to_the_rows_submit_time(alice, luma_sim, luma_settings, jobs):
    luma_sim.config(limits=False)
    luma_sim.faults(drop_after_create=1)
    row = ask(alice)
    jobs.run()
    row.refresh_from_db()
    assert row.state == State.UNCONFIRMED
    for i in range(340):  # other work of the team's, newer than ours: more than three pages of the list
        luma_sim.create(prompt=f"newer {i}")
    Generation.objects.filter(pk=row.pk).update(next_poll_at=timezone.now(),
                                                submitted_at=timezone.now() - timedelta(minutes=10))

    tasks.sweep()
    jobs.run()

    row.refresh_from_db()
    assert row.luma_id and row.state in (State.QUEUED, State.DREAMING, State.COMPLETED)
    assert luma_sim.creates(row.callback_token)["count"] == 1


def test_a_broken_list_does_not_stop_polling_or_give_up_on_creates(alice, luma_sim, luma_settings, jobs):
    rows = [ask(alice, prompt=f"clip {i}") for i in range(3)]
    jobs.run()
    for row in rows:
        row.refresh_from_db()
        luma_sim.finish(row.luma_id)
    luma_sim.faults(drop_after_create=1)
    doubtful = ask(alice, prompt="answer lost")
    jobs.run()
    Generation.objects.filter(pk=doubtful.pk).update(submitted_at=timezone.now() - timedelta(minutes=10))
    luma_sim.faults(list_500_for=600)
    Generation.objects.update(next_poll_at=timezone.now() - timedelta(seconds=1))

    tasks.sweep()
    jobs.run()

    assert {Generation.objects.get(pk=r.pk).state for r in rows} == {State.COMPLETED}
    assert all(Generation.objects.get(pk=r.pk).archive_state == ArchiveState.DONE for r in rows)
    doubtful.refresh_from_db()
    assert doubtful.state == State.UNCONFIRMED  # not given up on while Luma's list cannot be searched


def test_two_sweeps_never_overlap(alice, luma_sim, luma_settings, jobs):
    lease = LumaAccount.take_lease("sweep", timezone.now(), 300)
    row = ask(alice)
    jobs.queue.clear()

    tasks.sweep()  # another sweep holds the lease: this one does nothing

    assert not jobs.queue
    assert Generation.objects.get(pk=row.pk).state == State.PENDING
    LumaAccount.release_lease("sweep", lease)
    tasks.sweep()
    assert "submit" in jobs.names()


def test_only_the_owner_of_an_archive_claim_may_store_it(alice, luma_sim, luma_settings, jobs):
    from generations import archive

    row = ask(alice)
    jobs.run()
    row.refresh_from_db()
    luma_sim.finish(row.luma_id)
    tasks.refresh(row.pk)
    jobs.queue.clear()
    first = archive.claim(row.pk)
    # An admin's retry (or a sweep that thinks the first run stalled) hands the row to a second run.
    Generation.objects.filter(pk=row.pk).update(archive_state=ArchiveState.FAILED)
    second = archive.claim(row.pk)
    assert first and second and first != second

    archive._archive(row.pk, first)  # the first run finishes late: it must write nothing
    row.refresh_from_db()
    assert row.archive_state == ArchiveState.DOWNLOADING and not row.archive_file

    archive._archive(row.pk, second)
    row.refresh_from_db()
    assert_archived_like_luma(row, luma_sim)


def test_a_running_archive_on_this_machine_keeps_a_second_worker_out(alice, luma_sim, luma_settings, jobs):
    from generations import archive

    row = completed_video(alice, luma_sim, jobs)
    Generation.objects.filter(pk=row.pk).update(archive_state=ArchiveState.FAILED)
    with archive._RowLock(row.pk) as locked:
        assert locked
        tasks.archive(row.pk)  # a second worker: the lock is held, so it claims nothing
        assert Generation.objects.get(pk=row.pk).archive_state == ArchiveState.FAILED


def test_queue_places_are_read_from_the_database_in_round_robin_order(alice, bob, luma_settings, jobs):
    luma_settings.LUMA_MAX_CONCURRENT = 0
    for i in range(30):
        ask(alice, prompt=f"alice {i}")
    ask(bob, prompt="bob 0")

    positions = admission.queue_positions()

    bob_row = Generation.objects.get(prompt="bob 0")
    assert positions[bob_row.pk] == 2
    assert sorted(positions.values()) == list(range(1, 32))


def test_a_429_keeps_the_rows_place_and_pauses_the_team(alice, bob, luma_sim, luma_settings, jobs):
    luma_sim.faults(burst_429=1)
    first = ask(alice)
    second = ask(bob)

    jobs.run()

    first.refresh_from_db()
    assert first.state == State.PENDING
    assert LumaAccount.get().paused_until > timezone.now()
    assert admission.queue_positions()[first.pk] == 1

    LumaAccount.objects.update(paused_until=None)
    tasks.admit()
    jobs.run()
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.state, second.state) == (State.QUEUED, State.QUEUED)
    assert luma_sim.creates(first.callback_token)["count"] == 1


def test_admission_respects_the_concurrency_limit_and_serves_users_round_robin(alice, bob, luma_sim, luma_settings, jobs):
    luma_settings.LUMA_MAX_CONCURRENT = 2
    alices = [ask(alice, prompt=f"alice clip {i}") for i in range(3)]
    bobs = [ask(bob, prompt="bob clip")]

    positions = admission.queue_positions()
    assert [positions[g.pk] for g in (alices[0], bobs[0], alices[1], alices[2])] == [1, 2, 3, 4]

    jobs.run()
    states = {g.prompt: Generation.objects.get(pk=g.pk).state for g in alices + bobs}
    assert states == {"alice clip 0": State.QUEUED, "bob clip": State.QUEUED,
                      "alice clip 1": State.PENDING, "alice clip 2": State.PENDING}


def test_the_creates_per_minute_limit_holds_back_the_rest(alice, luma_sim, luma_settings, jobs):
    luma_settings.LUMA_CREATES_PER_MINUTE = 3
    rows = [ask(alice, prompt=f"clip {i}") for i in range(5)]

    jobs.run()

    assert [Generation.objects.get(pk=r.pk).state for r in rows].count(State.PENDING) == 2


def test_a_lost_callback_is_covered_by_the_sweeps_poll(alice, luma_sim, luma_settings, jobs):
    row = ask(alice)
    jobs.run()
    row.refresh_from_db()
    luma_sim.finish(row.luma_id, "completed")

    Generation.objects.filter(pk=row.pk).update(next_poll_at=timezone.now() - timedelta(seconds=1))
    tasks.sweep()
    jobs.run()

    row.refresh_from_db()
    assert_archived_like_luma(row, luma_sim)


def test_one_list_call_refreshes_many_quiet_generations(alice, luma_sim, luma_settings, jobs):
    rows = [ask(alice, prompt=f"clip {i}") for i in range(4)]
    jobs.run()
    for row in rows:
        row.refresh_from_db()
        luma_sim.finish(row.luma_id, "completed")
    Generation.objects.update(next_poll_at=timezone.now() - timedelta(seconds=1))
    before = luma_sim.stats()

    tasks.poll_due(tasks.luma.client_from_settings(), timezone.now())

    after = luma_sim.stats()
    assert set(Generation.objects.values_list("state", flat=True)) == {State.COMPLETED}
    assert after["requests"].get("GET /generations", 0) - before["requests"].get("GET /generations", 0) == 1
    assert after["requests"].get("GET /generations/{id}", 0) == before["requests"].get("GET /generations/{id}", 0)


def test_server_errors_on_reads_are_retried_until_the_state_converges(alice, luma_sim, luma_settings, jobs):
    row = ask(alice)
    jobs.run()
    row.refresh_from_db()
    luma_sim.faults(get_5xx=0.5)

    row = finish_and_archive(row, luma_sim, jobs)

    luma_sim.faults(get_5xx=0)
    assert_archived_like_luma(row, luma_sim)


def test_a_cut_download_resumes_and_the_file_is_whole(alice, luma_sim, luma_settings, jobs):
    luma_sim.config(asset_bytes=3_000_000)
    row = ask(alice)
    jobs.run()
    row.refresh_from_db()
    luma_sim.faults(cut_downloads=1.0)
    luma_sim.finish(row.luma_id, "completed")
    tasks.refresh(row.pk)
    jobs.run()
    row.refresh_from_db()
    assert row.archive_state == ArchiveState.FAILED
    assert row.archive_received > 0

    luma_sim.faults(cut_downloads=0)
    tasks.archive(row.pk)
    row.refresh_from_db()
    assert_archived_like_luma(row, luma_sim)
    assert row.archive_size >= 3_000_000


def test_an_expired_asset_url_is_replaced_by_a_fresh_one(alice, luma_sim, luma_settings, jobs):
    luma_sim.faults(expire_asset_urls=0.5)
    row = ask(alice)
    jobs.run()
    row.refresh_from_db()
    luma_sim.finish(row.luma_id, "completed")
    tasks.refresh(row.pk)
    row.refresh_from_db()
    stale_url = row.video_url
    import time

    time.sleep(1.0)
    jobs.run()

    row.refresh_from_db()
    assert row.video_url != stale_url
    luma_sim.faults(expire_asset_urls=0)
    assert_archived_like_luma(row, luma_sim)


def test_deleting_removes_our_files_and_the_generation_on_luma(alice, luma_sim, luma_settings, jobs):
    row = completed_video(alice, luma_sim, jobs)
    stored = Path(row.archive_file.path)

    row.mark_deleted(alice)
    jobs.run()

    row.refresh_from_db()
    assert not stored.exists()
    assert row.luma_deleted_at is not None
    assert not Generation.objects.visible().filter(pk=row.pk).exists()
    gone = requests.get(f"{luma_sim.base_url}/generations/{row.luma_id}",
                        headers={"Authorization": f"Bearer {luma_sim.api_key}"}, timeout=5)
    assert gone.status_code == 404
    assert "deleted on Luma" in row.events.last().summary


def test_import_pulls_lumas_generations_once(alice, luma_sim, luma_settings, jobs, capsys):
    headers = {"Authorization": f"Bearer {luma_sim.api_key}"}
    made = [
        requests.post(f"{luma_sim.base_url}/generations/video", json={"prompt": f"imported {i}", "model": "ray-2"},
                      headers=headers, timeout=5).json()["id"]
        for i in range(3)
    ]
    luma_sim.finish(made[0], "completed")

    call_command("luma_import")
    call_command("luma_import")
    jobs.run()

    assert Generation.objects.count() == 3
    done = Generation.objects.get(luma_id=made[0])
    assert done.state == State.COMPLETED
    assert_archived_like_luma(done, luma_sim)
    assert "imported 0 new of 3 seen" in capsys.readouterr().out


IMG = "https://images.example.com/ref.jpg"


@pytest.mark.parametrize("kind,fields,expect", [
    (Kind.MODIFY_VIDEO, {"model": "ray-2", "mode": "reimagine_2", "prompt": "as a watercolour"},
     {"mode": "reimagine_2", "generation_type": "modify_video"}),
    (Kind.REFRAME_VIDEO, {"model": "ray-flash-2", "aspect_ratio": "9:16", "prompt": "",
                          "options": {"grid_position_x": 0, "grid_position_y": 420, "resized_width": 1280,
                                      "resized_height": 720}},
     {"aspect_ratio": "9:16", "grid_position_y": 420, "resized_width": 1280}),
])
def test_modify_and_reframe_a_library_video_reach_an_archived_file(alice, luma_sim, luma_settings, jobs, kind,
                                                                   fields, expect):
    source = completed_video(alice, luma_sim, jobs)
    row = ask(alice, kind=kind, source=source, **fields)
    jobs.run()
    row.refresh_from_db()
    assert row.state == State.QUEUED, row.reason

    row = finish_and_archive(row, luma_sim, jobs)

    assert_archived_like_luma(row, luma_sim)
    sent = row.raw["request"]
    assert sent["media"] == {"url": source.video_url}
    assert {key: sent[key] for key in expect if key in sent} == {k: v for k, v in expect.items() if k in sent}


def test_a_photon_image_with_references_and_a_reframed_image(alice, luma_sim, luma_settings, jobs):
    refs = {"image_ref": [{"url": IMG, "weight": 0.85}], "style_ref": [{"url": IMG, "weight": 0.6}],
            "character_ref": {"identity0": {"images": [IMG]}}}
    image = ask(alice, kind=Kind.IMAGE, model="photon-flash-1", prompt="a fox in a library", options=refs)
    jobs.run()
    image = finish_and_archive(Generation.objects.get(pk=image.pk), luma_sim, jobs)
    assert_archived_like_luma(image, luma_sim)
    assert image.raw["request"]["image_ref"] == refs["image_ref"]

    wide = ask(alice, kind=Kind.REFRAME_IMAGE, model="photon-1", aspect_ratio="21:9", prompt="", source=image)
    jobs.run()
    wide = finish_and_archive(Generation.objects.get(pk=wide.pk), luma_sim, jobs)
    assert_archived_like_luma(wide, luma_sim)
    assert not wide.is_video and wide.raw["request"]["media"] == {"url": image.image_url}


def test_a_request_over_a_budget_is_refused_before_anything_reaches_luma(alice, luma_sim, luma_settings, jobs):
    from generations import budgets
    from generations.models import Profile

    Profile.objects.create(user=alice, monthly_budget_cents=300)  # $3; a ray-2 720p 5 s clip is about $1.75
    ask(alice)
    jobs.run()

    with pytest.raises(budgets.OverBudget, match=r"you have \$1\.\d\d left this month; this costs about \$1\.75"):
        ask(alice, prompt="one too many")
    assert Generation.objects.count() == 1
    assert luma_sim.creates()["count"] == 1


def test_with_the_approval_policy_a_request_over_budget_waits_for_staff(alice, staff, luma_sim, luma_settings, jobs):
    LumaAccount.get()
    LumaAccount.objects.update(team_budget_cents=100, budget_policy="approval")
    row = ask(alice)
    jobs.run()
    row.refresh_from_db()
    assert row.state == State.HELD and "Over budget" in row.reason
    assert luma_sim.creates()["count"] == 0

    assert row.approve(staff)
    jobs.run()
    row.refresh_from_db()
    assert row.state == State.QUEUED and luma_sim.creates()["count"] == 1


def test_failed_generations_do_not_count_against_a_budget(alice, luma_sim, luma_settings, jobs):
    from generations import budgets

    ask(alice)
    jobs.run()
    assert budgets.spent_cents(alice) == 175
    Generation.objects.update(state=State.FAILED)
    assert budgets.spent_cents(alice) == 0
