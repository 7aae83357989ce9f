"""Luma's official Python SDK (lumaai), pointed at the simulator, works unchanged: every method, every error class."""

import hashlib
import time

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
    assert out["credits"]["credit_balance"] == 100000.0 - 80.0 - 0.5
    assert out["bad"] == {"name": "BadRequestError", "status": 400,
                          "error": {"detail": "Prompt is too short, minimum length is 3 characters"}}
    assert out["auth"] == {"name": "AuthenticationError", "status": 401}
    assert [g["id"] for g in luma_sim.generations() if g["deleted"]] == [out["image"]["id"]]
