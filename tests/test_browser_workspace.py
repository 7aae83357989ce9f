"""Browser tests for the team workspace: a board made, filled from a card's Boards menu, from a selection and from the
large player's Boards menu, and its scoped page; a comment with a mention that the mentioned person hears of; pick and
reject and the Review filter. Debian's Chromium drives the live server, as in test_browser.py (finished rows are made
directly, with no Luma, except for the large player, which plays videos the simulator made)."""

import pytest
from playwright.sync_api import Page, expect

from generations.models import Board, BoardItem, Generation, Kind, State
from tests.test_browser import ALICE, BOB, log_in, ready, request_generation, settled, shot

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


# Every id given to more than one element of the page.
DUPLICATE_IDS = """() => {
  const ids = Array.from(document.querySelectorAll("[id]"), (el) => el.id);
  return ids.filter((id, at) => ids.indexOf(id) !== at);
}"""


def finished(owner, prompt: str) -> Generation:
    row, _ = Generation.request(owner, kind=Kind.TEXT_TO_VIDEO, prompt=prompt, model="ray-2", resolution="720p",
                                duration="5s", aspect_ratio="16:9")
    Generation.objects.filter(pk=row.pk).update(state=State.COMPLETED)
    return row


def open_boards_menu(page: Page, pk: int):
    card = page.locator(f"#card-{pk}")
    card.locator("summary").click()
    card.get_by_role("link", name="Boards…").click()
    return card.get_by_role("group", name=f"Boards holding #{pk}")


def test_a_board_is_made_filled_from_a_card_and_a_selection_and_shows_only_its_own(page, live_server,
                                                                                     transactional_db, alice):
    kite, boat, tree = finished(alice, "A red kite"), finished(alice, "A blue boat"), finished(alice, "A green tree")
    log_in(page, live_server.url, ALICE)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Boards").click()
    page.get_by_label("Board name").fill("Spring campaign")
    page.get_by_role("button", name="Make the board").click()
    expect(page.get_by_role("heading", name="Spring campaign")).to_be_visible()
    expect(page.get_by_text("Nothing on this board yet.")).to_be_visible()
    # The same name again, in other letters, is refused in words.
    page.goto(f"{live_server.url}/boards/")
    page.get_by_label("Board name").fill("SPRING CAMPAIGN")
    page.get_by_role("button", name="Make the board").click()
    expect(page.get_by_text("You already have a board called “SPRING CAMPAIGN”")).to_be_visible()

    # From a card's Actions: tick the board.
    page.goto(f"{live_server.url}/")
    ready(page)
    boards = open_boards_menu(page, kite.pk)
    boards.get_by_label("Spring campaign").check()
    expect(page.locator(f"#card-{kite.pk} .board-note")).to_have_text(f"#{kite.pk} added to “Spring campaign”.")
    # The answer replaced the menu: the keyboard focus is still on the box just ticked.
    expect(boards.get_by_label("Spring campaign")).to_be_focused()

    # From a selection: two boxes, then Add to board.
    bar = page.locator("#selection")
    expect(bar).to_be_hidden()
    page.get_by_label(f"Select #{boat.pk}").check()
    page.get_by_label(f"Select #{kite.pk}").check()
    expect(bar.get_by_role("status")).to_have_text("2 selected")
    bar.get_by_label("Board").select_option(label="Spring campaign")
    bar.get_by_role("button", name="Add to board").click()
    expect(page.get_by_text("Added 1 to “Spring campaign” (1 already on it).")).to_be_visible()

    # The board's page: its cards only, with the library's filters.
    page.goto(f"{live_server.url}/boards/")
    page.get_by_role("link", name="Spring campaign").click()
    ready(page)
    cards = page.locator("#cards article.card")
    expect(cards).to_have_count(2)
    expect(page.locator(f"#card-{tree.pk}")).to_have_count(0)
    expect(page.get_by_text("Cost (estimate) of this board")).to_be_visible()
    shot(page, "board")
    page.get_by_role("searchbox", name="Search prompts").fill("kite")
    expect(cards).to_have_count(1)
    expect(page.locator(f"#card-{kite.pk}")).to_be_visible()


