"""Output files of the Agents simulator, built on media.py: MP4s at Ray 3.2's sizes (HDR ones 10-bit with PQ/BT.2020
tags), 2K PNG/JPEG stills, layering's transparent PNG layers and a one-frame OpenEXR for exr_export.

Everything is deterministic per generation (same bytes after every render) and cached by media.py's cache.
"""

import colorsys
import io
import math
import os
import struct
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass

from . import media

# Ray 3.2 frames: the 16:9 frame's pixel area per resolution, other ratios about the same area (as media.py does).
VIDEO_AREAS = {"360p": 640 * 360, "540p": 960 * 540, "720p": 1280 * 720, "1080p": 1920 * 1080}
RATIOS = {"3:1": (3, 1), "2:1": (2, 1), "21:9": (21, 9), "16:9": (16, 9), "4:3": (4, 3), "3:2": (3, 2),
          "1:1": (1, 1), "3:4": (3, 4), "2:3": (2, 3), "9:16": (9, 16), "1:2": (1, 2), "1:3": (1, 3)}
IMAGE_LONG_SIDE = 2048  # uni-1 renders at 2K
LAYER_LONG_SIDE = {"1k": 1024, "2k": 2048}
# Layers front to back; the last is the opaque background (alpha_hint "none").
LAYERS = (("Subject", "The main subject, cut out with soft edges", "soft"),
          ("Props", "Solid objects beside the subject", "hard"),
          ("Background", "The scene behind everything, fully opaque", "none"))
# ACES AP0 primaries and white point (SMPTE ST 2065-1), written into the EXR header.
AP0 = (0.7347, 0.2653, 0.0, 1.0, 0.0001, -0.077, 0.32168, 0.33767)
CACHE_BYTES = 64 * 1024 * 1024

_cache: OrderedDict[tuple, bytes] = OrderedDict()
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class Output:
    """One item of a generation's `output`: its file name, API type, MIME type and layer info (layering only)."""

    name: str
    type: str
    content_type: str
    layer: dict | None = None


def video_size(resolution: str, aspect_ratio: str) -> tuple[int, int]:
    a, b = RATIOS.get(aspect_ratio, RATIOS["16:9"])
    unit = math.sqrt(VIDEO_AREAS.get(resolution, VIDEO_AREAS["720p"]) / (a * b))
    return max(2, round(a * unit / 2) * 2), max(2, round(b * unit / 2) * 2)


def image_size(aspect_ratio: str, long_side: int = IMAGE_LONG_SIDE) -> tuple[int, int]:
    a, b = RATIOS.get(aspect_ratio, RATIOS["16:9"])
    if a >= b:
        return long_side, max(2, round(long_side * b / a / 2) * 2)
    return max(2, round(long_side * a / b / 2) * 2), long_side


def nearest_ratio(width: int, height: int, choices) -> str:
    ratio = width / max(height, 1)
    return min(choices, key=lambda name: abs(math.log(ratio * RATIOS[name][1] / RATIOS[name][0])))


def outputs_for(kind: str, output_format: str, hdr: bool, exr: bool) -> list[Output]:
    if kind in ("video", "video_edit", "video_reframe"):
        items = [Output("output.mp4", "video", "video/mp4")]
        if exr:
            items.append(Output("output.exr", "exr", "image/x-exr"))
        return items
    if kind == "layering":
        return [Output(f"layer-{i}.png", "image", "image/png",
                       {"index": i, "label": label, "description": text, "alpha_hint": hint})
                for i, (label, text, hint) in enumerate(LAYERS)]
    if output_format == "jpeg":
        return [Output("output.jpg", "image", "image/jpeg")]
    return [Output("output.png", "image", "image/png")]


def render(look: media.Look, output: Output, width: int, height: int, seconds: float, hdr: bool) -> media.Asset:
    """The bytes of one output (video at width x height and seconds long; stills at width x height)."""
    if output.type == "video":
        if not hdr:
            return media.video_asset(look, "video", width, height, seconds)
        data = _cached(("hdr", width, height, seconds, look), lambda: _hdr(media.clip(width, height, seconds, look)))
        return media.Asset(data, 0, "video/mp4")
    if output.type == "exr":
        return media.Asset(_cached(("exr", width, height, look), lambda: _exr(look, width, height)), 0, "image/x-exr")
    if output.layer is not None:
        key = ("layer", width, height, look, output.layer["index"])
        return media.Asset(_cached(key, lambda: _layer(look, width, height, output.layer)), 0, "image/png")
    return media.image_asset(look, width, height, "jpg" if output.content_type == "image/jpeg" else "png")


def _cached(key: tuple, make) -> bytes:
    """Bounded cache of rendered files; two threads asking at once may both render (same bytes, rare)."""
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    data = make()
    with _cache_lock:
        _cache[key] = data
        while sum(len(v) for v in _cache.values()) > CACHE_BYTES and len(_cache) > 1:
            _cache.popitem(last=False)
    return data


