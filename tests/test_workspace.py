"""The team workspace as people use it: boards (private and shared, names, cards' Boards menu, a selection, the board
page scoped with filters and cost, the board the dashboard makes for), review marks and their filter, comments with
mentions, notifications (bell, list, mark read, e-mail, the browser's check) and what a viewer may do."""

import re

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.test import Client
from django.test.client import RequestFactory
from django.urls import reverse

from generations import boards, notify, tasks
from generations.models import Board, BoardItem, Comment, Generation, Kind, Notification, Profile, State

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}


@pytest.fixture(autouse=True)
def public_url(settings):
    settings.PUBLIC_BASE_URL = "https://team.example.com"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


@pytest.fixture
def bob_client(bob):
    other = Client()
    other.force_login(bob)
    return other


@pytest.fixture
def viewer(django_user_model):
    user = django_user_model.objects.create_user("vera", password="viewer-pass-42", email="vera@example.com")
    user.groups.set([Group.objects.get_or_create(name="Viewers")[0]])
    return user


@pytest.fixture
def viewer_client(viewer):
    other = Client()
    other.force_login(viewer)
    return other


def make(owner, prompt="A lighthouse at dusk", state=State.COMPLETED, **fields) -> Generation:
    fields = {"model": "ray-2", "resolution": "720p", "duration": "5s", "aspect_ratio": "16:9", **fields}
    row, _ = Generation.request(owner, kind=Kind.TEXT_TO_VIDEO, prompt=prompt, **fields)
    Generation.objects.filter(pk=row.pk).update(state=state)
    row.refresh_from_db()
    return row


def board(owner, name="Spring campaign", shared=True) -> Board:
    return Board.objects.create(owner=owner, name=name, shared=shared)


# --- boards ----------------------------------------------------------------------------------------------------------


def test_making_a_board_opens_it_and_lists_it(alice_client):
    response = alice_client.post(reverse("generations:boards"), {"name": "  Spring   campaign ", "shared": "on"})
    made = Board.objects.get()
    assert response.status_code == 302 and response["Location"] == made.get_absolute_url()
    assert made.name == "Spring campaign" and made.shared
    assert "Spring campaign" in alice_client.get(reverse("generations:boards")).content.decode()


def test_a_board_name_taken_whatever_its_case_or_empty_is_refused_in_words_and_makes_nothing(alice_client, alice):
    board(alice, "Spring campaign")
    taken = alice_client.post(reverse("generations:boards"), {"name": "SPRING campaign"})
    assert taken.status_code == 400
    assert "You already have a board called “SPRING campaign”" in taken.content.decode()
    empty = alice_client.post(reverse("generations:boards"), {"name": "   "})
    assert empty.status_code == 400 and "Give the board a name." in empty.content.decode()
    assert Board.objects.count() == 1


def test_another_person_may_use_the_same_board_name(bob_client, alice):
    board(alice, "Spring campaign")
    assert bob_client.post(reverse("generations:boards"), {"name": "Spring campaign"}).status_code == 302
    assert Board.objects.count() == 2


def test_a_private_board_is_seen_by_its_owner_alone_even_staff(client, alice, bob, staff):
    private = board(alice, "Secret", shared=False)
    make(alice).boards.add(private)
    for user, status in ((alice, 200), (bob, 404), (staff, 404)):
        client.force_login(user)
        assert client.get(private.get_absolute_url()).status_code == status
        assert ("Secret" in client.get(reverse("generations:boards")).content.decode()) == (status == 200)


def test_renaming_and_deleting_a_board_is_for_its_owner_and_staff(client, alice, bob, staff):
    shared = board(alice, "Spring campaign")
    row = make(alice)
    shared.generations.add(row)
    client.force_login(bob)
    assert client.post(reverse("generations:board_edit", args=[shared.pk]), {"name": "Mine now"}).status_code == 403
    assert client.post(reverse("generations:board_delete", args=[shared.pk])).status_code == 403
    client.force_login(staff)
    response = client.post(reverse("generations:board_edit", args=[shared.pk]), {"name": "Summer", "shared": "on"})
    assert response.status_code == 302
    shared.refresh_from_db()
    assert shared.name == "Summer"
    client.force_login(alice)
    page = client.get(reverse("generations:board_delete", args=[shared.pk]))
    assert "stays in the library" in page.content.decode() or "stay in the library" in page.content.decode()
    assert client.post(reverse("generations:board_delete", args=[shared.pk])).status_code == 302
    assert not Board.objects.exists() and Generation.objects.filter(pk=row.pk).exists()


