"""The team's money and roles (issue 10): budgets set in dollars (settings page and admin), the 80% warning, the
approval queue, the usage page and its CSV, presets and recent prompts, variations as fair sets, and what viewers,
creators and staff may do."""

import csv
import io
import re
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.db.models import Count
from django.utils import timezone

from generations import admission, budgets, presets, variations
from generations.models import Generation, Kind, LumaAccount, Preset, Profile, State
from generations.roles import set_role

RAY2_720_5S = 175  # US cents: what budgets count for a ray-2 720p 5 s clip


@pytest.fixture
def viewer(django_user_model):
    user = django_user_model.objects.create_user("vera", password="viewer-pass-42")
    set_role(user, "viewer")
    return user


@pytest.fixture
def viewer_client(client, viewer):
    client.force_login(viewer)
    return client


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def made(owner, state=State.COMPLETED, model="ray-2", when=None, **fields) -> Generation:
    """A generation as if it had been made (no Luma involved): what usage and budgets count."""
    return Generation.objects.create(owner=owner, state=state, model=model, resolution=fields.pop("resolution", "720p"),
                                     duration=fields.pop("duration", "5s"), prompt=fields.pop("prompt", "a fox"),
                                     created_at=when or timezone.now(), **fields)


def page_messages(response) -> str:
    return " ".join(str(m) for m in response.context["messages"]) if response.context else ""


# --- budgets: settings page and admin --------------------------------------------------------------------------------


def test_staff_set_the_team_budget_policy_and_each_persons_budget_in_dollars(staff_client, alice, bob):
    page = staff_client.get("/settings/budgets/")
    assert page.status_code == 200 and "alice" in page.content.decode() and "bob" in page.content.decode()

    response = staff_client.post("/settings/budgets/", {
        "team_budget": "$1,250", "policy": "approval", f"budget_{alice.pk}": "12.50", f"budget_{bob.pk}": "",
        f"role_{alice.pk}": "creator", f"role_{bob.pk}": "viewer", f"budget_{page.context['user'].pk}": "",
    }, follow=True)

    assert "Budgets saved." in response.content.decode()
    account = LumaAccount.get()
    assert (account.team_budget_cents, account.budget_policy) == (125000, "approval")
    assert Profile.of(alice).monthly_budget_cents == 1250 and Profile.of(bob).monthly_budget_cents is None
    bob.refresh_from_db()
    assert not bob.has_perm("generations.make_generation")
    assert 'value="12.50"' in response.content.decode()


@pytest.mark.parametrize("typed, said", [("-5", "A budget cannot be negative"),
                                         ("lots", "“lots” is not an amount of dollars")])
def test_a_negative_or_non_numeric_budget_says_so_and_changes_nothing(staff_client, alice, typed, said):
    Profile.objects.create(user=alice, monthly_budget_cents=1000)
    LumaAccount.get()
    LumaAccount.objects.update(team_budget_cents=50000)

    response = staff_client.post("/settings/budgets/", {"team_budget": "100", "policy": "approval",
                                                        f"budget_{alice.pk}": typed, f"role_{alice.pk}": "viewer"})

    html = response.content.decode()
    assert response.status_code == 400
    assert said in html and "Nothing was changed" in html
    account = LumaAccount.get()
    assert (account.team_budget_cents, account.budget_policy) == (50000, "refuse")
    assert Profile.of(alice).monthly_budget_cents == 1000
    assert alice.has_perm("generations.make_generation")


def test_a_persons_budget_is_set_in_dollars_in_the_user_admin(staff_client, alice):
    url = f"/admin/auth/user/{alice.pk}/change/"
    page = staff_client.get(url)
    assert page.status_code == 200 and "Budget a month (US dollars)" in page.content.decode()

    def post(budget: str):
        return staff_client.post(url, {
            "username": "alice", "is_active": "on", "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00",
            "initial-date_joined_0": "2026-01-01", "initial-date_joined_1": "00:00:00",
            "profile-TOTAL_FORMS": "1", "profile-INITIAL_FORMS": "0", "profile-MIN_NUM_FORMS": "0",
            "profile-MAX_NUM_FORMS": "1", "profile-0-monthly_budget_cents": budget, "profile-0-user": str(alice.pk),
        })

    refused = post("-3")
    assert refused.status_code == 200 and "A budget cannot be negative" in refused.content.decode()
    assert not Profile.objects.filter(user=alice).exists()

    assert post("40").status_code == 302
    assert Profile.of(alice).monthly_budget_cents == 4000


