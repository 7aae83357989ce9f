"""Asset bytes for the simulator: small real H.264 MP4s and JPEG/PNG stills, unique per generation.

Base files are rendered once per (size, look) and cached; each generation's file is the base plus a top-level
MP4 `uuid` box (or JPEG comment / PNG text chunk) naming it, and videos can be padded with a `free` box of zeros
generated on the fly, so a 200 MB asset never sits in memory.
"""

import colorsys
import hashlib
import io
import os
import struct
import tempfile
import threading
import zlib
from dataclasses import dataclass

VIDEO_SIZES = {
    "16:9": (320, 180), "9:16": (180, 320), "1:1": (240, 240), "4:3": (288, 216),
    "3:4": (216, 288), "21:9": (420, 180), "9:21": (180, 420),
}
FPS = 24
LOOKS = 6  # colour themes, picked from the generation id so a demo library is not one clip six times
CHUNK = 256 * 1024
_ZEROS = bytes(CHUNK)
# Our own usertype for the MP4 `uuid` box that carries the generation id (random, fixed forever).
SIM_BOX_UUID = bytes.fromhex("6c756d61730e4d2a9b1f3c5d7e8f9a0b")

_cache: dict[tuple, bytes] = {}
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class Asset:
    """One asset as bytes: `head` (real file, id box, padding box header) followed by `zeros` zero bytes."""

    head: bytes
    zeros: int
    content_type: str

    @property
    def size(self) -> int:
        return len(self.head) + self.zeros

    def chunks(self, start: int = 0, end: int | None = None):
        """Yield the bytes [start, end) in pieces of at most CHUNK bytes."""
        end = self.size if end is None else min(end, self.size)
        head_len = len(self.head)
        pos = start
        while pos < end:
            if pos < head_len:
                piece = self.head[pos:min(end, head_len, pos + CHUNK)]
            else:
                piece = _ZEROS[:min(end - pos, CHUNK)]
            yield piece
            pos += len(piece)

    def sha256(self) -> str:
        digest = hashlib.sha256()
        for piece in self.chunks():
            digest.update(piece)
        return digest.hexdigest()


def look_of(generation_id: str) -> int:
    return int(generation_id.replace("-", "")[:8], 16) % LOOKS


def _palette(look: int) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    hue = look / LOOKS
    bg = tuple(int(c * 255) for c in colorsys.hsv_to_rgb(hue, 0.55, 0.35))
    fg = tuple(int(c * 255) for c in colorsys.hsv_to_rgb((hue + 0.5) % 1.0, 0.6, 0.95))
    return bg, fg


def _render_clip(width: int, height: int, seconds: float, look: int) -> bytes:
    import av  # imported lazily: the server answers /ping before the first clip is ever needed
    import numpy as np

    bg, fg = _palette(look)
    frames = int(seconds * FPS)
    ys, xs = np.mgrid[0:height, 0:width]
    shade = (xs / max(width - 1, 1) * 0.6 + 0.4)[..., None]
    base = (np.array(bg, dtype=np.float32) * shade).astype(np.uint8)
    radius = min(width, height) // 6
    fd, path = tempfile.mkstemp(suffix=".mp4", prefix="lumasim-")
    os.close(fd)
    try:
        # +faststart rewrites the file in a second pass, which needs a real path rather than a BytesIO.
        with av.open(path, "w", format="mp4", options={"movflags": "+faststart"}) as out:
            stream = out.add_stream("libx264", rate=FPS)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.options = {"preset": "veryfast", "crf": "30"}
            for i in range(frames):
                t = i / max(frames - 1, 1)
                cx = int(radius + t * (width - 2 * radius))
                cy = int(height / 2 + np.sin(t * 2 * np.pi) * (height / 2 - radius))
                img = base.copy()
                img[(xs - cx) ** 2 + (ys - cy) ** 2 <= radius * radius] = fg
                img[height - 6:, : int(width * t)] = (255, 255, 255)
                for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                    out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)
        with open(path, "rb") as handle:
            return handle.read()
    finally:
        os.unlink(path)


def _render_still(width: int, height: int, look: int, fmt: str) -> bytes:
    from PIL import Image, ImageDraw

    bg, fg = _palette(look)
    image = Image.new("RGB", (width, height), bg)
    draw = ImageDraw.Draw(image)
    for x in range(0, width, 4):
        level = x / width
        draw.line([(x, 0), (x, height)], fill=tuple(int(c * (0.4 + 0.6 * level)) for c in bg), width=4)
    r = min(width, height) // 4
    draw.ellipse([width // 2 - r, height // 2 - r, width // 2 + r, height // 2 + r], fill=fg)
    out = io.BytesIO()
    if fmt == "png":
        image.save(out, format="PNG")
    else:
        image.save(out, format="JPEG", quality=85)
    return out.getvalue()


def _cached(key: tuple, render) -> bytes:
    with _cache_lock:
        if key in _cache:
            return _cache[key]
    data = render()  # rendered outside the lock: two threads may race, both results are equal
    with _cache_lock:
        return _cache.setdefault(key, data)


def base_clip(aspect_ratio: str, seconds: float, look: int) -> bytes:
    width, height = VIDEO_SIZES.get(aspect_ratio, VIDEO_SIZES["16:9"])
    return _cached(("mp4", width, height, seconds, look), lambda: _render_clip(width, height, seconds, look))


def mp4_box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def free_box_header(total: int) -> bytes:
    """Header of a `free` box whose total size (header included) is `total`; 64-bit size past 4 GiB."""
    if total < 2**32:
        return struct.pack(">I", total) + b"free"
    return struct.pack(">I", 1) + b"free" + struct.pack(">Q", total)


def video_asset(generation_id: str, label: str, aspect_ratio: str, seconds: float, min_bytes: int = 0) -> Asset:
    """An MP4 unique to this generation (and label), padded to at least min_bytes."""
    head = base_clip(aspect_ratio, seconds, look_of(generation_id))
    head += mp4_box(b"uuid", SIM_BOX_UUID + f"lumasim {label} {generation_id}".encode())
    pad = min_bytes - len(head)
    if pad <= 0:
        return Asset(head, 0, "video/mp4")
    header_len = 8 if pad + 8 < 2**32 else 16
    pad = max(pad, header_len)
    return Asset(head + free_box_header(pad), pad - header_len, "video/mp4")


def image_asset(generation_id: str, aspect_ratio: str, fmt: str = "jpg") -> Asset:
    width, height = VIDEO_SIZES.get(aspect_ratio, VIDEO_SIZES["16:9"])
    width, height = width * 2, height * 2
    look = look_of(generation_id)
    fmt = "png" if fmt == "png" else "jpg"
    base = _cached(("still", width, height, look, fmt), lambda: _render_still(width, height, look, fmt))
    tag = f"lumasim image {generation_id}".encode()
    if fmt == "png":
        # A tEXt chunk right after IHDR (8-byte signature + 25-byte IHDR chunk).
        data = b"Comment\x00" + tag
        chunk = struct.pack(">I", len(data)) + b"tEXt" + data + struct.pack(">I", zlib.crc32(b"tEXt" + data))
        return Asset(base[:33] + chunk + base[33:], 0, "image/png")
    comment = b"\xff\xfe" + struct.pack(">H", len(tag) + 2) + tag  # a JPEG COM segment right after SOI
    return Asset(base[:2] + comment + base[2:], 0, "image/jpeg")


def warm_up() -> None:
    """Render the most common clip so the first completed generation is served at once."""
    base_clip("16:9", 2.0, 0)
