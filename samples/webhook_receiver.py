"""A bot behind a Threadline webhook: it answers "pong" to every "ping" sent in its threads.

Walkthrough in docs/webhooks.md. In short:

    threadline user                                  # the bot's identity: note its id and token
    BOT_USER_ID=8:acs:... BOT_TOKEN=eyJ... THREADLINE_ENDPOINT=http://127.0.0.1:8080 \
        WEBHOOK_SECRET=change-me-please python samples/webhook_receiver.py --port 9000
    THREADLINE_WEBHOOK_ALLOW=127.0.0.1 threadline webhook add http://127.0.0.1:9000/events \
        --events ChatMessageReceived --secret change-me-please

It speaks Event Grid's webhook contract: it answers the SubscriptionValidationEvent handshake
(and the CloudEvents OPTIONS one), checks the x-threadline-signature header when a secret is
set, deduplicates on the event id (delivery is at-least-once), and replies through
threadline.chat, the SDK with the API of azure.communication.chat.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import threading
from collections import OrderedDict

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from threadline.chat import ChatClient, CommunicationTokenCredential

ENDPOINT = os.environ.get("THREADLINE_ENDPOINT", "http://127.0.0.1:8080")
BOT_TOKEN = os.environ["BOT_TOKEN"]
BOT_USER_ID = os.environ["BOT_USER_ID"]
SECRET = os.environ.get("WEBHOOK_SECRET", "")

chat = ChatClient(ENDPOINT, CommunicationTokenCredential(BOT_TOKEN))
seen: OrderedDict[str, None] = OrderedDict()  # recent event ids: a redelivery is answered once
lock = threading.Lock()


def first_time(event_id: str) -> bool:
    with lock:
        if event_id in seen:
            return False
        seen[event_id] = None
        if len(seen) > 10_000:
            seen.popitem(last=False)
        return True


def reply(thread_id: str) -> None:
    chat.get_chat_thread_client(thread_id).send_message("pong", sender_display_name="Ping bot")
    print(f"answered pong in {thread_id}", flush=True)


async def events(request: Request) -> Response:
    if request.method == "OPTIONS":  # CloudEvents abuse protection: allow the sender
        origin = request.headers.get("WebHook-Request-Origin", "*")
        return Response(status_code=200, headers={"WebHook-Allowed-Origin": origin})
    body = await request.body()
    if SECRET:
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.headers.get("x-threadline-signature", "")):
            return Response(status_code=401)
    payload = json.loads(body)
    for event in payload if isinstance(payload, list) else [payload]:  # CloudEvents may send one object
        kind = event.get("eventType") or event.get("type")
        data = event.get("data") or {}
        if kind == "Microsoft.EventGrid.SubscriptionValidationEvent":
            return JSONResponse({"validationResponse": data["validationCode"]})
        is_for_bot = data.get("recipientCommunicationIdentifier", {}).get("rawId") == BOT_USER_ID
        if (kind == "Microsoft.Communication.ChatMessageReceived" and is_for_bot
                and data.get("messageBody", "").strip().lower() == "ping" and first_time(event["id"])):
            # Answer after acknowledging: a webhook should reply fast, the SDK call may take longer.
            threading.Thread(target=reply, args=(data["threadId"],), daemon=True).start()
    return Response(status_code=200)


app = Starlette(routes=[Route("/events", events, methods=["POST", "OPTIONS"])])

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    args = parser.parse_args()
    print(f"ping bot listening on http://{args.host}:{args.port}/events", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