def test_the_team_budget_is_set_in_dollars_in_the_admin(staff_client):
    LumaAccount.get()
    url = "/admin/generations/lumaaccount/1/change/"
    assert staff_client.post(url, {"team_budget_cents": "-1", "budget_policy": "refuse"}).status_code == 200
    assert LumaAccount.get().team_budget_cents is None
    assert staff_client.post(url, {"team_budget_cents": "300.25", "budget_policy": "approval"}).status_code == 302
    account = LumaAccount.get()
    assert (account.team_budget_cents, account.budget_policy) == (30025, "approval")


# --- budgets: warnings and approvals ---------------------------------------------------------------------------------


def test_a_budget_80_percent_used_is_shown_as_a_warning_on_the_dashboard(alice_client, alice, bob):
    Profile.objects.create(user=alice, monthly_budget_cents=200)  # $2.00
    made(alice)  # $1.75: 88%
    made(alice, state=State.FAILED)  # refunded: not counted
    html = alice_client.get("/").content.decode()
    assert "You have used 88% of your $2.00 budget this month." in html

    LumaAccount.get()
    LumaAccount.objects.update(team_budget_cents=10000)  # $100: the team has used 1.75%
    Profile.objects.filter(user=alice).update(monthly_budget_cents=1000)
    assert "budget this month" not in alice_client.get("/").content.decode()


def held_request(owner, jobs) -> Generation:
    LumaAccount.get()
    LumaAccount.objects.update(team_budget_cents=100, budget_policy="approval")
    row, _ = Generation.request(owner, kind=Kind.TEXT_TO_VIDEO, prompt="over budget", model="ray-2",
                                resolution="720p", duration="5s")
    assert row.state == State.HELD
    return row


def test_a_held_request_shows_on_every_page_as_waiting_for_approval_with_its_reason(client, alice, bob, staff, jobs):
    row = held_request(alice, jobs)
    for user in (alice, bob, staff):
        client.force_login(user)
        for url in ("/", "/library/", "/?state=held", row.get_absolute_url()):
            answer = client.get(url, follow=True)
            assert answer.status_code == 200, (user, url)
        card = client.get("/").content.decode()
        assert "Waiting for approval" in card and "Over budget" in card
    # Its card stays live, so it changes on the page when staff decide.
    assert f'name="live" value="{row.pk}:' in card


def test_staff_approve_or_turn_down_held_requests_and_a_reason_is_required(staff_client, alice, jobs):
    first, second = held_request(alice, jobs), held_request(alice, jobs)
    page = staff_client.get("/approvals/").content.decode()
    assert f'id="held-{first.pk}"' in page and "$1.75" in page and "Over budget" in page

    response = staff_client.post(f"/approvals/{first.pk}/reject/", {"reason": "  "}, follow=True)
    assert "Say why" in response.content.decode()
    first.refresh_from_db()
    assert first.state == State.HELD

    staff_client.post(f"/approvals/{first.pk}/reject/", {"reason": "Not this month"})
    staff_client.post(f"/approvals/{second.pk}/approve/")
    first.refresh_from_db(), second.refresh_from_db()
    assert first.state == State.REJECTED and "Not this month" in first.reason
    assert second.state == State.PENDING

    again = staff_client.post(f"/approvals/{second.pk}/approve/", follow=True).content.decode()
    assert "no longer waiting for approval" in again
    assert "Nothing is waiting for approval." in again


# --- the usage page -------------------------------------------------------------------------------------------------


def test_the_usage_page_charts_spend_per_person_model_and_day_without_failed_ones(client, alice, bob, staff):
    day = timezone.localtime().replace(day=2, hour=12)
    made(alice, when=day)  # $1.75
    made(alice, when=day, model="ray-flash-2")
    made(bob, when=day + timedelta(days=1), kind=Kind.IMAGE, model="photon-1")  # $0.02
    made(bob, state=State.FAILED, when=day)  # refunded
    made(bob, when=day - timedelta(days=40))  # another month
    client.force_login(bob)

    response = client.get(f"/usage/?month={day:%Y-%m}")
    html = response.content.decode()
    assert response.status_code == 200
    spend = budgets.usage(*budgets.month_bounds(f"{day:%Y-%m}"))
    assert spend.by_person == {"alice": RAY2_720_5S + spend.by_model["Ray Flash 2"], "bob": 2}
    assert spend.generations == 3
    assert f"Team spend: <span class=\"total\">{budgets.usd(spend.total_cents)}</span>" in html
    # Charts drawn on the server as SVG: one bar per person, model and day of the month, no inline style or script.
    svgs = re.findall(r"<svg class=\"chart\".*?</svg>", html, re.S)  # not the header's bell icon
    assert len(svgs) == 3
    assert svgs[0].count("<rect") == 2 and svgs[1].count("<rect") == 3
    assert svgs[2].count("<rect") == len(spend.by_day) >= 28
    assert "style=" not in html and "<script>" not in html and "https://" not in html
    assert "alice: $" in svgs[0] and "Photon 1: $0.02" in svgs[1]


