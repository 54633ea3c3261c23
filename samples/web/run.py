#!/usr/bin/env python3
"""Open a chat between two people in the browser, on a local Threadline.

Start Threadline (``python3 dev.py serve`` or ``threadline serve``), then::

    python samples/web/run.py

It builds the page when needed (``npm ci`` + esbuild, once), creates two users
(Alice and Bob), a thread with both and their tokens, serves the page on
http://127.0.0.1:5173 and prints one URL per user. Open each in a browser
window (trust ``threadline-data/tls/ca.pem`` first, see ``docs/browser.md``).
Ctrl+C stops the page server.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlencode

HERE = Path(__file__).resolve().parent


def build() -> None:
    """Install the pinned packages and bundle the page when ``public/app.js`` is missing."""
    if (HERE / "public" / "app.js").exists():
        return
    if not (HERE / "node_modules").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True)
    subprocess.run(["npm", "run", "build"], cwd=HERE, check=True)


def seed(http_endpoint: str, https_endpoint: str, access_key: str) -> dict[str, str]:
    """Create Alice, Bob and a thread; return each user's page fragment.

    Args:
        http_endpoint: where this script reaches Threadline (plain HTTP is fine for the Python SDK).
        https_endpoint: what the browser uses (the JS SDK needs HTTPS).
        access_key: the resource's access key (``threadline-data/access-key``).

    Returns:
        ``{"Alice": fragment, "Bob": fragment}``.
    """
    from threadline.chat import ChatClient, ChatParticipant, CommunicationTokenCredential
    from threadline.identity import CommunicationIdentityClient

    identity = CommunicationIdentityClient.from_connection_string(
        f"endpoint={http_endpoint}/;accesskey={access_key}")
    people = {name: identity.create_user_and_token(["chat"]) for name in ("Alice", "Bob")}
    _alice, alice_token = people["Alice"]
    chat = ChatClient(http_endpoint, CommunicationTokenCredential(alice_token.token))
    created = chat.create_chat_thread("Threadline sample", thread_participants=[
        ChatParticipant(identifier=user, display_name=name) for name, (user, _) in people.items()])
    thread_id = created.chat_thread.id
    return {name: urlencode({"endpoint": https_endpoint + "/", "user": user.properties["id"], "token": token.token,
                             "name": name, "thread": thread_id})
            for name, (user, token) in people.items()}


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("threadline-data"), help="Threadline's data folder")
    parser.add_argument("--http", default="http://127.0.0.1:8080", help="Threadline's HTTP endpoint")
    parser.add_argument("--https", default="https://127.0.0.1:8443", help="Threadline's HTTPS endpoint")
    parser.add_argument("--port", type=int, default=5173, help="port of the page (0 picks a free one)")
    args = parser.parse_args()
    key_file = args.data / "access-key"
    if not key_file.exists():
        print(f"error: no {key_file}; start Threadline first (python3 dev.py serve) or pass --data",
              file=sys.stderr)
        return 1
    build()
    fragments = seed(args.http.rstrip("/"), args.https.rstrip("/"), key_file.read_text().strip())
    handler = functools.partial(_Quiet, directory=str(HERE / "public"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), handler)
    origin = f"http://127.0.0.1:{server.server_address[1]}"
    for name, fragment in fragments.items():
        print(f"{name}: {origin}/#{fragment}", flush=True)
    print("Serving the page; Ctrl+C to stop.", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
