"""Share links (a public page and its media for one generation or one board, expiry, revoke, views, nothing else of
the site open) and ZIP exports (every member and metadata row checked against the database, streamed, refusals)."""

import csv
import hashlib
import io
import json
import re
import uuid
import zipfile
from pathlib import Path
from datetime import timedelta
from urllib.parse import urljoin, urlsplit

import pytest
from django.contrib.auth.models import Group
from django.core.files.base import ContentFile
from django.http import StreamingHttpResponse
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from generations import pricing
from generations.models import IMAGE_KINDS, ArchiveState, Board, BoardItem, Generation, Kind, ShareLink, State

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PUBLIC_BASE_URL = "https://team.example.com"
    return settings.MEDIA_ROOT


@pytest.fixture
def anonymous():
    return Client()


@pytest.fixture
def bob_client(bob):
    other = Client()
    other.force_login(bob)
    return other


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def archived(owner, prompt="A fox in the snow", *, kind=Kind.TEXT_TO_VIDEO, layers=0, **fields) -> Generation:
    """A completed generation with our copy on disk: the file (its sha256 on the row), a poster, and layers."""
    now = timezone.now()
    row = Generation.objects.create(owner=owner, prompt=prompt, kind=kind, model=fields.pop("model", "ray-2"),
                                    state=State.COMPLETED, luma_id=str(uuid.uuid4()), completed_at=now,
                                    resolution="720p", duration="5s", **fields)
    image = kind in IMAGE_KINDS
    body = (b"\x89PNG\r\n\x1a\n" if image else b"\0\0\0\x18ftypmp42") + f"{row.pk} {prompt}".encode() * 500
    row.archive_state = ArchiveState.DONE
    row.archive_file.save(f"{row.pk}-{sha(body)[:12]}{'.png' if image else '.mp4'}", ContentFile(body), save=False)
    row.sha256, row.archive_size = sha(body), len(body)
    row.poster.save(f"{row.pk}.jpg", ContentFile(b"\xff\xd8\xff poster of " + str(row.pk).encode()), save=False)
    extras = []
    for index in range(1, layers + 1):
        layer = f"layer {index} of {row.pk}".encode() * 300
        name = row.archive_file.storage.save(f"archive/{row.pk}-layer{index}-{sha(layer)[:12]}.png", ContentFile(layer))
        extras.append({"index": index, "label": f"Layer {index}", "description": "", "alpha_hint": "", "file": name,
                       "size": len(layer), "sha256": sha(layer)})
    if extras:
        extras.insert(0, {"index": 0, "label": "Background", "description": "", "alpha_hint": "",
                          "file": row.archive_file.name, "size": len(body), "sha256": row.sha256})
    row.extra_files = extras
    row.save()
    return row


def text(response) -> str:
    html = response.content.decode()
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def make_link(generation=None, board=None, by=None, days=7) -> ShareLink:
    return ShareLink.objects.create(generation=generation, board=board, created_by=by,
                                    expires_at=timezone.now() + timedelta(days=days))


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


# --- share links ------------------------------------------------------------------------------------------------


def test_a_share_link_made_from_the_app_plays_for_an_anonymous_visitor_with_range(alice_client, alice, anonymous):
    video = archived(alice, "A lighthouse in a storm at dusk")
    response = alice_client.post(f"/generations/{video.pk}/share/", {"days": "7"})
    assert response.status_code == 302
    link = ShareLink.objects.get(generation=video)
    assert timedelta(days=6, hours=23) < link.expires_at - timezone.now() <= timedelta(days=7)
    assert link.created_by == alice and len(link.token) >= 32
    listing = alice_client.get("/shares/")
    assert f"/s/{link.token}/" in listing.content.decode()

    page = anonymous.get(f"/s/{link.token}/")
    assert page.status_code == 200
    assert "A lighthouse in a storm at dusk" in text(page) and "Text to video" in text(page)
    assert "alice" not in text(page)  # no owner names
    assert page["Cache-Control"] == "private, no-store"
    assert "noindex" in page["X-Robots-Tag"] and page["Referrer-Policy"] == "no-referrer"
    media = f"/s/{link.token}/media/{video.pk}/"
    assert f'src="{media}"' in page.content.decode()

    ranged = anonymous.get(media, HTTP_RANGE="bytes=100-199")
    assert ranged.status_code == 206
    assert ranged["Content-Range"] == f"bytes 100-199/{video.archive_size}"
    assert body(ranged) == video.archive_file.open("rb").read()[100:200]
    assert ranged["Cache-Control"] == "private, no-store" and ranged["Referrer-Policy"] == "no-referrer"
    whole = anonymous.get(media)
    assert whole.status_code == 200 and sha(body(whole)) == video.sha256
    assert anonymous.get(f"/s/{link.token}/poster/{video.pk}/").status_code == 200