def test_the_usage_csv_holds_the_numbers_behind_the_charts(alice_client, alice, bob):
    made(alice), made(alice), made(bob, model="ray-flash-2"), made(bob, state=State.FAILED)
    made(alice, state=State.REJECTED)
    month = f"{timezone.localtime():%Y-%m}"

    response = alice_client.get(f"/usage.csv?month={month}")

    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert f"lumaweb-usage-{month}.csv" in response["Content-Disposition"]
    lines = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert sum(int(line["generations"]) for line in lines) == 3
    assert {line["person"] for line in lines} == {"alice", "bob"}
    total = round(sum(float(line["usd"]) for line in lines) * 100)
    assert total == budgets.spent_cents() == budgets.usage(*budgets.month_bounds(month)).total_cents
    alice_line = next(line for line in lines if line["person"] == "alice")
    assert (alice_line["model"], alice_line["generations"], alice_line["usd"]) == ("Ray 2", "2", "3.50")


def test_a_month_that_is_not_one_gets_a_clear_message(alice_client):
    page = alice_client.get("/usage/?month=2026-13")
    assert page.status_code == 400 and "“2026-13” is not a month: write it as YYYY-MM" in page.content.decode()
    sheet = alice_client.get("/usage.csv?month=soon")
    assert sheet.status_code == 400 and "not a month" in sheet.content.decode()


def test_a_username_that_looks_like_a_formula_is_not_one_in_the_csv(alice_client, django_user_model):
    made(django_user_model.objects.create_user("=cmd", password="x-pass-4242"))
    body = alice_client.get("/usage.csv").content.decode()
    assert "'=cmd" in body


# --- roles -----------------------------------------------------------------------------------------------------------


def test_a_viewer_watches_but_cannot_make_anything(viewer_client, viewer, alice):
    """Viewers see the library, a generation and the usage page; every way of making something is a 403 that
    says why, and no row is made. (views.py's make views carry roles.make_required.)"""
    done = made(alice, luma_id="luma-1", video_url="http://127.0.0.1:1/v.mp4")
    assert viewer_client.get("/").status_code == 200
    assert viewer_client.get(f"/generations/{done.pk}/").status_code == 200
    assert viewer_client.get("/usage/").status_code == 200

    attempts = [
        viewer_client.post("/create/", {"what": "video", "prompt": "a fox", "model": "ray-2"}),
        viewer_client.get(f"/generations/{done.pk}/continue/again/"),
        viewer_client.get(f"/generations/{done.pk}/continue/extend/"),
        viewer_client.get(f"/generations/{done.pk}/upscale/"),
        viewer_client.post(f"/generations/{done.pk}/upscale/", {"resolution": "1080p"}),
        viewer_client.get(f"/generations/{done.pk}/audio/"),
        viewer_client.post(f"/generations/{done.pk}/audio/", {"prompt": "rain"}),
        viewer_client.get("/pick/?accept=video&field=video_source"),
        viewer_client.post("/uploads/video/"),
        viewer_client.get("/presets/"),
        viewer_client.post("/presets/save/", {"preset_name": "Mine", "model": "ray-2"}),
    ]
    for response in attempts:
        assert response.status_code == 403, response.request
        assert "You are a viewer on this team" in response.content.decode()
    assert Generation.objects.count() == 1 and not Preset.objects.exists()


def test_a_viewers_dashboard_has_no_create_panel(viewer_client):
    page = viewer_client.get("/").content.decode()
    assert 'id="create-panel"' not in page and "You are a viewer on this team" in page
    assert "Try again with these settings" not in page


def test_a_creators_dashboard_still_has_the_create_panel(alice_client):
    assert 'id="create-panel"' in alice_client.get("/").content.decode()


