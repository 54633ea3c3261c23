// @azure/communication-chat 1.6.0-beta.7 (api-version 2024-06-05-preview): images and attachments.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { ChatClient as BetaChatClient } from "chat-beta";
import { all, endpoint, newUser, rejectsWith } from "./common.mjs";

// The 1x1 PNG of the spec's upload example, and the start of a JPEG.
const PNG = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVQYV2P4DwABAQEAWk1v8QAAAABJRU5ErkJggg==", "base64");
const JPEG = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(60, 1)]);

let alice, bob, threadId, aliceThread, bobThread;

function arrayBuffer(bytes) {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
}

/** GET an attachment URL as an app does: with the user's token. */
async function download(url, who) {
  const answer = await fetch(url, { headers: { Authorization: `Bearer ${who.token}` } });
  return { status: answer.status, headers: answer.headers, body: Buffer.from(await answer.arrayBuffer()) };
}

before(async () => {
  [alice, bob] = await Promise.all([newUser(), newUser()]);
  const aliceChat = new BetaChatClient(endpoint, alice.credential);
  const { chatThread } = await aliceChat.createChatThread(
    { topic: "images" }, { participants: [{ id: bob.user, displayName: "Bob" }], metadata: { via: "beta" } },
  );
  threadId = chatThread.id;
  assert.deepEqual(chatThread.metadata, { via: "beta" }); // the preview's thread shape
  aliceThread = aliceChat.getChatThreadClient(threadId);
  bobThread = new BetaChatClient(endpoint, bob.credential).getChatThreadClient(threadId);
});

test("uploadImage (ArrayBuffer and stream) returns id, type and name", async () => {
  const fromBuffer = await aliceThread.uploadImage(arrayBuffer(PNG), "photo.png");
  assert.match(fromBuffer.id, /^0-tl-d0-[0-9a-f]{32}$/);
  assert.equal(fromBuffer.attachmentType, "image");
  assert.equal(fromBuffer.name, "photo.png");
  const fromStream = await aliceThread.uploadImage(Readable.from([JPEG]), "snap.jpg", JPEG.length);
  assert.equal(fromStream.name, "snap.jpg");
  assert.notEqual(fromStream.id, fromBuffer.id);
});

test("sendMessage with attachments: get, list and download them; updateMessage replaces them", async () => {
  const png = await aliceThread.uploadImage(arrayBuffer(PNG), "a.png");
  const jpeg = await aliceThread.uploadImage(arrayBuffer(JPEG), "b.jpg");
  const { id } = await aliceThread.sendMessage(
    { content: "two pictures" },
    { attachments: [{ id: png.id, attachmentType: "image" }, { id: jpeg.id, attachmentType: "image" }] },
  );
  const got = await bobThread.getMessage(id);
  assert.deepEqual(got.content.attachments.map((a) => [a.id, a.attachmentType, a.name]),
    [[png.id, "image", "a.png"], [jpeg.id, "image", "b.jpg"]]);
  const first = got.content.attachments[0];
  assert.ok(first.url.startsWith(endpoint) && first.url.includes("/view/original"));
  assert.ok(first.previewUrl.includes("/view/small"));
  const image = await download(first.url, bob);
  assert.equal(image.status, 200);
  assert.deepEqual(image.body, PNG);
  assert.equal(image.headers.get("content-type"), "image/png");
  assert.equal(image.headers.get("x-content-type-options"), "nosniff");
  assert.match(image.headers.get("content-disposition"), /^inline; filename="a\.png"/);
  const listed = (await all(bobThread.listMessages())).find((m) => m.id === id);
  assert.deepEqual(listed.content.attachments.map((a) => a.id), [png.id, jpeg.id]);

  await aliceThread.updateMessage(id, { attachments: [{ id: jpeg.id, attachmentType: "image" }] });
  const edited = await bobThread.getMessage(id);
  assert.deepEqual(edited.content.attachments.map((a) => a.id), [jpeg.id]);
  assert.equal((await download(first.url, bob)).status, 404); // the edit dropped it

  await aliceThread.deleteMessage(id);
  assert.equal((await download(edited.content.attachments[0].url, alice)).status, 404); // went with the message
});

test("deleteImage: only the uploader, then the image is gone", async () => {
  const uploaded = await aliceThread.uploadImage(arrayBuffer(PNG), "gone.png");
  const { id } = await aliceThread.sendMessage(
    { content: "soon gone" }, { attachments: [{ id: uploaded.id, attachmentType: "image" }] },
  );
  const { url } = (await bobThread.getMessage(id)).content.attachments[0];
  await rejectsWith(bobThread.deleteImage(uploaded.id), 403);
  await aliceThread.deleteImage(uploaded.id);
  assert.equal((await download(url, bob)).status, 404);
  await aliceThread.deleteImage(uploaded.id); // again: quiet
});

test("what is not an image is refused whatever its name; so is a stranger", async () => {
  await rejectsWith(aliceThread.uploadImage(arrayBuffer(Buffer.from("<svg onload=alert(1)>")), "x.png"),
    415, "UnsupportedMediaType");
  const eve = await newUser();
  const eveThread = new BetaChatClient(endpoint, eve.credential).getChatThreadClient(threadId);
  await rejectsWith(eveThread.uploadImage(arrayBuffer(PNG), "eve.png"), 403);
  await rejectsWith(
    aliceThread.sendMessage({ content: "x" }, { attachments: [{ id: "0-tl-d0-" + "0".repeat(32), attachmentType: "image" }] }),
    400, "BadRequest", "attachments[0].id",
  );
});
