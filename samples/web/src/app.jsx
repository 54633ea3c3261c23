// A chat page built from Microsoft's UI Library, unmodified, talking to Threadline.
// Everything it needs comes in the URL fragment (never sent to a server): endpoint, user id, token,
// display name and thread id. samples/web/run.py prints such URLs.
import React, { useEffect, useState } from "react";
import { createRoot } from "react-dom/client";
import { ChatComposite, createAzureCommunicationChatAdapter } from "@azure/communication-react";
import { AzureCommunicationTokenCredential } from "@azure/communication-common";

function settings() {
  const params = new URLSearchParams(window.location.hash.slice(1));
  return {
    endpoint: params.get("endpoint"),
    userId: params.get("user"),
    token: params.get("token"),
    displayName: params.get("name") || "Guest",
    threadId: params.get("thread"),
  };
}

function App() {
  const [adapter, setAdapter] = useState(undefined);
  const [error, setError] = useState(undefined);
  useEffect(() => {
    const s = settings();
    if (!s.endpoint || !s.userId || !s.token || !s.threadId) {
      setError("Open this page with the URL that samples/web/run.py prints.");
      return undefined;
    }
    let created;
    createAzureCommunicationChatAdapter({
      endpoint: s.endpoint,
      userId: { communicationUserId: s.userId },
      displayName: s.displayName,
      credential: new AzureCommunicationTokenCredential(s.token),
      threadId: s.threadId,
    }).then((a) => { created = a; window.chatAdapter = a; setAdapter(a); }, (e) => setError(String(e)));
    return () => created && created.dispose();
  }, []);
  if (error) return <p id="error">{error}</p>;
  if (!adapter) return <p id="loading">Connecting to Threadline…</p>;
  return (
    <div style={{ height: "100vh" }}>
      <ChatComposite adapter={adapter} options={{ topic: true }} />
    </div>
  );
}

createRoot(document.getElementById("root")).render(<App />);
