"""Luma's official SDKs, pointed at the simulator, work unchanged: lumaai (Dream Machine v1) and luma-agents (the
Agents API under /agents), every method, every error class."""

import base64
import hashlib
import time

import luma_agents
import lumaai
import pytest
import requests

pytestmark = [pytest.mark.timeout(60), pytest.mark.no_db]

PROMPT = "A teddy bear in sunglasses playing electric guitar and dancing"


@pytest.fixture
def client(luma_sim):
    luma_sim.config(queued_seconds=60)  # nothing finishes unless a test says so
    return lumaai.LumaAI(auth_token=luma_sim.api_key, base_url=luma_sim.base_url, max_retries=0)


def finished(luma_sim, client, generation_id):
    luma_sim.finish(generation_id, "completed")
    return client.generations.get(generation_id)


def test_the_sdk_reads_lumas_base_url_and_key_from_the_environment(luma_sim, monkeypatch):
    monkeypatch.setenv("LUMAAI_BASE_URL", luma_sim.base_url)
    monkeypatch.setenv("LUMAAI_API_KEY", luma_sim.api_key)
    assert lumaai.LumaAI().ping.check().message == "pong"


def test_text_to_video_then_get_and_download(luma_sim, client):
    made = client.generations.create(model="ray-2", prompt=PROMPT, aspect_ratio="16:9", resolution="720p",
                                     duration="5s", concepts=[{"key": "dolly_zoom"}])
    assert made.state == "queued" and made.assets is None
    assert made.request.concepts[0].key == "dolly_zoom"

    done = finished(luma_sim, client, made.id)

    assert done.state == "completed" and done.created_at.tzinfo is not None
    data = requests.get(done.assets.video, timeout=10).content
    assert hashlib.sha256(data).hexdigest() == luma_sim.generation(made.id)["sha256"]


def test_image_to_video_extend_and_interpolate(luma_sim, client):
    start = client.generations.video.create(
        model="ray-flash-2", prompt=PROMPT, loop=True,
        keyframes={"frame0": {"type": "image", "url": "https://images.example.com/tiger.jpg"}})
    first = finished(luma_sim, client, start.id)
    extended = client.generations.create(model="ray-2", prompt=PROMPT,
                                         keyframes={"frame0": {"type": "generation", "id": first.id}})
    second = finished(luma_sim, client, extended.id)
    between = client.generations.create(model="ray-2", prompt=PROMPT, keyframes={
        "frame0": {"type": "generation", "id": first.id}, "frame1": {"type": "generation", "id": second.id}})

    assert start.request.keyframes.frame0.url == "https://images.example.com/tiger.jpg"
    assert extended.request.keyframes.frame0.id == first.id
    assert between.request.keyframes.frame1.id == second.id
    assert len({start.id, extended.id, between.id}) == 3


def test_list_and_delete(luma_sim, client):
    made = [client.generations.create(model="ray-2", prompt=f"{PROMPT} {i}") for i in range(3)]

    page = client.generations.list(limit=2, offset=0)
    client.generations.delete(made[0].id)

    assert [g.id for g in page.generations] == [made[2].id, made[1].id]
    assert (page.count, page.has_more, page.limit, page.offset) == (2, True, 2, 0)
    assert [g.id for g in client.generations.list().generations] == [made[2].id, made[1].id]
    with pytest.raises(lumaai.NotFoundError):
        client.generations.get(made[0].id)


def test_images_upscale_and_audio(luma_sim, client):
    image = client.generations.image.create(model="photon-1", prompt=PROMPT, aspect_ratio="1:1",
                                            image_ref=[{"url": "https://images.example.com/ref.jpg", "weight": 0.85}])
    video = finished(luma_sim, client, client.generations.create(model="ray-2", prompt=PROMPT).id)

    upscaled = client.generations.upscale(video.id, resolution="1080p")
    with_audio = client.generations.audio(video.id, prompt="a guitar riff", negative_prompt="silence")

    assert image.request.model == "photon-1"
    assert finished(luma_sim, client, image.id).assets.image.endswith("/image.jpg")
    assert upscaled.id != video.id and upscaled.request.resolution == "1080p"
    assert with_audio.request.prompt == "a guitar riff"
    assert finished(luma_sim, client, upscaled.id).assets.video


