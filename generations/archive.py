"""Archiving: stream a completed generation's asset into our storage, verified, with a poster.

Memory stays flat (fixed-size chunks into a temporary file); a cut download resumes with Range; an
expired asset URL is replaced by a fresh one from Luma; the finished file is moved into place atomically.
One run owns a row at a time: its claim token guards every write to the row, and an exclusive lock on the
row's lock file guards the partial file, so a second worker can neither append to it nor move it.
"""

import fcntl
import hashlib
import logging
import os
import queue
import secrets
import threading
import time
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from . import luma, providers
from .models import ArchiveState, Generation, GenerationEvent, State

log = logging.getLogger("lumaweb.archive")
Source = GenerationEvent.Source

CHUNK = 1024 * 1024
# Bytes received are saved for the progress bar at most this often (the page polls every 2 s); each save is a
# database write, so saving per chunk would slow a fast download down.
PROGRESS_SECONDS = 0.5
ATTEMPTS_PER_RUN = 4


class IncompleteDownload(Exception):
    """The server closed the connection before sending every byte it announced."""


class LostClaim(Exception):
    """Another run owns the row now (an admin retried, or the sweep thought this run had stalled)."""


class _Sink:
    """Hands each chunk to consumers (the file's write, the digest's update), each on its own thread, while the
    next chunk arrives from the network.

    hashlib and file writes release the GIL, so receiving, hashing and writing overlap on two cores instead of
    adding up. The queues are bounded, so memory stays at a few chunks whatever the file size. Leaving the
    block (also on an error) waits until every received chunk is written, so a resume starts at the right byte.
    """

    def __init__(self, *consumers, depth: int = 4):
        self.error: BaseException | None = None
        self.lanes = [(consumer, queue.Queue(maxsize=depth)) for consumer in consumers]
        self.threads = [
            threading.Thread(target=self._drain, args=lane, name="archive-sink", daemon=True) for lane in self.lanes
        ]

    def _drain(self, consume, chunks: queue.Queue) -> None:
        while (chunk := chunks.get()) is not None:
            if self.error is None:
                try:
                    consume(chunk)
                except BaseException as exc:  # handed to the downloading thread
                    self.error = exc

    def put(self, chunk: bytes) -> None:
        if self.error is not None:
            raise self.error
        for _, chunks in self.lanes:
            chunks.put(chunk)

    def __enter__(self) -> "_Sink":
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        for _, chunks in self.lanes:
            chunks.put(None)
        for thread in self.threads:
            thread.join()
        if self.error is not None and exc_info[0] is None:
            raise self.error