def test_renaming_to_a_name_taken_says_so_and_keeps_the_old_name(alice_client, alice):
    board(alice, "Summer")
    spring = board(alice, "Spring")
    response = alice_client.post(reverse("generations:board_edit", args=[spring.pk]), {"name": "summer"})
    assert response.status_code == 400 and "You already have a board called “summer”" in response.content.decode()
    spring.refresh_from_db()
    assert spring.name == "Spring"


def test_a_cards_boards_menu_puts_it_on_and_takes_it_off_boards(alice_client, alice, bob):
    spring, summer, bobs_private = board(alice, "Spring"), board(alice, "Summer"), board(bob, "Bob's", shared=False)
    row = make(bob)
    url = reverse("generations:card_boards", args=[row.pk])
    menu = alice_client.get(url, headers=HTMX).content.decode()
    assert "Spring" in menu and "Summer" in menu and "Bob's" not in menu
    answer = alice_client.post(url, {"board": [spring.pk, bobs_private.pk]}, headers=HTMX).content.decode()
    assert "added to “Spring”" in answer
    assert list(row.boards.all()) == [spring]  # a board she cannot see is not hers to fill
    answer = alice_client.post(url, {"board": [summer.pk]}, headers=HTMX).content.decode()
    assert "added to “Summer”" in answer and "taken off “Spring”" in answer
    assert list(row.boards.all()) == [summer]
    # Without htmx: back where the person was, with the same words.
    plain = alice_client.post(url, {}, follow=True)
    assert "taken off “Summer”" in plain.content.decode() and not row.boards.exists()


def test_the_card_offers_its_boards_menu_a_selection_box_and_review_buttons(alice_client, alice):
    row = make(alice)
    page = alice_client.get(reverse("generations:dashboard")).content.decode()
    assert reverse("generations:card_boards", args=[row.pk]) in page
    assert f'name="ids" value="{row.pk}" form="selection"' in page
    assert f"Pick #{row.pk}" in page and f"Reject #{row.pk}" in page
    assert 'id="selection"' in page and "New generations go to" in page


def archived(owner, prompt="A lighthouse at dusk") -> Generation:
    """A finished video with its file kept, so its card offers the large player."""
    from django.core.files.base import ContentFile

    from generations.models import ArchiveState

    row = make(owner, prompt)
    row.archive_state = ArchiveState.DONE
    row.archive_file.save(f"v{row.pk}.mp4", ContentFile(b"\0\0\0\x18ftypmp42" + b"\0" * 64), save=False)
    row.save()
    return row


