// @azure/communication-chat 1.6.0 (api-version 2025-03-15) against Threadline: every public REST operation.
import { describe, test, before } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { all, chatClient, newUser, pages, rejectsWith, userMessages } from "./common.mjs";

let alice, bob, carol, aliceChat, bobChat;

before(async () => {
  [alice, bob, carol] = await Promise.all([newUser(), newUser(), newUser()]);
  aliceChat = chatClient(alice);
  bobChat = chatClient(bob);
});

describe("threads", () => {
  test("createChatThread with participants and metadata; getProperties returns them", async () => {
    const created = await aliceChat.createChatThread(
      { topic: "JS topic" },
      { participants: [{ id: bob.user, displayName: "Bob", metadata: { role: "guest" } }], metadata: { team: "blue" } },
    );
    assert.equal(created.invalidParticipants, undefined);
    const thread = created.chatThread;
    assert.match(thread.id, /^19:.+@thread\.v2$/);
    assert.equal(thread.topic, "JS topic");
    assert.deepEqual(thread.createdBy, { kind: "communicationUser", communicationUserId: alice.id });
    assert.deepEqual(thread.metadata, { team: "blue" });
    const props = await bobChat.getChatThreadClient(thread.id).getProperties();
    assert.equal(props.id, thread.id);
    assert.equal(props.topic, "JS topic");
    assert.deepEqual(props.metadata, { team: "blue" });
    assert.ok(props.createdOn instanceof Date && Math.abs(props.createdOn - Date.now()) < 60000);
    const people = await all(bobChat.getChatThreadClient(thread.id).listParticipants());
    const bobs = people.find((p) => p.id.communicationUserId === bob.id);
    assert.equal(bobs.displayName, "Bob");
    assert.deepEqual(bobs.metadata, { role: "guest" });
  });

  test("an idempotencyToken gives the same thread twice", async () => {
    const token = randomUUID();
    const first = await aliceChat.createChatThread({ topic: "once" }, { idempotencyToken: token });
    const second = await aliceChat.createChatThread({ topic: "once" }, { idempotencyToken: token });
    assert.equal(second.chatThread.id, first.chatThread.id);
  });

  test("an unknown participant is reported in invalidParticipants", async () => {
    const ghost = { communicationUserId: alice.id.replace(/_[0-9a-f-]+$/, `_${randomUUID()}`) };
    const created = await aliceChat.createChatThread({ topic: "with a ghost" }, { participants: [{ id: ghost }] });
    assert.equal(created.invalidParticipants.length, 1);
    assert.equal(created.invalidParticipants[0].target, ghost.communicationUserId);
    assert.equal(created.invalidParticipants[0].code, "404");
  });

  test("updateTopic, updateProperties(topic + metadata) and listChatThreads", async () => {
    const { chatThread } = await aliceChat.createChatThread({ topic: "old" }, { metadata: { a: "1" } });
    const client = aliceChat.getChatThreadClient(chatThread.id);
    await client.updateTopic("newer");
    assert.equal((await client.getProperties()).topic, "newer");
    await client.updateProperties({ topic: "newest", metadata: { a: "2", b: "3" } });
    const props = await client.getProperties();
    assert.equal(props.topic, "newest");
    assert.deepEqual(props.metadata, { a: "2", b: "3" });
    const threads = await all(aliceChat.listChatThreads({ maxPageSize: 2 }));
    const item = threads.find((t) => t.id === chatThread.id);
    assert.equal(item.topic, "newest");
    assert.ok(item.lastMessageReceivedOn instanceof Date);
    const topics = userMessages(await all(client.listMessages()));
    assert.equal(topics.length, 0);
    const updates = (await all(client.listMessages())).filter((m) => m.type === "topicUpdated");
    assert.deepEqual(updates.map((m) => m.content.topic), ["newest", "newer", "old"]);
  });

  test("deleteChatThread: gone for members, listed with deletedOn", async () => {
    const { chatThread } = await aliceChat.createChatThread({ topic: "doomed" }, { participants: [{ id: bob.user }] });
    await aliceChat.deleteChatThread(chatThread.id);
    await rejectsWith(bobChat.getChatThreadClient(chatThread.id).getProperties(), 404);
    await aliceChat.deleteChatThread(chatThread.id); // idempotent
    const listed = (await all(aliceChat.listChatThreads())).find((t) => t.id === chatThread.id);
    assert.ok(listed.deletedOn instanceof Date);
  });

  test("a non-member is refused with 403", async () => {
    const { chatThread } = await aliceChat.createChatThread({ topic: "private" });
    await rejectsWith(bobChat.getChatThreadClient(chatThread.id).getProperties(), 403);
    await rejectsWith(bobChat.getChatThreadClient(chatThread.id).sendMessage({ content: "hi" }), 403);
  });
});

