"""Export: a board or a selection as one ZIP streamed while it is built (videos, images, posters, layers and a
metadata file in JSON and CSV), its length known before the first byte; no copy of the whole ZIP is ever made."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.text import slugify
from django.views.decorators.http import require_POST
from zipstream import ZipStream

from . import pricing
from .files import extra_path
from .models import Board, Generation, State

# Django refuses a POST with more fields than DATA_UPLOAD_MAX_NUMBER_FIELDS (1,000) before the view runs; a larger
# set is exported as a board.
CSV_FIELDS = ["id", "prompt", "negative_prompt", "kind", "model", "luma_model", "provider", "resolution", "duration",
              "aspect_ratio", "loop", "concepts", "mode", "options", "frame0_url", "frame1_url", "media_url",
              "first_frame_url", "frame0_generation", "frame1_generation", "source", "set", "made_by", "created_at",
              "completed_at", "state", "cost_cents", "review_mark", "reviewed_by", "reviewed_at", "luma_id",
              "file", "file_sha256", "poster", "poster_sha256", "layers", "files"]
# The CSV's `files` cell lists every file of the row the ZIP holds, as `role:path:sha256` entries joined by "; ":
# one column however many outputs a row has (a layering's layers, an HDR clip's EXR, roles to come), so the table
# stays one line per generation with a fixed header that a spreadsheet filters and sorts. Neither separator can
# occur inside an entry: roles are slugs, paths are made of slugs, our own file names and a kind's name, and a
# sha256 is hex. `file`, `poster` and `layers` stay as they were for whoever reads them already.
FILE_SEPARATOR = "; "
NOTHING = "Nothing to export: choose at least one generation you can see, or a board with generations on it."


class Refused(Exception):
    """The request names nothing that can be exported; the message says why."""


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _outside(value):
    """Addresses of our own uploads carry the token Luma fetches them with: an export leaves the team, so they
    are named, not given."""
    if isinstance(value, str) and settings.PUBLIC_BASE_URL and value.startswith(settings.PUBLIC_BASE_URL):
        return "(an uploaded file)"
    if isinstance(value, dict):
        return {key: _outside(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_outside(item) for item in value]
    return value


def selection(request: HttpRequest) -> tuple[list[Generation], str]:
    """The generations the POST names (`board`, or `ids` repeated) that this user can see, and a name for the
    file. Raises Refused when that is nothing; 404 for a board the user cannot see."""
    rows = Generation.objects.visible().select_related("owner", "reviewed_by")
    if request.POST.get("board"):
        try:
            board_pk = int(request.POST["board"])
        except ValueError:
            raise Refused("That is not a board.") from None
        board = get_object_or_404(Board.objects.filter(Q(shared=True) | Q(owner=request.user)), pk=board_pk)
        rows, label = rows.filter(board_items__board=board), f"board-{slugify(board.name) or board.pk}"
    else:
        try:
            ids = {int(value) for value in request.POST.getlist("ids") if value.strip()}
        except ValueError:
            raise Refused("The selection names something that is not a generation number.") from None
        rows, label = rows.filter(pk__in=ids), f"{len(ids)}-generations"
    found = list(rows.order_by("created_at", "id"))
    if not found:
        raise Refused(NOTHING)
    return found, label


def _files(generation: Generation) -> list[dict]:
    """What of `generation` goes into the ZIP: {role, path (on disk), arcname, sha256}, only files that exist."""
    stem = f"{generation.pk}-{slugify(generation.prompt)[:50].strip('-') or generation.get_kind_display().lower()}"
    found = []
    if generation.is_archived:
        path = generation.archive_file.path
        if os.path.isfile(path):
            folder = "videos" if generation.is_video else "images"
            found.append({"role": "video" if generation.is_video else "image", "path": path,
                          "arcname": f"{folder}/{stem}{Path(path).suffix}",
                          "sha256": generation.sha256 or _sha256(path)})
        for index, layer in enumerate(generation.extra_files or []):
            # Checked as the generation's page serves it: only a file inside the archive folder.
            layer_path = extra_path(generation, index)
            if layer_path is None or layer.get("file") == generation.archive_file.name:
                continue  # layer 0 is the archive file itself
            # Index, type and extension come from Luma's answer: as slugs they cannot leave the ZIP's folders nor
            # break the CSV's `files` entries.
            suffix = re.sub(r"[^a-z0-9.]", "", layer_path.suffix.lower())[:8]
            if "index" in layer:
                label = slugify(layer.get("label") or "")[:30] or "layer"
                place = slugify(str(layer["index"]))[:8] or "x"
                role, arcname = "layer", f"layers/{stem}-{place}-{label}{suffix}"
            else:  # another output of the same generation, such as an HDR clip's EXR export
                role = slugify(str(layer.get("type") or ""))[:20].strip("-") or "extra"
                arcname = f"extras/{stem}-{role}{suffix}"
            if any(item["arcname"] == arcname for item in found):  # two outputs alike: each keeps a name of its own
                arcname = f"{arcname.removesuffix(suffix)}-{index}{suffix}"
            found.append({"role": role, "path": str(layer_path), "arcname": arcname,
                          "sha256": layer.get("sha256") or _sha256(str(layer_path))})
    if generation.poster:
        path = generation.poster.path
        if os.path.isfile(path):
            found.append({"role": "poster", "path": path, "arcname": f"posters/{generation.pk}{Path(path).suffix}",
                          "sha256": _sha256(path)})
    return found


def _when(moment) -> str:
    return moment.isoformat() if moment else ""


def record(generation: Generation, files: list[dict]) -> dict:
    """One generation as the metadata file tells it: what was asked, what came of it and every file."""
    cost = (pricing.estimate_cents(generation.kind, generation.model, generation.resolution, generation.duration,
                                   generation.options) if generation.state == State.COMPLETED else 0)
    return {
        "id": generation.pk, "prompt": generation.prompt, "negative_prompt": generation.negative_prompt,
        "kind": generation.kind, "model": generation.model, "luma_model": generation.luma_model,
        "provider": generation.provider, "resolution": generation.resolution, "duration": generation.duration,
        "aspect_ratio": generation.aspect_ratio, "loop": generation.loop, "concepts": generation.concepts,
        "mode": generation.mode, "options": _outside(generation.options),
        "frame0_url": _outside(generation.frame0_url), "frame1_url": _outside(generation.frame1_url),
        "media_url": _outside(generation.media_url), "first_frame_url": _outside(generation.first_frame_url),
        "frame0_generation": generation.frame0_generation_id, "frame1_generation": generation.frame1_generation_id,
        "source": generation.source_id,
        # The "Make N" set a generation was made in (variations.request_set); "" for one made alone.
        "set": generation.batch,
        "made_by": generation.owner.get_username() if generation.owner else "",
        "created_at": _when(generation.created_at), "completed_at": _when(generation.completed_at),
        "state": generation.state, "cost_cents": cost, "review_mark": generation.review_mark,
        "reviewed_by": generation.reviewed_by.get_username() if generation.reviewed_by else "",
        "reviewed_at": _when(generation.reviewed_at), "luma_id": generation.luma_id or "",
        "files": [{"role": item["role"], "path": item["arcname"], "sha256": item["sha256"]} for item in files],
    }


def spreadsheet_cell(value):
    """A CSV value a spreadsheet shows as text: one that starts like a formula (=, +, -, @, a tab or a carriage
    return) gets a leading apostrophe, so a prompt such as =HYPERLINK(...) is never run when the file is opened."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _csv(records: list[dict]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for row in records:
        by_role = {item["role"]: item for item in row["files"]}
        main = by_role.get("video") or by_role.get("image") or {}
        writer.writerow({name: spreadsheet_cell(value) for name, value in {
            **row, "concepts": ";".join(map(str, row["concepts"] or [])), "options": json.dumps(row["options"]),
            "loop": "yes" if row["loop"] else "no",
            "frame0_generation": row["frame0_generation"] or "", "frame1_generation": row["frame1_generation"] or "",
            "source": row["source"] or "",
            "file": main.get("path", ""), "file_sha256": main.get("sha256", ""),
            "poster": by_role.get("poster", {}).get("path", ""),
            "poster_sha256": by_role.get("poster", {}).get("sha256", ""),
            "layers": json.dumps([item for item in row["files"] if item["role"] == "layer"]) if any(
                item["role"] == "layer" for item in row["files"]) else "",
            "files": FILE_SEPARATOR.join(f"{item['role']}:{item['path']}:{item['sha256']}" for item in row["files"]),
        }.items()})
    return out.getvalue().encode("utf-8")


