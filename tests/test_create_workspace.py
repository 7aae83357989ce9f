"""The create view and the workspace: budgets refuse before anything is made, boards receive what is made."""

import pytest

pytestmark = pytest.mark.django_db


def test_a_budget_refusal_is_shown_in_the_form_and_nothing_is_made(alice_client, alice, luma_sim, luma_settings, jobs):
    from generations.models import Generation, Profile

    Profile.objects.create(user=alice, monthly_budget_cents=100)
    page = alice_client.post("/create/", {"what": "video", "prompt": "A paper boat on a rainy street",
                                          "model": "ray-2", "resolution": "720p", "duration": "5s",
                                          "aspect_ratio": "16:9"})

    assert page.status_code == 200
    assert "Over budget: you have $1.00 left this month; this costs about $1.75." in page.content.decode()
    assert not Generation.objects.exists()
    jobs.run()
    assert luma_sim.creates()["count"] == 0


def test_what_is_made_while_the_dashboard_is_switched_to_a_board_lands_on_it(alice_client, alice, luma_settings,
                                                                              jobs):
    from generations.models import Board, Generation

    board = Board.objects.create(name="Spring campaign", owner=alice)
    session = alice_client.session
    session["current_board"] = board.pk
    session.save()

    alice_client.post("/create/", {"what": "video", "prompt": "Blossoms drifting over a pond", "model": "ray-2",
                                   "resolution": "720p", "duration": "5s", "aspect_ratio": "16:9"})

    assert list(board.generations.values_list("prompt", flat=True)) == ["Blossoms drifting over a pond"]
    assert Generation.objects.count() == 1
