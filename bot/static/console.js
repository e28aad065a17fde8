// The console's few behaviours: live regions (server events, polling as the fallback), canned text.
// No inline script anywhere: a Content-Security-Policy without 'unsafe-inline' holds.
(function () {
  "use strict";
  var POLL_MS = 1500;
  var active = false; // did the counsellor do anything since the last poll? (keeps the session alive)
  // Once a form is sent the page is on its way out: a refresh now would undo the navigation.
  var leaving = false;
  document.addEventListener("submit", function (event) {
    window.setTimeout(function () { leaving = !event.defaultPrevented; }, 0);
  }, true);

  ["keydown", "mousedown", "scroll", "touchstart"].forEach(function (name) {
    document.addEventListener(name, function () { active = true; }, { passive: true, capture: true });
  });

  function nearBottom(el) { return el.scrollHeight - el.scrollTop - el.clientHeight < 40; }

  function applyReplyState(region) {
    var line = region.querySelector("[data-can-reply]");
    var box = document.getElementById("reply-text");
    var send = document.getElementById("reply-send");
    var why = document.getElementById("why-not");
    if (!line || !box) { return; }
    var allowed = line.getAttribute("data-can-reply") === "true";
    box.disabled = !allowed;
    if (send) { send.disabled = !allowed; }
    if (why) { why.hidden = allowed; why.textContent = line.getAttribute("data-why-not"); }
  }

  // Refresh a live region: at once when the server's event stream says something changed, and
  // every POLL_MS anyway (the fallback when the stream is down, and how idle sessions are noticed).
  function poll(region) {
    var url = region.getAttribute("data-poll");
    var last = region.innerHTML;
    var timer = null, busy = false, again = false;
    function tick() {
      window.clearTimeout(timer);
      if (leaving) { return; }
      if (busy) { again = true; return; }
      busy = true;
      var headers = { "X-Console-Poll": "1" };
      if (active) { headers["X-Console-Active"] = "1"; active = false; }
      fetch(url, { headers: headers, credentials: "same-origin", cache: "no-store" })
        .then(function (answer) {
          if (answer.redirected || answer.status === 401) { window.location.assign(answer.url); return null; }
          if (answer.status === 404 || answer.status === 403) { window.location.reload(); return null; }
          return answer.ok ? answer.text() : null;
        })
        .then(function (html) {
          if (html !== null && html !== last) {
            var transcript = document.getElementById("transcript");
            var stick = !transcript || nearBottom(transcript);
            region.innerHTML = html;
            last = region.innerHTML;
            applyReplyState(region);
            transcript = document.getElementById("transcript");
            if (transcript && stick) { transcript.scrollTop = transcript.scrollHeight; }
          }
        })
        .catch(function () { /* offline for a moment: the next tick tries again */ })
        .then(function () {
          busy = false;
          if (again) { again = false; tick(); } else { timer = window.setTimeout(tick, POLL_MS); }
        });
    }
    timer = window.setTimeout(tick, POLL_MS);
    var leave = region.getAttribute("data-leave");
    if (leave) {
      // Others see who has this page open; a page going away says so rather than wait to expire.
      // Not when a form was sent: that page comes back at once, and would then be missing a moment.
      window.addEventListener("pagehide", function () {
        var token = document.querySelector("input[name=csrf_token]");
        if (leaving || !token) { return; }
        fetch(leave, { method: "POST", keepalive: true, credentials: "same-origin",
                       headers: { "X-CSRF-Token": token.value } });
      });
    }
    var events = region.getAttribute("data-events");
    if (events && window.EventSource) {
      var stream = new EventSource(events);
      stream.addEventListener("change", tick);
      window.addEventListener("pagehide", function () { stream.close(); });
    }
  }

  function insertSnippet(text) {
    var box = document.getElementById("reply-text");
    if (!box || box.disabled) { return; }
    var start = box.selectionStart, end = box.selectionEnd, value = box.value;
    var before = value.slice(0, start), after = value.slice(end);
    var gap = before && !/\s$/.test(before) ? " " : "";
    box.value = before + gap + text + after;
    box.focus();
    box.selectionStart = box.selectionEnd = (before + gap + text).length;
    box.dispatchEvent(new Event("input"));
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-dismiss]") : null;
    if (button) { button.parentNode.hidden = true; }
  });

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-poll]").forEach(poll);
    document.querySelectorAll("[data-insert]").forEach(function (button) {
      button.addEventListener("click", function () { insertSnippet(button.getAttribute("data-insert")); });
    });
    var box = document.getElementById("reply-text"), count = document.getElementById("reply-count");
    if (box && count) {
      var update = function () { count.textContent = String(box.value.length); };
      box.addEventListener("input", update);
      update();
    }
    var transcript = document.getElementById("transcript");
    if (transcript) { transcript.scrollTop = transcript.scrollHeight; }
    var end = document.getElementById("end");
    if (end) {
      end.addEventListener("submit", function (event) {
        if (!window.confirm("End this conversation? The texter gets the closing message.")) { event.preventDefault(); }
      });
    }
  });
}());
