"""Integration: the live web server, a real django-q2 cluster and the simulator, with callbacks over HTTP."""

import hashlib
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from generations import tasks
from generations.models import ArchiveState, Generation, Kind, State
from tests.plugins.stack import wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(120)]


def archived(pk: int):
    row = Generation.objects.get(pk=pk)
    return row if row.archive_state == ArchiveState.DONE else None


def test_a_generation_goes_from_request_to_archive_through_callbacks_alone(alice, luma_stack):
    row, _ = Generation.request(alice, kind=Kind.TEXT_TO_VIDEO, prompt="A teddy bear playing electric guitar")

    done = wait_until(lambda: archived(row.pk), timeout=60, message="the archive")

    assert done.state == State.COMPLETED
    assert hashlib.sha256(Path(done.archive_file.path).read_bytes()).hexdigest() == done.sha256
    sources = set(done.events.values_list("source", flat=True))
    assert "webhook" in sources  # the simulator called our live server back
    assert "poll" not in sources and "sweep" not in sources
    assert luma_stack.sim.creates(row.callback_token)["count"] == 1


def test_a_worker_killed_mid_download_is_repaired_by_the_sweep(alice, luma_stack):
    luma_stack.sim.config(asset_bytes=60_000_000, asset_rate=8_000_000)
    row, _ = Generation.request(alice, kind=Kind.TEXT_TO_VIDEO, prompt="A long, slow pan over a city")
    wait_until(
        lambda: Generation.objects.filter(pk=row.pk, archive_state=ArchiveState.DOWNLOADING, archive_received__gt=0).exists(),
        timeout=60, interval=0.05, message="the download to start",
    )

    luma_stack.cluster.kill_hard()
    row.refresh_from_db()
    assert row.archive_state == ArchiveState.DOWNLOADING
    luma_stack.sim.config(asset_rate=0)
    luma_stack.restart_cluster()
    # Time passes: the download looks stalled to the sweep.
    Generation.objects.filter(pk=row.pk).update(archive_updated_at=timezone.now() - timedelta(minutes=5))
    tasks.sweep()

    done = wait_until(lambda: archived(row.pk), timeout=60, message="the repaired archive")
    assert done.archive_size >= 60_000_000
    assert hashlib.sha256(Path(done.archive_file.path).read_bytes()).hexdigest() == done.sha256


def test_a_create_whose_answer_is_lost_shows_exactly_one_create_at_luma(alice, luma_stack):
    # Callbacks are dropped too: otherwise Luma's first callback can tell us about the generation before the
    # submit job has marked the row unconfirmed, and the row never waits in that state.
    luma_stack.sim.faults(drop_after_create=1.0, drop_callbacks=1.0)
    row, _ = Generation.request(alice, kind=Kind.TEXT_TO_VIDEO, prompt="A paper boat in the rain")
    wait_until(lambda: Generation.objects.filter(pk=row.pk, state=State.UNCONFIRMED).exists(), message="unconfirmed")
    luma_stack.sim.faults(drop_after_create=0, drop_callbacks=0)

    Generation.objects.filter(pk=row.pk).update(next_poll_at=timezone.now())
    tasks.sweep()

    done = wait_until(lambda: archived(row.pk), timeout=60, message="the archive")
    assert done.luma_id
    assert luma_stack.sim.creates(row.callback_token)["count"] == 1


def test_with_every_callback_lost_the_follower_notices_a_result_within_seconds(alice, luma_stack):
    luma_stack.sim.faults(drop_callbacks=1.0)
    row, _ = Generation.request(alice, kind=Kind.TEXT_TO_VIDEO, prompt="A lighthouse in a storm")
    row = wait_until(lambda: Generation.objects.filter(pk=row.pk, state=State.QUEUED).first(), message="queued")
    luma_stack.sim.finish(row.luma_id)
    # Luma finished early; the row falls due in a second, long before the next minute's sweep.
    Generation.objects.filter(pk=row.pk).update(next_poll_at=timezone.now() + timedelta(seconds=1))

    done = wait_until(lambda: archived(row.pk), timeout=15, message="the follower's poll and the archive")

    assert done.events.filter(source="poll", summary__contains="now completed").exists()
    assert not done.events.filter(source="sweep").exists()
