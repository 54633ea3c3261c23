// Threads: the resource-wide list (admin API), one thread, and acting in it as a user (chat API).

import { acting, actAs, attempt, navigation, notify, pager } from "./app.js";
import { admin, chat, identifier, IMAGE_VERSION, uploadImage } from "./api.js";
import { field, fill, h, htmlText, when } from "./dom.js";
import { attachmentFigures, release } from "./images.js";
import * as live from "./live.js";

let unsubscribe = () => {};

function who(ident) {
  // The REST shape ({rawId, communicationUser: {id}}) or the real-time one ({kind, communicationUserId}).
  return ident ? ident.rawId || (ident.communicationUser && ident.communicationUser.id)
    || ident.communicationUserId || "?" : "system";
}

export async function showThreads(cursor = null, topic = "", member = "") {
  const show = navigation();
  unsubscribe();
  const params = new URLSearchParams({ maxPageSize: "25" });
  if (topic) params.set("topic", topic);
  if (member) params.set("member", member);
  if (cursor) params.set("continuationToken", cursor);
  const page = await attempt(() => admin("GET", `/admin/threads?${params}`));
  if (!page) return;
  const [topicLabel, topicInput] = field("thread-topic", "Topic contains", { type: "search", value: topic });
  const [memberLabel, memberInput] = field("thread-member", "Member id contains", { type: "search", value: member });
  const search = h("form", { class: "inline", role: "search" }, topicLabel, topicInput, memberLabel, memberInput,
    h("button", { type: "submit" }, "Search"));
  search.addEventListener("submit", (event) => {
    event.preventDefault();
    showThreads(null, topicInput.value.trim(), memberInput.value.trim());
  });
  const [newLabel, newInput] = field("new-topic", "New thread topic", { required: true, maxlength: 512 });
  const create = h("form", { class: "inline" }, newLabel, newInput,
    h("button", { type: "submit" }, "Create thread as the acting user"));
  create.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!requireActing()) return;
    const me = acting.user.userId;
    const made = await attempt(() => chat(acting.user.token, "POST", "/chat/threads", {
      topic: newInput.value, participants: [{ communicationIdentifier: identifier(me), displayName: "Explorer" }],
    }));
    if (made) showThread(made.chatThread.id);
  });
  const rows = page.value.map((t) => h("li", { class: t.deletedOn ? "card deleted" : "card" },
    h("button", { type: "button", class: "link", onclick: () => showThread(t.id) }, t.topic || "(no topic)"),
    h("span", { class: "meta" }, `${t.participantCount} members · last activity ${when(t.lastMessageReceivedOn)}`,
      t.deletedOn ? " · deleted" : ""),
    h("code", { class: "small" }, t.id)));
  show("Threads", search, create,
    rows.length ? h("ul", { class: "list", "aria-label": "Threads" }, rows) : h("p", {}, "No threads."),
    pager(page.nextLink, (next) => showThreads(next, topic, member)));
}

function requireActing() {
  if (acting.user) return true;
  notify("Choose a user to act as first (Identities → Act as, or the field below).");
  return false;
}

function describe(m) {
  const c = m.content || {};
  if (m.deletedOn) return `(deleted ${when(m.deletedOn)})`;
  switch (m.type) {
    case "text": return c.message || "";
    case "html": return htmlText(c.message || "");
    case "topicUpdated": return `Topic set to "${c.topic || ""}" by ${who(c.initiatorCommunicationIdentifier)}`;
    case "participantAdded":
      return `Added ${(c.participants || []).map((p) => who(p.communicationIdentifier)).join(", ")}`;
    case "participantRemoved":
      return `Removed ${(c.participants || []).map((p) => who(p.communicationIdentifier)).join(", ")}`;
    default: return `${m.type}`;
  }
}

