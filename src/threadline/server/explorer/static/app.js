// The Explorer: sign-in, navigation, identities, server status, and who the Explorer acts as (webhooks.js: webhooks).

import { admin, ApiError, currentSession, signIn, signOut } from "./api.js";
import { copyButton, field, fill, h, when } from "./dom.js";
import * as live from "./live.js";
import { showThread, showThreads } from "./threads.js";
import { showWebhooks } from "./webhooks.js";

const $ = (id) => document.getElementById(id);

/** Who the Explorer acts as: {userId, token, expiresOn} or null. */
export const acting = { user: null };

export function notify(text) {
  $("notice").textContent = text;
}

/** Run an action, turning a failure into a notice (the server's ACS message). */
export async function attempt(fn) {
  try {
    notify("");
    return await fn();
  } catch (error) {
    notify(error instanceof ApiError ? error.message : `Error: ${error.message || error}`);
    const signedIn = !$("nav").hidden;
    if (error instanceof ApiError && error.status === 401 && error.source === "admin" && signedIn) {
      stopActing();
      showSignIn();
      notify("The session has ended: sign in again.");
    } else if (error instanceof ApiError && error.status === 401 && acting.user) {
      await actAs(acting.user.userId);  // the acting user's token expired or was revoked: get a new one
      notify("The acting user's token was renewed: try again.");
    }
    return undefined;
  }
}

function view(title, ...children) {
  const heading = h("h2", { tabindex: "-1" }, title);
  fill($("view"), heading, ...children);
  heading.focus();
}

/** How many views have been asked for: each loads asynchronously, and only the last one asked for is shown. */
let latest = 0;

/**
 * Start loading a view. Returns the function that shows it (title, then content; true if shown), which
 * shows nothing once another view has been asked for: a slow answer for an earlier click must not
 * replace the view the user went to since. Its ``current()`` tells whether it still may.
 */
export function navigation() {
  const ticket = ++latest;
  const show = (title, ...children) => {
    if (ticket !== latest) return false;
    view(title, ...children);
    return true;
  };
  show.current = () => ticket === latest;
  return show;
}

function showSignIn() {
  latest += 1;  // whatever is still loading is not shown over the sign-in form
  $("sign-in").hidden = false;
  $("nav").hidden = true;
  fill($("view"));
  $("secret").focus();
}

function signedIn() {
  $("sign-in").hidden = true;
  $("nav").hidden = false;
  showIdentities();
}

/** Issue a token for a user (admin API) and act as that user: chat calls and the live view use it. */
export async function actAs(userId) {
  const issued = await attempt(() =>
    admin("POST", `/admin/identities/${encodeURIComponent(userId)}/:issueAccessToken`, {
      scopes: ["chat"], expiresInMinutes: 60,
    }));
  if (!issued) return;
  acting.user = { userId, token: issued.token, expiresOn: issued.expiresOn };
  $("acting-id").textContent = userId;
  $("acting").hidden = false;
  live.start(issued.token);
}

function stopActing() {
  acting.user = null;
  live.stop();
  $("acting").hidden = true;
}

function tokenBox(token, expiresOn) {
  return h("div", { class: "token" },
    h("p", {}, "Token (expires ", h("time", { datetime: expiresOn }, when(expiresOn)), "):"),
    h("code", { class: "secret-text" }, token), copyButton(token, "Copy token"));
}

