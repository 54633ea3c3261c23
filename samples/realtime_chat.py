"""Two users chatting in real time with ``threadline.chat.aio``: each sees the other's messages,
typing and read receipts as they happen, and never its own (ACS sends senders their own events).

Demo (both users in this process; creates them, a thread, and a short conversation):

    THREADLINE_ENDPOINT=http://127.0.0.1:8080 \\
    THREADLINE_CONNECTION_STRING="$(threadline connection-string --http)" \\
    python3 samples/realtime_chat.py

Chat from two terminals (tokens and thread id from ``threadline seed --json``); type lines, Ctrl+D ends:

    THREADLINE_ENDPOINT=http://127.0.0.1:8080 python3 samples/realtime_chat.py chat TOKEN THREAD_ID
"""

from __future__ import annotations

import asyncio
import sys

from threadline.chat import (
    ChatMessageReceivedEvent,
    ChatParticipant,
    ReadReceiptReceivedEvent,
    TypingIndicatorReceivedEvent,
)
from threadline.chat.aio import ChatClient, CommunicationTokenCredential

from _sample_env import endpoint, new_user_and_token


class Member:
    """One user: a chat client listening to its events, printing only what others do."""

    def __init__(self, name: str, user_id: str, client: ChatClient) -> None:
        self.name = name
        self.user_id = user_id
        self.client = client
        self.heard: asyncio.Queue[ChatMessageReceivedEvent] = asyncio.Queue()
        self.client.on("chatMessageReceived", self.on_message)
        self.client.on("typingIndicatorReceived", self.on_typing)
        self.client.on("readReceiptReceived", self.on_read)

    def mine(self, event: ChatMessageReceivedEvent | TypingIndicatorReceivedEvent | ReadReceiptReceivedEvent) -> bool:
        return event.sender is not None and event.sender.raw_id == self.user_id

    def on_message(self, event: ChatMessageReceivedEvent) -> None:
        if self.mine(event):  # our own message, echoed back: already on screen
            return
        print(f"[{self.name}] {event.sender_display_name or event.sender}: {event.message}", flush=True)
        self.heard.put_nowait(event)

    def on_typing(self, event: TypingIndicatorReceivedEvent) -> None:
        if not self.mine(event):
            print(f"[{self.name}] {event.sender_display_name} is typing...", flush=True)

    def on_read(self, event: ReadReceiptReceivedEvent) -> None:
        if not self.mine(event):
            print(f"[{self.name}] {event.sender_display_name} read message {event.chat_message_id}", flush=True)

    async def say(self, thread_id: str, text: str) -> None:
        thread = self.client.get_chat_thread_client(thread_id)
        await thread.send_typing_notification(sender_display_name=self.name)
        await thread.send_message(text, sender_display_name=self.name)

    async def answer(self, thread_id: str, text: str) -> None:
        """Wait for the other's next message, mark it read, reply."""
        heard = await asyncio.wait_for(self.heard.get(), 30)
        await self.client.get_chat_thread_client(thread_id).send_read_receipt(heard.id)
        await self.say(thread_id, text)


async def demo() -> None:
    (alice_id, alice_token), (bob_id, bob_token) = new_user_and_token(), new_user_and_token()
    alice = Member("Alice", alice_id.properties["id"], ChatClient(endpoint(), CommunicationTokenCredential(alice_token)))
    bob = Member("Bob", bob_id.properties["id"], ChatClient(endpoint(), CommunicationTokenCredential(bob_token)))
    async with alice.client, bob.client:
        created = await alice.client.create_chat_thread("realtime chat", thread_participants=[
            ChatParticipant(identifier=alice_id, display_name="Alice"),
            ChatParticipant(identifier=bob_id, display_name="Bob"),
        ])
        thread_id = created.chat_thread.id
        await alice.client.start_realtime_notifications()
        await bob.client.start_realtime_notifications()
        await alice.say(thread_id, "Hi Bob, are you there?")
        await bob.answer(thread_id, "Hi Alice! Yes, I see you in real time.")
        await alice.answer(thread_id, "Great, see you later.")
        await bob.answer(thread_id, "Bye!")
        await asyncio.wait_for(alice.heard.get(), 30)
    print("OK realtime_chat", flush=True)


async def chat(token: str, thread_id: str) -> None:
    async with ChatClient(endpoint(), CommunicationTokenCredential(token)) as client:
        thread = client.get_chat_thread_client(thread_id)
        topic = (await thread.get_properties()).topic  # checks access early
        me = _user_of(token)
        names = {p.identifier.raw_id: p.display_name async for p in thread.list_participants()}
        Member("you", me, client)  # prints what the others do
        await client.start_realtime_notifications()
        print(f"Connected to {topic!r}; type a line and press Enter, Ctrl+D to leave.", flush=True)
        loop = asyncio.get_running_loop()
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            if line.strip():  # signed with our name in the thread, so the others see who speaks
                await thread.send_message(line.strip(), sender_display_name=names.get(me) or None)


def _user_of(token: str) -> str:
    """The user id inside an ACS token (its ``skypeid`` claim), to tell our own events apart."""
    import base64
    import json

    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return f"8:{claims['skypeid']}"


if __name__ == "__main__":
    if sys.argv[1:2] == ["chat"] and len(sys.argv) == 4:
        asyncio.run(chat(sys.argv[2], sys.argv[3]))
    elif len(sys.argv) == 1:
        asyncio.run(demo())
    else:
        sys.exit(__doc__)
