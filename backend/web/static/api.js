// The API client: bearer tokens (memory + sessionStorage), one refresh on 401, errors as ApiError.

const API_BASE = "/api/v1";
const TOKENS_KEY = "prs.tokens";

// The API's error shape {"error", "detail", "field"} as a JavaScript error.
export class ApiError extends Error {
  constructor(status, body) {
    super(body.detail || body.error || `HTTP ${status}`);
    this.status = status;
    this.kind = body.error || "HTTPError";
    this.detail = body.detail || "";
    this.field = body.field || null;
  }
}

// A fetch that never reached the server.
export class NetworkError extends Error {}

let tokens = readStoredTokens();
let refreshInFlight = null;
let sessionEndedListener = () => {};
let connectivityListener = () => {};

function readStoredTokens() {
  try {
    const stored = JSON.parse(window.sessionStorage.getItem(TOKENS_KEY) || "null");
    return stored && stored.access_token && stored.refresh_token ? stored : null;
  } catch (error) {
    return null;
  }
}

function storeTokens(pair) {
  tokens = pair ? { access_token: pair.access_token, refresh_token: pair.refresh_token } : null;
  if (tokens) {
    window.sessionStorage.setItem(TOKENS_KEY, JSON.stringify(tokens));
  } else {
    window.sessionStorage.removeItem(TOKENS_KEY);
  }
}

export function isLoggedIn() {
  return tokens !== null;
}

// Called with false when a request cannot reach the server, and with true when one reaches it again.
export function onConnectivityChange(listener) {
  connectivityListener = listener;
}

// Called once whenever the session cannot be continued (refresh failed).
export function onSessionEnded(listener) {
  sessionEndedListener = listener;
}

async function parseError(response) {
  let body = {};
  try {
    body = await response.json();
  } catch (error) {
    body = { error: "HTTPError", detail: response.statusText };
  }
  return new ApiError(response.status, body);
}

async function sendRaw(url, init) {
  try {
    const response = await fetch(url, init);
    connectivityListener(true);
    return response;
  } catch (error) {
    if (error.name === "AbortError") {
      throw error;
    }
    connectivityListener(false);
    throw new NetworkError(error.message);
  }
}

// Rotate the refresh token; concurrent callers share one attempt (a refresh token works only once).
function refreshTokens() {
  if (!refreshInFlight) {
    const refreshToken = tokens ? tokens.refresh_token : null;
    refreshInFlight = (async () => {
      if (!refreshToken) {
        return false;
      }
      const response = await sendRaw(`${API_BASE}/auth/refresh`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ refresh_token: refreshToken }),
      });
      if (!response.ok) {
        storeTokens(null);
        return false;
      }
      storeTokens(await response.json());
      return true;
    })().finally(() => {
      refreshInFlight = null;
    });
  }
  return refreshInFlight;
}

function buildUrl(path, query) {
  const url = new URL(`${API_BASE}${path}`, window.location.origin);
  Object.entries(query || {}).forEach(([name, value]) => {
    const values = Array.isArray(value) ? value : [value];
    values.filter((v) => v !== null && v !== undefined && v !== "").forEach((v) => url.searchParams.append(name, v));
  });
  return url.toString();
}

// Send an authorized request; on 401 refresh the tokens once and try again.
// `json` sends a JSON body; `body` sends a FormData (multipart upload) as it is.
async function sendAuthorized(path, { method = "GET", query, json, body, headers = {}, signal } = {}) {
  const url = buildUrl(path, query);
  const attempt = () => {
    const allHeaders = { ...headers };
    if (tokens) {
      allHeaders.Authorization = `Bearer ${tokens.access_token}`;
    }
    const init = { method, headers: allHeaders, signal };
    if (json !== undefined) {
      allHeaders["Content-Type"] = "application/json";
      init.body = JSON.stringify(json);
    } else if (body !== undefined) {
      init.body = body;
    }
    return sendRaw(url, init);
  };
  let response = await attempt();
  if (response.status === 401 && tokens) {
    if (await refreshTokens()) {
      response = await attempt();
    }
  }
  if (response.status === 401) {
    storeTokens(null);
    sessionEndedListener();
  }
  return response;
}

// JSON request to the API; resolves to the parsed body (null for 204) or throws ApiError / NetworkError.
export async function apiRequest(path, options = {}) {
  const response = await sendAuthorized(path, options);
  if (!response.ok) {
    throw await parseError(response);
  }
  return response.status === 204 ? null : response.json();
}

// An authorized streaming response (Server-Sent Events) for the caller to read; throws on an error status.
export async function openEventStream(path, signal) {
  const response = await sendAuthorized(path, { headers: { Accept: "text/event-stream" }, signal });
  if (!response.ok) {
    throw await parseError(response);
  }
  return response;
}

export async function logIn(username, password) {
  const form = new URLSearchParams({ username, password });
  const response = await sendRaw(`${API_BASE}/auth/token`, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: form.toString(),
  });
  if (!response.ok) {
    throw await parseError(response);
  }
  storeTokens(await response.json());
}

export async function logOut() {
  const refreshToken = tokens ? tokens.refresh_token : null;
  storeTokens(null);
  if (refreshToken) {
    await sendRaw(`${API_BASE}/auth/logout`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ refresh_token: refreshToken }),
    }).catch(() => null); // best effort: the local session is already gone either way
  }
}
