"""Asset bytes for the simulator: H.264 MP4s and JPEG/PNG stills at the size and length the request asked for, each
showing its generation (its own colour, its kind's pattern and name, the prompt's first words, a moving block).

Videos have few frames (3 a second at 720p, fewer above) to stay cheap. Files are cached (bounded) and deterministic,
so a restarted simulator serves the same bytes; each carries its generation id (MP4 `uuid` box, JPEG comment, PNG text)
and videos can be padded with a `free` box of zeros generated on the fly, so a 200 MB asset never sits in memory.
"""

import colorsys
import functools
import hashlib
import io
import math
import os
import queue
import struct
import tempfile
import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from fractions import Fraction

ASPECT_RATIOS = {"16:9": (16, 9), "9:16": (9, 16), "1:1": (1, 1), "4:3": (4, 3), "3:4": (3, 4), "21:9": (21, 9),
                 "9:21": (9, 21)}
# Ray renders a resolution as the pixel area of its 16:9 frame (Luma prices video per pixel, luma-api.md section 7);
# other aspect ratios get about the same area, with even sides in the exact ratio.
RESOLUTION_AREAS = {"540p": 960 * 540, "720p": 1280 * 720, "1080p": 1920 * 1080, "4k": 3840 * 2160}
# Reframe's output canvas per aspect ratio (luma-api.md section 6); Photon images use the same sizes.
CANVAS_SIZES = {"1:1": (1536, 1536), "4:3": (1792, 1344), "3:4": (1344, 1792), "16:9": (2048, 1152),
                "9:16": (1152, 2048), "21:9": (2432, 1024), "9:21": (1024, 2432)}
PROGRESS_LONG_SIDE = 320  # the progress video is a small preview, like Luma's
CACHE_BYTES = 64 * 1024 * 1024
CHUNK = 256 * 1024
_ZEROS = bytes(CHUNK)
# Our own usertype for the MP4 `uuid` box that carries the generation id (random, fixed forever).
SIM_BOX_UUID = bytes.fromhex("6c756d61730e4d2a9b1f3c5d7e8f9a0b")

_cache: OrderedDict[tuple, bytes] = OrderedDict()
_cache_size = 0
_cache_lock = threading.Lock()
_rendering: dict[tuple, threading.Event] = {}  # keys being rendered now: a second asker waits for the first
_ahead: queue.Queue = queue.Queue(maxsize=1)  # at most one waiting: a burst of creates must not pile up work
_ahead_started = False


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


@dataclass(frozen=True)
class Look:
    """What a generation's media show: its id (colour), its kind's name (pattern, title) and a caption."""

    generation_id: str
    seq: int  # creation order: consecutive generations get far-apart hues (golden-ratio steps)
    title: str  # e.g. "Text to video", "Upscale to 4k"
    caption: str = ""  # the prompt's first words

    @property
    def hue(self) -> float:
        jitter = int(hashlib.sha256(self.generation_id.encode()).hexdigest()[:8], 16) / 2**32 * 0.02
        return (self.seq * 0.618034 + jitter) % 1.0

    @property
    def pattern(self):
        return next(draw for prefix, draw in _PATTERN_OF if self.title.startswith(prefix))


# -- sizes --------------------------------------------------------------------------------------------------------

def video_size(resolution: str, aspect_ratio: str) -> tuple[int, int]:
    """Width and height of a Ray video at this resolution and aspect ratio (720p 16:9 is 1280x720)."""
    a, b = ASPECT_RATIOS.get(aspect_ratio, ASPECT_RATIOS["16:9"])
    area = RESOLUTION_AREAS.get(resolution, RESOLUTION_AREAS["720p"])
    unit = 2 * max(1, round(math.sqrt(area / (a * b)) / 2))  # even, so both sides are even too
    return a * unit, b * unit


def canvas_size(aspect_ratio: str) -> tuple[int, int]:
    return CANVAS_SIZES.get(aspect_ratio, CANVAS_SIZES["16:9"])


def nearest_aspect_ratio(width: int, height: int) -> str:
    ratio = width / max(height, 1)
    return min(ASPECT_RATIOS, key=lambda name: abs(math.log(ratio * ASPECT_RATIOS[name][1] / ASPECT_RATIOS[name][0])))


