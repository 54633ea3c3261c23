// Image attachments: read through the ordinary image route with a member's token (the acting user's,
// or one the admin API issues) and shown from blob: URLs; nothing is ever inserted as markup.

import { acting } from "./app.js";
import { admin, imageBlob } from "./api.js";
import { h } from "./dom.js";

/** Tokens the admin API issued to read images: userId -> {token, until (ms)}. */
const issued = new Map();
/** The open thread's images: imageId -> Promise of a blob: URL (revoked when another thread opens). */
let shown = { threadId: null, urls: new Map() };

/** Revoke the blob: URLs of the thread shown until now. */
export function release() {
  for (const pending of shown.urls.values()) pending.then((url) => URL.revokeObjectURL(url), () => {});
  shown = { threadId: null, urls: new Map() };
}

async function tokenOf(userId) {
  if (acting.user && acting.user.userId === userId) return acting.user.token;
  const known = issued.get(userId);
  if (known && known.until > Date.now()) return known.token;
  const made = await admin("POST", `/admin/identities/${encodeURIComponent(userId)}/:issueAccessToken`, {
    scopes: ["chat"], expiresInMinutes: 60,
  });
  issued.set(userId, { token: made.token, until: Date.parse(made.expiresOn) - 60_000 });
  return made.token;
}

/** Who reads an image: the acting user if a member, else the message's sender, else another member. */
function readers(message, memberIds) {
  const sender = message.senderCommunicationIdentifier && message.senderCommunicationIdentifier.rawId;
  const order = acting.user && memberIds.includes(acting.user.userId) ? [acting.user.userId] : [];
  if (sender && memberIds.includes(sender)) order.push(sender);
  return [...new Set([...order, ...memberIds])].slice(0, 3);
}

async function load(threadId, imageId, candidates) {
  let last = new Error("no member of the thread can read it");
  for (const userId of candidates) {
    try {
      return URL.createObjectURL(await imageBlob(await tokenOf(userId), threadId, imageId));
    } catch (error) {
      last = error;  // e.g. outside this member's shared history: try the next one
    }
  }
  throw last;
}

/** The figures showing a message's image attachments (none when it has none). */
export function attachmentFigures(threadId, message, memberIds) {
  if (shown.threadId !== threadId) {
    release();
    shown.threadId = threadId;
  }
  const attachments = (message.content && message.content.attachments) || [];
  return attachments.filter((a) => a.attachmentType === "image").map((a) => {
    const name = a.name || "image";
    const img = h("img", { class: "attachment", alt: name });
    const caption = h("figcaption", {}, name);
    if (!shown.urls.has(a.id)) {
      const pending = load(threadId, a.id, readers(message, memberIds));
      pending.catch(() => shown.urls.get(a.id) === pending && shown.urls.delete(a.id));  // retry on a later render
      shown.urls.set(a.id, pending);
    }
    shown.urls.get(a.id).then((url) => { img.src = url; }, (error) => {
      img.remove();
      caption.textContent = `${name} (not shown: ${error.message})`;
    });
    return h("figure", { class: "attachment", dataset: { imageId: a.id } }, img, caption);
  });
}
