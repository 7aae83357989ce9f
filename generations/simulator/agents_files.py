"""The Agents simulator's Files API (luma-agents-api.md section 8): presigned PUT and multipart uploads, complete,
ingest (pending -> ready | failed), get, keyset-paginated list and soft delete, each key its own namespace.

Error texts chosen here (Luma documents none): 404 "File not found"; 400 "Upload not received: PUT the bytes to
the upload URL first"; 400 "Unsupported mime_type '<m>': upload an image or a video"; 400 "size_bytes must be
between 1 and 5368709120"; 400 "Invalid purpose '<p>'. Valid: input, reference"; 413 "File exceeds the <n> MB
inline upload limit; use a presigned upload"; 422 lists for missing or mistyped fields and bad list parameters.
failure_reason texts: "Uploaded size (<n> bytes) does not match size_bytes (<m>)", "File could not be decoded as
<mime>".
"""

import base64
import io
import os
import uuid
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path

from . import media
from .agents_validation import check_schema
from .validation import ApiError

MAX_FILE_BYTES = 5 * 1024**3  # the S3 single-PUT ceiling
KEEP_BYTES = 200 * 1024 * 1024  # bigger uploads are counted, not kept (nothing here reads them)
PURPOSES = ("input", "reference")
STATES = ("pending", "ready", "failed", "deleted")
DATES = ("created_at", "expires_at", "deleted_at")  # AgentFile's datetimes, ISO strings in the state file
CREATE = ("obj", {"mime_type": "str", "size_bytes": "int", "filename": "str", "purpose": "str",
                  "expires_at": "str", "user_id": "str"}, ("mime_type", "size_bytes"))


