// The web chat page: talks to /chat/api, shows counsellor replies live, and leaves fast.
// The chat's token lives only in a variable below: never in a cookie, localStorage or
// sessionStorage, so nothing of the conversation stays on the device.
(function () {
  "use strict";

  const root = document.getElementById("chat");
  const words = JSON.parse(root.dataset.words);
  const api = root.dataset.api;
  const exitUrl = root.dataset.exitUrl;
  const lang = document.documentElement.lang;
  const MAX_TEXT = 1600;

  const scroller = document.getElementById("scroll");
  const log = document.getElementById("log");
  const status = document.getElementById("status");
  const choicesBox = document.getElementById("choices");
  const form = document.getElementById("composer");
  const input = document.getElementById("text");
  const sendButton = document.getElementById("send");
  const restartButton = document.getElementById("restart");
  const exitButton = document.getElementById("exit");
  const exitHint = document.getElementById("exit-hint");

  let token = null;
  let over = false; // the server said this chat is over: nothing more can be sent on it
  let endsHeard = 0; // how often the stream or the polling said so
  let stream = null;
  let streamRetry = null;
  let busy = false;
  let leaving = false;
  const shownLive = new Set(); // transcript indexes already shown (a reconnect may repeat one)
  let lastLive = -1; // the highest of them: polling asks for what came after
  let poller = null;
  const POLL_MS = 5000;

  // -- talking to the server ------------------------------------------------------

  async function post(path, body, keepalive) {
    const response = await fetch(api + path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
      keepalive: Boolean(keepalive),
    });
    let data = {};
    try {
      data = await response.json();
    } catch (err) {
      data = {};
    }
    return { status: response.status, data: data };
  }

  // A network failure is tried again with the same client_id: the server answers a repeat once.
  async function postWithRetry(path, body) {
    for (let attempt = 0; ; attempt += 1) {
      try {
        return await post(path, body);
      } catch (err) {
        if (attempt >= 2) return null;
        await new Promise(function (resolve) { setTimeout(resolve, 1500 * (attempt + 1)); });
      }
    }
  }

  function newId() {
    const bytes = new Uint8Array(12);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, function (b) { return b.toString(16).padStart(2, "0"); }).join("");
  }

  // -- what the visitor sees --------------------------------------------------------

  const senders = { you: words.you, bot: root.dataset.name, counsellor: words.counsellor, system: root.dataset.name };

  // `choices`: the buttons that come with this message. Its lines that list them ("2 Questions about
  // your work or home") are kept for screen readers but hidden from sight, so that a phone shows the
  // choices once, as buttons. SMS keeps the numbered text: this is the web page's presentation only.
  function addMessage(from, text, choices) {
    const item = document.createElement("li");
    item.className = "msg msg-" + from;
    const who = document.createElement("span");
    who.className = from === "counsellor" ? "who" : "who sr-only";
    who.textContent = senders[from] || senders.bot;
    const body = document.createElement("p");
    const numbers = new Set((choices || []).map(function (choice) { return choice.send; }));
    text.split("\n").forEach(function (line, n) {
      const shown = n ? "\n" + line : line;
      const number = /^\s*(\d+)[\s.)]/.exec(line);
      if (number && numbers.has(number[1])) {
        const listed = document.createElement("span");
        listed.className = "sr-only listed";
        listed.textContent = shown;
        body.append(listed);
      } else {
        body.append(shown);
      }
    });
    item.append(who, body);
    log.append(item);
    toBottom();
    return item;
  }

  function toBottom() {
    scroller.scrollTop = scroller.scrollHeight;
  }

  function say(text) {
    status.textContent = text || "";
  }

  function showChoices(choices) {
    choicesBox.replaceChildren();
    (choices || []).forEach(function (choice) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "choice";
      // The number the message's hidden list gives it, for whoever would rather type; its name is the label.
      const number = document.createElement("span");
      number.className = "number";
      number.setAttribute("aria-hidden", "true");
      number.textContent = choice.send;
      button.append(number, choice.label);
      button.addEventListener("click", function () {
        send(choice.send, choice.label);
        input.focus();
      });
      choicesBox.append(button);
    });
    choicesBox.hidden = !choicesBox.childElementCount;
    toBottom();
  }

  function setBusy(value) {
    busy = value;
    sendButton.disabled = value || !token || over;
    log.setAttribute("aria-busy", value ? "true" : "false");
    choicesBox.querySelectorAll("button").forEach(function (b) { b.disabled = value; });
  }

  function setOpen(open) {
    input.disabled = !open;
    sendButton.disabled = !open || busy;
    restartButton.hidden = open;
  }

  function pauseSending(seconds) {
    sendButton.disabled = true;
    setTimeout(function () {
      if (token && !busy && !over) sendButton.disabled = false;
      if (status.textContent === words.slow_down) say("");
    }, Math.max(1, seconds) * 1000);
  }

  // -- the conversation -----------------------------------------------------------

  async function start() {
    setOpen(true);
    input.disabled = true;
    say(words.connecting);
    const answer = await postWithRetry("/session", { lang: lang });
    if (leaving) return;
    if (answer && answer.status === 201) {
      token = answer.data.token;
      say("");
      answer.data.replies.forEach(function (text) { addMessage("bot", text, answer.data.choices); });
      showChoices(answer.data.choices);
      setOpen(true);
      openStream();
    } else if (answer && answer.status === 429) {
      say(words.slow_down);
      setTimeout(start, (answer.data.retry_after || 30) * 1000);
    } else {
      (answer && answer.data.replies || []).forEach(function (text) { addMessage("bot", text); });
      say(words.error_network);
      setOpen(false);
    }
  }

  async function send(text, shown) {
    text = text.trim();
    if (!token || over || busy || !text) return;
    if (text.length > MAX_TEXT) {
      say(words.too_long);
      return;
    }
    say("");
    // The buttons are about to go: the lines that listed them read as in a text thread again.
    log.querySelectorAll(".listed.sr-only").forEach(function (line) { line.classList.remove("sr-only"); });
    const bubble = addMessage("you", shown || text);
    if (!shown) input.value = "";
    showChoices([]);
    setBusy(true);
    const answer = await postWithRetry("/messages", { token: token, text: text, client_id: newId() });
    setBusy(false);
    if (leaving) return;
    if (answer === null) {
      handBack(bubble, text, shown);
      say(words.error_network);
    } else if (answer.status === 200) {
      answer.data.replies.forEach(function (reply) { addMessage("bot", reply, answer.data.choices); });
      showChoices(answer.data.choices);
      if (!answer.data.open) ended();
    } else if (answer.status === 429) {
      handBack(bubble, text, shown);
      say(words.slow_down);
      pauseSending(answer.data.retry_after || 10);
    } else if (answer.status === 404) {
      bubble.remove();
      ended();
      closeStream();
    } else if (answer.data.error === "ended") {
      // A counsellor ended the chat as this was sent: it stays in the box, for a new chat.
      handBack(bubble, text, shown);
      ended();
    } else if (answer.data.error === "chat_full") {
      // This chat has taken all it may: say why, and offer a new one.
      handBack(bubble, text, shown);
      answer.data.replies.forEach(function (reply) { addMessage("bot", reply); });
      ended();
      closeStream();
    } else if (answer.data.error === "too_long") {
      handBack(bubble, text, shown);
      say(words.too_long);
    } else {
      (answer.data.replies || []).forEach(function (reply) { addMessage("bot", reply); });
      handBack(bubble, text, shown);
      say(words.error_network);
    }
  }

  // The message did not go through: take the bubble back and let the visitor send it again.
  function handBack(bubble, text, shown) {
    bubble.remove();
    if (!shown && !input.value) input.value = text;
  }

  // The chat is over: ended by a counsellor, erased, or full. Quick exit still erases it.
  function ended() {
    if (over) return;
    over = true;
    showChoices([]);
    say(words.error_ended);
    setOpen(false);
    toBottom(); // the log is shorter now: its last message stays in sight
    restartButton.focus();
  }

  // The stream (or the polling) says the chat is over. A counsellor's closing message is written just
  // after the end, so the stream stays open for it; hearing "ended" again (on the stream's next
  // reconnect, or the next poll) closes it.
  function heardEnd() {
    endsHeard += 1;
    if (endsHeard > 1) closeStream();
    ended();
  }

  // -- counsellor replies, live ---------------------------------------------------

  function openStream() {
    streamRetry = null;
    if (!token || leaving) return;
    if (!window.EventSource) {
      startPolling();
      return;
    }
    stream = new EventSource(api + "/events?token=" + encodeURIComponent(token));
    stream.addEventListener("live", stopPolling);
    // The service has no stream free for this page now: fetch replies every few seconds instead
    // (the EventSource tries again by itself, and "live" ends the polling).
    stream.addEventListener("busy", startPolling);
    stream.addEventListener("reply", function (event) {
      showLive(event.lastEventId, JSON.parse(event.data));
    });
    stream.addEventListener("ended", heardEnd);
    stream.addEventListener("error", function () {
      // EventSource reconnects by itself after a stream ends; after a refusal it gives up, so try later.
      if (stream && stream.readyState === EventSource.CLOSED) {
        closeStream();
        startPolling();
        if (token && !leaving) streamRetry = setTimeout(openStream, 5000);
      }
    });
  }

  function showLive(id, reply) {
    id = String(id);
    if (shownLive.has(id)) return;
    shownLive.add(id);
    lastLive = Math.max(lastLive, Number(id));
    addMessage(reply.from, reply.text);
  }

  function startPolling() {
    if (!poller && token && !leaving) poller = setInterval(poll, POLL_MS);
  }

  function stopPolling() {
    if (poller) clearInterval(poller);
    poller = null;
  }

  async function poll() {
    if (!token || leaving) return stopPolling();
    let response;
    try {
      response = await fetch(api + "/replies?token=" + encodeURIComponent(token) + "&after=" + lastLive,
                             { cache: "no-store", credentials: "omit" });
    } catch (err) {
      return; // offline for now: the next tick tries again
    }
    if (response.status === 404) {
      ended();
      return closeStream();
    }
    if (response.status !== 200) return;
    const data = await response.json();
    data.replies.forEach(function (reply) { showLive(reply.id, reply); });
    if (!data.open) heardEnd();
  }

  function closeStream() {
    stopPolling();
    if (stream) stream.close();
    stream = null;
    if (streamRetry) clearTimeout(streamRetry);
    streamRetry = null;
  }

  // -- quick exit -----------------------------------------------------------------

  function quickExit() {
    if (leaving) return;
    leaving = true;
    const last = token;
    token = null;
    closeStream();
    if (last) {
      // keepalive: the erase still reaches the server while the page is being replaced.
      post("/exit", { token: last }, true).catch(function () {});
    }
    log.replaceChildren();
    choicesBox.replaceChildren();
    input.value = "";
    document.title = "";
    try {
      // Embedded on a partner's site, the whole tab leaves, not just the frame.
      window.top.location.replace(exitUrl);
    } catch (err) {
      window.location.replace(exitUrl);
    }
  }

  exitButton.addEventListener("click", quickExit);

  // "or press Esc" only where there is a keyboard to press it on (a phone has the button alone).
  const keyboard = window.matchMedia("(hover: hover) and (pointer: fine)");
  function showExitHint() {
    exitHint.hidden = !keyboard.matches;
    if (keyboard.matches) exitButton.setAttribute("aria-describedby", exitHint.id);
    else exitButton.removeAttribute("aria-describedby");
  }
  showExitHint();
  keyboard.addEventListener("change", showExitHint);
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      event.preventDefault();
      quickExit();
    }
  });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    send(input.value);
  });

  // A new chat on this page: a new token; the old one is forgotten here (the server keeps that
  // conversation for its counsellors, as ever).
  restartButton.addEventListener("click", function () {
    closeStream();
    token = null;
    over = false;
    endsHeard = 0;
    log.replaceChildren();
    shownLive.clear();
    lastLive = -1;
    start().then(function () { input.focus(); });
  });

  start();
})();