def _hdr(sdr: bytes) -> bytes:
    """Re-encode an SDR clip as 10-bit H.264 tagged BT.2020 / PQ (what an HDR MP4 carries), keeping its frames."""
    import av

    fd, path = tempfile.mkstemp(suffix=".mp4", prefix="lumasim-hdr-")
    os.close(fd)
    try:
        with av.open(io.BytesIO(sdr)) as source, av.open(path, "w", format="mp4") as out:
            decoded = source.streams.video[0]
            stream = out.add_stream("libx264", rate=decoded.average_rate or 24)
            stream.width, stream.height, stream.pix_fmt = decoded.width, decoded.height, "yuv420p10le"
            stream.time_base = decoded.time_base  # keep every frame's timestamp: same length as the SDR clip
            stream.options = {"preset": "ultrafast", "crf": "30", "threads": "1",
                              "x264-params": "colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc"}
            for frame in source.decode(decoded):
                pts, time_base = frame.pts, frame.time_base
                frame = frame.reformat(format="yuv420p10le")
                frame.pts, frame.time_base = pts, time_base
                for packet in stream.encode(frame):
                    out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)
        with open(path, "rb") as handle:
            return handle.read()
    finally:
        os.unlink(path)


def _layer(look: media.Look, width: int, height: int, layer: dict) -> bytes:
    """A PNG layer: the background is the generation's own still, opaque; the others an RGBA shape on nothing."""
    from PIL import Image, ImageDraw

    index = layer["index"]
    if layer["alpha_hint"] == "none":
        picture = Image.open(io.BytesIO(media.image_asset(look, width, height, "png").head)).convert("RGBA")
    else:
        picture = Image.new("RGBA", (width, height), (0, 0, 0, 0))
        draw = ImageDraw.Draw(picture)
        colour = tuple(int(c * 255) for c in colorsys.hsv_to_rgb((look.hue + 0.33 * (index + 1)) % 1.0, 0.7, 0.95))
        box = [width * (0.15 + 0.4 * index), height * 0.25, width * (0.45 + 0.4 * index), height * 0.85]
        if layer["alpha_hint"] == "soft":
            draw.ellipse(box, fill=(*colour, 230))
        else:
            draw.rectangle(box, fill=(*colour, 255))
        draw.text((box[0] + 8, box[1] + 8), layer["label"], fill=(0, 0, 0, 255), font=_font(max(12, height // 20)))
    out = io.BytesIO()
    picture.save(out, format="PNG", compress_level=1)
    return out.getvalue()


def _attribute(name: str, kind: str, payload: bytes) -> bytes:
    return name.encode() + b"\0" + kind.encode() + b"\0" + struct.pack("<i", len(payload)) + payload


def _exr(look: media.Look, width: int, height: int) -> bytes:
    """A one-frame, uncompressed, half-float RGB OpenEXR (scanline) of the first frame's colours, ACES AP0 tagged."""
    import numpy as np

    from PIL import Image

    still = Image.open(io.BytesIO(media.image_asset(look, width, height, "png").head)).convert("RGB")
    linear = (np.asarray(still, dtype=np.float32) / 255.0) ** 2.2
    channels = b"".join(name + b"\0" + struct.pack("<iB3xii", 1, 0, 1, 1) for name in (b"B", b"G", b"R")) + b"\0"
    window = struct.pack("<iiii", 0, 0, width - 1, height - 1)
    header = b"".join([
        struct.pack("<ii", 20000630, 2),
        _attribute("channels", "chlist", channels),
        _attribute("chromaticities", "chromaticities", struct.pack("<8f", *AP0)),
        _attribute("compression", "compression", b"\0"),
        _attribute("dataWindow", "box2i", window),
        _attribute("displayWindow", "box2i", window),
        _attribute("lineOrder", "lineOrder", b"\0"),
        _attribute("pixelAspectRatio", "float", struct.pack("<f", 1.0)),
        _attribute("screenWindowCenter", "v2f", struct.pack("<ff", 0.0, 0.0)),
        _attribute("screenWindowWidth", "float", struct.pack("<f", 1.0)),
        b"\0",
    ])
    halves = linear.astype("<f2")  # (height, width, RGB)
    line_bytes = width * 3 * 2
    table_start = len(header)
    first = table_start + 8 * height
    offsets = struct.pack(f"<{height}Q", *(first + y * (8 + line_bytes) for y in range(height)))
    planar = np.ascontiguousarray(halves[:, :, ::-1].transpose(0, 2, 1))  # per line: all B, then G, then R
    lines = [struct.pack("<ii", y, line_bytes) + planar[y].tobytes() for y in range(height)]
    return header + offsets + b"".join(lines)


def _font(size: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)
