"""Words and labels as a person reads them: a loop remix named as one on its page and in the library's Kind filter,
the Model filter's choices, and one date format across the site and the admin (issue 8)."""

import re
from datetime import UTC, datetime, timedelta

import pytest

from generations.models import Generation, GenerationEvent, Kind
from tests.test_views import HTMX, card_ids, finished, media, staff_client, text  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db


def options_of(response, select_id: str) -> list[str]:
    """The words of a select's options, in order."""
    html = response.content.decode()
    select = html[html.index(f'id="{select_id}"'):]
    return re.findall(r"<option[^>]*>([^<]*)</option>", select[:select.index("</select>")])


def kind_in_parameters(page: str) -> str:
    """What Parameters › Kind says on a detail page."""
    return page.split("Parameters", 1)[1].split(" Kind ", 1)[1].split(" Model ", 1)[0]


def test_a_loop_remix_is_called_one_in_its_parameters(alice_client, alice):
    source = finished(alice, "A paper boat")
    loop = finished(alice, "The boat, looping", kind=Kind.EXTEND, loop=True, source=source)
    extend = finished(alice, "The boat, further on", kind=Kind.EXTEND, source=source)
    page = text(alice_client.get(f"/generations/{loop.pk}/"))
    assert f"Loop remix #{loop.pk}" in page
    assert kind_in_parameters(page) == "Loop remix"
    assert kind_in_parameters(text(alice_client.get(f"/generations/{extend.pk}/"))) == "Extend"


def test_the_kind_filter_tells_loop_remixes_from_extends(alice_client, alice):
    source = finished(alice, "A paper boat")
    loop = finished(alice, "The boat, looping", kind=Kind.EXTEND, loop=True, source=source)
    extend = finished(alice, "The boat, further on", kind=Kind.EXTEND, source=source)
    kinds = options_of(alice_client.get("/"), "filter_kind")
    assert kinds[kinds.index("Extend") + 1] == "Loop remix"
    assert card_ids(alice_client.get("/library/", {"kind": "loop"}, headers=HTMX)) == [loop.pk]
    assert card_ids(alice_client.get("/library/", {"kind": "extend"}, headers=HTMX)) == [extend.pk]
    assert card_ids(alice_client.get("/library/", {"kind": "text_to_video"}, headers=HTMX)) == [source.pk]
    assert Generation.objects.count() == 3




def test_the_model_filter_offers_every_model_the_form_does_by_name(alice_client, alice):
    ray = finished(alice, "A paper boat")
    uni = finished(alice, "A paper crane", kind=Kind.IMAGE, model="uni-1-max", resolution="", duration="")
    models = options_of(alice_client.get("/"), "filter_model")
    assert models == ["Any model", "Ray 2", "Ray Flash 2", "Ray 3.2", "Photon 1", "Photon Flash 1", "Uni-1",
                      "Uni-1 Max"]
    assert card_ids(alice_client.get("/library/", {"model": "uni-1-max"}, headers=HTMX)) == [uni.pk]
    assert card_ids(alice_client.get("/library/", {"model": "ray-2"}, headers=HTMX)) == [ray.pk]

def test_the_admin_shows_dates_as_the_site_does_in_the_sites_time_zone(settings, staff_client, alice_client, alice):
    settings.TIME_ZONE = "Europe/Berlin"  # an hour ahead of UTC in December
    moment = datetime(2026, 12, 1, 19, 58, 32, tzinfo=UTC)
    row = finished(alice, "A fox", created_at=moment)
    Generation.objects.filter(pk=row.pk).update(submitted_at=moment, completed_at=moment + timedelta(seconds=22))
    GenerationEvent.objects.create(generation=row, source="admin", state="completed", summary="requested by admin",
                                   created_at=moment)
    local = "1 Dec 2026, 20:58:32"

    assert f"Requested {local}" in text(alice_client.get(f"/generations/{row.pk}/"))
    pages = {
        "the generation": f"/admin/generations/generation/{row.pk}/change/",
        "the generations": "/admin/generations/generation/",
        "the events": "/admin/generations/generationevent/",
    }
    for name, path in pages.items():
        response = staff_client.get(path)
        assert response.status_code == 200, name
        page = text(response)
        assert local in page, name
        assert "p.m." not in page and "a.m." not in page and not re.search(r"Dec\. \d", page), name
    page = text(staff_client.get(pages["the generation"]))
    assert f"{local} requested by admin" in page  # the event's title, beside its date in the same words
    assert "1 Dec 2026, 20:58:54" in page  # the page's own fields: completed_at