def test_the_lifetime_is_one_seven_or_thirty_days_and_anything_else_is_refused(alice_client, alice):
    video = archived(alice)
    for days in ("1", "30"):
        alice_client.post(f"/generations/{video.pk}/share/", {"days": days})
        newest = ShareLink.objects.latest("pk")
        assert abs((newest.expires_at - timezone.now()) - timedelta(days=int(days))) < timedelta(minutes=1)
    refused = alice_client.post(f"/generations/{video.pk}/share/", {"days": "365"})
    assert refused.status_code == 400
    assert "1 day, 7 days or 30 days" in text(refused)
    assert ShareLink.objects.count() == 2
    form = alice_client.get(f"/generations/{video.pk}/share/")
    assert re.search(r'value="7" checked', form.content.decode())


def test_another_generations_media_through_a_token_is_404(alice, bob, anonymous):
    shared, other = archived(alice, "Shared"), archived(bob, "Not shared")
    link = make_link(shared, by=alice)
    assert anonymous.get(f"/s/{link.token}/media/{other.pk}/").status_code == 404
    assert anonymous.get(f"/s/{link.token}/poster/{other.pk}/").status_code == 404
    assert anonymous.get(f"/s/not-{link.token}/media/{shared.pk}/").status_code == 404
    # The 404 is the share's own: it leads nowhere into the site.
    assert not re.search(r'href="/(?!static/)', anonymous.get(f"/s/{link.token}/media/{other.pk}/").content.decode())

    board = Board.objects.create(name="Pitch", owner=alice)
    on_board, unarchived, deleted = archived(alice, "On the board"), archived(alice, "Still archiving"), archived(alice)
    Generation.objects.filter(pk=unarchived.pk).update(archive_state=ArchiveState.DOWNLOADING)
    Generation.objects.filter(pk=deleted.pk).update(deleted_at=timezone.now())
    for row in (on_board, unarchived, deleted):
        BoardItem.objects.create(board=board, generation=row, added_by=alice)
    board_link = make_link(board=board, by=alice)
    page = anonymous.get(f"/s/{board_link.token}/")
    assert page.status_code == 200
    assert "On the board" in text(page) and "Still archiving" not in text(page)
    assert anonymous.get(f"/s/{board_link.token}/media/{on_board.pk}/", HTTP_RANGE="bytes=0-9").status_code == 206
    for outside in (shared, other, unarchived, deleted):
        assert anonymous.get(f"/s/{board_link.token}/media/{outside.pk}/").status_code == 404


def test_a_revoked_link_is_gone_at_once(alice_client, alice, anonymous):
    video = archived(alice)
    link = make_link(video, by=alice)
    assert anonymous.get(f"/s/{link.token}/").status_code == 200
    response = alice_client.post(f"/shares/{link.pk}/revoke/", follow=True)
    assert "Link revoked" in text(response)
    assert f"/s/{link.token}/" not in response.content.decode()  # no longer among my live links
    gone = anonymous.get(f"/s/{link.token}/")
    assert gone.status_code == 410 and "This link was revoked" in text(gone)
    assert gone["Cache-Control"] == "private, no-store"
    assert anonymous.get(f"/s/{link.token}/media/{video.pk}/", HTTP_RANGE="bytes=0-9").status_code == 404


