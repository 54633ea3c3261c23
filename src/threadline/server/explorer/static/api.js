// The Explorer's calls: the admin API with the session cookie (+ CSRF header), the chat API as a user.

export const ADMIN_VERSION = "2026-11-28";
export const CHAT_VERSION = "2025-03-15";

let csrf = "";

/** An error answered by the server, with its ACS code. */
export class ApiError extends Error {
  constructor(status, code, message, source) {
    super(`${status} ${code}: ${message}`);
    this.status = status;
    this.code = code;
    this.source = source;
  }
}

async function call(method, path, { body, headers = {}, version } = {}) {
  const url = new URL(path, location.origin);
  if (!url.searchParams.has("api-version")) url.searchParams.set("api-version", version);
  const init = { method, headers: { ...headers }, credentials: "same-origin" };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(url, init);
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) {
    const error = (data && data.error) || {};
    const source = url.pathname.startsWith("/admin/") ? "admin" : "chat";
    throw new ApiError(response.status, error.code || "Error", error.message || response.statusText, source);
  }
  return data;
}

/** The admin API, authorised by the session; state-changing calls carry the CSRF token. */
export function admin(method, path, body) {
  const headers = method === "GET" ? {} : { "X-Threadline-CSRF": csrf };
  return call(method, path, { body, headers, version: ADMIN_VERSION });
}

export async function signIn(secret) {
  const text = secret.trim();
  const body = text.toLowerCase().includes("accesskey=") ? { connectionString: text } : { accessKey: text };
  const session = await call("POST", "/admin/session", { body, version: ADMIN_VERSION });
  csrf = session.csrfToken;
  return session;
}

/** The current session, or null when not signed in. */
export async function currentSession() {
  try {
    const session = await call("GET", "/admin/session", { version: ADMIN_VERSION });
    csrf = session.csrfToken;
    return session;
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return null;
    throw error;
  }
}

export async function signOut() {
  await admin("DELETE", "/admin/session");
  csrf = "";
}

/** The chat API as a user: the ordinary routes and rules, with that user's token. */
export function chat(token, method, path, body) {
  return call(method, path, { body, headers: { Authorization: `Bearer ${token}` }, version: CHAT_VERSION });
}

/** The identifier body the chat API takes for a user id. */
export function identifier(rawId) {
  return { rawId, communicationUser: { id: rawId } };
}
