"""Browser tests for the team's money, roles and hand-over: a budget refusal shown beside the form before anything
reaches Luma, a viewer who can watch and review but make nothing, and a ZIP export of a selection whose every file
and metadata row matches the database. Debian's Chromium drives the live stack, as in test_browser.py."""

import csv
import hashlib
import io
import json
import zipfile
from datetime import datetime, timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from generations.models import Generation, Kind, Profile, State
from generations.roles import set_role
from tests.test_browser import ALICE, BOB, log_in, ready, request_generation, settled, shot

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

PLAYING = "v => !v.paused && v.currentTime > 0.3"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_request_over_the_budget_is_refused_beside_the_form_and_nothing_reaches_luma(page, luma_stack, alice):
    Profile.objects.create(user=alice, monthly_budget_cents=100)  # $1.00 a month
    log_in(page, luma_stack.url, ALICE)

    panel = page.locator("#create-panel")
    panel.get_by_label("Model", exact=True).select_option("ray-2")
    panel.get_by_label("Resolution").select_option("720p")
    panel.get_by_label("Duration").select_option("5s")
    panel.get_by_label("Prompt", exact=True).fill("A lighthouse in a winter storm, waves breaking")
    with page.expect_response(lambda response: response.url.endswith("/create/")):
        panel.get_by_role("button", name="Generate").click()

    panel = page.locator("#create-panel")  # htmx swapped the panel
    expect(panel.get_by_text("Over budget: you have $1.00 left this month; this costs about $1.75.",
                             exact=True)).to_be_visible()
    expect(panel.get_by_label("Prompt", exact=True)).to_have_value("A lighthouse in a winter storm, waves breaking")
    expect(panel.locator(".success")).to_have_count(0)
    expect(page.locator("#cards article.card")).to_have_count(0)
    expect(page.locator("#cards .empty")).to_be_visible()
    assert Generation.objects.count() == 0
    assert luma_stack.sim.creates()["count"] == 0


def test_a_viewer_watches_and_reviews_but_can_make_nothing(page, luma_stack, alice, bob):
    (kite,) = settled(request_generation(alice, "A red kite over the dunes at noon"))
    set_role(bob, "viewer")
    log_in(page, luma_stack.url, BOB, lands_on="Watching")

    expect(page.get_by_text("You are a viewer on this team")).to_be_visible()
    expect(page.get_by_role("heading", name="Make something")).to_have_count(0)
    expect(page.get_by_role("button", name="Generate")).to_have_count(0)
    expect(page.locator("#create-form")).to_have_count(0)

    card = page.locator(f"#card-{kite.pk}")
    card.locator("summary").click()
    menu = card.locator("details.menu")
    expect(menu.get_by_role("link", name="Details")).to_be_visible()
    expect(menu.get_by_role("link", name="Download")).to_be_visible()
    for making in ("Try again with these settings", "Extend", "Reverse extend", "Upscale", "Add audio"):
        expect(menu.get_by_role("link", name=making, exact=True)).to_have_count(0)
    expect(menu.locator("[data-create-link]")).to_have_count(0)

    # Typed in directly, the extend address is refused with the reason.
    answer = page.goto(f"{luma_stack.url}/generations/{kite.pk}/continue/extend/")
    assert answer.status == 403
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    expect(page.get_by_text("You are a viewer on this team: you can watch, download, comment and review, but "
                            "making generations (which spends the team's money) is for creators.")).to_be_visible()

    # Watching and reviewing still work.
    page.goto(f"{luma_stack.url}/")
    ready(page)
    card = page.locator(f"#card-{kite.pk}")
    card.get_by_role("link", name=f"Play video #{kite.pk}").click()
    video = card.locator("video")
    expect(video).to_be_visible()
    page.wait_for_function(PLAYING, arg=video.element_handle(), timeout=10_000)
    assert video.evaluate("v => v.error") is None

    page.get_by_role("button", name=f"Pick #{kite.pk}").click()
    expect(page.locator(f"#card-{kite.pk} .review-mark")).to_have_text("Picked")
    expect(page.get_by_role("button", name=f"Pick #{kite.pk}")).to_have_attribute("aria-pressed", "true")
    picked = Generation.objects.get(pk=kite.pk)
    assert (picked.review_mark, picked.reviewed_by) == ("picked", bob)
    assert Generation.objects.count() == 1  # the viewer made nothing
    assert luma_stack.sim.creates()["count"] == 1


