// lumaweb: watching. A card's video plays muted while it is hovered or focused; "Watch large" opens a player
// (a <dialog>) that steps through the cards on the page: Left/Right for the previous/next, Space to pause or
// play, Escape to close; its Boards menu (the card's, asked for when opened) puts the one shown on boards and off.
// Without this file the links open the files themselves.
(function () {
  "use strict";

  // --- hover and focus preview ---------------------------------------------------------------------

  let previewing = null; // the a.play whose preview runs

  function startPreview(link) {
    if (previewing === link) return;
    stopPreview();
    const video = document.createElement("video");
    video.className = "preview";
    video.muted = true;
    video.defaultMuted = true;
    video.playsInline = true;
    video.loop = true; // a preview repeats, loop clip or not, until the pointer leaves
    video.preload = "auto";
    video.setAttribute("aria-hidden", "true");
    video.src = link.dataset.video;
    link.appendChild(video);
    previewing = link;
    video.play().catch(function () {});
  }

  function stopPreview() {
    if (!previewing) return;
    const video = previewing.querySelector("video.preview");
    if (video) {
      video.pause();
      video.removeAttribute("src");
      video.load(); // let go of the connection
      video.remove();
    }
    previewing = null;
  }

  function previewLink(target) {
    return target instanceof Element ? target.closest(".card a.play[data-video]") : null;
  }

  document.addEventListener("mouseover", function (event) {
    const link = previewLink(event.target);
    if (link) startPreview(link);
  });
  document.addEventListener("mouseout", function (event) {
    const link = previewLink(event.target);
    if (link && link === previewing && !link.contains(event.relatedTarget)) stopPreview();
  });
  document.addEventListener("focusin", function (event) {
    const link = previewLink(event.target);
    if (link) startPreview(link);
  });
  document.addEventListener("focusout", function (event) {
    const link = previewLink(event.target);
    if (link && link === previewing && !link.contains(event.relatedTarget)) stopPreview();
  });

  // --- the large player ------------------------------------------------------------------------------

  let dialog = null;
  let current = null; // the a.watch shown
  let boards = null; // the player's Boards menu (a <details>)

  function build() {
    dialog = document.createElement("dialog");
    dialog.id = "lightbox";
    dialog.tabIndex = -1; // focused itself on opening, so Space and the arrows reach it
    dialog.className = "lightbox";
    dialog.setAttribute("aria-labelledby", "lightbox-title");
    dialog.innerHTML =
      '<div class="lightbox-bar">' +
      '<h2 id="lightbox-title"></h2>' +
      '<details class="menu lightbox-boards" hidden><summary>Boards</summary>' +
      '<div class="lightbox-boards-menu"></div></details>' +
      '<a class="lightbox-detail" href="#">Details</a>' +
      '<button type="button" class="icon" data-go="close" title="Close (Escape)"><span aria-hidden="true">✕</span><span class="sr">Close</span></button>' +
      "</div>" +
      '<div class="lightbox-stage"></div>' +
      '<p class="lightbox-prompt"></p>' +
      '<div class="lightbox-nav">' +
      '<button type="button" class="secondary" data-go="prev" data-keeps-menus title="Previous (Left arrow)">← Previous</button>' +
      '<span class="lightbox-count muted" aria-live="polite"></span>' +
      '<button type="button" class="secondary" data-go="next" data-keeps-menus title="Next (Right arrow)">Next →</button>' +
      "</div>";
    document.body.appendChild(dialog);
    boards = dialog.querySelector(".lightbox-boards");
    dialog.addEventListener("click", function (event) {
      const button = event.target.closest("[data-go]");
      if (button) {
        const go = button.dataset.go;
        if (go === "close") dialog.close();
        else step(go === "next" ? 1 : -1);
      } else if (event.target === dialog) {
        dialog.close(); // a click on the backdrop
      }
    });
    dialog.addEventListener("keydown", function (event) {
      if (event.altKey || event.ctrlKey || event.metaKey) return;
      if (event.key === "Escape" && boards.open && boards.contains(event.target)) {
        event.preventDefault(); // closes the menu, not the player
        boards.open = false;
        boards.querySelector("summary").focus();
        return;
      }
      // Keys typed into a field are the field's.
      if (event.target.closest("textarea, select, [contenteditable]") ||
          (event.target.matches("input") && !event.target.matches("[type=checkbox], [type=radio]"))) return;
      if (event.key === "ArrowRight") { event.preventDefault(); step(1); }
      else if (event.key === "ArrowLeft") { event.preventDefault(); step(-1); }
      else if (event.key === " " && !event.target.closest("button, a, video, summary, label, input")) {
        event.preventDefault();
        togglePlay();
      }
    });
    boards.addEventListener("toggle", function () {
      if (boards.open) loadBoards();
    });
    // Ticking a board swaps the menu's form for the answer: keep the focus on that board's box, inside the player.
    let ticked = null;
    boards.addEventListener("change", function (event) { ticked = event.target.value; });
    boards.addEventListener("htmx:afterSwap", function () {
      if (!dialog.open || (dialog.contains(document.activeElement) && document.activeElement !== dialog)) return;
      const box = ticked && boards.querySelector('input[value="' + CSS.escape(ticked) + '"]');
      (box || boards.querySelector("summary")).focus();
    });
    dialog.addEventListener("close", function () {
      boards.open = false;
      const video = dialog.querySelector(".lightbox-stage video");
      if (video) video.pause();
      dialog.querySelector(".lightbox-stage").replaceChildren();
      const back = current && document.contains(current) ? current : null;
      current = null;
      if (back) back.focus();
    });
  }

  // The Boards menu of the generation shown: the card's own (generations:card_boards), asked for when the menu is
  // open; an answer for a generation no longer shown is dropped.
  function loadBoards() {
    const box = boards.querySelector(".lightbox-boards-menu");
    const pk = dialog.dataset.pk;
    const url = current && current.dataset.boards;
    if (!url) return;
    box.textContent = "Loading…";
    fetch(url + "?in=lightbox", { credentials: "same-origin", headers: { "HX-Request": "true" } })
      .then(function (response) {
        return response.ok && !response.redirected ? response.text() : Promise.reject(response.status);
      })
      .then(function (html) {
        if (dialog.dataset.pk !== pk || !boards.open) return;
        box.innerHTML = html;
        htmx.process(box);
      })
      .catch(function () {
        if (dialog.dataset.pk === pk) box.textContent = "Could not load the boards; try again.";
      });
  }

  function watchable() {
    return Array.from(document.querySelectorAll(".card a.watch[data-watch]"));
  }

  function show(link) {
    current = link;
    const data = link.dataset;
    const stage = dialog.querySelector(".lightbox-stage");
    let media;
    if (data.watch === "video") {
      media = document.createElement("video");
      media.controls = true;
      media.autoplay = true;
      media.playsInline = true;
      media.loop = "loop" in data;
      if (data.poster) media.poster = data.poster;
      media.src = data.src;
    } else {
      media = document.createElement("img");
      media.src = data.src;
      media.alt = data.title;
    }
    media.className = "lightbox-media";
    stage.replaceChildren(media);
    dialog.querySelector("#lightbox-title").textContent = data.title + ("loop" in data ? " · loops" : "");
    dialog.querySelector(".lightbox-prompt").textContent = data.prompt || "(no prompt)";
    dialog.querySelector(".lightbox-detail").href = data.detail;
    const all = watchable();
    const at = all.indexOf(link);
    dialog.querySelector(".lightbox-count").textContent = (at + 1) + " of " + all.length;
    dialog.querySelector('[data-go="prev"]').disabled = at <= 0;
    dialog.querySelector('[data-go="next"]').disabled = at < 0 || at >= all.length - 1;
    dialog.dataset.pk = data.pk;
    // Focus inside the old menu would fall out of the player (and its keys) when the menu is replaced.
    if (boards.contains(document.activeElement)) (data.boards ? boards.querySelector("summary") : dialog).focus();
    boards.hidden = !data.boards; // offered where the card offers its Boards menu
    boards.querySelector(".lightbox-boards-menu").replaceChildren();
    if (!data.boards) boards.open = false;
    else if (boards.open) loadBoards();
    if (media.tagName === "VIDEO") media.play().catch(function () {});
  }

  function step(by) {
    const all = watchable();
    const at = all.indexOf(current);
    const next = all[at + by];
    if (next) {
      show(next);
      next.scrollIntoView({ block: "nearest" });
    }
  }

  function togglePlay() {
    const video = dialog.querySelector(".lightbox-stage video");
    if (!video) return;
    if (video.paused) video.play().catch(function () {});
    else video.pause();
  }

  document.addEventListener("click", function (event) {
    const link = event.target instanceof Element ? event.target.closest(".card a.watch[data-watch]") : null;
    if (!link || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey) return;
    event.preventDefault();
    stopPreview();
    if (!dialog) build();
    show(link);
    if (!dialog.open) dialog.showModal();
    dialog.focus();
  });
})();
