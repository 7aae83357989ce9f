"""Share links to boards (issue 10, audit items 5 and 6): the board page offers a link to those who may share the
board; a private board is its owner's alone, so staff cannot publish it and a link to a board made private stops at
once."""

import re

import pytest
from django.test import Client

from generations.models import Board, BoardItem, ShareLink
from tests.test_share_export import anonymous, archived, bob_client, make_link, media, text  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_board_page_offers_a_share_link_to_its_owner_and_staff_only(alice, bob_client, staff):
    board = Board.objects.create(name="Pitch", owner=alice, shared=True)
    share = f'href="/boards/{board.pk}/share/"'
    for who in (logged_in(alice), logged_in(staff)):
        page = who.get(f"/boards/{board.pk}/")
        assert page.status_code == 200
        assert re.search(rf'<a [^>]*{share}[^>]*>Share link…</a>', page.content.decode())
    seen_by_bob = bob_client.get(f"/boards/{board.pk}/")
    assert seen_by_bob.status_code == 200 and "Pitch" in text(seen_by_bob)
    assert share not in seen_by_bob.content.decode() and "Share link…" not in text(seen_by_bob)

    # The entry leads to the share form the generation uses, with its own words, back to the board on Cancel.
    form = logged_in(alice).get(f"/boards/{board.pk}/share/")
    assert "Share the board “Pitch”" in text(form) and "Make the link" in text(form)
    assert re.search(r'value="7" checked', form.content.decode())
    assert f'class="button secondary" href="/boards/{board.pk}/">Cancel' in form.content.decode()

    # A private board offers no link (it would not work), and says how to share it.
    Board.objects.filter(pk=board.pk).update(shared=False)
    private = logged_in(alice).get(f"/boards/{board.pk}/")
    assert share not in private.content.decode()
    assert "A private board cannot be shared by link: share it with the team first." in text(private)


def test_staff_cannot_share_a_private_board_they_cannot_see(alice, staff):
    secret = Board.objects.create(name="Secret", owner=alice, shared=False)
    BoardItem.objects.create(board=secret, generation=archived(alice, "Not for anyone else"), added_by=alice)
    admin = logged_in(staff)
    assert admin.get(f"/boards/{secret.pk}/").status_code == 404
    assert admin.get(f"/boards/{secret.pk}/share/").status_code == 404
    assert admin.post(f"/boards/{secret.pk}/share/", {"days": "7"}).status_code == 404
    assert not ShareLink.objects.exists()

    # Its owner is told why there is no link for a private board, and none is made either.
    answer = logged_in(alice).post(f"/boards/{secret.pk}/share/", {"days": "7"}, follow=True)
    assert answer.redirect_chain[-1][0] == f"/boards/{secret.pk}/"
    assert "“Secret” is private, so a share link to it would not work. Share it with the team first" in text(answer)
    assert not ShareLink.objects.exists()

    # Staff still share a board the team sees, as its owner does.
    secret.shared = True
    secret.save()
    assert admin.post(f"/boards/{secret.pk}/share/", {"days": "7"}).status_code == 302
    assert ShareLink.objects.get().created_by == staff


def test_a_board_link_stops_at_once_when_the_board_is_made_private_or_deleted(alice, anonymous):
    board = Board.objects.create(name="Launch", owner=alice, shared=True)
    video = archived(alice, "A comet over the harbour")
    BoardItem.objects.create(board=board, generation=video, added_by=alice)
    link = make_link(board=board, by=alice)
    owner = logged_in(alice)
    assert "A comet over the harbour" in text(anonymous.get(f"/s/{link.token}/"))

    made_private = owner.post(f"/boards/{board.pk}/edit/", {"name": "Launch"})  # "Shared with the team" unticked
    assert made_private.status_code == 302 and not Board.objects.get(pk=board.pk).shared
    gone = anonymous.get(f"/s/{link.token}/")
    assert gone.status_code == 410
    assert "This board is no longer shared" in text(gone) and "A comet over the harbour" not in text(gone)
    assert gone["Cache-Control"] == "private, no-store"
    assert not re.search(r'href="/(?!static/)', gone.content.decode())  # the share's own page, not the site's
    assert anonymous.get(f"/s/{link.token}/media/{video.pk}/", HTTP_RANGE="bytes=0-9").status_code == 404
    assert anonymous.get(f"/s/{link.token}/poster/{video.pk}/").status_code == 404
    link.refresh_from_db()
    assert link.views == 1  # the refused visit is not a view

    # Deleted: the link goes with the board, and its address answers the share's own "gone" page.
    other = Board.objects.create(name="Teaser", owner=alice, shared=True)
    BoardItem.objects.create(board=other, generation=video, added_by=alice)
    other_link = make_link(board=other, by=alice)
    assert anonymous.get(f"/s/{other_link.token}/").status_code == 200
    assert owner.post(f"/boards/{other.pk}/delete/").status_code == 302
    deleted = anonymous.get(f"/s/{other_link.token}/")
    assert deleted.status_code == 404 and "This link does not exist" in text(deleted)
    assert not re.search(r'href="/(?!static/)', deleted.content.decode())
    assert anonymous.get(f"/s/{other_link.token}/media/{video.pk}/").status_code == 404