def test_an_expired_link_is_gone(alice, anonymous):
    video = archived(alice)
    link = make_link(video, by=alice)
    ShareLink.objects.filter(pk=link.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    gone = anonymous.get(f"/s/{link.token}/")
    assert gone.status_code == 410 and "This link has expired" in text(gone)
    assert anonymous.get(f"/s/{link.token}/media/{video.pk}/").status_code == 404
    unknown = anonymous.get("/s/no-such-token-at-all/")
    assert unknown.status_code == 404 and "This link does not exist" in text(unknown)


def test_a_deleted_generation_stops_playing_through_its_link(alice, anonymous):
    video = archived(alice)
    link = make_link(video, by=alice)
    video.mark_deleted(alice)
    assert anonymous.get(f"/s/{link.token}/").status_code == 410
    assert anonymous.get(f"/s/{link.token}/media/{video.pk}/").status_code == 404


def test_page_views_are_counted_and_media_requests_are_not(alice_client, alice, anonymous):
    video = archived(alice)
    link = make_link(video, by=alice)
    for _ in range(3):
        anonymous.get(f"/s/{link.token}/")
    for _ in range(5):
        anonymous.get(f"/s/{link.token}/media/{video.pk}/", HTTP_RANGE="bytes=0-9")
    link.refresh_from_db()
    assert link.views == 3
    listing = alice_client.get("/shares/")
    assert re.search(rf'id="share-{link.pk}".*?<td class="views">3</td>', listing.content.decode(), re.S)


def test_sharing_something_not_archived_yet_says_so_and_makes_nothing(alice_client, alice):
    video = archived(alice)
    Generation.objects.filter(pk=video.pk).update(archive_state=ArchiveState.DOWNLOADING, state=State.COMPLETED)
    response = alice_client.post(f"/generations/{video.pk}/share/", {"days": "7"})
    assert response.status_code == 302
    shown = alice_client.get(response["Location"])
    assert f"#{video.pk} is not archived yet" in text(shown)
    Generation.objects.filter(pk=video.pk).update(state=State.FAILED, archive_state="", archive_file="")
    response = alice_client.post(f"/generations/{video.pk}/share/", {"days": "7"}, follow=True)
    assert f"#{video.pk} failed, so there is no video to share" in text(response)
    assert not ShareLink.objects.exists()


def test_any_team_member_even_a_viewer_may_share_a_generation_they_can_see(bob_client, bob, alice):
    bob.groups.set([Group.objects.get_or_create(name="Viewers")[0]])
    video = archived(alice)
    assert bob_client.post(f"/generations/{video.pk}/share/", {"days": "1"}).status_code == 302
    assert ShareLink.objects.get().created_by == bob
    Generation.objects.filter(pk=video.pk).update(deleted_at=timezone.now())
    assert bob_client.post(f"/generations/{video.pk}/share/", {"days": "1"}).status_code == 404


def test_only_a_boards_owner_or_staff_may_share_it(alice, bob_client, staff):
    shared = Board.objects.create(name="Team board", owner=alice, shared=True)
    private = Board.objects.create(name="Alice only", owner=alice, shared=False)
    assert bob_client.post(f"/boards/{shared.pk}/share/", {"days": "7"}).status_code == 403
    assert bob_client.post(f"/boards/{private.pk}/share/", {"days": "7"}).status_code == 404
    owner = Client()
    owner.force_login(alice)
    assert owner.post(f"/boards/{shared.pk}/share/", {"days": "7"}).status_code == 302
    admin = Client()
    admin.force_login(staff)
    assert admin.post(f"/boards/{shared.pk}/share/", {"days": "30"}).status_code == 302
    assert ShareLink.objects.filter(board=shared, created_by=staff).count() == 1
    assert ShareLink.objects.count() == 2


def test_someone_who_neither_made_a_link_nor_owns_what_it_shares_may_not_revoke_it(alice, bob_client, anonymous):
    link = make_link(archived(alice), by=alice)
    assert bob_client.post(f"/shares/{link.pk}/revoke/").status_code == 403
    assert anonymous.post(f"/shares/{link.pk}/revoke/").status_code == 302  # to the login page
    link.refresh_from_db()
    assert link.revoked_at is None
    assert anonymous.get(f"/s/{link.token}/").status_code == 200


def test_the_card_and_the_detail_page_offer_share(alice_client, alice):
    video = archived(alice)
    detail = alice_client.get(f"/generations/{video.pk}/").content.decode()
    assert detail.count(f'href="/generations/{video.pk}/share/"') >= 2  # the card's Actions and the page itself
    library = alice_client.get("/").content.decode()
    assert f'href="/generations/{video.pk}/share/"' in library


# --- the anonymous crawl ----------------------------------------------------------------------------------------


def _routes(patterns, prefix=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern.name


# Open before share links (the login page, what Luma calls or fetches, the icon) and the share link's own three.
OPEN = {"login", "logout", "favicon", "webhook", "keyframe", "share_page", "share_media", "share_poster"}
SHARE_ROUTES = {"share_page", "share_media", "share_poster"}


def test_the_anonymous_crawl_finds_no_open_page_but_the_share_links_own(alice, anonymous):
    video = archived(alice, "Crawled")
    board = Board.objects.create(name="Crawl board", owner=alice)
    BoardItem.objects.create(board=board, generation=video)
    link = make_link(board=board, by=alice)
    opened = set()
    for route, name in _routes(get_resolver().url_patterns):
        if route.startswith("admin/"):
            continue
        pk = link.pk if route.startswith("shares/") else board.pk if route.startswith("boards/") else video.pk
        path = "/" + re.sub(r"<int:pk>", str(pk), route)
        path = re.sub(r"<str:token>", link.token if name in SHARE_ROUTES else "x" * 32, path)
        path = re.sub(r"<slug:\w+>", "extend", path)
        path = re.sub(r"<int:\w+>", "0", path)  # any other number in a route, such as a file's index
        for method in (anonymous.get, anonymous.post):
            response = method(path)
            if not (response.status_code == 302 and response["Location"].startswith("/accounts/login/")):
                opened.add(name)
    assert opened <= OPEN, opened - OPEN

    # Everything a share page links to or loads is the share's own or a static file.
    seen, queue = set(), [f"/s/{link.token}/"]
    while queue:
        path = queue.pop()
        if path in seen:
            continue
        seen.add(path)
        response = anonymous.get(path)
        assert response.status_code in (200, 206), path
        if response.get("Content-Type", "").startswith("text/html"):
            for found in re.findall(r'(?:href|src|poster|action)="([^"]+)"', response.content.decode()):
                target = urlsplit(urljoin("http://testserver" + path, found))
                assert target.netloc == "testserver", found
                queue.append(target.path + (f"?{target.query}" if target.query else ""))
    pages = {path for path in seen if not path.startswith("/static/")}
    assert pages == {f"/s/{link.token}/", f"/s/{link.token}/media/{video.pk}/", f"/s/{link.token}/poster/{video.pk}/"}


# --- export -----------------------------------------------------------------------------------------------------


def exported(response) -> tuple[zipfile.ZipFile, bytes]:
    assert response.status_code == 200
    assert isinstance(response, StreamingHttpResponse)
    data = body(response)
    assert int(response["Content-Length"]) == len(data)
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].startswith('attachment; filename="lumaweb-')
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    return archive, data


def test_a_zip_export_of_a_selection_matches_the_database_file_by_file_and_row_by_row(alice_client, alice, bob):
    parent = archived(alice, "A paper boat on a pond")
    child = archived(bob, "The boat sails on", kind=Kind.EXTEND, frame0_generation=parent, review_mark="picked",
                     reviewed_by=alice, reviewed_at=timezone.now())
    image = archived(alice, "A lantern, studio light", kind=Kind.IMAGE, model="photon-1")
    layered = archived(bob, "A street in layers", kind=Kind.LAYERING, model="uni-1", layers=2)
    failed = Generation.objects.create(owner=alice, prompt="Never made", state=State.FAILED, model="ray-2")
    deleted = archived(alice, "Deleted one")
    Generation.objects.filter(pk=deleted.pk).update(deleted_at=timezone.now())
    chosen = [parent, child, image, layered, failed]

    response = alice_client.post("/export/", {"ids": [row.pk for row in chosen] + [deleted.pk, 999999]})
    archive, _ = exported(response)
    meta = json.loads(archive.read("metadata.json"))
    rows = {row["id"]: row for row in meta["generations"]}
    assert set(rows) == {row.pk for row in chosen}
    assert meta["count"] == 5 and meta["exported_by"] == "alice"

    members = set(archive.namelist()) - {"metadata.json", "metadata.csv"}
    listed = set()
    for generation in chosen:
        generation.refresh_from_db()
        row = rows[generation.pk]
        assert row["prompt"] == generation.prompt and row["model"] == generation.model
        assert row["kind"] == generation.kind and row["provider"] == generation.provider
        assert row["made_by"] == generation.owner.username
        assert row["review_mark"] == generation.review_mark
        assert row["frame0_generation"] == generation.frame0_generation_id and row["source"] == generation.source_id
        assert row["created_at"] == generation.created_at.isoformat()
        expected_cost = pricing.estimate_cents(generation.kind, generation.model, generation.resolution,
                                               generation.duration, generation.options)
        assert row["cost_cents"] == (expected_cost if generation.state == State.COMPLETED else 0)
        by_role = {}
        for item in row["files"]:
            data = archive.read(item["path"])
            assert sha(data) == item["sha256"], item["path"]
            by_role.setdefault(item["role"], []).append(item)
            listed.add(item["path"])
        if generation.state == State.FAILED:
            assert row["files"] == []
            continue
        main = (by_role.get("video") or by_role["image"])[0]
        assert main["sha256"] == generation.sha256
        assert archive.read(main["path"]) == generation.archive_file.open("rb").read()
        assert by_role["poster"][0]["sha256"] == sha(generation.poster.open("rb").read())
        layers = [entry for entry in generation.extra_files if entry["file"] != generation.archive_file.name]
        assert sorted(item["sha256"] for item in by_role.get("layer", [])) == sorted(e["sha256"] for e in layers)
    assert rows[child.pk]["reviewed_by"] == "alice" and rows[child.pk]["frame0_generation"] == parent.pk
    assert len([item for item in rows[layered.pk]["files"] if item["role"] == "layer"]) == 2
    assert listed == members  # no file the metadata does not name

    table = list(csv.DictReader(io.StringIO(archive.read("metadata.csv").decode())))
    assert {int(line["id"]) for line in table} == set(rows)
    for line in table:
        row = rows[int(line["id"])]
        assert line["prompt"] == row["prompt"] and line["made_by"] == row["made_by"]
        assert line["cost_cents"] == str(row["cost_cents"]) and line["review_mark"] == row["review_mark"]
        main = [item for item in row["files"] if item["role"] in ("video", "image")]
        assert line["file_sha256"] == (main[0]["sha256"] if main else "")
        if line["file"]:
            assert sha(archive.read(line["file"])) == line["file_sha256"]


def test_an_export_takes_only_outputs_inside_the_archive_folder(alice_client, alice, settings):
    layered = archived(alice, "A street in layers", kind=Kind.LAYERING, model="uni-1", layers=1)
    secret = Path(settings.MEDIA_ROOT) / "secret.txt"
    secret.write_bytes(b"not an output of any generation")
    Generation.objects.filter(pk=layered.pk).update(
        extra_files=[*layered.extra_files, {"index": 2, "label": "Escape", "file": "archive/../secret.txt"}])

    archive, data = exported(alice_client.post("/export/", {"ids": [layered.pk]}))
    layers = [name for name in archive.namelist() if name.startswith("layers/")]
    assert len(layers) == 1 and "escape" not in layers[0]
    assert b"not an output of any generation" not in data


def test_a_board_exports_its_own_generations_and_a_private_board_only_for_its_owner(alice_client, alice, bob_client):
    board = Board.objects.create(name="Launch film", owner=alice, shared=False)
    on, off = archived(alice, "On the board"), archived(alice, "Not on it")
    BoardItem.objects.create(board=board, generation=on)
    archive, _ = exported(alice_client.post("/export/", {"board": board.pk}))
    assert [row["id"] for row in json.loads(archive.read("metadata.json"))["generations"]] == [on.pk]
    assert all(name.startswith(("videos/", "posters/", "metadata.")) for name in archive.namelist())
    assert bob_client.post("/export/", {"board": board.pk}).status_code == 404
    Board.objects.filter(pk=board.pk).update(shared=True)
    assert bob_client.post("/export/", {"board": board.pk}).status_code == 200
    assert off.pk not in [row["id"] for row in json.loads(archive.read("metadata.json"))["generations"]]


def test_an_export_of_nothing_is_refused_with_a_clear_message(alice_client, alice, anonymous):
    deleted = archived(alice)
    Generation.objects.filter(pk=deleted.pk).update(deleted_at=timezone.now())
    for data in ({}, {"ids": [deleted.pk]}, {"ids": ["999999"]}, {"board": Board.objects.create(name="Empty").pk}):
        response = alice_client.post("/export/", data)
        assert response.status_code == 400, data
        assert "Nothing to export" in text(response)
    junk = alice_client.post("/export/", {"ids": ["1; DROP TABLE"]})
    assert junk.status_code == 400 and "not a generation number" in text(junk)
    back = alice_client.post("/export/", {}, HTTP_REFERER="http://testserver/?state=completed")
    assert back.status_code == 302 and back["Location"] == "http://testserver/?state=completed"
    assert "Nothing to export" in text(alice_client.get("/?state=completed"))
    selection_bar = alice_client.post("/export/", {"next": "/?mine=1", "to_board": "3"})
    assert selection_bar.status_code == 302 and selection_bar["Location"] == "/?mine=1"
    elsewhere = alice_client.post("/export/", {"next": "https://evil.example/"}, HTTP_REFERER="https://evil.example/")
    assert elsewhere.status_code == 400
    assert anonymous.post("/export/", {"ids": [deleted.pk]}).status_code == 302
    assert alice_client.get("/export/").status_code == 405
