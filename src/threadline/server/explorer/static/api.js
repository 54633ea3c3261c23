// The Explorer's calls: the admin API with the session cookie (+ CSRF header), the chat API as a user.

export const ADMIN_VERSION = "2026-11-28";
export const CHAT_VERSION = "2025-03-15";
/** The api-version of the image routes and of message attachments. */
export const IMAGE_VERSION = "2024-06-05-preview";

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
  if (!response.ok) throw failure(response, data, url);
  return data;
}

function failure(response, data, url) {
  const error = (data && data.error) || {};
  const source = url.pathname.startsWith("/admin/") ? "admin" : "chat";
  return new ApiError(response.status, error.code || "Error", error.message || response.statusText, source);
}

function imagesPath(threadId) {
  return `/chat/threads/${encodeURIComponent(threadId)}/images`;
}

/** Upload a file to a thread as a user (the ordinary image route); returns {id, attachmentType, name}. */
export async function uploadImage(token, threadId, file) {
  const url = new URL(imagesPath(threadId), location.origin);
  url.searchParams.set("api-version", IMAGE_VERSION);
  // A header value must be ASCII: other characters of the name become "_".
  const name = Array.from(file.name || "image", (ch) => (ch >= " " && ch <= "~" ? ch : "_")).join("");
  const response = await fetch(url, { method: "POST", body: file, credentials: "same-origin", headers: {
    Authorization: `Bearer ${token}`, "Content-Type": "application/octet-stream", "image-filename": name } });
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) throw failure(response, data, url);
  return data;
}

/** An image of a thread as a Blob, read as a user (the ordinary image route and its rules). */
export async function imageBlob(token, threadId, imageId) {
  const url = new URL(`${imagesPath(threadId)}/${encodeURIComponent(imageId)}/view/original`, location.origin);
  url.searchParams.set("api-version", IMAGE_VERSION);
  const response = await fetch(url, { headers: { Authorization: `Bearer ${token}` }, credentials: "same-origin" });
  if (!response.ok) {
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = null; }
    throw failure(response, data, url);
  }
  return response.blob();
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
