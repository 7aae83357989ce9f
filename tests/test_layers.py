"""Every layer of a Uni-1 layering (and an HDR clip's EXR export) is kept, served to the team from the archive folder
only, and shown on the generation's page: the route `generations:extra_file` and the page's layer gallery."""

import html
import io
import os
import re
from pathlib import Path

import pytest
from django.db import connection
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from generations.files import BROWSER_IMAGES
from generations.models import ArchiveState, Generation, Kind, State
from tests.test_agents import ask, assert_archived_like_luma, run_to_done

pytestmark = pytest.mark.django_db


def extra_url(row: Generation, index: int) -> str:
    return reverse("generations:extra_file", args=[row.pk, index])


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def layers_section(page: str) -> str:
    match = re.search(r'<section class="panel layers".*?</section>', page, re.S)
    assert match, "the page has no layers section"
    return match[0]


@pytest.fixture
def layered(alice, luma_sim, luma_settings, jobs) -> Generation:
    """A real layering from the simulator's Agents API, archived by our jobs."""
    photo = run_to_done(ask(alice, kind=Kind.IMAGE, prompt="A red bicycle against a brick wall"), luma_sim, jobs)
    row = run_to_done(ask(alice, kind=Kind.LAYERING, source=photo, prompt="Separate the bicycle"), luma_sim, jobs)
    assert_archived_like_luma(row, luma_sim)
    assert len(row.extra_files) >= 3
    return row


@pytest.fixture
def archived_png(alice, settings, tmp_path) -> Generation:
    """A hand-made archived layering of one real layer file, whose extra_files the tests then tamper with."""
    settings.MEDIA_ROOT = tmp_path / "media"
    (tmp_path / "media" / "archive").mkdir(parents=True)
    buffer = io.BytesIO()
    Image.new("RGBA", (64, 48), (10, 200, 30, 128)).save(buffer, "PNG")
    (tmp_path / "media" / "archive" / "1-layer.png").write_bytes(buffer.getvalue())
    return Generation.objects.create(
        owner=alice, kind=Kind.LAYERING, model="uni-1", prompt="Separate the lamp", state=State.COMPLETED,
        archive_state=ArchiveState.DONE, archive_file="archive/1-layer.png",
        extra_files=[{"type": "image", "index": 0, "label": "Lamp", "alpha_hint": "soft", "file": "archive/1-layer.png",
                      "size": len(buffer.getvalue()), "sha256": "x"}])


def test_the_files_need_a_login(client, layered):
    response = client.get(extra_url(layered, 1))

    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_the_owner_and_a_teammate_get_each_layers_bytes_as_a_png_kept_private(client, alice, bob, layered):
    for user in (alice, bob):
        client.force_login(user)
        for index, entry in enumerate(layered.extra_files):
            response = client.get(extra_url(layered, index))

            assert response.status_code == 200
            assert body(response) == Path(layered.archive_file.storage.path(entry["file"])).read_bytes()
            assert response["Content-Type"] == "image/png"
            assert response["X-Content-Type-Options"] == "nosniff"
            assert response["Cache-Control"] == "private, max-age=86400"
            assert response["Content-Disposition"].startswith("inline")  # shown in the page, like the main image


def test_a_layer_can_be_read_by_byte_range_like_the_main_file(alice_client, layered):
    stored = Path(layered.archive_file.storage.path(layered.extra_files[2]["file"])).read_bytes()

    response = alice_client.get(extra_url(layered, 2), HTTP_RANGE="bytes=10-19")

    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes 10-19/{len(stored)}"
    assert body(response) == stored[10:20]


def test_an_index_outside_the_list_is_not_found(alice_client, layered):
    for index in (len(layered.extra_files), len(layered.extra_files) + 1, 10**12):
        assert alice_client.get(f"/generations/{layered.pk}/files/{index}/").status_code == 404
    assert alice_client.get(f"/generations/{layered.pk}/files/-1/").status_code == 404


