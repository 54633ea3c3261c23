// @azure/communication-identity against Threadline: every public operation, asserting real values.
import { test } from "node:test";
import assert from "node:assert/strict";
import { identityClient, rejectsWith, newUser, chatClient } from "./common.mjs";

const RAW_ID = /^8:acs:[^_]+_[0-9a-f-]{36}$/;

test("createUser gives an ACS raw id", async () => {
  const user = await identityClient.createUser();
  assert.match(user.communicationUserId, RAW_ID);
});

test("createUserAndToken with a custom lifetime", async () => {
  const before = Date.now();
  const { user, token, expiresOn } = await identityClient.createUserAndToken(["chat", "voip"], {
    tokenExpiresInMinutes: 60,
  });
  assert.match(user.communicationUserId, RAW_ID);
  assert.equal(token.split(".").length, 3); // a JWT
  const minutes = (expiresOn.getTime() - before) / 60000;
  assert.ok(minutes > 59 && minutes < 61.5, `expires in ${minutes} minutes`);
});

test("getToken: default 24 h, and the lifetime bounds of the service", async () => {
  const user = await identityClient.createUser();
  const { token, expiresOn } = await identityClient.getToken(user, ["chat"]);
  assert.equal(token.split(".").length, 3);
  const hours = (expiresOn.getTime() - Date.now()) / 3600000;
  assert.ok(hours > 23.9 && hours <= 24, `expires in ${hours} hours`);
  await rejectsWith(identityClient.getToken(user, ["chat"], { tokenExpiresInMinutes: 59 }), 400);
  await rejectsWith(identityClient.getToken(user, ["chat"], { tokenExpiresInMinutes: 1441 }), 400);
});

test("revokeTokens makes every earlier token useless", async () => {
  const who = await newUser();
  const chat = chatClient(who);
  await chat.createChatThread({ topic: "before revoke" });
  await identityClient.revokeTokens(who.user);
  await rejectsWith(chat.createChatThread({ topic: "after revoke" }), 401);
  const fresh = await identityClient.getToken(who.user, ["chat"]);
  assert.equal(fresh.token.split(".").length, 3);
});

test("deleteUser: its tokens stop working, it is gone for the identity API", async () => {
  const who = await newUser();
  await identityClient.deleteUser(who.user);
  await rejectsWith(chatClient(who).createChatThread({ topic: "ghost" }), 401);
  await rejectsWith(identityClient.deleteUser(who.user), 404);
  await rejectsWith(identityClient.getToken(who.user, ["chat"]), 404);
});

test("getTokenForTeamsUser is refused as documented (no Entra ID here)", async () => {
  await rejectsWith(
    identityClient.getTokenForTeamsUser({ teamsUserAadToken: "x.y.z", clientId: "app", userObjectId: "user" }),
    403,
    "TeamsExchangeUnsupported",
  );
});
