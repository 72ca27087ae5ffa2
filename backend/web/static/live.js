// Live incident changes: one Server-Sent Events connection per tab (GET /api/v1/live/incidents), shared by every
// page that subscribes, reconnecting with a growing pause after a drop. Its state shows in the header.

import { ApiError, openEventStream } from "./api.js";
import { readEventStream } from "./sse.js";

const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 15000;
const IDLE_CLOSE_MS = 10000; // a page change keeps the stream: the next page subscribes within this time

const listeners = new Set();
const stateListeners = new Set();
let controller = null;
let state = "off"; // off | connecting | live | reconnecting
let retryTimer = null;
let retryMs = RETRY_MIN_MS;
let idleTimer = null;

function setState(next) {
  if (state !== next) {
    state = next;
    stateListeners.forEach((listener) => listener(state));
  }
}

export function liveState() {
  return state;
}

// Call `listener(state)` whenever the connection state changes.
export function onLiveStateChange(listener) {
  stateListeners.add(listener);
}

function deliver(name, data) {
  if (name === "ready") {
    retryMs = RETRY_MIN_MS;
    setState("live");
  } else if (name === "incident" || name === "resync") {
    listeners.forEach((listener) => listener(name === "resync" ? { event: "resync" } : data));
  }
}

async function connect() {
  controller = new AbortController();
  const mine = controller;
  setState(state === "live" || state === "reconnecting" ? "reconnecting" : "connecting");
  try {
    const response = await openEventStream("/live/incidents", mine.signal);
    await readEventStream(response, deliver);
  } catch (error) {
    if (error.name === "AbortError" || mine.signal.aborted) {
      return;
    }
    if (error instanceof ApiError && error.status === 401) {
      stop(); // the session ended; the login form takes over
      return;
    }
  }
  if (mine.signal.aborted || listeners.size === 0) {
    return;
  }
  // The stream ended (server timeout, restart, network): try again, the page reloads what it shows.
  setState("reconnecting");
  listeners.forEach((listener) => listener({ event: "resync" }));
  retryTimer = window.setTimeout(() => {
    retryTimer = null;
    connect();
  }, retryMs);
  retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
}

function stop() {
  if (retryTimer !== null) {
    window.clearTimeout(retryTimer);
    retryTimer = null;
  }
  if (controller) {
    controller.abort();
    controller = null;
  }
  retryMs = RETRY_MIN_MS;
  setState("off");
}

// Receive every incident change ({event, incident_id, status, priority, area, at}, or {event: "resync"} when
// changes may have been missed) until the returned function is called.
export function subscribeLive(listener) {
  listeners.add(listener);
  if (idleTimer !== null) {
    window.clearTimeout(idleTimer);
    idleTimer = null;
  }
  if (state === "off") {
    connect();
  }
  return () => {
    listeners.delete(listener);
    if (listeners.size === 0 && idleTimer === null) {
      idleTimer = window.setTimeout(() => {
        idleTimer = null;
        if (listeners.size === 0) {
          stop();
        }
      }, IDLE_CLOSE_MS);
    }
  };
}