def test_the_large_player_finds_each_cards_boards_menu_but_the_page_carries_no_menu(alice_client, alice, bob,
                                                                                   settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    board(alice, "Spring")
    rows = [archived(alice, "A kite"), archived(bob, "A boat")]
    page = alice_client.get(reverse("generations:dashboard")).content.decode()
    for row in rows:
        url = reverse("generations:card_boards", args=[row.pk])
        assert f'data-pk="{row.pk}"' in page and f'data-boards="{url}"' in page
        # The menu itself is asked for when the player's Boards menu opens: no form per card on the first load.
        assert f'id="board-menu-{row.pk}"' not in page
    assert 'type="checkbox" name="board"' not in page


def boxes(menu: str) -> dict[int, bool]:
    """A Boards menu's boxes: board id -> ticked."""
    return {int(pk): " checked" in tag
            for tag, pk in re.findall(r'(<input type="checkbox" name="board" value="(\d+)"[^>]*>)', menu)}


def test_the_boards_menu_shows_a_viewer_the_boards_it_may_use_with_those_holding_the_generation_ticked(
        viewer_client, viewer, alice, bob):
    spring, summer = board(alice, "Spring"), board(bob, "Summer")
    own, others_private = board(viewer, "Vera picks", shared=False), board(bob, "Bob secret", shared=False)
    row = make(alice)
    boards.add(spring, [row], alice)
    boards.add(others_private, [row], bob)
    url = reverse("generations:card_boards", args=[row.pk])
    menu = viewer_client.get(url, headers=HTMX).content.decode()
    assert f"Boards<span class=\"sr\"> holding #{row.pk}</span>" in menu and "<html" not in menu
    assert boxes(menu) == {spring.pk: True, summer.pk: False, own.pk: False}
    assert "Bob secret" not in menu
    # Alice put it on her board: the viewer sees it ticked, but fixed.
    assert re.search(rf'value="{spring.pk}"[^>]* checked disabled>', menu) and "(added by someone else)" in menu
    # Ticking Summer and her own board (Spring unticked, as a disabled box is not sent): added to both, Spring and
    # Bob's private board stay as they were.
    answer = viewer_client.post(url, {"board": [own.pk, summer.pk]}, headers=HTMX).content.decode()
    assert f"#{row.pk} added to “Summer”, added to “Vera picks”." in answer
    assert boxes(answer) == {spring.pk: True, summer.pk: True, own.pk: True}
    assert set(row.boards.all()) == {spring, summer, own, others_private}
    # What she added herself she may take off again, from anyone's board.
    answer = viewer_client.post(url, {"board": [own.pk]}, headers=HTMX).content.decode()
    assert f"#{row.pk} taken off “Summer”." in answer
    assert set(row.boards.all()) == {spring, own, others_private}


def test_only_a_boards_owner_staff_or_whoever_added_it_takes_a_generation_off(client, alice, bob, staff):
    launch = board(alice, "Launch")
    mine, bobs, staffs = make(alice), make(bob), make(staff)
    boards.add(launch, [mine], alice)
    boards.add(launch, [bobs], bob)
    boards.add(launch, [staffs], staff)
    remove = reverse("generations:board_remove_selected", args=[launch.pk])
    everything = {"ids": [mine.pk, bobs.pk, staffs.pk]}

    client.force_login(bob)  # takes off what he added; what Alice and staff added stays
    page = client.post(remove, everything, follow=True).content.decode()
    assert "Took 1 off “Launch”; they are still in the library. 2 added by someone else stay" in page
    assert set(launch.generations.all()) == {mine, staffs}
    client.force_login(alice)  # her board: anything on it
    client.post(remove, {"ids": [staffs.pk]})
    assert set(launch.generations.all()) == {mine}
    boards.add(launch, [bobs, staffs], bob)
    client.force_login(staff)
    client.post(remove, everything)
    assert not launch.generations.exists() and Generation.objects.visible().count() == 3  # the library keeps them
    assert "Select at least one" in client.post(remove, {}, follow=True).content.decode()


def test_the_board_pages_selection_bar_offers_removal_and_the_librarys_does_not(alice_client, alice):
    launch = board(alice, "Launch")
    remove = reverse("generations:board_remove_selected", args=[launch.pk])
    assert f'formaction="{remove}"' in alice_client.get(launch.get_absolute_url()).content.decode()
    assert "Remove from this board" not in alice_client.get(reverse("generations:dashboard")).content.decode()


def test_the_large_players_copy_of_a_boards_menu_has_ids_of_its_own_and_keeps_them_after_a_change(
        alice_client, alice):
    spring = board(alice, "Spring")
    row = make(alice)
    url = reverse("generations:card_boards", args=[row.pk])
    card_menu = alice_client.get(url, headers=HTMX).content.decode()
    player_menu = alice_client.get(f"{url}?in=lightbox", headers=HTMX).content.decode()
    ids = lambda html: set(re.findall(r' id="([^"]+)"', html))
    assert ids(card_menu) == {f"board-menu-{row.pk}", f"board-menu-{row.pk}-{spring.pk}"}
    assert ids(player_menu) == {f"lightbox-board-menu-{row.pk}", f"lightbox-board-menu-{row.pk}-{spring.pk}"}
    assert f'hx-post="{url}?in=lightbox"' in player_menu  # its answer is the player's copy again
    answer = alice_client.post(f"{url}?in=lightbox", {"board": [spring.pk]}, headers=HTMX).content.decode()
    assert ids(answer) == ids(player_menu) and f"#{row.pk} added to “Spring”." in answer


def test_a_selection_goes_on_a_board_at_once_and_repeats_are_counted(alice_client, alice, bob):
    spring = board(bob, "Spring")
    rows = [make(alice, f"Take {n}") for n in range(3)]
    spring.generations.add(rows[0])
    response = alice_client.post(reverse("generations:board_add_selected"),
                                 {"ids": [r.pk for r in rows], "to_board": spring.pk}, follow=True)
    assert "Added 2 to “Spring” (1 already on it)." in response.content.decode()
    assert set(spring.generations.values_list("pk", flat=True)) == {r.pk for r in rows}


def test_a_selection_without_a_board_or_without_generations_says_what_is_missing(alice_client, alice):
    spring = board(alice, "Spring")
    row = make(alice)
    none = alice_client.post(reverse("generations:board_add_selected"), {"to_board": spring.pk}, follow=True)
    assert "Select at least one generation first" in none.content.decode()
    nowhere = alice_client.post(reverse("generations:board_add_selected"), {"ids": [row.pk]}, follow=True)
    assert "Choose a board" in nowhere.content.decode()
    assert not BoardItem.objects.exists()


def test_the_board_page_is_the_library_scoped_with_filters_search_and_cost(alice_client, alice, bob):
    spring = board(alice, "Spring")
    on = [make(alice, "A red kite over the sea"), make(bob, "A blue boat in the harbour"),
          make(bob, "A kite that failed", state=State.FAILED)]
    off = make(alice, "A red kite not on the board")
    spring.generations.add(*on)
    page = alice_client.get(spring.get_absolute_url()).content.decode()
    assert all(f'id="card-{row.pk}"' in page for row in on) and f'id="card-{off.pk}"' not in page
    # Two finished 720p 5 s Ray 2 clips at the published price; the failed one is refunded.
    from generations.pricing import estimate_cents

    each = estimate_cents(Kind.TEXT_TO_VIDEO, "ray-2", "720p", "5s")
    assert "?cost=1" in page  # the total follows in a request of its own
    cost = alice_client.get(spring.get_absolute_url(), {"cost": "1"}, headers=HTMX).content.decode()
    assert f"${2 * each / 100:,.2f}" in cost and "for 2 finished generations" in cost
    plain = alice_client.get(spring.get_absolute_url(), {"cost": "1"}).content.decode()
    assert f"${2 * each / 100:,.2f}" in plain and f'id="card-{on[0].pk}"' in plain
    kites = alice_client.get(spring.get_absolute_url(), {"q": "kite", "cost": "1"}, headers=HTMX).content.decode()
    assert f"${each / 100:,.2f}" in kites and "for 1 finished generation;" in kites
    found = alice_client.get(spring.get_absolute_url(), {"q": "kite"}, headers=HTMX).content.decode()
    assert f'id="card-{on[0].pk}"' in found and f'id="card-{on[2].pk}"' in found
    assert f'id="card-{on[1].pk}"' not in found and f'id="card-{off.pk}"' not in found
    failed = alice_client.get(spring.get_absolute_url(), {"state": "failed"}, headers=HTMX).content.decode()
    assert f'id="card-{on[2].pk}"' in failed and f'id="card-{on[0].pk}"' not in failed


def test_the_board_page_pages_through_more_than_a_page(alice_client, alice):
    from generations.views_library import PAGE_SIZE

    spring = board(alice, "Spring")
    rows = [make(alice, f"Take {n}") for n in range(PAGE_SIZE + 2)]
    spring.generations.add(*rows)
    first = alice_client.get(spring.get_absolute_url()).content.decode()
    assert first.count('class="card ') == PAGE_SIZE and "Older generations" in first
    more = alice_client.get(spring.get_absolute_url(), {"before": rows[2].pk}, headers=HTMX).content.decode()
    assert more.count('class="card ') == 2


def test_a_deleted_generation_leaves_the_board_page(alice_client, alice):
    spring = board(alice, "Spring")
    row = make(alice)
    spring.generations.add(row)
    row.mark_deleted(alice)
    assert f'id="card-{row.pk}"' not in alice_client.get(spring.get_absolute_url()).content.decode()


def test_the_dashboard_switched_to_a_board_lands_new_rows_on_it(alice_client, alice, bob):
    spring = board(alice, "Spring")
    response = alice_client.post(reverse("generations:board_use"), {"board": spring.pk}, follow=True)
    assert "What you make now lands on the board “Spring”." in response.content.decode()
    assert 'selected>the board “Spring”' in response.content.decode()
    request = RequestFactory().post("/create/")
    request.user, request.session = alice, alice_client.session
    row = make(alice)
    assert boards.land(row, request) == spring
    assert list(spring.generations.all()) == [row]
    assert boards.land(row, request) == spring and spring.items.count() == 1  # twice is harmless
    alice_client.post(reverse("generations:board_use"), {"board": ""})
    request.session = alice_client.session
    assert boards.land(make(alice), request) is None and spring.items.count() == 1


def test_land_forgets_a_board_made_private_by_someone_else(alice, bob):
    theirs = board(bob, "Bob's", shared=True)
    request = RequestFactory().post("/create/")
    request.user, request.session = alice, {boards.SESSION_KEY: theirs.pk}
    Board.objects.filter(pk=theirs.pk).update(shared=False)
    assert boards.land(make(alice), request) is None
    assert boards.SESSION_KEY not in request.session and not theirs.items.exists()


# --- review ----------------------------------------------------------------------------------------------------------


def test_picking_and_rejecting_records_who_and_when_and_a_second_press_clears(alice_client, alice, bob):
    row = make(bob)
    url = reverse("generations:review", args=[row.pk])
    answer = alice_client.post(url, {"mark": "picked"}, headers=HTMX).content.decode()
    assert "Picked" in answer and 'aria-pressed="true"' in answer
    row.refresh_from_db()
    assert (row.review_mark, row.reviewed_by) == ("picked", alice) and row.reviewed_at is not None
    detail = alice_client.get(row.get_absolute_url()).content.decode()
    assert "Picked by alice" in detail
    alice_client.post(url, {"mark": "rejected"})
    row.refresh_from_db()
    assert row.review_mark == "rejected"
    alice_client.post(url, {"mark": ""})
    row.refresh_from_db()
    assert (row.review_mark, row.reviewed_by, row.reviewed_at) == ("", None, None)
    assert alice_client.post(url, {"mark": "maybe"}).status_code == 400


def test_the_library_and_a_board_filter_by_review_mark(alice_client, alice):
    picked, rejected, plain = make(alice, "Picked one"), make(alice, "Rejected one"), make(alice, "Plain one")
    Generation.objects.filter(pk=picked.pk).update(review_mark="picked")
    Generation.objects.filter(pk=rejected.pk).update(review_mark="rejected")
    spring = board(alice, "Spring")
    spring.generations.add(picked, rejected, plain)
    for url in (reverse("generations:library"), spring.get_absolute_url()):
        for mark, expected in (("picked", picked), ("rejected", rejected), ("none", plain)):
            page = alice_client.get(url, {"review": mark}, headers=HTMX).content.decode()
            shown = {row.pk for row in (picked, rejected, plain) if f'id="card-{row.pk}"' in page}
            assert shown == {expected.pk}, (url, mark)


# --- comments and notifications --------------------------------------------------------------------------------------


def test_a_comment_with_mentions_is_stored_and_tells_the_owner_and_the_mentioned(alice_client, alice, bob,
                                                                                   django_user_model):
    django_user_model.objects.create_user("dora", password="x-pass-4242", is_active=False)
    row = make(bob)
    answer = alice_client.post(reverse("generations:comment", args=[row.pk]),
                               {"body": "Lovely light. @Bob, and @carl? @dora. @alice"}, headers=HTMX)
    assert answer.status_code == 200 and "Lovely light." in answer.content.decode()
    comment = Comment.objects.get()
    assert comment.author == alice and [u.username for u in comment.mentions.all()] == ["alice", "bob"]
    # Bob is the owner and mentioned: he hears once, as a mention; nobody hears about their own comment.
    assert list(Notification.objects.values_list("user__username", "what")) == [("bob", "mention")]
    page = alice_client.get(row.get_absolute_url()).content.decode()
    assert "Lovely light." in page and "Mentions: alice, bob" in page


def test_a_comment_on_someone_elses_generation_tells_its_owner(alice_client, bob):
    row = make(bob)
    alice_client.post(reverse("generations:comment", args=[row.pk]), {"body": "Try it at 1080p"})
    note = Notification.objects.get()
    assert (note.user, note.what, note.generation) == (bob, "comment", row)
    assert note.text.startswith(f"alice commented on #{row.pk}")


def test_a_comment_too_long_or_empty_says_so_and_changes_nothing(alice_client, bob):
    row = make(bob)
    url = reverse("generations:comment", args=[row.pk])
    long = alice_client.post(url, {"body": "@bob " + "x" * 2000})
    assert long.status_code == 400
    assert "A comment can be at most 2,000 characters (this one has 2005). Nothing was posted." in long.content.decode()
    assert "x" * 2000 in long.content.decode()  # what was typed is still there to shorten
    htmx = alice_client.post(url, {"body": "y" * 2001}, headers=HTMX)
    assert "at most 2,000 characters" in htmx.content.decode()
    empty = alice_client.post(url, {"body": "   "})
    assert "Write something first." in empty.content.decode()
    assert not Comment.objects.exists() and not Notification.objects.exists()


def test_a_generation_ending_tells_its_owner_once_per_outcome(alice):
    row = make(alice, "A paper boat", state=State.DREAMING)
    assert notify.generation_ended(row.pk) is None  # not ended: nothing to say
    Generation.objects.filter(pk=row.pk).update(state=State.FAILED)
    note = notify.generation_ended(row.pk)
    tasks.notify_ended(row.pk)
    notify.generation_ended(row.pk)
    assert note is not None and note.what == "failed" and note.text == f"#{row.pk} failed: A paper boat"
    assert Notification.objects.count() == 1
    # Luma's truth overturns a local failure: the finish is news too, once.
    Generation.objects.filter(pk=row.pk).update(state=State.COMPLETED)
    tasks.notify_ended(row.pk)
    tasks.notify_ended(row.pk)
    assert list(Notification.objects.order_by("pk").values_list("what", flat=True)) == ["failed", "finished"]


def test_the_ending_e_mail_goes_out_after_the_commit_to_who_opted_in_only(alice, bob, django_capture_on_commit_callbacks):
    alice.email, bob.email = "alice@example.com", "bob@example.com"
    alice.save(), bob.save()
    Profile.objects.create(user=alice, notify_email=True)
    mine, bobs = make(alice, "A paper boat"), make(bob, "A tin boat")
    with django_capture_on_commit_callbacks(execute=True):
        notify.generation_ended(mine.pk)
        notify.generation_ended(bobs.pk)
        notify.generation_ended(mine.pk)
    assert [m.to for m in mail.outbox] == [["alice@example.com"]]
    assert f"#{mine.pk} is done" in mail.outbox[0].subject
    assert f"https://team.example.com/generations/{mine.pk}/" in mail.outbox[0].body
    assert Notification.objects.filter(user=bob, what="finished").exists()


def test_a_mail_server_that_is_down_keeps_the_notice(alice, settings, django_capture_on_commit_callbacks):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 1
    alice.email = "alice@example.com"
    alice.save()
    Profile.objects.create(user=alice, notify_email=True)
    row = make(alice)
    with django_capture_on_commit_callbacks(execute=True):
        assert notify.generation_ended(row.pk) is not None
    assert Notification.objects.filter(user=alice, generation=row).exists()


def test_the_bell_counts_unread_and_the_list_marks_them_read(alice_client, alice, bob):
    rows = [make(alice, f"Take {n}") for n in range(3)]
    for row in rows:
        notify.generation_ended(row.pk)
    Notification.objects.create(user=bob, what="finished", text="not alice's")
    page = alice_client.get(reverse("generations:dashboard")).content.decode()
    assert '<span class="count">3</span><span class="sr"> unread notifications</span>' in page
    listing = alice_client.get(reverse("generations:notifications")).content.decode()
    assert all(f"#{row.pk} is done" in listing for row in rows) and "not alice's" not in listing
    one = Notification.objects.filter(user=alice).last()
    alice_client.post(reverse("generations:notifications_read"), {"id": one.pk})
    assert notify.unread(alice).count() == 2
    theirs = Notification.objects.get(user=bob)
    alice_client.post(reverse("generations:notifications_read"), {"id": theirs.pk})
    assert notify.unread(bob).count() == 1  # nobody marks another's
    alice_client.post(reverse("generations:notifications_read"))
    assert notify.unread(alice).count() == 0
    bell = alice_client.get(reverse("generations:bell"), headers=HTMX).content.decode()
    assert '<span class="count">0</span>' in bell


def test_the_browser_check_reports_what_is_new_after_the_last_seen(alice_client, alice):
    first = make(alice, "First")
    notify.generation_ended(first.pk)
    start = alice_client.get(reverse("generations:notifications_check")).json()
    assert start["unread"] == 1 and start["new"] == []
    second = make(alice, "Second")
    notify.generation_ended(second.pk)
    later = alice_client.get(reverse("generations:notifications_check"), {"after": start["latest"]}).json()
    assert later["unread"] == 2
    assert [n["text"] for n in later["new"]] == [f"#{second.pk} is done: Second"]
    assert later["new"][0]["url"] == second.get_absolute_url()


def test_notification_settings_are_per_person_and_the_bell_then_checks(alice_client, alice, bob):
    page = alice_client.get(reverse("generations:notification_settings")).content.decode()
    assert "no e-mail address" in page
    alice_client.post(reverse("generations:notification_settings"), {"notify_browser": "on", "notify_email": "on"})
    assert (Profile.of(alice).notify_browser, Profile.of(alice).notify_email) == (True, True)
    assert (Profile.of(bob).notify_browser, Profile.of(bob).notify_email) == (False, False)
    page = alice_client.get(reverse("generations:dashboard")).content.decode()
    assert f'data-check="{reverse("generations:notifications_check")}"' in page


def test_workspace_pages_need_a_login(client, alice):
    row = make(alice)
    spring = board(alice, "Spring")
    for url in (reverse("generations:boards"), spring.get_absolute_url(), reverse("generations:notifications"),
                reverse("generations:notification_settings"), reverse("generations:notifications_check"),
                reverse("generations:card_boards", args=[row.pk])):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], url
    assert client.post(reverse("generations:review", args=[row.pk]), {"mark": "picked"}).status_code == 302
    row.refresh_from_db()
    assert row.review_mark == ""


