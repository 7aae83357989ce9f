// lumaweb's workspace: the library's selection bar, and browser notifications for people who asked for them.
// Every page works without this file: the boxes post with their form, the bell is a link.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  // --- the selection: cards' boxes belong to the selection bar's form (form="selection") ---------------------------
  const selected = new Set();

  function boxes() {
    return document.querySelectorAll("input.select-card");
  }

  function showSelection() {
    const bar = document.getElementById("selection");
    if (!bar) return;
    // A live card is swapped in anew by the poll: keep what the person ticked.
    boxes().forEach(function (box) { box.checked = selected.has(box.value); });
    const count = bar.querySelector(".selected-count");
    bar.classList.toggle("is-empty", selected.size === 0);
    if (count) count.textContent = selected.size === 1 ? "1 selected" : selected.size + " selected";
  }

  document.addEventListener("change", function (event) {
    const box = event.target.closest("input.select-card");
    if (!box) return;
    if (box.checked) selected.add(box.value); else selected.delete(box.value);
    showSelection();
  });
  document.addEventListener("click", function (event) {
    if (!event.target.closest("[data-clear-selection]")) return;
    selected.clear();
    showSelection();
  });
  document.addEventListener("htmx:afterSettle", showSelection);
  document.addEventListener("htmx:oobAfterSwap", showSelection);
  document.addEventListener("DOMContentLoaded", function () {
    boxes().forEach(function (box) { if (box.checked) selected.add(box.value); });
    showSelection();
  });

  // --- browser notifications -------------------------------------------------------------------------------------
  // Asked for when the person ticks the box (a click is the gesture browsers want before they ask).
  document.addEventListener("change", function (event) {
    if (event.target.id !== "id_notify_browser" || !event.target.checked) return;
    if ("Notification" in window && Notification.permission === "default") Notification.requestPermission();
  });

  // For people who opted in (the bell carries data-check): every 30 s, whatever the tab's state, ask what is new;
  // the bell shows the count, and while the tab is in the background the browser shows each new one.
  const EVERY = 30000;
  let latest = null;

  function check() {
    const bell = document.getElementById("bell");
    if (!bell || !bell.dataset.check) return;
    const url = bell.dataset.check + (latest === null ? "" : "?after=" + latest);
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (!data) return;
        const count = bell.querySelector(".count");
        if (count) count.textContent = data.unread;
        bell.classList.toggle("has-unread", data.unread > 0);
        const background = document.visibilityState !== "visible";
        if (latest !== null && background && "Notification" in window && Notification.permission === "granted") {
          data.new.forEach(function (item) {
            const note = new Notification("lumaweb", { body: item.text, tag: "lumaweb-" + item.id });
            note.onclick = function () { window.focus(); if (item.url) window.location.href = item.url; note.close(); };
          });
        }
        latest = Math.max(latest || 0, data.latest);
      })
      .catch(function () {});
  }

  document.addEventListener("DOMContentLoaded", function () {
    const bell = document.getElementById("bell");
    if (!bell || !bell.dataset.check) return;
    check();
    setInterval(check, EVERY);
  });
})();