def test_modify_and_reframe(client):
    media = {"url": "https://videos.example.com/source.mp4"}
    modified = client.generations.video.modify(generation_type="modify_video", media=media, mode="reimagine_2",
                                               model="ray-2", prompt="make it snow")
    reframed = client.generations.video.reframe(generation_type="reframe_video", media=media, model="ray-2",
                                                aspect_ratio="9:16")
    picture = client.generations.image.reframe(generation_type="reframe_image", model="photon-1",
                                               media={"url": "https://images.example.com/a.jpg"}, aspect_ratio="4:3")
    assert modified.request.mode == "reimagine_2"
    assert reframed.request.aspect_ratio == "9:16"
    assert picture.generation_type == "image"


def test_concepts_credits_and_ping(client):
    assert "handheld" in client.generations.concepts.list()
    assert client.credits.get().credit_balance == 100000.0
    assert client.ping.check().message == "pong"


def test_a_bad_key_raises_authentication_error(luma_sim):
    luma_sim.config(api_keys=["luma-the-right-key"])
    stranger = lumaai.LumaAI(auth_token="luma-a-wrong-key", base_url=luma_sim.base_url, max_retries=0)
    with pytest.raises(lumaai.AuthenticationError) as raised:
        stranger.credits.get()
    assert raised.value.body == {"detail": "Invalid API key"}


def test_lumas_rules_raise_bad_request_and_schema_errors_raise_unprocessable_entity(client):
    with pytest.raises(lumaai.BadRequestError) as raised:
        client.generations.create(model="ray-2", prompt="hi")
    assert raised.value.body == {"detail": "Prompt is too short, minimum length is 3 characters"}
    with pytest.raises(lumaai.UnprocessableEntityError):
        client.generations.create(model="ray-1-6", prompt=PROMPT)


def test_the_sdk_retries_a_429_burst_after_retry_after(luma_sim):
    luma_sim.faults(burst_429=1)
    patient = lumaai.LumaAI(auth_token=luma_sim.api_key, base_url=luma_sim.base_url, max_retries=2)
    started = time.monotonic()
    assert patient.credits.get().credit_balance == 100000.0
    assert time.monotonic() - started >= 1.0  # it waited the Retry-After second
    assert luma_sim.stats()["requests"]["GET /credits"] == 2


JS_SCRIPT = r"""
const { LumaAI } = require('lumaai');
const [baseURL, authToken] = process.argv.slice(2);
(async () => {
  const client = new LumaAI({ authToken, baseURL, maxRetries: 0 });
  const out = {};
  out.ping = await client.ping.check();
  const made = await client.generations.create({ model: 'ray-2', prompt: 'A tiger walking in snow',
    keyframes: { frame0: { type: 'image', url: 'https://images.example.com/a.jpg' } } });
  out.created = made;
  out.got = await client.generations.get(made.id);
  out.list = await client.generations.list({ limit: 5 });
  out.image = await client.generations.image.create({ model: 'photon-flash-1', prompt: 'A red fox' });
  out.concepts = await client.generations.concepts.list();
  out.credits = await client.credits.get();
  out.deleted = await client.generations.delete(out.image.id);
  try { await client.generations.create({ model: 'ray-2', prompt: 'hi' }); }
  catch (e) { out.bad = { name: e.constructor.name, status: e.status, error: e.error }; }
  try { await new LumaAI({ authToken: 'luma-wrong', baseURL, maxRetries: 0 }).ping.check(); }
  catch (e) { out.auth = { name: e.constructor.name, status: e.status }; }
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });
"""


