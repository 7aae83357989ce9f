"""The simulator's media match what was asked: size, aspect ratio and length per kind, and each generation looks like
itself (its own colour, its kind's name), checked on the downloaded files with PyAV and Pillow."""

import hashlib
import io
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import av
import numpy as np
import pytest
import requests
from PIL import Image

pytestmark = [pytest.mark.timeout(60), pytest.mark.no_db]

PROMPT = "A red fox running through fresh snow at dawn"


def post(sim, path, body):
    answer = requests.post(f"{sim.base_url}{path}", json=body, headers=sim.headers, timeout=10)
    assert answer.status_code == 201, answer.text
    return answer.json()


def made(sim, path, body):
    """Create, let the simulator's own clock finish it (inputs are checked first), return the completed Generation."""
    return sim.wait_for_state(post(sim, path, body)["id"], "completed")


def video(sim, **body):
    return made(sim, "/generations/video", {"model": "ray-2", "prompt": PROMPT, **body})


def download(generation) -> bytes:
    url = generation["assets"]["video"] or generation["assets"]["image"]
    answer = requests.get(url, timeout=30)
    assert answer.status_code == 200
    return answer.content


def measure(data: bytes) -> tuple[int, int, float]:
    """Width, height and duration (seconds) as a player reads them from the container."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        return stream.width, stream.height, container.duration / 1_000_000


def first_frame(data: bytes) -> np.ndarray:
    with av.open(io.BytesIO(data)) as container:
        return next(container.decode(video=0)).to_ndarray(format="rgb24")


def frames(data: bytes) -> list[np.ndarray]:
    with av.open(io.BytesIO(data)) as container:
        return [frame.to_ndarray(format="gray") for frame in container.decode(video=0)]


@pytest.fixture
def sim(luma_sim):
    luma_sim.config(time_scale=0.01)  # about a quarter of a second per generation
    return luma_sim


def test_a_text_to_video_is_as_large_and_as_long_as_asked(sim):
    clip = download(video(sim, aspect_ratio="16:9", resolution="720p", duration="5s"))
    assert measure(clip) == (1280, 720, 5.0)


def test_a_portrait_540p_nine_second_video_is_portrait_and_nine_seconds_long(sim):
    clip = download(video(sim, aspect_ratio="9:16", resolution="540p", duration="9s"))
    assert measure(clip) == (540, 960, 9.0)


def test_a_video_moves(sim):
    pictures = frames(download(video(sim)))
    assert len(pictures) >= 10
    assert np.abs(pictures[0].astype(int) - pictures[-1].astype(int)).mean() > 1  # not one still picture


@pytest.mark.parametrize(("resolution", "size"), [("1080p", (1920, 1080)), ("4k", (3840, 2160))])
def test_an_upscale_is_the_larger_size_and_keeps_the_length(sim, resolution, size):
    source = video(sim, aspect_ratio="16:9", resolution="720p", duration="9s")
    upscaled = sim.wait_for_state(
        post(sim, f"/generations/{source['id']}/upscale", {"resolution": resolution})["id"], "completed")
    assert measure(download(upscaled)) == (*size, 9.0)


def test_a_reframed_video_has_the_target_aspect_ratio_and_the_sources_length(sim):
    source = video(sim, aspect_ratio="16:9", resolution="540p", duration="9s")
    body = {"generation_type": "reframe_video", "model": "ray-2", "aspect_ratio": "1:1",
            "media": {"url": source["assets"]["video"]}}
    width, height, seconds = measure(download(made(sim, "/generations/video/reframe", body)))
    assert (width, height, seconds) == (1536, 1536, 9.0)


def test_a_reframed_image_has_the_target_aspect_ratio(sim):
    source = made(sim, "/generations/image", {"model": "photon-1", "prompt": PROMPT, "aspect_ratio": "16:9"})
    body = {"generation_type": "reframe_image", "model": "photon-1", "aspect_ratio": "9:16",
            "media": {"url": source["assets"]["image"]}}
    assert Image.open(io.BytesIO(download(made(sim, "/generations/image/reframe", body)))).size == (1152, 2048)


def test_a_modified_video_keeps_its_library_sources_size_and_length(sim):
    source = video(sim, aspect_ratio="9:16", resolution="540p", duration="9s")
    body = {"generation_type": "modify_video", "model": "ray-2", "mode": "flex_1", "prompt": "as a watercolour",
            "media": {"url": source["assets"]["video"]}}
    assert measure(download(made(sim, "/generations/video/modify", body))) == (540, 960, 9.0)


def uploaded_clip(width: int, height: int, seconds: int, fps: int = 10) -> bytes:
    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(seconds * fps):
            picture = np.full((height, width, 3), (i * 7) % 255, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out.getvalue()


@pytest.fixture
def file_server():
    """Serves /upload.mp4 on 127.0.0.1, as the app serves an uploaded source video to Luma."""
    files = {"/upload.mp4": uploaded_clip(640, 480, 3)}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            data = files.get(self.path)
            if data is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_modified_upload_keeps_the_files_size_and_length_and_a_reframe_its_length(sim, file_server):
    body = {"generation_type": "modify_video", "model": "ray-flash-2", "mode": "adhere_1",
            "media": {"url": f"{file_server}/upload.mp4"}}
    done = made(sim, "/generations/video/modify", body)
    assert measure(download(done)) == (640, 480, 3.0)
    reframe = {"generation_type": "reframe_video", "model": "ray-2", "aspect_ratio": "9:16",
               "media": {"url": f"{file_server}/upload.mp4"}}
    reframed = made(sim, "/generations/video/reframe", reframe)
    assert measure(download(reframed)) == (1152, 2048, 3.0)


@pytest.mark.parametrize(("fmt", "kind"), [("jpg", "JPEG"), ("png", "PNG")])
def test_a_photon_image_has_the_asked_aspect_ratio(sim, fmt, kind):
    done = made(sim, "/generations/image", {"model": "photon-1", "prompt": PROMPT, "aspect_ratio": "3:4",
                                            "format": fmt})
    picture = Image.open(io.BytesIO(download(done)))
    assert (picture.format, picture.size) == (kind, (1344, 1792))


def test_an_added_audio_track_can_be_heard(sim):
    source = video(sim)
    done = sim.wait_for_state(post(sim, f"/generations/{source['id']}/audio", {"prompt": "rain"})["id"], "completed")
    clip = download(done)
    assert measure(clip) == (1280, 720, 5.0)
    with av.open(io.BytesIO(clip)) as container:
        assert [stream.type for stream in container.streams] == ["video", "audio"]


def test_generations_in_a_row_each_have_their_own_colour(sim):
    clips = [download(video(sim, resolution="540p")) for _ in range(7)]
    assert len({hashlib.sha256(clip).hexdigest() for clip in clips}) == 7
    means = [first_frame(clip).mean(axis=(0, 1)) for clip in clips]
    for i, one in enumerate(means):
        for two in means[i + 1:]:
            assert np.abs(one - two).max() > 5  # another colour, not just other bytes


def gray(picture: np.ndarray) -> np.ndarray:
    return picture.mean(axis=2).ravel()


def test_two_kinds_look_different_beyond_their_colour(sim):
    source = video(sim)
    upscaled = sim.wait_for_state(
        post(sim, f"/generations/{source['id']}/upscale", {"resolution": "720p"})["id"], "completed")
    one, two = first_frame(download(source)), first_frame(download(upscaled))
    assert one.shape == two.shape
    assert np.corrcoef(gray(one), gray(two))[0, 1] < 0.8  # another pattern, not the same shapes recoloured


def test_a_generation_downloads_the_same_bytes_every_time(sim):
    done = video(sim, resolution="1080p")
    assert download(done) == download(done)