def test_only_staff_manage_budgets_and_approvals(client, alice, viewer, jobs):
    row = held_request(alice, jobs)
    for user in (alice, viewer):
        client.force_login(user)
        for response in (client.get("/settings/budgets/"), client.get("/approvals/"),
                         client.post("/settings/budgets/", {"team_budget": "1", "policy": "refuse"}),
                         client.post(f"/approvals/{row.pk}/approve/"),
                         client.post(f"/approvals/{row.pk}/reject/", {"reason": "no"})):
            assert response.status_code == 403
            assert "Only staff manage users, budgets and approvals." in response.content.decode()
    row.refresh_from_db()
    assert row.state == State.HELD and LumaAccount.get().team_budget_cents == 100


def test_logged_out_visitors_are_sent_to_log_in_from_every_team_page(client):
    for url in ("/usage/", "/usage.csv", "/settings/budgets/", "/approvals/", "/presets/"):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_viewer_made_a_creator_again_may_make(viewer_client, viewer):
    assert viewer_client.get("/presets/").status_code == 403
    set_role(viewer, "creator")
    assert viewer_client.get("/presets/").status_code == 200


# --- presets and recent prompts --------------------------------------------------------------------------------------


FORM = {"what": "video", "prompt": "not a setting", "model": "ray-flash-2", "resolution": "1080p", "duration": "9s",
        "aspect_ratio": "9:16", "concepts": ["dolly_zoom", "handheld"], "client_token": "abc"}


def test_a_preset_keeps_every_setting_of_the_form_and_applies_in_one_click(alice_client, alice, rf):
    response = alice_client.post("/presets/save/", {**FORM, "preset_name": "Vertical teaser"}, follow=True)
    assert "Saved the preset “Vertical teaser”." in response.content.decode()
    preset = Preset.objects.get()
    assert preset.settings == {"what": "video", "model": "ray-flash-2", "resolution": "1080p", "duration": "9s",
                               "aspect_ratio": "9:16", "concepts": ["dolly_zoom", "handheld"]}
    assert not preset.shared and preset.owner == alice

    response = alice_client.post(f"/presets/{preset.pk}/apply/")
    assert response.status_code == 302 and response["Location"] == "/"
    request = rf.get("/")
    request.session = alice_client.session
    assert presets.initial_for(request) == preset.settings
    assert presets.initial_for(request) == {}  # read once


def test_an_applied_preset_fills_the_create_form(alice_client):
    alice_client.post("/presets/save/", {**FORM, "preset_name": "Vertical teaser"})
    alice_client.post(f"/presets/{Preset.objects.get().pk}/apply/")
    html = alice_client.get("/").content.decode()
    assert re.search(r'<option value="1080p"[^>]*selected', html)


@pytest.mark.parametrize("name, said", [("vertical TEASER", "You already have a preset called “vertical TEASER”"),
                                        ("", "Give the preset a name"),
                                        ("x" * 81, "under 80 characters")])
def test_a_preset_name_taken_or_missing_says_so_and_saves_nothing(alice_client, name, said):
    alice_client.post("/presets/save/", {**FORM, "preset_name": "Vertical teaser"})
    response = alice_client.post("/presets/save/", {**FORM, "preset_name": name}, follow=True)
    assert said in response.content.decode()
    assert Preset.objects.count() == 1


def test_team_presets_are_shared_and_only_their_owner_or_staff_delete_them(client, alice, bob, staff):
    client.force_login(alice)
    client.post("/presets/save/", {**FORM, "preset_name": "House style", "preset_shared": "on"}, follow=True)
    client.post("/presets/save/", {**FORM, "preset_name": "My own"}, follow=True)
    team, own = Preset.objects.get(name="House style"), Preset.objects.get(name="My own")

    client.force_login(bob)
    html = client.get("/presets/").content.decode()
    assert "House style" in html and "My own" not in html
    assert client.post(f"/presets/{own.pk}/apply/").status_code == 404
    taken = client.post("/presets/save/", {**FORM, "preset_name": "house style", "preset_shared": "on"}, follow=True)
    assert "The team already has a preset called “house style”" in taken.content.decode()
    refused = client.post(f"/presets/{team.pk}/delete/")
    assert refused.status_code == 403 and "only they or staff may delete it" in refused.content.decode()
    assert Preset.objects.filter(pk=team.pk).exists()

    client.force_login(staff)
    client.post(f"/presets/{team.pk}/delete/")
    assert not Preset.objects.filter(pk=team.pk).exists()