def frames_per_second(width: int, height: int) -> int:
    """Few frames keep encoding cheap (the first costs as much as ten more): 3 a second up to 720p, 2 up to 1440p,
    1 above. Enough to see the block move; a 4K clip renders in about a quarter of a second."""
    area = width * height
    return 3 if area <= 1280 * 720 else 2 if area <= 2560 * 1440 else 1


def probe_video(data: bytes) -> tuple[int, int, float] | None:
    """Width, height and duration in seconds of a video file, or None when PyAV cannot read it."""
    import av

    try:
        with av.open(io.BytesIO(data)) as container:
            stream = container.streams.video[0]
            seconds = container.duration / 1_000_000 if container.duration else None
            if seconds is None and stream.duration is not None and stream.time_base:
                seconds = float(stream.duration * stream.time_base)
            if not (stream.width and stream.height and seconds):
                return None
            return stream.width, stream.height, seconds
    except Exception:  # noqa: BLE001 - whatever PyAV refuses is simply not a video we can measure
        return None


# -- drawing ------------------------------------------------------------------------------------------------------

def _rgb(hue: float, saturation: float, value: float) -> tuple[int, int, int]:
    return tuple(int(c * 255) for c in colorsys.hsv_to_rgb(hue % 1.0, saturation, value))


def _stripes(draw, width, height, step, fill, back):
    for x in range(0, width, 2 * step):
        draw.rectangle([x, 0, x + step - 1, height], fill=fill)


def _bands(draw, width, height, step, fill, back):
    for y in range(0, height, 2 * step):
        draw.rectangle([0, y, width, y + step - 1], fill=fill)


