// Shared set-up of the JS SDK suite: the server under test comes from the environment.
//
// tests/js/test_js_sdk.py starts a real Threadline server on loopback and runs
// `node --test` with THREADLINE_ENDPOINT (the HTTPS endpoint), THREADLINE_CONNECTION_STRING
// and NODE_EXTRA_CA_CERTS (the server's local CA): the SDK refuses bearer tokens over http.
import assert from "node:assert/strict";
import identityPackage from "@azure/communication-identity";
import { AzureCommunicationTokenCredential } from "@azure/communication-common";
import { ChatClient } from "@azure/communication-chat";

const { CommunicationIdentityClient } = identityPackage;

export const endpoint = process.env.THREADLINE_ENDPOINT;
export const connectionString = process.env.THREADLINE_CONNECTION_STRING;
if (!endpoint || !connectionString) {
  throw new Error("THREADLINE_ENDPOINT and THREADLINE_CONNECTION_STRING must name a running server " +
    "(run this suite through tests/js/test_js_sdk.py)");
}

export const identityClient = new CommunicationIdentityClient(connectionString);

/** A new user with a chat token: { user, token, id, credential }. */
export async function newUser(scopes = ["chat"]) {
  const { user, token } = await identityClient.createUserAndToken(scopes);
  return { user, token, id: user.communicationUserId, credential: new AzureCommunicationTokenCredential(token) };
}

/** The 1.6.0 ChatClient of a user. */
export function chatClient(who) {
  return new ChatClient(endpoint, who.credential);
}

/** Every item of a paged iterator, in order. */
export async function all(iterator) {
  const items = [];
  for await (const item of iterator) {
    items.push(item);
  }
  return items;
}

/** Every page of a paged iterator, as arrays (the page size is the list call's maxPageSize option). */
export async function pages(iterator) {
  const result = [];
  for await (const page of iterator.byPage()) {
    result.push(page);
  }
  return result;
}

/** Assert that a promise rejects with an ACS error of this status (and code, and target: a string or RegExp). */
export async function rejectsWith(promise, statusCode, code, target) {
  await assert.rejects(promise, (error) => {
    assert.equal(error.statusCode, statusCode, `status of ${error.message}`);
    if (code !== undefined) {
      assert.equal(error.code, code);
    }
    if (target !== undefined) {
      const found = (error.details?.body ?? error.details)?.error?.target;
      if (target instanceof RegExp) {
        assert.match(String(found), target);
      } else {
        assert.equal(found, target);
      }
    }
    return true;
  });
}

/** The user messages (text and html) among listed messages. */
export function userMessages(messages) {
  return messages.filter((m) => m.type === "text" || m.type === "html");
}
