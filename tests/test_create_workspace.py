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


def switched_to_a_new_board(client, owner):
    """A board of the owner's that the dashboard (client's session) is switched to."""
    from generations.models import Board

    board = Board.objects.create(name="Spring campaign", owner=owner)
    session = client.session
    session["current_board"] = board.pk
    session.save()
    return board


def test_what_is_made_while_the_dashboard_is_switched_to_a_board_lands_on_it(alice_client, alice, luma_settings,
                                                                              jobs):
    from generations.models import Generation

    board = switched_to_a_new_board(alice_client, alice)

    alice_client.post("/create/", {"what": "video", "prompt": "Blossoms drifting over a pond", "model": "ray-2",
                                   "resolution": "720p", "duration": "5s", "aspect_ratio": "16:9"})

    assert list(board.generations.values_list("prompt", flat=True)) == ["Blossoms drifting over a pond"]
    assert Generation.objects.count() == 1


@pytest.mark.parametrize("htmx", [False, True])
def test_every_take_of_a_set_lands_on_the_board_the_dashboard_is_switched_to(alice_client, alice, luma_settings, jobs,
                                                                              htmx):
    from generations.models import Generation

    board = switched_to_a_new_board(alice_client, alice)

    alice_client.post("/create/", {"what": "video", "prompt": "Blossoms drifting over a pond", "model": "ray-2",
                                   "resolution": "720p", "duration": "5s", "aspect_ratio": "16:9", "count": "3"},
                      headers={"HX-Request": "true"} if htmx else {})

    takes = set(Generation.objects.values_list("pk", flat=True))
    assert len(takes) == 3 and set(board.generations.values_list("pk", flat=True)) == takes


def test_spend_counts_each_rows_own_price_with_its_options_and_not_a_held_request(alice, bob):
    """An HDR + EXR Ray 3.2 clip costs three times a plain one (pricing, section 13): budgets, the usage page and a
    board's cost count what the check that let it in counted; a request held for approval is not spend."""
    from generations import boards, budgets, pricing
    from generations.models import Board, BoardItem, Generation, Kind, LumaAccount, State

    def clip(owner, **options):
        row, _ = Generation.request(owner, kind=Kind.TEXT_TO_VIDEO, prompt="A greenhouse", model="ray-3.2",
                                    resolution="1080p", duration="5s", aspect_ratio="16:9", options=options)
        return row

    plain, hdr = clip(alice), clip(alice, hdr=True, exr_export=True)
    expected = pricing.estimate_cents(Kind.TEXT_TO_VIDEO, "ray-3.2", "1080p", "5s", {"hdr": True, "exr_export": True})
    assert hdr.price_cents == expected > 2 * plain.price_cents
    assert budgets.spent_cents(alice) == plain.price_cents + hdr.price_cents
    spend = budgets.usage(*budgets.month_bounds(""))
    assert spend.by_person == {"alice": plain.price_cents + hdr.price_cents}
    board = Board.objects.create(name="Greenhouse", owner=alice)
    Generation.objects.filter(pk__in=[plain.pk, hdr.pk]).update(state=State.COMPLETED)
    BoardItem.objects.bulk_create([BoardItem(board=board, generation=row) for row in (plain, hdr)])
    assert boards.cost_cents(board) == (plain.price_cents + hdr.price_cents, 2)

    LumaAccount.get()
    LumaAccount.objects.update(team_budget_cents=1, budget_policy="approval")
    held = clip(bob, hdr=True)
    assert held.state == State.HELD and budgets.spent_cents(bob) == 0 and budgets.spent_cents() == (
        plain.price_cents + hdr.price_cents)


def test_spend_by_day_uses_the_sites_local_day_also_across_midnight_and_a_month_end(alice, settings):
    """00:30 in Berlin on 1 December is 23:30 UTC on 30 November: it is December's spend, on the 1st."""
    from datetime import date, datetime, timezone as tz

    from django.utils import timezone

    from generations import budgets
    from generations.models import Generation, Kind

    settings.TIME_ZONE = "Europe/Berlin"
    timezone.activate("Europe/Berlin")
    try:
        moments = {"late November": datetime(2026, 11, 30, 22, 30, tzinfo=tz.utc),  # 23:30 local, November
                   "just after midnight": datetime(2026, 11, 30, 23, 30, tzinfo=tz.utc),  # 00:30 local, 1 December
                   "New Year's Eve": datetime(2026, 12, 31, 22, 59, tzinfo=tz.utc)}  # 23:59 local, December
        rows = {name: Generation.objects.create(owner=alice, prompt=name, kind=Kind.TEXT_TO_VIDEO, model="ray-2",
                                                resolution="720p", duration="5s", created_at=moment)
                for name, moment in moments.items()}
        assert rows["just after midnight"].created_day == date(2026, 12, 1)
        spend = budgets.usage(*budgets.month_bounds("2026-12"))
        price = rows["late November"].price_cents
        assert spend.by_person == {"alice": 2 * price}
        assert spend.by_day[date(2026, 12, 1)] == price and spend.by_day[date(2026, 12, 31)] == price
        assert budgets.usage(*budgets.month_bounds("2026-11")).by_day[date(2026, 11, 30)] == price
    finally:
        timezone.deactivate()