function messageItem(threadId, m, refresh, memberIds) {
  const user = m.type === "text" || m.type === "html";
  const mine = acting.user && m.senderCommunicationIdentifier && who(m.senderCommunicationIdentifier) === acting.user.userId;
  const body = h("p", { class: "body" }, describe(m));
  const actions = user && !m.deletedOn && mine ? h("span", { class: "actions" },
    h("button", { type: "button", onclick: () => {
      const [label, input] = field(`edit-${m.id}`, "New text", { value: m.content.message || "" });
      const form = h("form", { class: "inline" }, label, input, h("button", { type: "submit" }, "Save"));
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        const path = `/chat/threads/${encodeURIComponent(threadId)}/messages/${m.id}`;
        if (await attempt(() => chat(acting.user.token, "PATCH", path, { content: input.value })) !== undefined) refresh();
      });
      body.replaceWith(form);
      input.focus();
    } }, "Edit"),
    h("button", { type: "button", onclick: async () => {
      const path = `/chat/threads/${encodeURIComponent(threadId)}/messages/${m.id}`;
      if (await attempt(() => chat(acting.user.token, "DELETE", path)) !== undefined) refresh();
    } }, "Delete")) : null;
  return h("li", { class: `msg ${user ? "user" : "system"}${m.deletedOn ? " deleted" : ""}`, dataset: { id: m.id } },
    h("span", { class: "meta" }, `#${m.sequenceId} · ${m.senderDisplayName || who(m.senderCommunicationIdentifier)} · `,
      h("time", { datetime: m.createdOn }, when(m.createdOn)), m.editedOn ? ` · edited ${when(m.editedOn)}` : "",
      ` · ${m.type}`),
    body, attachmentFigures(threadId, m, memberIds), actions);
}