def test_a_comment_mentioning_a_teammate_reaches_them_in_the_page(page, browser, live_server, transactional_db,
                                                                   alice, bob):
    boat = finished(alice, "A blue boat at dawn")
    # Bob has the dashboard open already (no browser notifications asked for); his page's clock is ours to move.
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    other = context.new_page()
    other.clock.install()
    log_in(other, live_server.url, BOB)
    expect(other.get_by_role("link", name="0 unread notifications")).to_be_visible()

    log_in(page, live_server.url, ALICE)
    page.goto(f"{live_server.url}/generations/{boat.pk}/")
    ready(page)
    page.get_by_label("Your comment").fill("What do you think of the light, @bob?")
    page.get_by_role("button", name="Comment", exact=True).click()
    comments = page.locator("#comments")
    expect(comments.get_by_text("What do you think of the light, @bob?")).to_be_visible()
    expect(comments.get_by_text("Mentions: bob")).to_be_visible()

    # Within a minute his bell says so, with no reload and no generation ending meanwhile.
    other.clock.fast_forward(61_000)
    bell = other.get_by_role("link", name="1 unread notification")
    expect(bell).to_be_visible()
    bell.click()
    note = other.get_by_role("link", name=f"alice mentioned you on #{boat.pk}: What do you think of the light, @bob?")
    expect(note).to_be_visible()
    other.get_by_role("button", name="Mark all as read").click()
    expect(other.get_by_role("link", name="0 unread notifications")).to_be_visible()
    note.click()
    expect(other.get_by_text("What do you think of the light, @bob?")).to_be_visible()
    context.close()


def test_pick_and_reject_on_the_cards_and_the_review_filter(page, live_server, transactional_db, alice, bob):
    kite, boat, tree = finished(bob, "A red kite"), finished(bob, "A blue boat"), finished(bob, "A green tree")
    log_in(page, live_server.url, ALICE)
    page.get_by_role("button", name=f"Pick #{kite.pk}").click()
    expect(page.locator(f"#card-{kite.pk} .review-mark")).to_have_text("Picked")
    expect(page.get_by_role("button", name=f"Pick #{kite.pk}")).to_have_attribute("aria-pressed", "true")
    page.get_by_role("button", name=f"Reject #{boat.pk}").click()
    expect(page.locator(f"#card-{boat.pk} .review-mark")).to_have_text("Rejected")

    cards = page.locator("#cards article.card")
    page.get_by_label("Review").select_option(label="Picked")
    expect(cards).to_have_count(1)
    expect(page.locator(f"#card-{kite.pk}")).to_be_visible()
    page.get_by_label("Review").select_option(label="Rejected")
    expect(cards).to_have_count(1)
    expect(page.locator(f"#card-{boat.pk}")).to_be_visible()
    page.get_by_label("Review").select_option(label="Not reviewed")
    expect(cards).to_have_count(1)
    expect(page.locator(f"#card-{tree.pk}")).to_be_visible()

    # The detail page says who picked it, and a second press clears the pick.
    page.goto(f"{live_server.url}/generations/{kite.pk}/")
    ready(page)
    expect(page.locator(".review-mark")).to_contain_text("Picked by alice")
    page.get_by_role("button", name=f"Pick #{kite.pk}").click()
    expect(page.get_by_role("button", name=f"Pick #{kite.pk}")).to_have_attribute("aria-pressed", "false")
    assert Generation.objects.get(pk=kite.pk).review_mark == ""