def iso(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if moment else None


def from_iso(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


@dataclass
class AgentFile:
    id: str
    seq: int
    key: str
    created_at: datetime
    mime_type: str
    purpose: str
    size_bytes: int
    filename: str | None
    user_id: str | None
    expires_at: datetime | None
    state: str = "pending"
    failure_reason: str | None = None
    deleted_at: datetime | None = None
    inline: bool = False
    received: int | None = None  # bytes PUT so far (None: nothing arrived yet)
    data: bytes | None = None
    completed: bool = False
    width: int = 0  # what ingest found in the bytes (0: unknown)
    height: int = 0
    seconds: float = 0.0

    @property
    def media(self) -> str:
        return "video" if self.mime_type.startswith("video/") else "image"

    def current_state(self) -> str:
        if self.state != "deleted" and self.expires_at and self.expires_at <= datetime.now(UTC):
            self.state, self.deleted_at = "deleted", self.expires_at  # Luma may reclaim an expired file
        return self.state

    def to_api(self) -> dict:
        return {"id": self.id, "created_at": iso(self.created_at), "mime_type": self.mime_type,
                "purpose": self.purpose, "size_bytes": self.size_bytes, "state": self.current_state(),
                "deleted_at": iso(self.deleted_at), "expires_at": iso(self.expires_at),
                "failure_reason": self.failure_reason, "filename": self.filename, "user_id": self.user_id}


def _mime(value: str) -> str:
    mime = value.split(";")[0].strip().lower()
    if not mime.startswith(("image/", "video/")):
        raise ApiError(400, f"Unsupported mime_type '{value}': upload an image or a video")
    return mime


def _purpose(value) -> str:
    if value is None:
        return "input"  # the default is undocumented; section 8.2 picks input
    if value not in PURPOSES:
        raise ApiError(400, f"Invalid purpose '{value}'. Valid: {', '.join(PURPOSES)}")
    return value


def _expiry(value) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(422, [{"type": "datetime_from_date_parsing", "loc": ["body", "expires_at"], "input": value,
                              "msg": "Input should be a valid datetime"}]) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_multipart(content_type: str, raw: bytes) -> tuple[dict, tuple[str | None, str | None, bytes] | None]:
    """Form fields and the `file` part (filename, content type, bytes) of a multipart/form-data body."""
    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw)
    fields, upload = {}, None
    for part in message.iter_parts() if message.is_multipart() else []:
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        payload = part.get_payload(decode=True) or b""
        if name == "file":
            upload = (part.get_filename(), part.get_content_type() if part.get("Content-Type") else None, payload)
        else:
            fields[name] = payload.decode("utf-8", "replace")
    return fields, upload


class FileStore:
    """Files of every key. No lock of its own: it takes the engine's, and ingest runs on the engine's clock."""

    def __init__(self, engine):
        self.engine = engine
        self.files: dict[str, AgentFile] = {}
        self.seq = 0
        self.bytes_saved: set[str] = set()  # ids whose pending bytes have a file beside the state file

    # -- create, upload, complete ----------------------------------------------------------------------------

    def _new(self, key: str, mime: str, size: int, filename, purpose, expires_at, user_id, inline: bool) -> AgentFile:
        self.seq += 1
        record = AgentFile(id=str(uuid.uuid4()), seq=self.seq, key=key, created_at=datetime.now(UTC),
                           mime_type=mime, purpose=purpose, size_bytes=size, filename=filename, user_id=user_id,
                           expires_at=expires_at, inline=inline)
        self.files[record.id] = record
        self.engine.changed()
        return record

    def create_json(self, key: str, body) -> dict:
        check_schema(body, CREATE)
        mime, purpose = _mime(body["mime_type"]), _purpose(body.get("purpose"))
        expires = _expiry(body.get("expires_at"))
        size = body["size_bytes"]
        if not 1 <= size <= MAX_FILE_BYTES:
            raise ApiError(400, f"size_bytes must be between 1 and {MAX_FILE_BYTES}")
        with self.engine.lock:
            record = self._new(key, mime, size, body.get("filename"), purpose, expires, body.get("user_id"), False)
            upload = self.engine.upload_url(record)
            return {"id": record.id, "state": record.state, "file": record.to_api(), "upload": upload}

    def create_multipart(self, key: str, content_type: str, raw: bytes) -> dict:
        limit = self.engine.config.inline_upload_bytes
        if len(raw) > limit + 64 * 1024:
            raise ApiError(413, f"File exceeds the {limit // (1024 * 1024)} MB inline upload limit; use a presigned "
                                "upload")
        fields, upload = parse_multipart(content_type, raw)
        if upload is None:
            raise ApiError(422, [{"type": "missing", "loc": ["body", "file"], "msg": "Field required", "input": None}])
        filename, part_type, data = upload
        if len(data) > limit:
            raise ApiError(413, f"File exceeds the {limit // (1024 * 1024)} MB inline upload limit; use a presigned "
                                "upload")
        mime = _mime(fields.get("mime_type") or part_type or "application/octet-stream")
        purpose, expires = _purpose(fields.get("purpose")), _expiry(fields.get("expires_at"))
        with self.engine.lock:
            record = self._new(key, mime, len(data), fields.get("filename") or filename, purpose, expires,
                               fields.get("user_id"), True)
            record.received, record.data, record.completed = len(data), data, True
            self._start_ingest(record)
            return {"id": record.id, "state": record.state, "file": record.to_api(), "upload": None}

    def put(self, file_id: str, data: bytes) -> None:
        """The presigned PUT arrived (signature already checked): keep the bytes; ingest waits for complete."""
        with self.engine.lock:
            record = self.files.get(file_id)
            if record is None or record.current_state() == "deleted" or record.completed:
                raise ApiError(403, "AccessDenied")  # S3 would have nowhere to put it any more
            record.received, record.data = len(data), data if len(data) <= KEEP_BYTES else None
            self._forget_bytes(record)  # a second PUT replaces the first: the next save writes these bytes
        self.engine.changed()

    def complete(self, key: str, file_id: str) -> dict:
        with self.engine.lock:
            record = self.owned(key, file_id)
            if not record.completed:
                if record.received is None:
                    raise ApiError(400, "Upload not received: PUT the bytes to the upload URL first")
                record.completed = True
                self._start_ingest(record)
                self.engine.changed()
            return record.to_api()

    def _start_ingest(self, record: AgentFile) -> None:
        self.engine.schedule(self.engine.spread(self.engine.config.file_ingest_seconds), lambda: self._ingest(record))

    def _ingest(self, record: AgentFile) -> None:
        """Runs under the engine's lock: check what arrived, then ready or failed."""
        if record.state != "pending":
            return
        self.engine.changed()
        self._forget_bytes(record)
        if record.received != record.size_bytes:
            record.state = "failed"
            record.failure_reason = f"Uploaded size ({record.received} bytes) does not match size_bytes " \
                                    f"({record.size_bytes})"
            return
        shape = describe_media(record.data, record.media) if record.data is not None else None
        if record.data is not None and shape is None:
            record.state, record.failure_reason = "failed", f"File could not be decoded as {record.mime_type}"
            return
        if shape:
            record.width, record.height, record.seconds = shape
        record.state = "ready"

    # -- read, list, delete ----------------------------------------------------------------------------------

    def owned(self, key: str, file_id: str) -> AgentFile:
        record = self.files.get(file_id)
        if record is None or record.key != key:
            raise ApiError(404, "File not found")
        return record

    def get(self, key: str, file_id: str) -> dict:
        with self.engine.lock:
            return self.owned(key, file_id).to_api()

    def delete(self, key: str, file_id: str) -> None:
        with self.engine.lock:
            record = self.owned(key, file_id)
            if record.current_state() != "deleted":
                record.state, record.deleted_at, record.data = "deleted", datetime.now(UTC), None
                self._forget_bytes(record)
                self.engine.changed()

    def page(self, key: str, query: dict) -> dict:
        limit = _int_param(query, "limit", 25, 1, 100)
        purpose, state = query.get("purpose"), query.get("state")
        for name, value, valid in (("purpose", purpose, PURPOSES), ("state", state, STATES)):
            if value is not None and value not in valid:
                expected = " or ".join(f"'{v}'" for v in valid)
                raise ApiError(422, [{"type": "enum", "loc": ["query", name], "input": value,
                                      "msg": f"Input should be {expected}"}])
        before = _cursor(query.get("cursor"))
        with self.engine.lock:
            chosen = [f for f in sorted(self.files.values(), key=lambda f: -f.seq)
                      if f.key == key and f.seq < before and (purpose is None or f.purpose == purpose)
                      and ((f.current_state() == state) if state else f.current_state() != "deleted")]
            page = chosen[:limit]
            more = len(chosen) > limit
            cursor = base64.urlsafe_b64encode(f"f{page[-1].seq}".encode()).decode() if more else None
            return {"data": [f.to_api() for f in page], "has_more": more, "next_cursor": cursor}

    def usable(self, key: str, file_id: str, path: str, want: str) -> AgentFile:
        """The file a reference names, or the 422 that says why it cannot be used."""
        record = self.files.get(file_id)
        if record is None or record.key != key:
            raise ApiError(422, f"{path}: file not found")
        state = record.current_state()
        if state == "deleted":
            raise ApiError(422, f"{path}: file has been deleted")
        if state != "ready":
            raise ApiError(422, f"{path}: file is not ready")
        if record.media != want:
            raise ApiError(422, f"{path}: file is not {'a video' if want == 'video' else 'an image'}")
        return record

    def all(self) -> list[dict]:
        with self.engine.lock:
            return [{**f.to_api(), "key": f.key, "inline": f.inline, "received": f.received,
                     "width": f.width, "height": f.height, "seconds": f.seconds}
                    for f in sorted(self.files.values(), key=lambda f: f.seq)]

    # -- persistence (the engine's part of the state file) ---------------------------------------------------

    def _bytes_path(self, record: AgentFile) -> Path | None:
        """Where a pending upload's bytes wait out a restart: beside the state file, one file each (the state
        file itself is rewritten after every change, and must not carry up to KEEP_BYTES of base64 each time)."""
        state = self.engine.state
        return state.path.with_name(state.path.name + ".uploads") / record.id if state else None

    def _forget_bytes(self, record: AgentFile) -> None:
        """The upload left pending (ingested, failed, deleted or expired): a restart no longer needs its bytes."""
        if record.id in self.bytes_saved:
            self.bytes_saved.discard(record.id)
            self._bytes_path(record).unlink(missing_ok=True)

    def snapshot(self) -> dict:
        """Every file. The bytes of a pending one, which ingest may still read, are written once to their own file."""
        saved = []
        for record in sorted(self.files.values(), key=lambda f: f.seq):
            raw = {**asdict(record), **{name: iso(getattr(record, name)) for name in DATES}, "data": None}
            if record.id in self.bytes_saved and record.current_state() != "pending":
                self._forget_bytes(record)
            elif record.state == "pending" and record.data is not None and (path := self._bytes_path(record)):
                if record.id not in self.bytes_saved:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    tmp = path.with_name(path.name + ".tmp")
                    tmp.write_bytes(record.data)
                    os.replace(tmp, path)
                    self.bytes_saved.add(record.id)
                raw["data"] = "saved"
            saved.append(raw)
        return {"seq": self.seq, "files": saved}

    def load(self, data: dict) -> None:
        """Take over saved files (under the engine's lock); an ingest cut short by the restart starts again."""
        known = {f.name for f in fields(AgentFile)}
        self.seq = data.get("seq", 0)
        for raw in data.get("files", []):
            record = AgentFile(**{k: v for k, v in raw.items() if k in known})
            for name in DATES:
                setattr(record, name, from_iso(getattr(record, name)))
            saved, record.data = record.data, None
            if saved == "saved" and (path := self._bytes_path(record)) is not None and path.exists():
                record.data = path.read_bytes()
                self.bytes_saved.add(record.id)
            elif saved and saved != "saved":
                record.data = base64.b64decode(saved)  # a state file written before the bytes had files of their own
            self.files[record.id] = record
            if record.state == "pending" and record.completed:
                self._start_ingest(record)


def describe_media(data: bytes, kind: str) -> tuple[int, int, float] | None:
    """(width, height, seconds) of an image (seconds 0) or a video, or None when it cannot be decoded."""
    if kind == "video":
        return media.probe_video(data)
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as picture:
            picture.load()
            return picture.width, picture.height, 0.0
    except Exception:  # noqa: BLE001 - whatever Pillow refuses is not an image
        return None


def _int_param(query: dict, name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        message = "Input should be a valid integer, unable to parse string as an integer"
        raise ApiError(422, [{"type": "int_parsing", "loc": ["query", name], "input": raw, "msg": message}]) from None
    if not low <= value <= high:
        raise ApiError(422, [{"type": "less_than_equal" if value > high else "greater_than_equal",
                              "loc": ["query", name], "input": raw,
                              "msg": f"Input should be {'less' if value > high else 'greater'} than or equal to "
                                     f"{high if value > high else low}"}])
    return value


def _cursor(raw: str | None) -> int:
    if not raw:
        return 2**62
    try:
        text = base64.urlsafe_b64decode(raw.encode()).decode()
        return int(text.removeprefix("f"))
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "Invalid cursor") from None