def test_the_javascript_sdk_works_too(luma_sim, tmp_path):
    """Luma's JavaScript SDK, installed into .venv/js by `./dev test`, against the simulator."""
    import json
    import shutil
    import subprocess

    from django.conf import settings

    modules = settings.BASE_DIR / ".venv" / "js" / "node_modules"
    if not shutil.which("node") or not (modules / "lumaai").is_dir():
        pytest.skip("node or the lumaai npm package is missing: `./dev test` installs it into .venv/js")
    (tmp_path / "node_modules").symlink_to(modules)
    luma_sim.config(queued_seconds=60, api_keys=[luma_sim.api_key])
    (tmp_path / "check.js").write_text(JS_SCRIPT)

    run = subprocess.run(["node", "check.js", luma_sim.base_url, luma_sim.api_key], check=False, cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)

    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["ping"] == {"message": "pong"}
    assert out["got"] == out["created"] and out["created"]["state"] == "queued"
    assert out["list"]["generations"][0]["id"] == out["created"]["id"]
    assert "dolly_zoom" in out["concepts"]
    assert out["credits"]["credit_balance"] == 100000.0 - 175.0 - 1.0  # a 5 s 720p Ray 2 clip and a Photon image
    assert out["bad"] == {"name": "BadRequestError", "status": 400,
                          "error": {"detail": "Prompt is too short, minimum length is 3 characters"}}
    assert out["auth"] == {"name": "AuthenticationError", "status": 401}
    assert [g["id"] for g in luma_sim.generations() if g["deleted"]] == [out["image"]["id"]]


# -- luma-agents 0.5.0 against the simulator's Agents API --------------------------------------------------------

AGENTS_KEY = "luma-api-sdk-compat"


def agents_sim(luma_sim, **changes) -> None:
    answer = requests.post(f"{luma_sim.root}/_sim/agents/config", json=changes, timeout=10)
    answer.raise_for_status()


def agents_finish(luma_sim, generation_id: str) -> None:
    answer = requests.post(f"{luma_sim.root}/_sim/agents/generations/{generation_id}/finish",
                           json={"state": "completed"}, timeout=30)
    answer.raise_for_status()


@pytest.fixture
def agents(luma_sim):
    """The official client, always with base_url (a bare Luma() would read LUMA_BASE_URL), never retrying."""
    agents_sim(luma_sim, queued_seconds=60)  # nothing finishes unless a test says so
    return luma_agents.Luma(auth_token=AGENTS_KEY, base_url=f"{luma_sim.root}/agents", max_retries=0)


def test_the_agents_sdk_makes_an_image_and_a_video_and_downloads_them(luma_sim, agents):
    image = agents.generations.create(prompt="A red fox in a birch forest", aspect_ratio="1:1", output_format="jpeg")
    video = agents.generations.create(prompt="A slow dolly shot", model="ray-3.2", type="video", aspect_ratio="16:9",
                                      video={"resolution": "540p", "duration": "5s"})
    for made in (image, video):
        agents_finish(luma_sim, made.id)
    done_image, done_video = agents.generations.get(image.id), agents.generations.get(video.id)
    described = requests.get(f"{luma_sim.root}/_sim/agents/generations/{video.id}", timeout=30).json()

    assert (image.state, image.model, image.type, image.output) == ("queued", "uni-1", "image", [])
    assert (done_image.state, done_video.state) == ("completed", "completed")
    assert requests.get(done_image.output[0].url, timeout=10).content[:3] == b"\xff\xd8\xff"
    data = requests.get(done_video.output[0].url, timeout=30).content
    assert done_video.output[0].type == "video" and data[4:8] == b"ftyp"
    assert hashlib.sha256(data).hexdigest() == described["outputs"][0]["sha256"]


