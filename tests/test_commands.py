"""The operator's management commands: luma_check explains a broken connection in one line; luma_sweep repairs."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from generations.models import Generation, Kind, State
from tests.plugins.simulator import free_port


def check(capsys) -> str:
    """Run luma_check; return its one line, whether it succeeded or not."""
    try:
        call_command("luma_check")
    except CommandError as error:
        message = str(error)
        assert "\n" not in message and "Traceback" not in message
        return f"ERROR {message}"
    return capsys.readouterr().out.strip()


def test_luma_check_prints_the_balance_when_all_is_well(luma_sim, luma_settings, capsys):
    line = check(capsys)
    assert line.startswith(f"OK: {luma_sim.base_url} answers; credit balance $")


def test_luma_check_says_when_there_is_no_key(luma_settings, capsys):
    luma_settings.LUMAAI_API_KEY = ""
    assert check(capsys).startswith("ERROR No API key: set LUMAAI_API_KEY")


def test_luma_check_says_when_the_key_is_wrong(luma_sim, luma_settings, capsys):
    luma_sim.config(api_keys=["only-this-key"])
    line = check(capsys)
    assert line.startswith("ERROR Bad API key:") and "401" in line
    assert luma_settings.LUMAAI_API_KEY not in line


def test_luma_check_says_when_the_host_does_not_answer(luma_settings, capsys):
    luma_settings.LUMA_BASE_URL = f"http://127.0.0.1:{free_port()}/dream-machine/v1"
    assert check(capsys).startswith(f"ERROR Unreachable: {luma_settings.LUMA_BASE_URL} did not answer")


@pytest.mark.django_db
def test_luma_sweep_refreshes_a_generation_whose_callbacks_were_lost(alice, luma_sim, luma_settings, jobs, capsys):
    luma_sim.faults(drop_callbacks=1.0)
    row, _ = Generation.request(alice, kind=Kind.TEXT_TO_VIDEO, prompt="A lighthouse in a storm")
    jobs.run()
    row.refresh_from_db()
    luma_sim.finish(row.luma_id, "completed")
    Generation.objects.filter(pk=row.pk).update(next_poll_at=timezone.now() - timedelta(seconds=1))

    call_command("luma_sweep")
    jobs.run()

    row.refresh_from_db()
    assert capsys.readouterr().out.strip() == "sweep done"
    assert row.state == State.COMPLETED and row.archive_state == "done"
    assert "sweep" in set(row.events.values_list("source", flat=True))