def test_a_viewer_may_comment_review_and_use_boards(viewer_client, viewer, alice):
    from generations.roles import can_make

    assert not can_make(viewer)
    row = make(alice)
    assert viewer_client.post(reverse("generations:comment", args=[row.pk]), {"body": "Nice"}).status_code == 302
    assert viewer_client.post(reverse("generations:review", args=[row.pk]), {"mark": "picked"}).status_code == 302
    assert viewer_client.post(reverse("generations:boards"), {"name": "Picks"}).status_code == 302
    picks = Board.objects.get(name="Picks")
    viewer_client.post(reverse("generations:card_boards", args=[row.pk]), {"board": [picks.pk]})
    row.refresh_from_db()
    assert row.review_mark == "picked" and list(row.boards.all()) == [picks] and Comment.objects.count() == 1


def test_the_owner_hears_when_luma_finishes_or_fails_a_generation(alice, luma_sim, luma_settings, jobs):
    from generations import tasks
    from generations.models import Generation, Kind, Notification

    done, _ = Generation.request(alice, kind=Kind.TEXT_TO_VIDEO, prompt="a kite", model="ray-2")
    failed, _ = Generation.request(alice, kind=Kind.TEXT_TO_VIDEO, prompt="a storm", model="ray-2")
    jobs.run()
    done.refresh_from_db()
    failed.refresh_from_db()
    luma_sim.finish(done.luma_id)
    luma_sim.finish(failed.luma_id, "failed", "Job failed")
    tasks.refresh(done.pk)
    tasks.refresh(failed.pk)
    jobs.run()

    heard = dict(Notification.objects.filter(user=alice).values_list("generation_id", "what"))
    assert heard == {done.pk: "finished", failed.pk: "failed"}