async function showIdentities(cursor = null, search = "", made = null) {
  const show = navigation();
  const params = new URLSearchParams({ maxPageSize: "25" });
  if (search) params.set("search", search);
  if (cursor) params.set("continuationToken", cursor);
  const page = await attempt(() => admin("GET", `/admin/identities?${params}`));
  if (!page) return;
  const created = h("div", { id: "created", "aria-live": "polite" });
  const createForm = h("form", { class: "inline" },
    h("button", { type: "submit" }, "Create identity with a chat token"));
  createForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const result = await attempt(() => admin("POST", "/admin/identities", {
      createTokenWithScopes: ["chat"], expiresInMinutes: 60,
    }));
    if (result) showIdentities(null, "", result);  // the list now holds it; show its id and token above
  });
  if (made) {
    fill(created, h("p", {}, "Created ", h("code", { class: "new-identity" }, made.identity.id), " ",
      copyButton(made.identity.id, "Copy id")), tokenBox(made.accessToken.token, made.accessToken.expiresOn));
  }
  const [searchLabel, searchInput] = field("identity-search", "Search ids", { type: "search", value: search });
  const searchForm = h("form", { class: "inline", role: "search" }, searchLabel, searchInput,
    h("button", { type: "submit" }, "Search"));
  searchForm.addEventListener("submit", (event) => {
    event.preventDefault();
    showIdentities(null, searchInput.value.trim());
  });
  const rows = page.value.map((user) => {
    const tokenSlot = h("div");
    return h("li", { class: user.deletedOn ? "card deleted" : "card" },
      h("code", {}, user.id),
      h("span", { class: "meta" }, `created ${when(user.createdOn)}`, user.deletedOn ? " · deleted" : ""),
      user.deletedOn ? null : h("span", { class: "actions" },
        h("button", { type: "button", onclick: async () => {
          const issued = await attempt(() => admin("POST",
            `/admin/identities/${encodeURIComponent(user.id)}/:issueAccessToken`, { scopes: ["chat"] }));
          if (issued) fill(tokenSlot, tokenBox(issued.token, issued.expiresOn));
        } }, "Issue token"),
        h("button", { type: "button", onclick: () => actAs(user.id) }, "Act as"),
        h("button", { type: "button", onclick: () => showThreads(null, "", user.id) }, "Their threads")),
      tokenSlot);
  });
  const shown = show("Identities", createForm, created, searchForm,
    rows.length ? h("ul", { class: "list", "aria-label": "Identities" }, rows) : h("p", {}, "No identities."),
    pager(page.nextLink, (next) => showIdentities(next, search)));
  if (shown && made) created.querySelector("button").focus();
}
export { showIdentities };

/** A "Next page" button for a nextLink, or nothing on the last page. */
export function pager(nextLink, go) {
  if (!nextLink) return null;
  const token = new URL(nextLink, location.origin).searchParams.get("continuationToken");
  return h("button", { type: "button", class: "next", onclick: () => go(token) }, "Next page");
}

async function showStatus() {
  const show = navigation();
  const status = await attempt(() => admin("GET", "/admin/status"));
  if (!status) return;
  const pairs = (obj) => h("dl", { class: "pairs" },
    Object.entries(obj).flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, typeof v === "object" ? JSON.stringify(v) : String(v))]));
  show("Server status",
    pairs({ version: status.version, engine: status.engine, eventHub: status.eventHub, workers: status.workers,
      throttle: status.throttle, uptimeSeconds: status.uptimeSeconds }),
    h("h3", {}, "Nodes seen"),
    h("ul", {}, status.nodes.map((n) => h("li", {}, h("code", {}, n.id), n.self ? " (this node)" : ` last seen ${new Date(n.lastSeen * 1000).toLocaleString()}`))),
    h("h3", {}, "Counts"), pairs(status.counts),
    h("h3", {}, "Key metrics (this process)"), pairs(status.metrics),
    h("h3", {}, "Events"), pairs(status.events),
    h("h3", {}, "Limits in force"), pairs(status.limits));
}

async function init() {
  $("sign-in-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const ok = await attempt(() => signIn($("secret").value));
    $("secret").value = "";
    if (ok) signedIn();
  });
  for (const button of document.querySelectorAll("#nav [data-view]")) {
    button.addEventListener("click", () => {
      const name = button.dataset.view;
      if (name === "identities") showIdentities();
      else if (name === "threads") showThreads();
      else if (name === "webhooks") showWebhooks();
      else showStatus();
    });
  }
  $("sign-out").addEventListener("click", async () => {
    await attempt(signOut);
    stopActing();
    showSignIn();
  });
  $("stop-acting").addEventListener("click", stopActing);
  live.onStateChange((text) => { $("live-state").textContent = text; });
  live.onTokenRefused(() => { if (acting.user) actAs(acting.user.userId); });
  const session = await attempt(currentSession);
  if (session) signedIn();
  else showSignIn();
}

export { showThread };
init();