def _checks(draw, width, height, step, fill, back):
    for y in range(0, height, step):
        for x in range(((y // step) % 2) * step, width, 2 * step):
            draw.rectangle([x, y, x + step - 1, y + step - 1], fill=fill)


def _diagonals(draw, width, height, step, fill, back):
    for x in range(-height, width, 2 * step):
        draw.polygon([(x, height), (x + step, height), (x + step + height, 0), (x + height, 0)], fill=fill)


def _grid(draw, width, height, step, fill, back):
    line = max(2, step // 8)
    for x in range(step // 2, width, step):
        draw.rectangle([x, 0, x + line - 1, height], fill=fill)
    for y in range(step // 2, height, step):
        draw.rectangle([0, y, width, y + line - 1], fill=fill)


def _rings(draw, width, height, step, fill, back):
    cx, cy = width // 2, height // 2
    radius = int(math.hypot(cx, cy)) // step * step + step
    for r in range(radius, 0, -step):
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill if (r // step) % 2 else back)


def _dots(draw, width, height, step, fill, back):
    r = step // 3
    for y in range(step // 2, height + step, step):
        for x in range(step // 2, width + step, step):
            draw.ellipse([x - r, y - r, x + r, y + r], fill=fill)


def _frames(draw, width, height, step, fill, back):
    for i, inset in enumerate(range(0, min(width, height) // 2, step // 2)):
        draw.rectangle([inset, inset, width - 1 - inset, height - 1 - inset], fill=fill if i % 2 else back)


# One pattern per kind (by the start of its title), so kinds differ at a glance whatever their colour.
_PATTERN_OF = (("Text to video", _rings), ("Image to video", _diagonals), ("Extend", _stripes),
               ("Reverse extend", _stripes), ("Interpolate", _checks), ("Upscale", _grid), ("Add audio", _bands),
               ("Modify", _dots), ("Reframe", _frames), ("", _diagonals))


@functools.lru_cache(maxsize=16)
def _font(size: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)  # Pillow's own font: the same glyphs on every machine


def _background(width: int, height: int, look: Look, details: str):
    """The still part of every frame: colour, kind pattern and text. A Pillow RGB image."""
    from PIL import Image, ImageDraw

    dark, light = _rgb(look.hue, 0.6, 0.40), _rgb(look.hue, 0.5, 0.48)  # low contrast: few bits to encode
    image = Image.new("RGB", (width, height), dark)
    draw = ImageDraw.Draw(image)
    look.pattern(draw, width, height, max(8, min(width, height) // 5), light, dark)
    unit = min(width, height)
    pad = unit // 24
    texts = [look.title, *([look.caption] if look.caption else []), details]
    # Title at 1/11 of the short side, the rest at half that, shrunk until the widest line fits.
    widest = max(draw.textlength(text, font=_font(100)) / (100 if i == 0 else 200) for i, text in enumerate(texts))
    scale = min(1 / 11, (width - 3 * pad) / max(widest * unit, 1))
    big, small = max(8, int(unit * scale)), max(6, int(unit * scale / 2))
    lines = [(text, big if i == 0 else small) for i, text in enumerate(texts)]
    y = pad
    box_width = max(draw.textlength(text, font=_font(size)) for text, size in lines)
    box_height = sum(int(size * 1.3) for _text, size in lines)
    draw.rectangle([pad // 2, pad // 2, min(width - 1, pad * 1.5 + box_width), pad * 1.5 + box_height], fill=(0, 0, 0))
    for text, size in lines:
        draw.text((pad, y), text, font=_font(size), fill=(255, 255, 255))
        y += int(size * 1.3)
    return image


def _yuv(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """BT.601 limited range, as swscale converts rgb24 to yuv420p by default."""
    r, g, b = rgb
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    u = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    v = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    return round(y), round(u), round(v)


def caption_of(prompt: str | None, words: int = 6, limit: int = 48) -> str:
    text = " ".join((prompt or "").split()[:words])
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def _render_clip(width: int, height: int, seconds: float, look: Look, audio: bool) -> bytes:
    import av  # imported lazily: the server answers /ping before the first clip is ever needed
    import numpy as np

    width, height = max(2, width - width % 2), max(2, height - height % 2)  # yuv420p needs even sides
    fps = frames_per_second(width, height)
    frames = max(2, round(seconds * fps))
    rate = Fraction(frames) / Fraction(seconds).limit_denominator(1000)  # exactly `seconds` long, whatever fps
    details = f"{width}x{height} · {seconds:g} s · {look.generation_id[:8]}"
    base = av.VideoFrame.from_image(_background(width, height, look, details)).reformat(format="yuv420p")
    planes = [np.frombuffer(bytes(p), np.uint8).reshape(p.height, p.line_size) for p in base.planes]
    block = (max(4, min(width, height) // 5) // 2) * 2
    block_colour = _yuv(_rgb(look.hue + 0.5, 0.7, 1.0))
    top = (height - block) * 3 // 4 // 2 * 2
    bar = max(2, height // 60) // 2 * 2
    fd, path = tempfile.mkstemp(suffix=".mp4", prefix="lumasim-")
    os.close(fd)
    try:
        # +faststart rewrites the file in a second pass, which needs a real path rather than a BytesIO.
        with av.open(path, "w", format="mp4", options={"movflags": "+faststart"}) as out:
            stream = out.add_stream("libx264", rate=rate)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            # One thread: the simulator serves several downloads at once on a small machine.
            stream.options = {"preset": "ultrafast", "crf": "30", "threads": "1"}
            sound = _add_tone(out) if audio else None
            for i in range(frames):
                t = i / (frames - 1)
                left = int(t * (width - block)) // 2 * 2
                frame = av.VideoFrame(width, height, "yuv420p")
                for index, (plane, colour) in enumerate(zip(planes, block_colour, strict=True)):
                    shift = 0 if index == 0 else 1
                    data = plane.copy()
                    data[top >> shift:(top + block) >> shift, left >> shift:(left + block) >> shift] = colour
                    data[(height - bar) >> shift:height >> shift, :int(width * (i + 1) / frames) >> shift] = (
                        235 if index == 0 else 128)
                    frame.planes[index].update(data)
                frame.pts = i
                for packet in stream.encode(frame):
                    out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)
            if sound is not None:
                _write_tone(out, sound, seconds, look)
        with open(path, "rb") as handle:
            return handle.read()
    finally:
        os.unlink(path)


def _add_tone(out):
    stream = out.add_stream("aac", rate=24000)
    stream.layout = "mono"
    return stream


def _write_tone(out, stream, seconds: float, look: Look) -> None:
    """A soft tone whose pitch comes from the generation id, for add-audio results."""
    import av
    import numpy as np

    rate, size = 24000, 1024
    total = int(seconds * rate)
    pitch = 220 * 2 ** (look.hue * 2)
    wave = (0.2 * np.sin(2 * np.pi * pitch * np.arange(total) / rate)).astype(np.float32)
    for start in range(0, total, size):
        piece = wave[start:start + size]
        frame = av.AudioFrame.from_ndarray(piece[None, :], format="fltp", layout="mono")
        frame.sample_rate, frame.pts = rate, start
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)


def _render_still(width: int, height: int, look: Look, fmt: str) -> bytes:
    image = _background(width, height, look, f"{width}x{height} · {look.generation_id[:8]}")
    out = io.BytesIO()
    if fmt == "png":
        image.save(out, format="PNG", compress_level=1)  # large flat areas: level 1 is small enough and fast
    else:
        image.save(out, format="JPEG", quality=85)
    return out.getvalue()


def _cached(key: tuple, render) -> bytes:
    global _cache_size
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
        busy = _rendering.get(key)
        if busy is None:
            _rendering[key] = threading.Event()
    if busy is not None:  # someone renders it right now (often the render-ahead thread): wait for theirs
        busy.wait()
        with _cache_lock:
            if key in _cache:
                return _cache[key]
        return render()
    try:
        data = render()  # outside the lock: other assets are served meanwhile
        with _cache_lock:
            _cache[key] = data
            _cache_size += len(data)
            while _cache_size > CACHE_BYTES and len(_cache) > 1:
                _cache_size -= len(_cache.popitem(last=False)[1])
        return data
    finally:
        with _cache_lock:
            _rendering.pop(key).set()


def render_ahead(make_asset) -> None:
    """Call make_asset() on a background thread, so the file is cached before it is asked for (the engine asks
    when a generation starts dreaming). One at a time, and dropped when one is already waiting: the download then
    renders it, as it would without this."""
    global _ahead_started
    with _cache_lock:
        if not _ahead_started:
            _ahead_started = True
            threading.Thread(target=_render_ahead_loop, daemon=True, name="render-ahead").start()
    try:
        _ahead.put_nowait(make_asset)
    except queue.Full:
        pass


def _render_ahead_loop() -> None:
    while True:
        make_asset = _ahead.get()
        try:
            make_asset()
        except Exception:  # noqa: BLE001 - a download renders it again and reports what went wrong
            pass


# -- assets -------------------------------------------------------------------------------------------------------

def mp4_box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def free_box_header(total: int) -> bytes:
    """Header of a `free` box whose total size (header included) is `total`; 64-bit size past 4 GiB."""
    if total < 2**32:
        return struct.pack(">I", total) + b"free"
    return struct.pack(">I", 1) + b"free" + struct.pack(">Q", total)


def clip(width: int, height: int, seconds: float, look: Look, audio: bool = False) -> bytes:
    """The MP4 of this look at this size and length (cached)."""
    key = ("mp4", width, height, seconds, look, audio)
    return _cached(key, lambda: _render_clip(width, height, seconds, look, audio))


def video_asset(look: Look, label: str, width: int, height: int, seconds: float, min_bytes: int = 0,
                audio: bool = False) -> Asset:
    """An MP4 of this generation (label "video", or "progress" for the small preview), padded to min_bytes."""
    if label == "progress":
        scale = PROGRESS_LONG_SIDE / max(width, height)
        width, height = max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)
        audio = False
    head = clip(width, height, seconds, look, audio)
    head += mp4_box(b"uuid", SIM_BOX_UUID + f"lumasim {label} {look.generation_id}".encode())
    pad = min_bytes - len(head)
    if pad <= 0:
        return Asset(head, 0, "video/mp4")
    header_len = 8 if pad + 8 < 2**32 else 16
    pad = max(pad, header_len)
    return Asset(head + free_box_header(pad), pad - header_len, "video/mp4")


def image_asset(look: Look, width: int, height: int, fmt: str = "jpg") -> Asset:
    fmt = "png" if fmt == "png" else "jpg"
    base = _cached(("still", width, height, look, fmt), lambda: _render_still(width, height, look, fmt))
    tag = f"lumasim image {look.generation_id}".encode()
    if fmt == "png":
        # A tEXt chunk right after IHDR (8-byte signature + 25-byte IHDR chunk).
        data = b"Comment\x00" + tag
        chunk = struct.pack(">I", len(data)) + b"tEXt" + data + struct.pack(">I", zlib.crc32(b"tEXt" + data))
        return Asset(base[:33] + chunk + base[33:], 0, "image/png")
    comment = b"\xff\xfe" + struct.pack(">H", len(tag) + 2) + tag  # a JPEG COM segment right after SOI
    return Asset(base[:2] + comment + base[2:], 0, "image/jpeg")


def warm_up() -> None:
    """Load PyAV, x264 and the font once, so the first completed generation is served at once."""
    _render_clip(320, 180, 1.0, Look("00000000-warm-up", 0, "Warm up"), audio=False)
