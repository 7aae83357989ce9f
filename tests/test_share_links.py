"""Share links to boards and who manages links (issue 10, audit items 5, 6 and 9): the board page offers a link to
those who may share the board; a private board is its owner's alone, so staff cannot publish it and a link to a
board made private stops at once; /shares/ lists staff every live link of the team and owners the links others
made to their things, and those may revoke them."""

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


@pytest.fixture
def dave(django_user_model):
    return django_user_model.objects.create_user("dave", password="diver-4242")


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

    # Made private where the app does not revoke its links (the admin): the link stops when next opened.
    Board.objects.filter(pk=board.pk).update(shared=False)
    gone = anonymous.get(f"/s/{link.token}/")
    assert gone.status_code == 410
    assert "This board is no longer shared" in text(gone) and "A comet over the harbour" not in text(gone)
    assert gone["Cache-Control"] == "private, no-store"
    assert not re.search(r'href="/(?!static/)', gone.content.decode())  # the share's own page, not the site's
    assert anonymous.get(f"/s/{link.token}/media/{video.pk}/", HTTP_RANGE="bytes=0-9").status_code == 404
    assert anonymous.get(f"/s/{link.token}/poster/{video.pk}/").status_code == 404
    link.refresh_from_db()
    assert link.views == 1  # the refused visit is not a view

    # Its owner and maker still see it among their links, marked as not working, and may revoke it for good.
    listing = owner.get("/shares/")
    assert re.search(rf'id="share-{link.pk}".*?Not working: the board is private now\.', listing.content.decode(),
                     re.S)

    # Made private on the board's page: its links end for good, and sharing it again does not bring them back.
    Board.objects.filter(pk=board.pk).update(shared=True)
    assert anonymous.get(f"/s/{link.token}/").status_code == 200
    made_private = owner.post(f"/boards/{board.pk}/edit/", {"name": "Launch"}, follow=True)  # "Shared" unticked
    assert "Its 1 share link stopped working." in text(made_private) and not Board.objects.get(pk=board.pk).shared
    owner.post(f"/boards/{board.pk}/edit/", {"name": "Launch", "shared": "on"})
    assert Board.objects.get(pk=board.pk).shared and anonymous.get(f"/s/{link.token}/").status_code == 410

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


def test_staff_see_every_live_link_of_the_team_with_its_maker_and_may_revoke_it(alice, bob, staff, anonymous):
    video = archived(alice, "A heron at first light")
    bobs = make_link(video, by=bob)
    board = Board.objects.create(name="Team reel", owner=bob, shared=True)
    board_link = make_link(board=board, by=bob)
    private = Board.objects.create(name="Bob's secret", owner=bob, shared=False)
    make_link(board=private, by=bob)  # made while it was shared; not working now, and not staff's to see
    expired = make_link(video, by=bob, days=-1)
    revoked = make_link(video, by=bob)
    ShareLink.objects.filter(pk=revoked.pk).update(revoked_at=expired.expires_at)

    admin = logged_in(staff)
    listing = admin.get("/shares/")
    html = listing.content.decode()
    assert "The team's other links" in text(listing)
    assert re.search(rf'id="share-{bobs.pk}".*?#{video.pk}.*?A heron at first light.*?<td>bob</td>', html, re.S)
    assert re.search(rf'id="share-{board_link.pk}".*?Board: Team reel.*?<td>bob</td>', html, re.S)
    assert f"/s/{bobs.token}/" in html
    for hidden in (expired, revoked):
        assert f'id="share-{hidden.pk}"' not in html
    assert "Bob's secret" not in text(listing)

    answer = admin.post(f"/shares/{bobs.pk}/revoke/", follow=True)
    assert "Link revoked: it stopped working now." in text(answer)
    assert f'id="share-{bobs.pk}"' not in answer.content.decode()
    assert anonymous.get(f"/s/{bobs.token}/").status_code == 410

    # Someone who is not staff sees only their own links there.
    assert "Team reel" not in text(logged_in(alice).get("/shares/"))


def test_the_owner_of_a_generation_or_board_sees_and_may_revoke_links_others_made_to_it(alice, bob, dave, staff,
                                                                                        anonymous):
    video = archived(alice, "A lantern on the lake")
    by_bob = make_link(video, by=bob)
    board = Board.objects.create(name="Alice's reel", owner=alice, shared=True)
    by_staff = make_link(board=board, by=staff)
    unrelated = make_link(archived(dave, "Dave's own"), by=bob)

    owner = logged_in(alice)
    listing = owner.get("/shares/")
    html = listing.content.decode()
    assert "Links to your generations and boards" in text(listing)
    assert re.search(rf'id="share-{by_bob.pk}".*?A lantern on the lake.*?<td>bob</td>', html, re.S)
    assert re.search(rf'id="share-{by_staff.pk}".*?Board: Alice&#x27;s reel.*?<td>carol</td>', html, re.S)
    assert f'id="share-{unrelated.pk}"' not in html and "Dave&#x27;s own" not in html

    # Someone who neither made the link nor owns what it shares may not revoke it.
    assert logged_in(dave).post(f"/shares/{by_bob.pk}/revoke/").status_code == 403
    assert anonymous.get(f"/s/{by_bob.token}/").status_code == 200

    for link in (by_bob, by_staff):
        answer = owner.post(f"/shares/{link.pk}/revoke/", follow=True)
        assert answer.status_code == 200 and "Link revoked: it stopped working now." in text(answer)
        gone = anonymous.get(f"/s/{link.token}/")
        assert gone.status_code == 410 and "This link was revoked" in text(gone)
    assert "Links to your generations and boards" not in text(owner.get("/shares/"))
    unrelated.refresh_from_db()
    assert unrelated.revoked_at is None

    # The maker still may, too.
    assert logged_in(bob).post(f"/shares/{unrelated.pk}/revoke/").status_code == 302