def test_the_agents_sdk_polls_a_generation_to_completed(luma_sim):
    fast = luma_agents.Luma(auth_token=AGENTS_KEY, base_url=f"{luma_sim.root}/agents", max_retries=0)
    made = fast.generations.create(prompt="A fox", model="uni-1")
    deadline = time.monotonic() + 15
    while (seen := fast.generations.get(made.id)).state not in ("completed", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert seen.state == "completed" and seen.failure_code is None and seen.output[0].url


def test_the_agents_sdk_uploads_through_the_files_api(luma_sim, agents):
    png = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg==")
    agents_sim(luma_sim, queued_seconds=6)
    created = agents.files.create(mime_type="image/png", size_bytes=len(png), filename="fox.png", purpose="reference")
    put = requests.put(created.upload.url, data=png, headers=created.upload.headers, timeout=10)
    completed = agents.files.complete(created.id)
    deadline = time.monotonic() + 10
    while (got := agents.files.get(created.id)).state == "pending" and time.monotonic() < deadline:
        time.sleep(0.03)
    listed = agents.files.list(limit=10)
    made = agents.generations.create(prompt="In this style", image_ref=[{"file_id": created.id}])
    agents.files.delete(created.id)

    assert created.state == "pending" and created.upload.method == "PUT" and created.upload.expires_at.tzinfo
    assert put.status_code == 200 and completed.id == created.id
    assert (got.state, got.filename, got.purpose, got.size_bytes) == ("ready", "fox.png", "reference", len(png))
    assert [f.id for f in listed.data] == [created.id] and listed.has_more is False
    assert made.state == "queued"
    assert agents.files.get(created.id).state == "deleted"


def test_the_agents_sdk_gets_layering_outputs_with_their_layers(luma_sim, agents):
    made = agents.generations.create(prompt="Separate the fox", type="layering", layering={"resolution": "1k"},
                                     source={"url": "https://images.example.com/fox.jpg"})
    agents_finish(luma_sim, made.id)
    done = agents.generations.get(made.id)

    layers = [item.layer for item in done.output]
    assert len(layers) >= 2 and [layer.index for layer in layers] == list(range(len(layers)))
    assert layers[-1].alpha_hint == "none" and all(layer.label for layer in layers)
    assert all(requests.get(item.url, timeout=10).content[:4] == b"\x89PNG" for item in done.output)


def test_the_agents_sdk_raises_its_error_classes(luma_sim, agents):
    stranger = luma_agents.Luma(auth_token="not-a-luma-key", base_url=f"{luma_sim.root}/agents", max_retries=0)
    with pytest.raises(luma_agents.AuthenticationError) as unauthorized:
        stranger.generations.create(prompt="A fox")
    with pytest.raises(luma_agents.NotFoundError) as missing:
        agents.generations.get("d290f1ee-6c54-4b01-90e6-d701748f0851")
    with pytest.raises(luma_agents.BadRequestError) as bad:
        agents.generations.create(prompt="A fox", type="video")
    with pytest.raises(luma_agents.UnprocessableEntityError) as refused:
        agents.generations.create(prompt="A loop", model="ray-3.2", type="video", video={"loop": True, "hdr": True})

    assert unauthorized.value.body == {"detail": "Missing or invalid API key"}
    assert missing.value.body == {"detail": "Generation not found"}
    assert bad.value.body == {"detail": "Type 'video' is not supported for model 'uni-1'"}
    assert refused.value.status_code == 422


def test_the_agents_sdk_raises_rate_limit_error_with_the_429_headers(luma_sim, agents):
    agents_sim(luma_sim, requests_per_minute=1)
    agents.generations.create(prompt="A fox")
    with pytest.raises(luma_agents.RateLimitError) as limited:
        agents.generations.create(prompt="Another fox")
    agents_sim(luma_sim, requests_per_minute=30, concurrent_jobs=1)
    with pytest.raises(luma_agents.RateLimitError) as busy:
        agents.generations.create(prompt="A third fox")

    assert limited.value.body == {"detail": "Rate limit exceeded"}
    assert limited.value.response.headers["X-RateLimit-Remaining"] == "0"
    assert busy.value.body == {"detail": "Too many concurrent jobs"}
    assert busy.value.response.headers["Retry-After"] == "60"
