// Every request the page makes goes through here: the token, the
// X-Requested-With header the server's cross-site rule wants, JSON errors,
// and the offline signal. A fetch that fails is the offline signal
// (navigator.onLine === true proves nothing on a LAN); the browser's
// "online" event is only a hint to try again.

export class HttpError extends Error {
  constructor(status, errorClass, message) {
    super(message);
    this.status = status;
    this.errorClass = errorClass;
  }
}

export class OfflineError extends Error {}

const listeners = new Set();
let token = null; // kept in this tab's memory only
let offline = false;
let asking = null; // the pending token prompt, shared by every request that needs it
let askForToken = async () => null;

export function isOffline() {
  return offline;
}

export function onOfflineChange(listener) {
  listeners.add(listener);
}

export function setOffline(value) {
  if (value === offline) return;
  offline = value;
  for (const listener of listeners) listener(offline);
}

// prompt(wasRefused) resolves to the token the user typed.
export function setTokenPrompt(prompt) {
  askForToken = prompt;
}

function headers(extra) {
  const h = { "X-Requested-With": "nllb-pipeline-page", ...extra };
  if (token) h.Authorization = `Bearer ${token}`;
  return h;
}

async function needToken() {
  if (!asking) {
    asking = askForToken(token !== null).then((given) => {
      token = given;
      asking = null;
    });
  }
  return asking;
}

// request(path, {method, body, json, etag, raw}) -> {status, etag, data} or the
// Response itself with raw. Throws HttpError with the server's error class
// and message, or OfflineError when the server cannot be reached.
export async function request(path, options = {}) {
  const { method = "GET", body, json = false, etag, raw = false } = options;
  if (navigator.onLine === false) {
    setOffline(true);
    throw new OfflineError("offline");
  }
  let response;
  try {
    response = await fetch(path, {
      method, body, cache: "no-store",
      headers: headers({ ...(etag ? { "If-None-Match": etag } : {}),
        ...(json ? { "Content-Type": "application/json" } : {}) }),
    });
  } catch (error) {
    setOffline(true);
    throw new OfflineError(String(error));
  }
  setOffline(false);
  if (response.status === 401) {
    await needToken();
    return request(path, options);
  }
  if (response.status === 304) return { status: 304, etag };
  if (!response.ok) {
    let error = null;
    try {
      error = (await response.json()).error;
    } catch (_) { /* not JSON: a proxy's page */ }
    throw new HttpError(response.status, error ? error.class : "http",
      error ? error.message : `${response.status} ${response.statusText}`);
  }
  if (raw) return response;
  return { status: response.status, etag: response.headers.get("ETag"), data: await response.json() };
}

// A Server-Sent Events stream read with fetch (EventSource cannot send the
// token). Calls onJob(view) per "job" event and onEnd(error) when the
// stream stops by itself; returns a function that closes it.
export function openStream(path, onJob, onEnd) {
  const control = new AbortController();
  (async () => {
    try {
      const response = await fetch(path, { headers: headers({}), signal: control.signal,
                                            cache: "no-store" });
      if (!response.ok || !response.body) throw new Error(`events: ${response.status}`);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let event = "message";
          const data = [];
          for (const line of block.split("\n")) {
            if (line.startsWith("event:")) event = line.slice(6).trim();
            else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
          }
          if (event === "job" && data.length) onJob(JSON.parse(data.join("\n")));
        }
      }
      onEnd(new Error("the event stream ended"));
    } catch (error) {
      if (!control.signal.aborted) onEnd(error);
    }
  })();
  return () => control.abort();
}
