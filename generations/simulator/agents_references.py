"""References of an Agents create, resolved at submit time as Luma does (luma-agents-api.md section 17): a file
by id, a finished generation by id, inline base64 or a URL fetched (loopback only: this machine makes no outside
traffic), each measured for the 413s and 422s Luma documents. Fetches run outside the engine's lock."""

import base64
import binascii
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .agents_files import describe_media
from .agents_validation import Ref
from .loopback import is_loopback_url, local_session
from .validation import ApiError

if TYPE_CHECKING:
    from .agents_engine import AgentGen

IMAGE_BYTES, VIDEO_BYTES = 50 * 1024 * 1024, 200 * 1024 * 1024
VIDEO_OUTPUTS, IMAGE_OUTPUTS = ("video", "video_edit", "video_reframe"), ("image", "image_edit")


@dataclass
class Resolved:
    """What a reference turned out to be: its media kind, shape if known, and the generation it names, if any."""

    ref: Ref
    kind: str
    width: int = 0
    height: int = 0
    seconds: float = 0.0
    decodable: bool = True
    generation: "AgentGen | None" = None


class References:
    """The engine's reference resolver: it reads the engine's files and generations under the engine's lock."""

    def __init__(self, engine):
        self.engine = engine

    def resolve(self, key: str, ref: Ref) -> Resolved:
        """Fetch, decode or look up one reference (section 17's 413/422/503), outside the lock for fetches."""
        fields_ = ref.ref
        path, want = ref.path, ref.want
        media_type = (fields_.get("media_type") or "").lower()
        if media_type and not media_type.startswith(f"{want}/"):
            raise ApiError(422, f"{path}: content-type is not an image" if want == "image"
                           else f"{path}: media_type must be a video type for a video source")
        if fields_.get("generation_id") is not None:
            return self._by_generation(key, ref)
        if fields_.get("file_id") is not None:
            with self.engine.lock:
                record = self.engine.files.usable(key, fields_["file_id"], path, want)
                return Resolved(ref, want, record.width, record.height, record.seconds)
        if fields_.get("data") is not None:
            try:
                data = base64.b64decode(fields_["data"], validate=True)
            except (binascii.Error, ValueError):
                raise ApiError(422, f"{path}: invalid base64 data") from None
            return self._measured(ref, data)
        url = fields_["url"]
        if self.engine.fires("url_ingestion_down"):
            raise ApiError(503, "Image URL ingestion unavailable")
        if not is_loopback_url(url):
            if self.engine.config.remote_refs == "fail":  # never fetched: this machine makes no outside traffic
                raise ApiError(422, f"{path}: failed to fetch URL")
            return Resolved(ref, want)
        return self._measured(ref, self._fetch(ref, url))

    def _measured(self, ref: Ref, data: bytes) -> Resolved:
        limit = VIDEO_BYTES if ref.want == "video" else IMAGE_BYTES
        if len(data) > limit:
            raise ApiError(413, self._too_large(ref))
        shape = describe_media(data, ref.want)
        if shape is None:
            return Resolved(ref, ref.want, decodable=False)  # found while processing: failure_code corrupt_input
        return Resolved(ref, ref.want, *shape)

    @staticmethod
    def _too_large(ref: Ref) -> str:
        if ref.want == "video":
            return f"{ref.path}: video exceeds 200 MB limit"
        return "source: image exceeds 50 MB limit" if ref.path == "source" else "Image exceeds 50 MB size limit"

    def _fetch(self, ref: Ref, url: str) -> bytes:
        limit = VIDEO_BYTES if ref.want == "video" else IMAGE_BYTES
        try:
            with local_session() as session, session.get(url, timeout=self.engine.config.fetch_timeout, stream=True,
                                                         allow_redirects=False) as answer:
                if answer.status_code != 200:
                    raise ApiError(422, f"{ref.path}: failed to fetch URL (HTTP {answer.status_code})")
                kind = answer.headers.get("Content-Type", "").split(";")[0].strip().lower()
                if ref.want == "image" and not kind.startswith("image/"):
                    raise ApiError(422, f"{ref.path}: content-type is not an image")
                data = bytearray()
                for piece in answer.iter_content(256 * 1024):
                    data += piece
                    if len(data) > limit:
                        raise ApiError(413, self._too_large(ref))
                return bytes(data)
        except ApiError:
            raise
        except Exception:  # noqa: BLE001 - refused, timed out, reset: all the same to the caller
            raise ApiError(422, f"{ref.path}: failed to fetch URL") from None

    def _by_generation(self, key: str, ref: Ref) -> Resolved:
        path, gen_id = ref.path, ref.ref["generation_id"]
        if path != "source" and path not in ("video.start_frame", "video.end_frame"):
            raise ApiError(422, f"{path}: generation_id is only accepted on source and video.start_frame/end_frame; "
                                "upload the image as a file")
        with self.engine.lock:
            gen = self.engine.gens.get(gen_id)
            if gen is None or gen.key != key:
                raise ApiError(422, f"{path}: generation not found")
            if gen.state != "completed":
                raise ApiError(422, f"{path}: generation is not completed")
            # a start/end frame by generation extends a video; a source is the kind its position wants
            wanted = "video" if path != "source" else ref.want
            if wanted == "video" and gen.type not in VIDEO_OUTPUTS:
                raise ApiError(422, f"{path}: generation output is not a video")
            if wanted == "image" and gen.type not in IMAGE_OUTPUTS:
                raise ApiError(422, f"{path}: generation output is not an image")
            return Resolved(ref, wanted, gen.width, gen.height, gen.seconds, generation=gen)
