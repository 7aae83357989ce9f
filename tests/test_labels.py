"""Words and labels as a person reads them: a loop remix named as one on its page and in the library's Kind filter,
the Model filter's choices, and one date format across the site and the admin (issue 8)."""

import re

import pytest

from generations.models import Generation, Kind
from tests.test_views import HTMX, card_ids, finished, media, text  # noqa: F401 (media: the autouse fixture)

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