def test_recent_prompts_are_each_persons_own_distinct_and_newest_first(alice_client, alice, bob, rf):
    start = timezone.now() - timedelta(hours=1)
    for i, prompt in enumerate(["a fox", "a cat", "a fox", "an owl", "", "a cat"]):
        made(alice, prompt=prompt, when=start + timedelta(minutes=i))
    made(bob, prompt="bob's boat")
    made(alice, prompt="deleted one", when=timezone.now(), deleted_at=timezone.now())

    assert presets.recent_prompts(alice) == ["a cat", "an owl", "a fox"]
    assert presets.recent_prompts(alice, n=2) == ["a cat", "an owl"]
    html = alice_client.get("/presets/").content.decode()
    assert "an owl" in html and "bob&#x27;s boat" not in html

    alice_client.post("/presets/prompt/", {"prompt": "an owl"})
    request = rf.get("/")
    request.session = alice_client.session
    assert presets.initial_for(request) == {"prompt": "an owl"}
    refused = alice_client.post("/presets/prompt/", {"prompt": "bob's boat"}, follow=True)
    assert "not among your recent ones" in refused.content.decode()


# --- variations -------------------------------------------------------------------------------------------------------


VIDEO = {"prompt": "a fox", "model": "ray-2", "resolution": "720p", "duration": "5s"}


def test_make_n_asks_for_a_set_sharing_one_batch(alice, jobs):
    rows, created = variations.request_set(alice, 4, Kind.TEXT_TO_VIDEO, client_token="tok", **VIDEO)
    assert created
    assert len(rows) == 4 and len({row.batch for row in rows}) == 1 and rows[0].batch
    assert Generation.objects.filter(batch=rows[0].batch, state=State.PENDING).count() == 4
    # The same form post again (a double click) finds the set it made.
    again, created = variations.request_set(alice, 4, Kind.TEXT_TO_VIDEO, client_token="tok", **VIDEO)
    assert [row.pk for row in again] == [row.pk for row in rows] and not created
    assert Generation.objects.count() == 4
    for n in (0, 5):
        with pytest.raises(ValueError, match="between 1 and 4"):
            variations.request_set(alice, n, Kind.TEXT_TO_VIDEO, **VIDEO)


def test_a_set_over_budget_is_refused_whole(alice, jobs):
    Profile.objects.create(user=alice, monthly_budget_cents=500)  # room for two $1.75 clips, not four
    with pytest.raises(budgets.OverBudget, match=r"you have \$5\.00 left this month; these 4 cost about \$7\.00"):
        variations.request_set(alice, 4, Kind.TEXT_TO_VIDEO, **VIDEO)
    assert not Generation.objects.exists()
    assert len(variations.request_set(alice, 2, Kind.TEXT_TO_VIDEO, **VIDEO)[0]) == 2


def test_a_set_that_slips_over_budget_midway_leaves_no_rows(alice, jobs, monkeypatch):
    """Someone else's request took the room between the set's check and its rows: the set is refused whole."""
    Profile.objects.create(user=alice, monthly_budget_cents=500)
    # The set's own check saw room; each row's check (in Generation.request) sees the rows made before it.
    seen_room = SimpleNamespace(check=lambda user, cents: "", hold_for_approval=budgets.hold_for_approval,
                                OverBudget=budgets.OverBudget)
    monkeypatch.setattr(variations, "budgets", seen_room)
    with pytest.raises(budgets.OverBudget):
        variations.request_set(alice, 4, Kind.TEXT_TO_VIDEO, **VIDEO)
    assert not Generation.objects.exists()


def test_a_set_does_not_starve_other_peoples_work(alice, bob, jobs, settings):
    """Alice's set of four and Bob's single request admit as alice, bob, alice, alice, alice."""
    settings.LUMA_MAX_CONCURRENT, settings.LUMA_CREATES_PER_MINUTE = 2, 100
    alices, _ = variations.request_set(alice, 4, Kind.TEXT_TO_VIDEO, **VIDEO)
    bobs, _ = Generation.request(bob, kind=Kind.TEXT_TO_VIDEO, **VIDEO)

    places = admission.queue_positions()
    assert sorted(places, key=places.get) == [alices[0].pk, bobs.pk, alices[1].pk, alices[2].pk, alices[3].pk]
    assert admission.admit() == [alices[0].pk, bobs.pk]
    owners = Generation.objects.filter(state=State.SUBMITTING).values("owner__username").annotate(n=Count("id"))
    assert {o["owner__username"]: o["n"] for o in owners} == {"alice": 1, "bob": 1}

