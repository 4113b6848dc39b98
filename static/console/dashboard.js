// The console overview's live list of recent writes (templates/console/dashboard.html).
// Rows come from /console/live (Server-Sent Events; the event id is the version id, so the
// browser's automatic reconnect resumes with Last-Event-ID) or, when the stream is unavailable,
// by polling recent.json?after=<cursor>. Rows are built with textContent only: user text never
// becomes markup. Without this script the server-rendered list is still there.
(function () {
  "use strict";
  var list = document.getElementById("recent-list");
  if (!list) { return; }
  var announcer = document.getElementById("live-announcer");
  var state = document.getElementById("live-state");
  var cursor = parseInt(list.getAttribute("data-cursor"), 10) || 0;
  var MAX_ROWS = 100;
  var POLL_MS = 10000;
  var pending = 0;
  var announceTimer = null;

  function text(tag, value, className) {
    var node = document.createElement(tag);
    node.textContent = value;
    if (className) { node.className = className; }
    return node;
  }

  function safeUrl(url) {
    // Only the app's own paths (the server builds them); anything else is not linked.
    return typeof url === "string" && url.charAt(0) === "/" && url.charAt(1) !== "/" ? url : null;
  }

  function rowFor(change) {
    var item = document.createElement("li");
    item.className = "dash-change dash-change-new";
    item.setAttribute("data-version", String(change.versionId));
    var url = safeUrl(change.url);
    var what = document.createElement(url ? "a" : "span");
    what.className = "dash-change-what";
    if (url) { what.setAttribute("href", url); }
    what.appendChild(text("span", change.label + " " + change.action, "pill"));
    what.appendChild(document.createTextNode(" "));
    what.appendChild(text("span", change.excerpt, "dash-excerpt"));
    item.appendChild(what);
    var meta = text("span", "", "meta");
    var time = text("time", change.when);
    time.setAttribute("datetime", change.changedAt);
    meta.appendChild(time);
    var parts = [" · ", change.namespace];
    if (change.username) { parts.push(" · by " + change.username); }
    if (change.actorId) { parts.push(" · actor " + change.actorId); }
    if (change.key) { parts.push(" · " + change.key); }
    if (change.surface) { parts.push(" · via " + change.surface); }
    meta.appendChild(document.createTextNode(parts.join("")));
    item.appendChild(meta);
    return item;
  }

  function announce() {
    announceTimer = null;
    if (announcer && pending) {
      announcer.textContent = pending === 1 ? "1 new write" : pending + " new writes";
    }
    pending = 0;
  }

  function add(change) {
    if (!change || typeof change.versionId !== "number" || change.versionId <= cursor) { return; }
    if (list.querySelector('[data-version="' + change.versionId + '"]')) { return; }
    cursor = change.versionId;
    list.insertBefore(rowFor(change), list.firstChild);
    while (list.children.length > MAX_ROWS) { list.removeChild(list.lastChild); }
    var empty = document.getElementById("recent-empty");
    if (empty) { empty.remove(); }
    pending += 1;
    // One announcement for a burst of writes, not one per row.
    if (!announceTimer) { announceTimer = window.setTimeout(announce, 1000); }
  }

  function addAll(changes) {
    // Newest first on the wire: add the oldest first so the newest ends on top.
    for (var i = changes.length - 1; i >= 0; i -= 1) { add(changes[i]); }
  }

  function poll() {
    var url = list.getAttribute("data-recent-url") + "?after=" + encodeURIComponent(String(cursor));
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (body) { if (body && Array.isArray(body.changes)) { addAll(body.changes); } })
      .catch(function () { /* offline for now: the next poll tries again */ })
      .then(function () { window.setTimeout(poll, POLL_MS); });
  }

  function setState(message) { if (state) { state.textContent = message; } }

  if (!("EventSource" in window)) { poll(); return; }
  var source = new EventSource(list.getAttribute("data-live-url") + "?after=" + encodeURIComponent(String(cursor)));
  source.addEventListener("open", function () {
    list.setAttribute("data-live", "open");
    setState("The newest writes in the namespaces you can read, newest first; new writes appear here as they happen.");
  });
  source.addEventListener("message", function (event) {
    try { add(JSON.parse(event.data)); } catch (error) { /* not a row: ignore */ }
  });
  source.addEventListener("error", function () {
    if (source.readyState === EventSource.CLOSED) {
      // Refused (signed out) or gone for good: fall back to polling, which answers 302/403 if so.
      list.setAttribute("data-live", "polling");
      poll();
    }
  });
}());
