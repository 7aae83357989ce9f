"""What the site says about Agents API rows (Ray 3.2, Uni-1) where that API differs from Dream Machine: no delete, and
prices that depend on options (HDR, EXR export, references)."""

import pytest
from django.utils import timezone

from generations import pricing
from generations.models import Generation, Kind, Provider, State

pytestmark = pytest.mark.django_db


def finished(owner, provider, model, **fields) -> Generation:
    return Generation.objects.create(owner=owner, prompt="A greenhouse at dawn", kind=Kind.TEXT_TO_VIDEO, model=model,
                                     provider=provider, state=State.COMPLETED, luma_id=f"{provider}-{model}",
                                     completed_at=timezone.now(), resolution="720p", duration="5s", **fields)


def test_deleting_an_agents_row_says_luma_keeps_its_copy_and_a_dream_machine_row_says_luma_deletes_it(
        alice_client, alice):
    ray = finished(alice, Provider.AGENTS, "ray-3.2")
    dream = finished(alice, Provider.DREAM_MACHINE, "ray-2")

    asked = alice_client.get(f"/generations/{ray.pk}/delete/").content.decode()
    assert "Luma keeps its own copy" in asked and "It is deleted on Luma too" not in asked
    done = alice_client.post(f"/generations/{ray.pk}/delete/", follow=True).content.decode()
    assert "Luma keeps its own (its Agents API has no delete)" in done and "removed from Luma too" not in done

    asked = alice_client.get(f"/generations/{dream.pk}/delete/").content.decode()
    assert "It is deleted on Luma too" in asked and "Luma keeps its own copy" not in asked
    done = alice_client.post(f"/generations/{dream.pk}/delete/", follow=True).content.decode()
    assert "It is being removed from Luma too." in done


def test_a_generations_page_shows_the_price_with_hdr_and_exr(alice_client, alice):
    options = {"hdr": True, "exr_export": True}
    row = finished(alice, Provider.AGENTS, "ray-3.2", options=options)
    price = pricing.estimate_cents(Kind.TEXT_TO_VIDEO, "ray-3.2", "720p", "5s", options)
    plain = pricing.estimate_cents(Kind.TEXT_TO_VIDEO, "ray-3.2", "720p", "5s")
    assert price > plain
    page = alice_client.get(row.get_absolute_url()).content.decode()
    assert f"${price / 100:.2f}" in page


def test_a_ray_32_clip_offers_no_upscale_or_audio_and_those_pages_say_why(alice_client, alice, luma_sim, jobs):
    """Upscale and add audio exist on Dream Machine only: a Ray 3.2 card must not offer them, and their pages refuse
    in words without asking Luma anything."""
    ray = finished(alice, Provider.AGENTS, "ray-3.2")
    dream = finished(alice, Provider.DREAM_MACHINE, "ray-2")
    library = alice_client.get("/").content.decode()
    card = library[library.index(f'id="card-{ray.pk}"'):library.index(f'id="card-{dream.pk}"')]
    assert f"/generations/{ray.pk}/upscale/" not in card and f"/generations/{ray.pk}/audio/" not in card
    assert f"/generations/{dream.pk}/upscale/" in library

    for action in ("upscale", "audio"):
        page = alice_client.post(f"/generations/{ray.pk}/{action}/", {"resolution": "1080p"})
        assert page.status_code == 400
        assert "through Luma's Agents API, which cannot" in page.content.decode()
    jobs.run()
    assert Generation.objects.count() == 2 and luma_sim.creates()["count"] == 0


@pytest.mark.parametrize("dream_machine_key", ["", "dm-key"])
def test_the_sweep_reads_dream_machines_lists_only_when_it_has_a_key(settings, jobs, dream_machine_key):
    """With the Agents API alone there are no camera motions or concepts to read: no job that can only fail."""
    from generations import tasks

    settings.LUMAAI_API_KEY = dream_machine_key
    settings.LUMA_AGENTS_API_KEY = "agents-key"
    settings.LUMA_AGENTS_BASE_URL = "http://127.0.0.1:9/agents"  # a closed port: the sweep's reads fail quietly
    settings.LUMA_BASE_URL = "http://127.0.0.1:9/dream-machine/v1"
    tasks.sweep()
    assert ("refresh_catalog" in jobs.names()) == bool(dream_machine_key)
