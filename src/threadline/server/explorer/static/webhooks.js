// Webhooks: the subscriptions of /admin/webhooks (list, add, remove), their dead letters and replay.

import { attempt, navigation } from "./app.js";
import { admin } from "./api.js";
import { field, fill, h, when } from "./dom.js";

const BASE = "/admin/webhooks";
const STATUS = { pending: "pending validation", active: "active" };

function subPath(id, rest = "") {
  return `${BASE}/${encodeURIComponent(id)}${rest}`;
}

/** A definition list of [term, value] pairs; every value is text. */
function pairs(entries) {
  return h("dl", { class: "pairs" }, entries.flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]));
}

function metricsText(metrics) {
  const names = Object.keys(metrics || {});
  if (!names.length) return "none on this node (another node may deliver it)";
  return names.map((name) => `${name} ${metrics[name]}`).join(" · ");
}

function subscriptionCard(sub, status) {
  const state = STATUS[sub.status] || sub.status;
  return h("li", { class: "card webhook" },
    h("code", { class: "url" }, sub.url),
    h("span", { class: `state ${sub.status}` }, state),
    pairs([
      ["id", sub.id],
      ["schema", sub.schema],
      ["event types", sub.events && sub.events.length ? sub.events.join(", ") : "all"],
      ["subject prefix", sub.subjectPrefix || "(any)"],
      ["batch size", String(sub.batchSize)],
      ["secret", sub.hasSecret ? "set (HMAC signature header sent)" : "none"],
      ["retries", `${sub.maxDeliveryAttempts} attempts, ${sub.eventTimeToLiveInMinutes} min to live`],
      ["position", sub.cursor === null || sub.cursor === undefined ? "-" : String(sub.cursor)],
      ["delivered by", sub.deliverer || "(no node holds it now)"],
      ["metrics", metricsText(sub.metrics)],
    ]),
    h("span", { class: "actions" },
      h("button", { type: "button", onclick: () => showDeadLetters(sub) }, "Dead letters"),
      h("button", { type: "button", class: "danger", "aria-label": `Remove ${sub.url}`, onclick: async () => {
        const gone = await attempt(() => admin("DELETE", subPath(sub.id)));
        if (gone !== undefined) showWebhooks(`Removed ${sub.url}.`);
      } }, "Remove")));
}

function addForm() {
  const [urlLabel, urlInput] = field("hook-url", "Receiver URL", { type: "url", required: true,
    placeholder: "https://example.com/api/events" });
  const schema = h("select", { id: "hook-schema", name: "hook-schema" },
    h("option", { value: "eventgrid" }, "Event Grid"), h("option", { value: "cloudevents" }, "CloudEvents 1.0"));
  const [eventsLabel, eventsInput] = field("hook-events", "Event types (comma-separated, empty for all)",
    { placeholder: "Microsoft.Communication.ChatMessageReceivedInThread" });
  const [prefixLabel, prefixInput] = field("hook-prefix", "Subject prefix (optional)");
  const [secretLabel, secretInput] = field("hook-secret", "Signing secret (optional)",
    { type: "password", autocomplete: "off" });
  const [batchLabel, batchInput] = field("hook-batch", "Batch size", { type: "number", min: 1, value: 1 });
  const form = h("form", { class: "stack", "aria-labelledby": "hook-add-title" },
    h("h3", { id: "hook-add-title" }, "Add a subscription"),
    urlLabel, urlInput, h("label", { for: "hook-schema" }, "Schema"), schema, eventsLabel, eventsInput,
    prefixLabel, prefixInput, secretLabel, secretInput, batchLabel, batchInput,
    h("button", { type: "submit" }, "Add subscription"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { url: urlInput.value.trim(), schema: schema.value };
    const events = eventsInput.value.split(",").map((t) => t.trim()).filter(Boolean);
    if (events.length) body.events = events;
    if (prefixInput.value.trim()) body.subjectPrefix = prefixInput.value.trim();
    if (secretInput.value) body.secret = secretInput.value;
    if (batchInput.value) body.batchSize = Number(batchInput.value);
    const made = await attempt(() => admin("POST", BASE, body));
    if (made) showWebhooks(`Added ${made.url} (${STATUS[made.status] || made.status}).`);
  });
  return form;
}

/** The Webhooks view; ``said`` is announced in its status line. */
export async function showWebhooks(said = "") {
  const show = navigation();
  const page = await attempt(() => admin("GET", BASE));
  if (!page) return;
  const rows = page.value.map((sub) => subscriptionCard(sub));
  show("Webhooks",
    h("p", { class: "status-line", role: "status" }, said),
    h("button", { type: "button", onclick: () => showWebhooks() }, "Refresh"),
    rows.length ? h("ul", { class: "list", "aria-label": "Subscriptions" }, rows) : h("p", {}, "No subscriptions."),
    addForm());
}

function deadLetterItem(dead) {
  const on = typeof dead.deadLetteredOn === "number" ? new Date(dead.deadLetteredOn).toISOString() : "";
  return h("li", { class: "card" },
    h("code", {}, dead.eventType),
    h("span", { class: "meta" }, `dead-lettered ${when(on)}`, dead.replayRequested ? " · replay requested" : ""),
    pairs([["event id", dead.eventId], ["thread", dead.threadId || "-"], ["reason", dead.reason],
      ["attempts", String(dead.attempts)]]));
}

async function showDeadLetters(sub, said = "") {
  const show = navigation();
  const page = await attempt(() => admin("GET", `${subPath(sub.id, "/deadletters")}?maxPageSize=200`));
  if (!page) return;
  const status = h("p", { class: "status-line", role: "status" }, said);
  // A text field (not datetime-local, whose many sub-fields each take a Tab): any date Date() reads.
  const [sinceLabel, sinceInput] = field("replay-since", "Also redeliver events since (date-time, optional)",
    { placeholder: "2026-11-28T20:00:00Z", autocomplete: "off" });
  const replay = h("form", { class: "inline" }, sinceLabel, sinceInput,
    h("button", { type: "submit" }, "Replay"));
  replay.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {};
    if (sinceInput.value) {
      const since = new Date(sinceInput.value.trim());
      if (Number.isNaN(since.getTime())) {
        fill(status, "The date is not valid.");
        return;
      }
      body.since = since.toISOString();
    }
    const done = await attempt(() => admin("POST", subPath(sub.id, "/:replay"), body));
    if (done) {
      const rewound = done.cursor === null ? "" : `; redelivering from position ${done.cursor}`;
      showDeadLetters(sub, `Replay requested: ${done.deadLettersReplayed} dead letter(s)${rewound}.`);
    }
  });
  const rows = page.value.map(deadLetterItem);
  show(`Dead letters of ${sub.url}`, status,
    h("button", { type: "button", onclick: () => showWebhooks() }, "Back to webhooks"),
    replay,
    rows.length ? h("ul", { class: "list", "aria-label": "Dead letters" }, rows) : h("p", {}, "No dead letters."));
}