def test_an_exported_selection_holds_exactly_the_chosen_files_and_metadata_matching_the_database(page, luma_stack,
                                                                                                  alice, bob):
    kite, boat, tree = settled(request_generation(alice, "A red kite over the dunes at noon"),
                               request_generation(bob, "A paper boat on a rainy street"),
                               request_generation(alice, "A green tree in the wind"))
    log_in(page, luma_stack.url, ALICE)
    bar = page.locator("#selection")
    page.get_by_label(f"Select #{kite.pk}").check()
    page.get_by_label(f"Select #{boat.pk}").check()
    expect(bar.get_by_role("status")).to_have_text("2 selected")
    with page.expect_download() as info:
        bar.get_by_role("button", name="Export").click()
    download = info.value
    assert download.failure() is None
    assert download.suggested_filename.startswith("lumaweb-2-generations-")
    assert download.suggested_filename.endswith(".zip")

    rows = {row.pk: row for row in Generation.objects.filter(pk__in=[kite.pk, boat.pk]).select_related("owner")}
    with zipfile.ZipFile(download.path()) as archive:
        assert archive.testzip() is None
        members = {name: archive.read(name) for name in archive.namelist()}
    meta = json.loads(members.pop("metadata.json"))
    table = list(csv.DictReader(io.StringIO(members.pop("metadata.csv").decode("utf-8"))))

    assert meta["count"] == 2 and meta["exported_by"] == "alice"
    records = {record["id"]: record for record in meta["generations"]}
    assert set(records) == set(rows)  # the unselected tree is not in it
    listed = {}
    for pk, row in rows.items():
        record = records[pk]
        assert (record["prompt"], record["kind"], record["model"], record["made_by"], record["state"]) == (
            row.prompt, row.kind, row.model, row.owner.username, row.state)
        assert row.kind == Kind.TEXT_TO_VIDEO and row.sha256
        files = {item["role"]: item for item in record["files"]}
        assert set(files) == {"video", "poster"}
        assert files["video"]["path"].startswith(f"videos/{pk}-") and files["video"]["path"].endswith(".mp4")
        assert files["video"]["sha256"] == row.sha256  # the archive job's digest of the file it kept
        with open(row.archive_file.path, "rb") as kept:
            assert sha256(kept.read()) == row.sha256
        assert files["poster"]["path"].startswith(f"posters/{pk}.")
        with open(row.poster.path, "rb") as poster:
            assert files["poster"]["sha256"] == sha256(poster.read())
        listed.update({item["path"]: item["sha256"] for item in record["files"]})

    # Every file in the ZIP is listed in the metadata, and its bytes are what the metadata (and database) say.
    assert set(members) == set(listed)
    for name, data in members.items():
        assert sha256(data) == listed[name], name

    # The CSV says the same, row by row.
    assert [int(line["id"]) for line in table] == sorted(rows)
    for line in table:
        row, record = rows[int(line["id"])], records[int(line["id"])]
        assert (line["prompt"], line["kind"], line["model"], line["made_by"]) == (
            row.prompt, row.kind, row.model, row.owner.username)
        video = next(item for item in record["files"] if item["role"] == "video")
        assert (line["file"], line["file_sha256"]) == (video["path"], row.sha256)
        assert sha256(members[line["file"]]) == line["file_sha256"]
        assert sha256(members[line["poster"]]) == line["poster_sha256"]


def test_the_usage_page_charts_last_months_spend_per_person_per_model_and_per_day(page, live_server,
                                                                                   transactional_db, alice, bob):
    last_month = timezone.localtime().replace(day=1) - timedelta(days=1)
    for owner, model, resolution, day in [(alice, "ray-2", "720p", 3), (alice, "ray-2", "1080p", 12),  # $1.75, $3.94
                                          (bob, "ray-flash-2", "720p", 12), (alice, "ray-flash-2", "720p", 20),  # $0.60
                                          (bob, "ray-2", "720p", 25)]:
        when = timezone.make_aware(datetime(last_month.year, last_month.month, day, 12))
        Generation.objects.create(owner=owner, state=State.COMPLETED, model=model, resolution=resolution,
                                  duration="5s", prompt="A fox in the snow", created_at=when)
    log_in(page, live_server.url, ALICE)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Usage").click()
    expect(page.get_by_role("heading", name=f"Usage in {timezone.localtime():%B %Y}")).to_be_visible()
    page.get_by_role("link", name=f"← {last_month:%Y-%m}").click()
    expect(page.get_by_role("heading", name=f"Usage in {last_month:%B %Y}")).to_be_visible()
    expect(page.get_by_role("heading", name="Team spend: $8.64")).to_be_visible()
    expect(page.get_by_text("5 generations this month")).to_be_visible()

    by_person, by_model, by_day = (page.get_by_role("img", name=f"Per {what}") for what in ("person", "model", "day"))
    for chart in (by_person, by_model, by_day):
        expect(chart).to_be_visible()
    expect(by_person.locator("text")).to_have_text(["alice", "$6.29", "bob", "$2.35"])
    expect(by_model.locator("text")).to_have_text(["Ray 2", "$7.44", "Ray Flash 2", "$1.20"])
    shot(page, "usage", top=page.locator("section[aria-labelledby=total-title]"))
    day_section = page.locator("section").filter(has=page.get_by_role("heading", name="Per day"))
    day_section.get_by_text("The numbers").click()
    expect(day_section.get_by_role("row", name=f"{last_month:%b} 12 $4.54")).to_be_visible()
