// lumaweb: a few small enhancements on top of htmx. Every page works without this file.
(function () {
  "use strict";

  function compact(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    if (seconds < 60) return seconds + " s";
    if (seconds < 3600) return Math.floor(seconds / 60) + "m " + String(seconds % 60).padStart(2, "0") + "s";
    return Math.floor(seconds / 3600) + "h " + String(Math.floor((seconds % 3600) / 60)).padStart(2, "0") + "m";
  }

  // Cards say how long each phase has taken; the server renders the first value and this keeps it moving.
  function tick() {
    const now = Date.now();
    document.querySelectorAll("[data-since]").forEach(function (el) {
      el.textContent = compact((now - Date.parse(el.dataset.since)) / 1000);
    });
    document.querySelectorAll("[data-eta]").forEach(function (el) {
      const left = (Date.parse(el.dataset.eta) - now) / 1000;
      el.textContent = left > 1 ? "about " + compact(left) + " left" : "taking longer than usual";
    });
  }
  setInterval(tick, 1000);

  document.addEventListener("click", function (event) {
    // A finished card shows its poster until asked to play: the page stays light, the video plays in place.
    const play = event.target.closest("a.play[data-video]");
    if (play) {
      event.preventDefault();
      const video = document.createElement("video");
      video.controls = true;
      video.autoplay = true;
      video.playsInline = true;
      video.loop = "loop" in play.dataset; // a loop clip starts over at its end, as in the large player
      if (play.dataset.poster) video.poster = play.dataset.poster;
      video.src = play.dataset.video;
      play.replaceWith(video);
      video.play().catch(function () {});
      video.focus();
      return;
    }
    // Continue / try-again links fill the create panel in place when the page has one.
    const link = event.target.closest("a[data-create-link]");
    if (link && window.htmx && document.getElementById("create-panel")) {
      event.preventDefault();
      const menu = link.closest("details");
      if (menu) menu.open = false;
      htmx.ajax("GET", link.href, { target: "#create-panel", swap: "outerHTML" });
    }
  });

  // Close an open Actions menu with Escape or a click elsewhere (but for a button that keeps it: the large player's
  // Previous / Next, after which its Boards menu shows the next generation's boards).
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    const open = document.querySelector("details.menu[open]");
    if (open) { open.open = false; open.querySelector("summary").focus(); }
  });
  document.addEventListener("click", function (event) {
    if (event.target instanceof Element && event.target.closest("[data-keeps-menus]")) return;
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      if (!menu.contains(event.target)) menu.open = false;
    });
  });

  // The page-wide poller asks for live cards only while there are some and the tab is visible. A listener, not an
  // hx-trigger filter: filters need eval, which the Content-Security-Policy forbids (and htmx then polls regardless).
  document.addEventListener("htmx:confirm", function (event) {
    if (event.target.id !== "poller") return;
    if (document.visibilityState !== "visible" || !document.querySelector("input.live")) event.preventDefault();
  });

  // The header's bell and credit badge: asked for again every minute while the tab is visible (a comment or a
  // mention arrives without any generation ending; the balance is read again a little after one ends). A bell with
  // data-check is kept current by workspace.js's own check for those who opted in to browser notifications.
  setInterval(function () {
    if (document.visibilityState !== "visible" || !window.htmx) return;
    ["bell", "credits-badge"].forEach(function (id) {
      const element = document.getElementById(id);
      if (element && !element.dataset.check) htmx.trigger(element, "header-refresh");
    });
  }, 60000);

  // The server says what happened (HX-Trigger); act once the new content is in the page.
  let after = null;
  document.addEventListener("generation-created", function () { after = "created"; });
  document.addEventListener("create-prefilled", function () { after = "prefilled"; });
  document.addEventListener("htmx:afterSettle", function () {
    if (after === "prefilled") {
      const panel = document.getElementById("create-panel");
      if (panel) {
        panel.scrollIntoView({ behavior: "smooth", block: "start" });
        const prompt = panel.querySelector("textarea");
        if (prompt) prompt.focus({ preventScroll: true });
      }
    }
    after = null;
  });
})();
