// The live view: the acting user's real-time stream (/chat/realtime, docs/realtime.md).

const listeners = new Set();
let socket = null;
let position = null;
let stopped = true;
let retries = 0;
let onState = () => {};
let onRefused = () => {};
let lastRenewal = 0;

/** Be told of every event frame: fn({type, position, data}). Returns an unsubscribe function. */
export function onEvent(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** Be told when the connection state changes (a short text). */
export function onStateChange(fn) {
  onState = fn;
}

/** Be told when the server refuses the token (expired 4001, revoked 4003): fn() may start anew. */
export function onTokenRefused(fn) {
  onRefused = fn;
}

/** Open the stream for a token (closing any earlier one). */
export function start(token) {
  stop();
  stopped = false;
  retries = 0;
  position = null;
  connect(token);
}

export function stop() {
  stopped = true;
  if (socket) socket.close(1000);
  socket = null;
  onState("live view: off");
}

function connect(token) {
  const url = new URL("/chat/realtime", location.origin);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  url.searchParams.set("access_token", token);
  if (position !== null) url.searchParams.set("after", String(position));
  const ws = new WebSocket(url);
  socket = ws;
  onState("live view: connecting");
  ws.addEventListener("message", (message) => {
    let frame;
    try {
      frame = JSON.parse(message.data);
    } catch {
      return;
    }
    if (frame.type === "ping") ws.send(JSON.stringify({ type: "pong" }));
    else if (frame.type === "hello") position = frame.position;
    else if (frame.type === "synced") {
      retries = 0;
      onState("live view: connected");
    } else if (frame.position !== undefined && frame.data) {
      // Every event frame carries the opaque resume token after it (docs/realtime.md).
      if (typeof frame.position === "string" && frame.position) position = frame.position;
      for (const fn of listeners) fn(frame);
    }
  });
  ws.addEventListener("close", (event) => {
    if (socket !== ws) return;
    socket = null;
    // 4001/4003: the token expired or was revoked; a new one is needed.
    if (!stopped && event.code === 4001 && Date.now() - lastRenewal > 10000) {
      lastRenewal = Date.now();  // the token expired: ask for a new one (at most every 10 s)
      onState("live view: renewing the token");
      onRefused();
      return;
    }
    if (stopped || event.code === 4001 || event.code === 4003 || retries >= 5) {
      onState(`live view: closed (${event.code})`);
      return;
    }
    retries += 1;
    onState("live view: reconnecting");
    setTimeout(() => { if (!stopped) connect(token); }, 500 * retries);
  });
}
