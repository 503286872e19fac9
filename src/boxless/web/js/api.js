// The local API: token, JSON calls in the API's error shape, the event WebSocket.
//
// The token arrives once as ?token= in the URL `boxless up` printed. It is kept
// in sessionStorage (this tab only) and removed from the address bar, so it
// does not end up in history or bookmarks.

const TOKEN_KEY = "boxless.token";

export function takeTokenFromUrl() {
  const url = new URL(location.href);
  const token = url.searchParams.get("token");
  if (token) {
    sessionStorage.setItem(TOKEN_KEY, token);
    url.searchParams.delete("token");
    history.replaceState(history.state, "", url.pathname + url.search + url.hash);
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

/** An API failure: `status`, a stable `code` and a message for people. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const listeners = { unauthorized: [] };
export function onUnauthorized(fn) {
  listeners.unauthorized.push(fn);
}

/** Call the API: `call("POST", "/contacts", {link})`; JSON in, JSON (or null) out. */
export async function call(method, path, body, { raw = null, type = null } = {}) {
  const headers = { Authorization: `Bearer ${token() || ""}` };
  let payload;
  if (raw !== null) {
    payload = raw;
    headers["Content-Type"] = type || "application/octet-stream";
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(`/api/v1${path}`, { method, headers, body: payload, cache: "no-store" });
  } catch (err) {
    throw new ApiError(0, "unreachable", "Boxless is not answering: is `boxless up` running?");
  }
  if (response.status === 401) listeners.unauthorized.forEach((fn) => fn());
  if (!response.ok) {
    let code = "http_" + response.status;
    let message = response.statusText || "request failed";
    try {
      const data = await response.json();
      code = data.error.code;
      message = data.error.message;
    } catch (_) {
      /* not our error shape */
    }
    throw new ApiError(response.status, code, message);
  }
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

/** An image from the API as an object URL (images need the token header too). */
export async function imageUrl(path) {
  const response = await fetch(`/api/v1${path}`, {
    headers: { Authorization: `Bearer ${token() || ""}` },
    cache: "no-store",
  });
  if (!response.ok) throw new ApiError(response.status, "image", "could not load the image");
  return URL.createObjectURL(await response.blob());
}

/**
 * Keep the event WebSocket open: `onEvent(event)` for each event, `onState(open)`
 * when it opens or drops. Reconnects with backoff (1 s doubling to 10 s).
 */
export function connectEvents(onEvent, onState) {
  let delay = 1000;
  let socket = null;
  let stopped = false;
  const open = () => {
    if (stopped) return;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const url = `${scheme}://${location.host}/api/v1/events?token=${encodeURIComponent(token() || "")}`;
    socket = new WebSocket(url);
    socket.onopen = () => {
      delay = 1000;
      onState(true);
    };
    socket.onmessage = (msg) => {
      try {
        onEvent(JSON.parse(msg.data));
      } catch (err) {
        console.error("bad event", err);
      }
    };
    socket.onclose = (ev) => {
      onState(false);
      if (ev.code === 4401) {
        listeners.unauthorized.forEach((fn) => fn());
        return;
      }
      // A refused handshake looks like any drop (1006): ask over HTTP, which
      // reports a stale token (a restarted `boxless up` has a new one) as 401.
      call("GET", "/status").catch(() => {});
      setTimeout(open, delay);
      delay = Math.min(delay * 2, 10000);
    };
  };
  open();
  return () => {
    stopped = true;
    if (socket) socket.close();
  };
}