export async function showThread(threadId, cursor = null) {
  const show = navigation();
  unsubscribe();
  const base = `/admin/threads/${encodeURIComponent(threadId)}`;
  const detail = await attempt(() => admin("GET", base));
  if (!detail) return;
  const messagesList = h("ol", { class: "messages", "aria-label": "Messages, newest first" });
  const more = h("div");
  const events = h("ol", { class: "events", "aria-label": "Live events", "aria-live": "polite" });
  const refresh = () => reloadMessages();
  const log = eventLog(threadId);
  for (const line of log) events.append(h("li", { class: "event" }, line));

  let generation = 0;
  async function loadMessages(next, replace) {
    const mine = replace ? ++generation : generation;
    const params = new URLSearchParams({ maxPageSize: "50" });
    if (next) params.set("continuationToken", next);
    const page = await attempt(() => admin("GET", `${base}/messages?${params}`));
    // not shown any more (the user went elsewhere): build nothing, so no image of it is fetched and
    // the images of the thread now shown stay (attachmentFigures releases another thread's)
    if (!page || mine !== generation || !show.current()) return;
    const items = page.value.map((m) => messageItem(threadId, m, refresh, memberIds));
    if (replace) messagesList.replaceChildren(...items);
    else messagesList.append(...items);
    fill(more, pager(page.nextLink, (token) => loadMessages(token, false)));
  }

  const t = detail.thread;
  const participants = h("ul", { class: "list", "aria-label": "Participants" });
  const receipts = h("ul", { class: "list", "aria-label": "Read receipts" });
  const memberCount = h("span", {}, `${t.participantCount}`);
  let memberIds = [];

  function showDetail(d) {
    memberCount.textContent = `${d.thread.participantCount}`;
    memberIds = d.participants.map((p) => who(p.communicationIdentifier));
    fill(participants, d.participants.map((p) => {
      const id = who(p.communicationIdentifier);
      return h("li", { class: "card" }, h("code", {}, id), p.displayName ? ` ${p.displayName}` : "",
        h("span", { class: "actions" },
          h("button", { type: "button", onclick: () => actAs(id) }, "Act as"),
          h("button", { type: "button", onclick: async () => {
            if (!requireActing()) return;
            const path = `/chat/threads/${encodeURIComponent(threadId)}/participants/:remove`;
            if (await attempt(() => chat(acting.user.token, "POST", path, identifier(id))) !== undefined) reloadAll();
          } }, "Remove")));
    }));
    fill(receipts, d.readReceipts.length ? d.readReceipts.map((r) =>
      h("li", {}, h("code", {}, who(r.senderCommunicationIdentifier)), ` read ${r.chatMessageId} at ${when(r.readOn)}`))
      : h("li", {}, "None."));
  }

  async function reloadDetail() {
    const fresh = await attempt(() => admin("GET", base));
    if (fresh) showDetail(fresh);
  }

  function reloadMessages() {
    return loadMessages(null, true);
  }

  function reloadAll() {
    reloadDetail();
    reloadMessages();
  }

  const [addLabel, addInput] = field("add-id", "User id to add", { required: true });
  const [nameLabel, nameInput] = field("add-name", "Display name");
  const addForm = h("form", { class: "inline" }, addLabel, addInput, nameLabel, nameInput,
    h("button", { type: "submit" }, "Add participant"));
  addForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!requireActing()) return;
    const body = { participants: [{ communicationIdentifier: identifier(addInput.value.trim()),
      displayName: nameInput.value.trim() || undefined }] };
    const path = `/chat/threads/${encodeURIComponent(threadId)}/participants/:add`;
    const result = await attempt(() => chat(acting.user.token, "POST", path, body));
    if (result && result.invalidParticipants) notify(`Not added: ${JSON.stringify(result.invalidParticipants)}`);
    else if (result) reloadAll();
  });

  const [sendLabel, sendInput] = field("send-text", "Message", { required: true, autocomplete: "off" });
  const [fileLabel, fileInput] = field("send-image", "Attach an image",
    { type: "file", accept: "image/png,image/jpeg,image/gif,image/webp,image/heic" });
  const sendForm = h("form", { class: "inline compose" }, sendLabel, sendInput, fileLabel, fileInput,
    h("button", { type: "submit" }, "Send"));
  sendForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!requireActing()) return;
    const file = fileInput.files[0];
    const sent = await attempt(async () => {
      const body = { content: sendInput.value, type: "text" };
      let path = `/chat/threads/${encodeURIComponent(threadId)}/messages`;
      if (file) {  // upload first (the image route), then send the message that attaches it
        const image = await uploadImage(acting.user.token, threadId, file);
        body.attachments = [{ id: image.id, attachmentType: "image", name: image.name }];
        path += `?api-version=${IMAGE_VERSION}`;
      }
      return chat(acting.user.token, "POST", path, body);
    });
    if (sent) {
      sendInput.value = "";
      fileInput.value = "";
      refresh();
    }
  });

  const shown = show(t.topic || "(no topic)",
    h("p", { class: "meta" }, h("code", {}, t.id), ` · created ${when(t.createdOn)} by ${who(t.createdBy)}`,
      t.deletedOn ? ` · deleted ${when(t.deletedOn)}` : "", ` · ${t.participantCount} members`),
    acting.user ? null : h("p", { class: "hint" }, "Act as a participant to send, edit, delete and see live events."),
    h("h3", {}, "Send as the acting user"), sendForm,
    h("h3", {}, "Live events (acting user's stream)"), events,
    h("h3", {}, "Messages"), messagesList, more,
    h("h3", {}, "Participants (", memberCount, ")"), participants, addForm,
    h("h3", {}, "Read receipts"), receipts);
  if (!shown) return;  // the user went elsewhere while it loaded
  showDetail(detail);
  await loadMessages(cursor, true);
  if (!show.current()) return;  // ... or while its messages loaded: no live events for a view not shown

  const off = live.onEvent((frame) => {
    if (frame.data.threadId !== threadId) return;
    const data = frame.data;
    const html = data.type === "html" || data.type === "RichText/Html";
    const text = data.message !== undefined ? `: ${html ? htmlText(data.message) : data.message}` : "";
    const line = `${frame.type} from ${who(data.sender)}${text}`;
    log.unshift(line);
    log.length = Math.min(log.length, 50);
    events.prepend(h("li", { class: "event" }, line));
    if (frame.type.startsWith("chatMessage")) reloadMessages();
    else if (frame.type.startsWith("participants") || frame.type === "readReceiptReceived") reloadAll();
  });
  unsubscribe = () => {
    off();
    release();
  };
}

const logs = new Map();

/** The last live events seen for a thread (kept while the page lives, so a re-render keeps them). */
function eventLog(threadId) {
  if (!logs.has(threadId)) logs.set(threadId, []);
  return logs.get(threadId);
}