describe("retention policy (2025-03-15)", () => {
  test("created with threadCreationDate, returned by get, changed by updateProperties", async () => {
    const policy = { kind: "threadCreationDate", deleteThreadAfterDays: 30 };
    const created = await aliceChat.createChatThread({ topic: "kept 30 days" }, { retentionPolicy: policy });
    assert.deepEqual(created.chatThread.retentionPolicy, policy);
    const client = aliceChat.getChatThreadClient(created.chatThread.id);
    assert.deepEqual((await client.getProperties()).retentionPolicy, policy);
    await client.updateProperties({ retentionPolicy: { kind: "none" } });
    assert.deepEqual((await client.getProperties()).retentionPolicy, { kind: "none" });
    await client.updateProperties({ topic: "only the topic" }); // absent = unchanged
    assert.deepEqual((await client.getProperties()).retentionPolicy, { kind: "none" });
  });

  test("a bogus retention policy is a 400 naming its field", async () => {
    await rejectsWith(
      aliceChat.createChatThread({ topic: "bad" }, { retentionPolicy: { kind: "forever" } }),
      400, "BadRequest", /^retentionPolicy/,
    );
    const { chatThread } = await aliceChat.createChatThread({ topic: "fine" });
    await rejectsWith(
      aliceChat.getChatThreadClient(chatThread.id).updateProperties({
        retentionPolicy: { kind: "threadCreationDate", deleteThreadAfterDays: 0 },
      }),
      400, "BadRequest", /^retentionPolicy/,
    );
  });
});