def test_a_crafted_entry_cannot_reach_outside_the_archive_folder(alice_client, archived_png, settings, tmp_path):
    media = Path(settings.MEDIA_ROOT)
    (media / "posters").mkdir()
    (media / "posters" / "secret.jpg").write_bytes(b"poster, not an archived output")
    (media / "secret.txt").write_bytes(b"beside the archive folder")
    (tmp_path / "outside.png").write_bytes(b"outside MEDIA_ROOT")
    os.symlink(tmp_path / "outside.png", media / "archive" / "link.png")
    crafted = ["../secret.txt", "archive/../secret.txt", "archive/../../outside.png", "posters/secret.jpg",
               str(tmp_path / "outside.png"), "archive/link.png", "archive/missing.png", "archive/", "", None, 42]
    if connection.vendor != "postgresql":  # PostgreSQL's JSON cannot hold a NUL character at all
        crafted.append("archive/\0.png")
    archived_png.extra_files = [*archived_png.extra_files, *({"file": name} for name in crafted), "archive/1-layer.png"]
    archived_png.save(update_fields=["extra_files"])

    answers = {index: alice_client.get(extra_url(archived_png, index))
               for index in range(len(archived_png.extra_files))}

    assert answers[0].status_code == 200  # the real layer still is served
    for index, answer in answers.items():
        if index:
            assert answer.status_code == 404, archived_png.extra_files[index]
            assert b"outside" not in answer.content and b"beside" not in answer.content


def test_deleted_or_unarchived_generations_serve_no_layers_like_their_main_file(alice_client, archived_png):
    url, main = extra_url(archived_png, 0), reverse("generations:video", args=[archived_png.pk])
    assert alice_client.get(url).status_code == alice_client.get(main).status_code == 200

    Generation.objects.filter(pk=archived_png.pk).update(archive_state=ArchiveState.DOWNLOADING)
    assert alice_client.get(url).status_code == alice_client.get(main).status_code == 404

    Generation.objects.filter(pk=archived_png.pk).update(archive_state=ArchiveState.DONE, deleted_at=timezone.now())
    assert alice_client.get(url).status_code == alice_client.get(main).status_code == 404


def test_the_page_shows_every_layer_labelled_and_linked_to_its_file(client, bob, layered, luma_sim):
    client.force_login(bob)

    section = layers_section(client.get(layered.get_absolute_url()).content.decode())

    total = len(layered.extra_files)
    images = re.findall(r'<a href="([^"]+)" class="layer-thumb"><img src="([^"]+)" alt="([^"]+)"', section)
    assert [(link, src) for link, src, _ in images] == [(extra_url(layered, i),) * 2 for i in range(total)]
    for number, (entry, (_, _, alt)) in enumerate(zip(layered.extra_files, images), start=1):
        assert html.unescape(alt) == f"Layer {number} of {total}: {entry['label']}"
        assert f"<strong>Layer {number} of {total}</strong> · {entry['label']}" in html.unescape(section)
    assert html.unescape(section).count("PNG · ") == total
    assert f"Layers <span class=\"muted\">({total})</span>" in section
    assert "EXR" not in section


def test_an_exr_export_is_listed_to_download_with_its_size_not_shown_as_an_image(alice_client, alice, luma_sim,
                                                                                   luma_settings, jobs):
    row = run_to_done(ask(alice, prompt="A greenhouse at sunrise", resolution="1080p", duration="5s",
                          options={"hdr": True, "exr_export": True}), luma_sim, jobs)
    _, exr = row.extra_files

    section = layers_section(alice_client.get(row.get_absolute_url()).content.decode())
    response = alice_client.get(extra_url(row, 1))

    assert "<img" not in section and "Other files" in section
    assert extra_url(row, 0) not in section  # the main video is the player above, not an extra file
    link = re.search(rf'<a href="{extra_url(row, 1)}" download="([^"]+)">EXR export \(EXR\)</a>', section)
    assert link and link[1].endswith("-exr.exr")
    assert filesizeformat(exr["size"]) in html.unescape(section)
    assert response.status_code == 200
    assert body(response) == Path(row.archive_file.storage.path(exr["file"])).read_bytes()
    assert response["Content-Disposition"] == f'attachment; filename="{link[1]}"'
    assert response["Content-Type"] not in BROWSER_IMAGES