def test_the_large_players_boards_menu_follows_the_generation_shown_and_fills_the_board(page, luma_stack, alice, bob):
    spring = Board.objects.create(owner=alice, name="Spring campaign", shared=True)
    Board.objects.create(owner=alice, name="Alice only", shared=False)
    picks = Board.objects.create(owner=bob, name="Team picks", shared=True)
    Board.objects.create(owner=bob, name="Bob secret", shared=False)
    clips = settled(*(request_generation(alice, f"Lantern {n} drifting down a river") for n in range(3)))
    newest, middle, oldest = sorted(clips, key=lambda row: -row.pk)
    log_in(page, luma_stack.url, ALICE)

    card = page.locator(f"#card-{middle.pk}")
    expect(open_boards_menu(page, middle.pk).get_by_role("checkbox")).to_have_count(3)
    page.keyboard.press("Escape")  # closed, the card's menu stays in the page
    card.locator(".media").hover()
    card.get_by_role("link", name=f"Watch #{middle.pk} large").click()
    dialog = page.locator("dialog#lightbox")
    title = dialog.locator("h2")
    expect(title).to_have_text(f"Text to video #{middle.pk}")
    video = dialog.locator("video.lightbox-media")
    page.wait_for_function("v => !v.paused && v.currentTime > 0.1", arg=video.element_handle(), timeout=10_000)
    expect(dialog.locator("form.board-menu")).to_have_count(0)  # asked for only when the menu opens

    # By keyboard: open the menu, Space ticks a board (and leaves the video playing), the focus stays on the box.
    dialog.locator("summary").focus()
    page.keyboard.press("Enter")
    menu = dialog.get_by_role("group", name=f"Boards holding #{middle.pk}")
    expect(menu.get_by_role("checkbox")).to_have_count(3)
    expect(menu.get_by_label("Alice only")).to_be_visible()
    expect(dialog.get_by_text("Bob secret")).to_have_count(0)
    expect(menu.get_by_label("Spring campaign")).not_to_be_checked()
    # Two menus for one generation, and no id twice: each label ticks its own box.
    assert page.evaluate(DUPLICATE_IDS) == []
    menu.get_by_label("Spring campaign").focus()
    page.keyboard.press("Space")
    note = dialog.locator(".board-note")
    expect(note).to_have_text(f"#{middle.pk} added to “Spring campaign”.")
    expect(menu.get_by_label("Spring campaign")).to_be_checked()
    expect(menu.get_by_label("Spring campaign")).to_be_focused()
    expect(video).to_have_js_property("paused", False)
    shot(page, "lightbox-boards")
    menu.get_by_label("Spring campaign").focus()  # shot() blurs it

    # The right arrow still steps, from inside the menu; the menu now shows the next one's boards.
    page.keyboard.press("ArrowRight")
    expect(title).to_have_text(f"Text to video #{oldest.pk}")
    menu = dialog.get_by_role("group", name=f"Boards holding #{oldest.pk}")
    expect(menu.get_by_label("Spring campaign")).not_to_be_checked()
    menu.get_by_label("Team picks").check()
    expect(note).to_have_text(f"#{oldest.pk} added to “Team picks”.")
    menu.get_by_label("Spring campaign").check()
    expect(note).to_have_text(f"#{oldest.pk} added to “Spring campaign”.")

    # Back to the first one with the mouse: Previous keeps the menu open, as the arrow does; on Spring only.
    dialog.get_by_role("button", name="← Previous").click()
    expect(title).to_have_text(f"Text to video #{middle.pk}")
    menu = dialog.get_by_role("group", name=f"Boards holding #{middle.pk}")
    expect(menu.get_by_label("Spring campaign")).to_be_checked()
    expect(menu.get_by_label("Team picks")).not_to_be_checked()
    menu.get_by_label("Spring campaign").uncheck()
    expect(note).to_have_text(f"#{middle.pk} taken off “Spring campaign”.")

    # Escape closes the menu first, then the player; the arrows work in between.
    page.keyboard.press("Escape")
    expect(menu).to_be_hidden()
    expect(dialog).to_be_visible()
    expect(dialog.locator("summary")).to_be_focused()
    page.keyboard.press("ArrowLeft")
    expect(title).to_have_text(f"Text to video #{newest.pk}")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    # The board holds exactly the one left on it, on its page and in the database.
    page.goto(f"{luma_stack.url}{spring.get_absolute_url()}")
    ready(page)
    expect(page.locator("#cards article.card")).to_have_count(1)
    expect(page.locator(f"#card-{oldest.pk}")).to_be_visible()
    assert set(BoardItem.objects.filter(board=spring).values_list("generation_id", flat=True)) == {oldest.pk}
    assert set(BoardItem.objects.filter(board=picks).values_list("generation_id", flat=True)) == {oldest.pk}
    assert not BoardItem.objects.filter(generation_id__in=[newest.pk, middle.pk]).exists()
