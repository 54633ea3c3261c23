// The page under test: the unmodified browser build of @azure/communication-chat, driven from pytest.
import { ChatClient } from "@azure/communication-chat";
import { AzureCommunicationTokenCredential } from "@azure/communication-common";

const EVENTS = [
  "chatMessageReceived", "chatMessageEdited", "chatMessageDeleted", "typingIndicatorReceived",
  "readReceiptReceived", "chatThreadCreated", "chatThreadDeleted", "chatThreadPropertiesUpdated",
  "participantsAdded", "participantsRemoved",
];

window.threadline = {
  events: [],
  connected: 0,
  disconnected: 0,
  arrivals: {},
  client: null,
  async start(endpoint, token) {
    const client = new ChatClient(endpoint, new AzureCommunicationTokenCredential(token));
    this.client = client;
    await client.startRealtimeNotifications();
    for (const name of EVENTS) {
      client.on(name, (event) => {
        this.events.push({ name, event: JSON.parse(JSON.stringify(event)) });
        if (name === "chatMessageReceived") this.arrivals[event.message] = performance.timeOrigin + performance.now();
      });
    }
    client.on("realTimeNotificationConnected", () => { this.connected += 1; });
    client.on("realTimeNotificationDisconnected", () => { this.disconnected += 1; });
    return "started";
  },
  async stop() {
    await this.client.stopRealtimeNotifications();
    return "stopped";
  },
};