class _Flusher:
    """Starts writing the file back to disk every few MB, on a thread of its own, while the download goes on,
    so the fsync at the end finds little left to do. Only counts bytes; it holds no chunk."""

    EVERY = 32 * 1024 * 1024

    def __init__(self, fd: int):
        self.fd, self.pending = fd, 0
        self.wanted = threading.Event()
        self.done = False
        self.thread = threading.Thread(target=self._run, name="archive-flush", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while self.wanted.wait() and not self.done:
            self.wanted.clear()
            try:
                os.fdatasync(self.fd)
            except OSError:
                return  # the final fsync reports real trouble

    def __call__(self, chunk: bytes) -> None:
        self.pending += len(chunk)
        if self.pending >= self.EVERY:
            self.pending = 0
            self.wanted.set()

    def close(self) -> None:
        self.done = True
        self.wanted.set()
        self.thread.join()


def _partial_path(pk: int) -> Path:
    folder = Path(settings.MEDIA_ROOT) / "partial"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{pk}.part"


def claim(pk: int) -> str | None:
    """waiting/failed (or a stalled download) -> downloading. Only one worker wins a row; the winner gets the
    claim token that its later writes must present."""
    now = timezone.now()
    stalled = now - timedelta(seconds=settings.LUMA_STALL_SECONDS)
    token = secrets.token_hex(8)
    won = (
        Generation.objects.filter(pk=pk, state=State.COMPLETED, deleted_at__isnull=True)
        .filter(
            Q(archive_state__in=[ArchiveState.WAITING, ArchiveState.FAILED])
            | Q(archive_state=ArchiveState.DOWNLOADING, archive_updated_at__lt=stalled)
        )
        .update(archive_state=ArchiveState.DOWNLOADING, archive_updated_at=now, archive_claim=token,
                archive_attempts=F("archive_attempts") + 1)
    )
    return token if won else None


def _mine(pk: int, token: str):
    """The row, only while this run still owns its claim (an update through it writes nothing otherwise)."""
    return Generation.objects.filter(pk=pk, archive_claim=token, archive_state=ArchiveState.DOWNLOADING)


class _RowLock:
    """An exclusive, non-blocking lock on the row's lock file, held for a whole archive run."""

    def __init__(self, pk: int):
        self.path = _partial_path(pk).with_suffix(".lock")

    def __enter__(self) -> bool:
        self.handle = open(self.path, "a")
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def __exit__(self, *exc_info) -> None:
        self.handle.close()  # releases the lock


def _fetch(client: luma.LumaClient, url: str, part: Path, mine) -> tuple[int, str]:
    """Download url into part, resuming from what part already holds. Returns (size, sha256)."""
    digest = hashlib.sha256()
    have = part.stat().st_size if part.exists() else 0
    with client.open_asset(url, start=have) as response:
        if have and not response.resumed:
            have = 0  # the server ignored Range: start over
        mode = "ab" if have else "wb"
        if have:
            with open(part, "rb") as earlier:
                while block := earlier.read(CHUNK):
                    digest.update(block)
        total = response.total_size
        received = have
        last_report = time.monotonic()
        if not mine.update(archive_size=total, archive_received=received, archive_updated_at=timezone.now()):
            raise LostClaim()
        with open(part, mode) as out:
            flusher = _Flusher(out.fileno())
            try:
                with _Sink(out.write, digest.update) as sink:
                    for chunk in response.iter_chunks(CHUNK):
                        sink.put(chunk)
                        flusher(chunk)
                        received += len(chunk)
                        if time.monotonic() - last_report >= PROGRESS_SECONDS:
                            last_report = time.monotonic()
                            if not mine.update(archive_received=received, archive_updated_at=timezone.now()):
                                raise LostClaim()
            finally:
                flusher.close()
            out.flush()
            os.fsync(out.fileno())
    if total is not None and received != total:
        mine.update(archive_received=received)
        raise IncompleteDownload(f"received {received} of {total} bytes")
    return received, digest.hexdigest()


def _make_poster(source: Path, target: Path, is_video: bool) -> bool:
    """A JPEG still for the card: the first frame of a video, or a reduced copy of an image."""
    from PIL import Image

    try:
        if is_video:
            import av

            with av.open(str(source)) as container:
                frame = next(container.decode(video=0))
                image = frame.to_image()
        else:
            image = Image.open(source)
            image.load()
        image = image.convert("RGB")
        image.thumbnail((640, 640))
        target.parent.mkdir(parents=True, exist_ok=True)
        image.save(target, "JPEG", quality=82)
        return True
    except Exception as error:  # a poster is a nicety; never fail the archive for it
        log.warning("no poster for %s: %s", source.name, error)
        return False


def archive_generation(pk: int) -> None:
    with _RowLock(pk) as locked:
        if not locked:
            return  # a run on this machine still holds the row; if it died, the lock died with it
        token = claim(pk)
        if token:
            _archive(pk, token)


def _archive(pk: int, token: str) -> None:
    row = Generation.objects.get(pk=pk)
    mine = _mine(pk, token)
    client = providers.for_row(row).client()
    part = _partial_path(pk)
    url = row.video_url if row.is_video else (row.image_url or row.video_url)
    error: Exception | None = None
    for attempt in range(ATTEMPTS_PER_RUN):
        if not url:
            error = RuntimeError("Luma gave no asset URL for this generation")
        else:
            try:
                size, sha256 = _fetch(client, url, part, mine)
                extras = _fetch_extras(client, row, mine)
                _store(row, mine, part, size, sha256, extras)
                return
            except LostClaim:
                log.info("archive of %s: another run owns the row now; stopping", pk)
                return
            except luma.LumaAssetHostNotAllowed as exc:
                # Luma's own answer named a URL we may not fetch: a setting to fix (LUMA_ASSET_HOSTS), retried
                # with backoff like any failure, never a permanent loss.
                _give_up(row, mine, f"Refused to download this asset URL: {exc}")
                return
            except luma.LumaAssetExpired as exc:
                error = exc
                url = _fresh_url(client, row) or url
                continue
            except (IncompleteDownload, luma.LumaError, OSError) as exc:
                error = exc
        time.sleep(min(0.5 * 2**attempt, 4))
        if not url:
            url = _fresh_url(client, row)
    _give_up(row, mine, f"Archive failed: {error}")


def _fresh_url(client: luma.LumaClient, row: Generation) -> str:
    """Asset links can expire: ask Luma for the generation again, which carries fresh ones."""
    try:
        remote = client.get(row.luma_id)
    except luma.LumaError as exc:
        log.warning("could not refresh asset URL of %s: %s", row.pk, exc)
        return ""
    row.apply_remote(remote, source=Source.ARCHIVE)
    return remote.video_url if row.is_video else (remote.image_url or remote.video_url)


def _outputs(row: Generation) -> list[dict]:
    """Every output Luma's last answer named (the Agents API's output[]; Dream Machine has one asset)."""
    outputs = (row.raw or {}).get("output") if isinstance(row.raw, dict) else None
    return [item for item in outputs or [] if isinstance(item, dict) and item.get("url")]


def _layer(output: dict, position: int) -> dict:
    """What an output is: its type (video, image, exr) and, for a layer, its place, label and alpha hint."""
    described = {"type": str(output.get("type") or "")}
    layer = output.get("layer") if isinstance(output.get("layer"), dict) else None
    if layer is not None:
        described.update(index=layer.get("index", position), label=str(layer.get("label") or "")[:60],
                         description=str(layer.get("description") or "")[:300],
                         alpha_hint=layer.get("alpha_hint") or "")
    return described


EXTENSIONS = {"video": ".mp4", "exr": ".exr", "image": ".png"}


def _extension(output: dict) -> str:
    path = str(output.get("url") or "").split("?")[0].lower()
    if path.endswith((".jpg", ".jpeg")):
        return ".jpg"
    return EXTENSIONS.get(str(output.get("type") or ""), Path(path).suffix[:8] or ".bin")


def _fetch_extras(client: luma.LumaClient, row: Generation, mine) -> list[dict]:
    """Every output after the first (layering's further layers, an HDR clip's EXR export), each downloaded, hashed
    and moved into place; the first is the row's own archive file. Errors propagate to the run's retry loop,
    like the main file's."""
    kept = []
    for position, output in enumerate(_outputs(row)[1:], start=1):
        part = _partial_path(row.pk).with_suffix(f".{position}.part")
        size, sha256 = _fetch(client, output["url"], part, mine)
        name = f"archive/{row.pk}-{position}-{sha256[:12]}{_extension(output)}"
        final = Path(settings.MEDIA_ROOT) / name
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(part, final)
        kept.append({**_layer(output, position), "file": name, "size": size, "sha256": sha256})
    return kept


def _store(row: Generation, mine, part: Path, size: int, sha256: str, extras: list[dict] = ()) -> None:
    if not mine.update(archive_updated_at=timezone.now()):
        raise LostClaim()
    extension = ".mp4" if row.is_video else (".png" if row.image_url.lower().split("?")[0].endswith(".png") else ".jpg")
    name = f"archive/{row.pk}-{sha256[:12]}{extension}"
    final = Path(settings.MEDIA_ROOT) / name
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(part, final)  # atomic on one filesystem: a reader sees no file or the whole file
    poster_name = f"posters/{row.pk}.jpg"
    has_poster = _make_poster(final, Path(settings.MEDIA_ROOT) / poster_name, row.is_video)
    if extras:
        first = _outputs(row)[0]
        extras = [{**_layer(first, 0), "file": name, "size": size, "sha256": sha256}, *extras]
    stored = mine.update(
        archive_state=ArchiveState.DONE,
        archive_file=name,
        extra_files=list(extras),
        poster=poster_name if has_poster else "",
        archive_size=size,
        archive_received=size,
        sha256=sha256,
        archive_error="",
        archive_claim="",
        archive_updated_at=timezone.now(),
    )
    if stored:
        row.record(Source.ARCHIVE, f"archived {size} bytes, sha256 {sha256[:12]}…")


def _give_up(row: Generation, mine, message: str) -> None:
    """This run failed; the sweep tries again with backoff (MAX_ARCHIVE_ATTEMPTS). Only the claim's owner writes."""
    fields = {"archive_state": ArchiveState.FAILED, "archive_error": message[:1000], "archive_claim": "",
              "archive_updated_at": timezone.now()}
    if mine.update(**fields):
        row.record(Source.ARCHIVE, message[:300])