describe("messages", () => {
  let client, bobClient, threadId;

  before(async () => {
    const { chatThread } = await aliceChat.createChatThread(
      { topic: "messages" }, { participants: [{ id: bob.user, displayName: "Bob" }] },
    );
    threadId = chatThread.id;
    client = aliceChat.getChatThreadClient(threadId);
    bobClient = bobChat.getChatThreadClient(threadId);
  });

  test("sendMessage / getMessage with type, display name and metadata", async () => {
    const { id } = await client.sendMessage(
      { content: "<b>hi</b><script>x()</script>" },
      { type: "html", senderDisplayName: "Alice", metadata: { tag: "greeting" } },
    );
    assert.match(id, /^\d{13}$/);
    const got = await bobClient.getMessage(id);
    assert.equal(got.id, id);
    assert.equal(got.type, "html");
    assert.equal(got.content.message, "<b>hi</b>"); // sanitised
    assert.equal(got.senderDisplayName, "Alice");
    assert.deepEqual(got.metadata, { tag: "greeting" });
    assert.deepEqual(got.sender, { kind: "communicationUser", communicationUserId: alice.id });
    assert.equal(got.version, id);
    assert.deepEqual(got.content.attachments, []);
  });

  test("listMessages: newest first, pages of maxPageSize, startTime", async () => {
    const start = new Date();
    const sent = [];
    for (let n = 0; n < 5; n++) {
      sent.push((await client.sendMessage({ content: `m${n}` })).id);
    }
    const byPage = await pages(bobClient.listMessages({ maxPageSize: 2, startTime: new Date(start.getTime() - 1000) }));
    assert.ok(byPage.length >= 3 && byPage.every((p) => p.length <= 2));
    const mine = userMessages(byPage.flat()).filter((m) => sent.includes(m.id));
    assert.deepEqual(mine.map((m) => m.content.message), ["m4", "m3", "m2", "m1", "m0"]);
    const seq = mine.map((m) => Number(m.sequenceId));
    assert.deepEqual(seq, [...seq].sort((a, b) => b - a));
  });

  test("updateMessage (content + metadata) and deleteMessage", async () => {
    const { id } = await client.sendMessage({ content: "draft" }, { metadata: { a: "1" } });
    await client.updateMessage(id, { content: "final", metadata: { b: "2" } });
    const edited = await bobClient.getMessage(id);
    assert.equal(edited.content.message, "final");
    assert.deepEqual(edited.metadata, { a: "1", b: "2" });
    assert.ok(edited.editedOn instanceof Date);
    assert.notEqual(edited.version, id);
    await rejectsWith(bobClient.updateMessage(id, { content: "not mine" }), 403);
    await client.deleteMessage(id);
    await rejectsWith(bobClient.getMessage(id), 404);
    const tombstone = (await all(bobClient.listMessages())).find((m) => m.id === id);
    assert.ok(tombstone.deletedOn instanceof Date);
  });

  test("system messages: participantAdded lists who was added, with the initiator", async () => {
    const added = (await all(bobClient.listMessages())).filter((m) => m.type === "participantAdded");
    assert.equal(added.length, 1);
    const ids = added[0].content.participants.map((p) => p.id.communicationUserId).sort();
    assert.deepEqual(ids, [alice.id, bob.id].sort());
    assert.deepEqual(added[0].content.initiator, { kind: "communicationUser", communicationUserId: alice.id });
  });

  test("sendTypingNotification and read receipts", async () => {
    assert.equal(await bobClient.sendTypingNotification({ senderDisplayName: "Bob" }), true);
    const { id } = await client.sendMessage({ content: "read me" });
    await bobClient.sendReadReceipt({ chatMessageId: id });
    const receipts = await all(client.listReadReceipts());
    const bobs = receipts.find((r) => r.sender.communicationUserId === bob.id);
    assert.equal(bobs.chatMessageId, id);
    assert.ok(bobs.readOn instanceof Date);
    await rejectsWith(bobClient.sendReadReceipt({ chatMessageId: "1" }), 404);
    await rejectsWith(all(bobClient.listMessages({ maxPageSize: 0 })), 400, "BadRequest", "maxPageSize");
  });
});

describe("participants", () => {
  test("addParticipants (shareHistoryTime), listParticipants with paging, removeParticipant", async () => {
    const { chatThread } = await aliceChat.createChatThread({ topic: "people" });
    const client = aliceChat.getChatThreadClient(chatThread.id);
    const { id: early } = await client.sendMessage({ content: "before carol" });
    const shareFrom = new Date(Math.ceil((Date.now() + 1) / 1000) * 1000);
    while (Date.now() < shareFrom.getTime()) {
      await new Promise((resolve) => setTimeout(resolve, shareFrom.getTime() - Date.now() + 1));
    }
    const result = await client.addParticipants({
      participants: [
        { id: bob.user, displayName: "Bob" },
        { id: carol.user, displayName: "Carol", shareHistoryTime: shareFrom, metadata: { k: "v" } },
      ],
    });
    assert.equal(result.invalidParticipants, undefined);
    const people = await all(client.listParticipants());
    assert.deepEqual(people.map((p) => p.id.communicationUserId), [alice.id, bob.id, carol.id]);
    const carols = people[2];
    assert.equal(carols.displayName, "Carol");
    assert.equal(carols.shareHistoryTime.getTime(), shareFrom.getTime());
    assert.deepEqual(carols.metadata, { k: "v" });
    const paged = await pages(client.listParticipants({ maxPageSize: 2 }));
    assert.deepEqual(paged.map((p) => p.length), [2, 1]);
    const carolClient = chatClient(carol).getChatThreadClient(chatThread.id);
    await rejectsWith(carolClient.getMessage(early), 404); // before her share-history time
    await client.removeParticipant(carol.user);
    await rejectsWith(carolClient.getProperties(), 403);
    const after = await all(client.listParticipants());
    assert.deepEqual(after.map((p) => p.id.communicationUserId), [alice.id, bob.id]);
    const removed = (await all(client.listMessages())).filter((m) => m.type === "participantRemoved");
    assert.deepEqual(removed[0].content.participants.map((p) => p.id.communicationUserId), [carol.id]);
  });
});
