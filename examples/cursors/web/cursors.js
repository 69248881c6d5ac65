// cursors: every page in a room sees the others' cursors and clicks.
// Protocol: examples/cursors/README.md. Coordinates are 0..10000 fractions of the window.
(function () {
  "use strict";

  var params = new URLSearchParams(location.search);
  var room = params.get("room") || "lobby";
  var name = clampName(params.get("name") || "guest-" + String(Math.floor(Math.random() * 10000)).padStart(4, "0"));
  var wsURL = (location.protocol === "https:" ? "wss://" : "ws://") + location.host +
    "/cursors/" + encodeURIComponent(room) + "/ws?name=" + encodeURIComponent(name);

  var statusEl = document.getElementById("status");
  var membersEl = document.getElementById("members");
  var layer = document.getElementById("layer");

  var ws = null;
  var selfId = null;
  var cursors = new Map(); // id -> {id, name, x, y, el}
  var backoff = 500;
  var pingTimer = null;
  var pending = null; // latest pointer position not sent yet
  var frameQueued = false;

  window.__ripples = []; // every ripple shown, for tests: {x, y, name}
  window.__connects = 0; // how many times the socket opened, for tests

  // The server refuses names over 32 bytes; cut at a character boundary instead.
  function clampName(s) {
    var enc = new TextEncoder();
    while (enc.encode(s).length > 32) s = s.slice(0, -1);
    return s;
  }

  function setStatus(text, cls) {
    statusEl.textContent = text;
    statusEl.className = cls;
  }

  function color(id) {
    return "hsl(" + ((id * 137) % 360) + ", 65%, 45%)";
  }

  function toUnits(v, size) {
    return Math.max(0, Math.min(10000, Math.round(v / size * 10000)));
  }

  function send(text) {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(text);
  }

  // ---- rendering ----

  function place(c) {
    if (c.x < 0 || c.y < 0) {
      c.el.hidden = true;
      return;
    }
    c.el.hidden = false;
    c.el.style.left = (c.x / 10000 * innerWidth) + "px";
    c.el.style.top = (c.y / 10000 * innerHeight) + "px";
  }

  function addCursor(m) {
    var c = cursors.get(m.id);
    if (!c) {
      var el = document.createElement("div");
      el.className = "cursor";
      el.dataset.id = m.id;
      el.dataset.name = m.name;
      el.style.setProperty("--color", color(m.id));
      el.innerHTML = '<svg viewBox="0 0 16 20" aria-hidden="true">' +
        '<path d="M1 1 L1 17 L5 13 L8 19 L11 18 L8 12 L14 12 Z" fill="currentColor" stroke="#fff" stroke-width="1.2"/>' +
        '</svg><span class="label"></span>';
      el.querySelector(".label").textContent = m.name;
      layer.appendChild(el);
      c = { id: m.id, name: m.name, x: -1, y: -1, el: el };
      cursors.set(m.id, c);
    }
    if (typeof m.x === "number") c.x = m.x;
    if (typeof m.y === "number") c.y = m.y;
    place(c);
    return c;
  }

  function removeCursor(id) {
    var c = cursors.get(id);
    if (!c) return;
    c.el.remove();
    cursors.delete(id);
  }

  function clearCursors() {
    cursors.forEach(function (c) { c.el.remove(); });
    cursors.clear();
  }

  function renderMembers() {
    membersEl.textContent = "";
    var add = function (label, id, self) {
      var li = document.createElement("li");
      li.textContent = label;
      if (self) li.className = "self";
      if (id !== null) li.style.setProperty("--color", color(id));
      membersEl.appendChild(li);
    };
    if (ws && ws.readyState === WebSocket.OPEN && selfId !== null) add(name + " (you)", selfId, true);
    cursors.forEach(function (c) { add(c.name, c.id, false); });
  }

  function ripple(x, y, who, id) {
    var px = x / 10000 * innerWidth, py = y / 10000 * innerHeight;
    var el = document.createElement("div");
    el.className = "ripple";
    el.style.left = px + "px";
    el.style.top = py + "px";
    if (id !== null) el.style.setProperty("--color", color(id));
    layer.appendChild(el);
    var done = function () { el.remove(); };
    el.addEventListener("animationend", done);
    setTimeout(done, 700); // in case animations do not run (hidden tab)
    window.__ripples.push({ x: x, y: y, name: who });
  }

  addEventListener("resize", function () { cursors.forEach(place); });

  // ---- input ----

  addEventListener("pointermove", function (e) {
    pending = [toUnits(e.clientX, innerWidth), toUnits(e.clientY, innerHeight)];
    if (frameQueued) return;
    frameQueued = true;
    requestAnimationFrame(function () {
      frameQueued = false;
      if (pending) send("m " + pending[0] + " " + pending[1]);
      pending = null;
    });
  });

  addEventListener("click", function (e) {
    var x = toUnits(e.clientX, innerWidth), y = toUnits(e.clientY, innerHeight);
    send("c " + x + " " + y);
    ripple(x, y, name, selfId);
  });

  // ---- connection ----

  function onMessage(ev) {
    var m;
    try { m = JSON.parse(ev.data); } catch (err) { return; } // "pong"
    switch (m.type) {
      case "hello":
        selfId = m.id;
        clearCursors();
        m.cursors.forEach(addCursor);
        break;
      case "join":
        addCursor(m);
        break;
      case "move":
        addCursor(m);
        break;
      case "click":
        addCursor(m);
        ripple(m.x, m.y, m.name, m.id);
        break;
      case "leave":
        removeCursor(m.id);
        break;
      case "error":
        console.warn("cursors:", m.error);
        break;
    }
    renderMembers();
  }

  function connect() {
    setStatus("connecting", "connecting");
    var sock = new WebSocket(wsURL);
    ws = sock;
    sock.onopen = function () {
      backoff = 500;
      window.__connects++;
      setStatus("connected (room " + room + " as " + name + ")", "connected");
      pingTimer = setInterval(function () { send("ping"); }, 20000);
    };
    sock.onmessage = onMessage;
    sock.onclose = function () {
      if (ws !== sock) return;
      clearInterval(pingTimer);
      ws = null;
      selfId = null;
      clearCursors();
      renderMembers();
      setStatus("disconnected, retrying", "disconnected");
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 5000);
    };
  }

  connect();
})();