def build(generations: list[Generation], exported_by: str, label: str) -> ZipStream:
    """The ZIP, not yet read: files are stored (video does not compress) and read from disk only while the
    response streams; `len()` of the result is the exact length of what it will yield."""
    zs = ZipStream(sized=True)
    records = []
    for generation in generations:
        files = _files(generation)
        for item in files:
            zs.add_path(item["path"], arcname=item["arcname"])
        records.append(record(generation, files))
    meta = {"exported_at": timezone.now().isoformat(), "exported_by": exported_by, "what": label,
            "count": len(records), "generations": records}
    zs.add(json.dumps(meta, indent=2, ensure_ascii=False).encode("utf-8"), arcname="metadata.json")
    zs.add(_csv(records), arcname="metadata.csv")
    return zs


def _back(request: HttpRequest) -> str | None:
    """Where the export was asked from (the form's `next`, else the Referer), if that is this site."""
    for place in (request.POST.get("next", ""), request.headers.get("Referer", "")):
        if place and url_has_allowed_host_and_scheme(place, {request.get_host()}, request.is_secure()):
            return place
    return None


@login_required
@require_POST
def export(request: HttpRequest) -> HttpResponse:
    """A board (`board`) or a selection (`ids`, repeated) as one ZIP download, streamed as it is built. An export
    of nothing goes back where it came from with the reason, or is a 400 page."""
    try:
        generations, label = selection(request)
    except Refused as refusal:
        back = _back(request)
        if back:
            messages.error(request, str(refusal))
            return redirect(back)
        return render(request, "generations/share_export_refused.html", {"reason": str(refusal)}, status=400)
    zs = build(generations, request.user.get_username(), label)
    response = StreamingHttpResponse(zs, content_type="application/zip")
    response["Content-Length"] = str(len(zs))
    name = f"lumaweb-{label}-{timezone.localtime():%Y%m%d-%H%M}.zip"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
