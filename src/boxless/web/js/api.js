// The local API: the session, JSON calls in the API's error shape, the event WebSocket.
//
// The browser's login is an HttpOnly session cookie (see docs/security.md, "Web
// sessions"): script never sees it, and it outlives the tab, the browser and a
// node restart. The link `boxless up` prints carries a token (?token=) that is
// traded for the cookie at once and removed from the address bar, so it does not
// end up in history or bookmarks; nothing is kept in Web Storage. Without a
// session, or while the node is locked, the lock screen asks for the passphrase.

const OLD_TOKEN_KEY = "boxless.token"; // where this page kept the token before sessions

/**
 * Trade a ?token= in the address bar for a session cookie. Returns true when a
 * session was opened, false when there was no token; throws ApiError if the
 * token was refused (e.g. the link of an earlier run of `boxless up`).
 */
export async function startSession() {
  sessionStorage.removeItem(OLD_TOKEN_KEY);
  const url = new URL(location.href);
  const token = url.searchParams.get("token");
  if (!token) return false;
  url.searchParams.delete("token");
  history.replaceState(history.state, "", url.pathname + url.search + url.hash);
  await request("POST", "/session", { headers: { Authorization: `Bearer ${token}` } });
  return true;
}

/** Open a session with the account's passphrase (also unlocks a locked node). */
export function unlock(passphrase) {
  return call("POST", "/session/unlock", { passphrase });
}

/** End this browser's session (`everywhere`: every browser's). */
export function logout(everywhere = false) {
  return call("DELETE", everywhere ? "/sessions" : "/session");
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
/** `fn(reason)` when the API stops letting us in: "unauthorized" (no or an ended
 * session) or "locked" (the node restarted without its passphrase). */
export function onUnauthorized(fn) {
  listeners.unauthorized.push(fn);
}

function refused(status) {
  const reason = status === 401 ? "unauthorized" : status === 423 ? "locked" : null;
  if (reason) listeners.unauthorized.forEach((fn) => fn(reason));
}

async function request(method, path, { headers = {}, body } = {}) {
  let response;
  try {
    response = await fetch(`/api/v1${path}`, {
      method,
      headers,
      body,
      cache: "no-store",
      credentials: "same-origin",
    });
  } catch (err) {
    throw new ApiError(0, "unreachable", "Boxless is not answering: is `boxless up` running?");
  }
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
  return response;
}

/** Call the API: `call("POST", "/contacts", {link})`; JSON in, JSON (or null) out. */
export async function call(method, path, body, { raw = null, type = null } = {}) {
  const headers = {};
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
    response = await request(method, path, { headers, body: payload });
  } catch (err) {
    if (err instanceof ApiError) refused(err.status);
    throw err;
  }
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

/** An image from the API as an object URL. */
export async function imageUrl(path) {
  let response;
  try {
    response = await request("GET", path);
  } catch (err) {
    if (err instanceof ApiError) refused(err.status);
    throw new ApiError(err.status || 0, "image", "could not load the image");
  }
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
    socket = new WebSocket(`${scheme}://${location.host}/api/v1/events`); // the cookie goes along
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
      if (ev.code === 4401 || ev.code === 4423) {
        refused(ev.code - 4000);
        return;
      }
      // A refused handshake looks like any drop (1006): ask over HTTP, which
      // reports an ended session as 401 and a node restarted locked as 423.
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
