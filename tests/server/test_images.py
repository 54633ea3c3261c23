"""Images (2024-06-05-preview) over HTTP on both engines: upload, read, delete, attachments, events.

Every rule is asserted on the wire: statuses, ACS error bodies, the headers an
image is served with, and what a member who may not see a message may not see.
"""

from __future__ import annotations

import asyncio
import base64
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests

from tests.conftest import ENGINES, RunningServer, serving
from tests.realtime.helpers import open_stream, ws_url
from tests.reliability.conftest import drain
from tests.reliability.helpers import Chat, identifier, make_user, q

PREVIEW = "2024-06-05-preview"
#: The 1x1 PNG of the spec's upload example.
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVQYV2P4DwABAQEAWk1v8QAAAABJRU5ErkJggg==")
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x01" * 40
KINDS = {
    "image/png": PNG,
    "image/jpeg": JPEG,
    "image/gif": b"GIF89a" + b"\x01" * 20,
    "image/webp": b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x01" * 20,
    "image/heic": b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00" + b"\x01" * 20,
}


def upload(chat: Chat, thread_id: str, data: bytes, name: str | None = "photo.png",
           version: str = PREVIEW) -> requests.Response:
    headers = {"Content-Type": "application/octet-stream", "Authorization": f"Bearer {chat.token}"}
    if name is not None:
        headers["image-filename"] = name
    return chat.session.post(
        f"{chat.base}/chat/threads/{q(thread_id)}/images", params={"api-version": version}, data=data,
        headers=headers, timeout=30,
    )


def image_url(thread_id: str, image_id: str, view: str = "original") -> str:
    """The image's path, with the thread id encoded as the server writes it in attachment URLs."""
    return f"/chat/threads/{quote(thread_id, safe=':@')}/images/{image_id}/view/{view}"


def uploaded(chat: Chat, thread_id: str, data: bytes = PNG, name: str = "photo.png") -> str:
    answer = upload(chat, thread_id, data, name)
    assert answer.status_code == 201, answer.text
    image_id: str = answer.json()["id"]
    return image_id


def error_of(answer: requests.Response) -> dict[str, Any]:
    body: dict[str, Any] = answer.json()["error"]
    assert answer.headers["x-ms-error-code"] == body["code"]
    return body


def pair(server: RunningServer) -> tuple[Chat, Chat, str]:
    alice, bob = make_user(server), make_user(server)
    a, b = Chat(server.http_endpoint, alice.token), Chat(server.http_endpoint, bob.token)
    return a, b, a.create_thread("images", [bob.id])


def test_upload_get_and_delete_with_safe_headers(server: RunningServer) -> None:
    alice, bob, thread_id = pair(server)
    answer = upload(alice, thread_id, PNG, name="../../etc/Fancy \"Ü\".png\t")
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["attachmentType"] == "image" and body["name"] == "Fancy Ü.png"  # folders, quotes, controls gone
    assert answer.headers["Location"].endswith(f"/images/{body['id']}")
    for view in ("original", "small"):  # a member who did not upload reads it too
        got = bob.call("GET", image_url(thread_id, body["id"], view), version=PREVIEW)
        assert got.status_code == 200 and got.content == PNG
        assert got.headers["Content-Type"] == "image/png"
        assert got.headers["X-Content-Type-Options"] == "nosniff"
        assert got.headers["Content-Disposition"] == (
            "inline; filename=\"Fancy _.png\"; filename*=UTF-8''Fancy%20%C3%9C.png"
        )
        assert "sandbox" in got.headers["Content-Security-Policy"]
    assert error_of(bob.call("GET", image_url(thread_id, body["id"], "large"), version=PREVIEW))["target"] == (
        "imageViewType"
    )
    assert bob.call("DELETE", f"/chat/threads/{q(thread_id)}/images/{body['id']}", version=PREVIEW).status_code == 403
    assert alice.call("DELETE", f"/chat/threads/{q(thread_id)}/images/{body['id']}", version=PREVIEW).status_code == 204
    gone = bob.call("GET", image_url(thread_id, body["id"]), version=PREVIEW)
    assert gone.status_code == 404 and error_of(gone)["target"] == "imageId"
    assert alice.call("DELETE", f"/chat/threads/{q(thread_id)}/images/{body['id']}", version=PREVIEW).status_code == 204


def test_the_type_is_sniffed_never_taken_from_the_name(server: RunningServer) -> None:
    alice, _, thread_id = pair(server)
    for content_type, data in KINDS.items():
        image_id = uploaded(alice, thread_id, data, name="notes.txt")
        got = alice.call("GET", image_url(thread_id, image_id), version=PREVIEW)
        assert got.headers["Content-Type"] == content_type and got.content == data
    for bad in (b"<html><script>alert(1)</script></html>", b"%PDF-1.7\n", b"BM" + b"\x00" * 40):
        refused = upload(alice, thread_id, bad, name="evil.png")
        assert refused.status_code == 415 and error_of(refused)["code"] == "UnsupportedMediaType"
    empty = upload(alice, thread_id, b"")
    assert empty.status_code == 400 and error_of(empty)["target"] == "chatImageFile"
    unnamed = upload(alice, thread_id, JPEG, name=None)
    assert unnamed.status_code == 201 and unnamed.json()["name"] == "image.jpg"


def test_only_members_may_upload_or_read(server: RunningServer) -> None:
    alice, _, thread_id = pair(server)
    eve = Chat(server.http_endpoint, make_user(server).token)
    image_id = uploaded(alice, thread_id)
    assert upload(eve, thread_id, PNG).status_code == 403
    assert eve.call("GET", image_url(thread_id, image_id), version=PREVIEW).status_code == 403
    assert eve.call("DELETE", f"/chat/threads/{q(thread_id)}/images/{image_id}", version=PREVIEW).status_code == 403
    stranger = Chat(server.http_endpoint, None)
    assert upload(stranger, thread_id, PNG).status_code == 401
    assert stranger.call("GET", image_url(thread_id, image_id), version=PREVIEW).status_code == 401
    assert alice.call("GET", image_url(thread_id, "../../etc/passwd"), version=PREVIEW).status_code == 404


def test_the_preview_version_only_where_it_defines_the_operation(server: RunningServer) -> None:
    alice, _, thread_id = pair(server)
    for version in ("2025-03-15", "2024-03-07"):
        refused = upload(alice, thread_id, PNG, version=version)
        assert refused.status_code == 400 and error_of(refused)["code"] == "UnsupportedApiVersion"
    image_id = uploaded(alice, thread_id)
    assert error_of(alice.call("GET", image_url(thread_id, image_id), version="2025-03-15"))["code"] == (
        "UnsupportedApiVersion"
    )
    props = alice.call("GET", f"/chat/threads/{q(thread_id)}", version=PREVIEW)  # the preview's other operations
    assert props.status_code == 200 and props.json()["metadata"] == {}
    assert PREVIEW in props.headers["api-supported-versions"]


def send(chat: Chat, thread_id: str, body: dict[str, Any], version: str = PREVIEW) -> requests.Response:
    return chat.call("POST", f"/chat/threads/{q(thread_id)}/messages", body, version=version)


def test_attachments_on_send_get_list_update_and_in_events(server: RunningServer) -> None:
    alice, bob, thread_id = pair(server)
    first, second = uploaded(alice, thread_id, PNG, "a.png"), uploaded(alice, thread_id, JPEG, "b.jpg")

    async def main() -> tuple[list[dict[str, Any]], str]:
        stream = await open_stream(ws_url(server), bob.token)
        sent = send(alice, thread_id, {"content": "look", "attachments": [
            {"id": first, "attachmentType": "image", "name": "ignored.png"},
            {"id": second, "attachmentType": "image"},
        ]})
        assert sent.status_code == 201, sent.text
        message_id = sent.json()["id"]
        edited = alice.call("PATCH", f"/chat/threads/{q(thread_id)}/messages/{message_id}",
                            {"attachments": [{"id": second, "attachmentType": "image"}]}, version=PREVIEW)
        assert edited.status_code == 204, edited.text
        await stream.wait_type("chatMessageEdited")
        await stream.close()
        return stream.events, message_id

    events, message_id = asyncio.run(main())
    received = next(e["data"] for e in events if e["type"] == "chatMessageReceived")
    assert [(a["id"], a["attachmentType"], a["name"]) for a in received["attachments"]] == [
        (first, "image", "a.png"), (second, "image", "b.jpg"),
    ]
    assert received["attachments"][0]["url"] == image_url(thread_id, first) + f"?api-version={PREVIEW}"
    edited = next(e["data"] for e in events if e["type"] == "chatMessageEdited")
    assert [a["id"] for a in edited["attachments"]] == [second]

    got = bob.call("GET", f"/chat/threads/{q(thread_id)}/messages/{message_id}", version=PREVIEW).json()
    (only,) = got["content"]["attachments"]
    assert only["id"] == second and only["name"] == "b.jpg" and only["attachmentType"] == "image"
    assert only["url"] == f"{server.http_endpoint}{image_url(thread_id, second)}?api-version={PREVIEW}"
    assert only["previewUrl"] == f"{server.http_endpoint}{image_url(thread_id, second, 'small')}?api-version={PREVIEW}"
    assert requests.get(only["url"], headers={"Authorization": f"Bearer {bob.token}"}, timeout=10).content == JPEG
    assert bob.call("GET", image_url(thread_id, first), version=PREVIEW).status_code == 404  # the edit dropped it
    listed = next(m for m in bob.messages(thread_id) if m["id"] == message_id)
    assert [a["id"] for a in listed["content"]["attachments"]] == [second]  # list also on stable versions

    assert alice.call("DELETE", f"/chat/threads/{q(thread_id)}/messages/{message_id}").status_code == 204
    assert bob.call("GET", image_url(thread_id, second), version=PREVIEW).status_code == 404  # went with it


def test_attachment_rules(server: RunningServer) -> None:
    alice, bob, thread_id = pair(server)
    mine, bobs = uploaded(alice, thread_id), uploaded(bob, thread_id)
    cases = [
        ([{"id": bobs, "attachmentType": "image"}], "attachments[0].id"),  # not the sender's image
        ([{"id": "0-tl-d0-" + "0" * 32, "attachmentType": "image"}], "attachments[0].id"),
        ([{"id": mine, "attachmentType": "file"}], "attachments[0].attachmentType"),
        ([{"id": mine, "attachmentType": "image"}, {"id": mine, "attachmentType": "image"}], "attachments[1].id"),
        ([{"attachmentType": "image"}], None),
    ]
    for attachments, target in cases:
        refused = send(alice, thread_id, {"content": "x", "attachments": attachments})
        assert refused.status_code == 400, refused.text
        if target:
            assert error_of(refused)["target"] == target
    assert send(alice, thread_id, {"content": "x", "attachments": [{"id": mine, "attachmentType": "image"}]}).ok
    again = send(alice, thread_id, {"content": "y", "attachments": [{"id": mine, "attachmentType": "image"}]})
    assert again.status_code == 400 and error_of(again)["target"] == "attachments[0].id"  # one message per image
    stable = send(alice, thread_id, {"content": "z", "attachments": [{"id": bobs, "attachmentType": "image"}]},
                  version="2025-03-15")  # not in that version's contract: ignored, as any unknown field
    assert stable.status_code == 201
    got = alice.call("GET", f"/chat/threads/{q(thread_id)}/messages/{stable.json()['id']}", version="2025-03-15")
    assert got.json()["content"]["attachments"] == []


def test_share_history_hides_images_of_messages_a_member_cannot_see(server: RunningServer) -> None:
    alice, bob, thread_id = pair(server)
    early = uploaded(alice, thread_id)
    assert send(alice, thread_id, {"content": "old", "attachments": [{"id": early, "attachmentType": "image"}]}).ok
    loose = uploaded(alice, thread_id)
    after = int(time.time()) + 1  # the first whole second after the message (share times have seconds)
    while time.time() < after:  # wait for that second to be in the past, not in the future
        time.sleep(after - time.time() + 0.001)
    carol_user = make_user(server)
    carol = Chat(server.http_endpoint, carol_user.token)
    now = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(after)) + "Z"
    carol_in = {"communicationIdentifier": identifier(carol_user.id), "shareHistoryTime": now}
    added = alice.call("POST", f"/chat/threads/{q(thread_id)}/participants/:add", {"participants": [carol_in]})
    assert added.status_code == 201
    assert carol.call("GET", image_url(thread_id, early), version=PREVIEW).status_code == 404
    assert bob.call("GET", image_url(thread_id, early), version=PREVIEW).status_code == 200
    assert carol.call("GET", image_url(thread_id, loose), version=PREVIEW).status_code == 200  # not attached yet


def test_deleting_the_thread_deletes_its_images(server: RunningServer) -> None:
    alice, bob, thread_id = pair(server)
    image_id = uploaded(alice, thread_id)
    files = list((server.data_dir / "images").rglob(image_id)) if server.engine == "sqlite" else []
    assert server.engine != "sqlite" or len(files) == 1
    assert alice.call("DELETE", f"/chat/threads/{q(thread_id)}").status_code == 204
    assert bob.call("GET", image_url(thread_id, image_id), version=PREVIEW).status_code == 404
    assert upload(alice, thread_id, PNG).status_code == 404
    assert all(not f.exists() for f in files)


@pytest.mark.parametrize("engine", ENGINES)
def test_image_size_and_count_limits(engine: str, tmp_path: Path) -> None:
    env = {"THREADLINE_THROTTLE": "off", "THREADLINE_IMAGE_BYTES": "1000", "THREADLINE_IMAGES_PER_THREAD": "3"}
    with serving(engine, tmp_path / "data", env=env) as srv:
        drain(srv)
        alice, _, thread_id = pair(srv)
        assert upload(alice, thread_id, PNG + b"\x00" * (1000 - len(PNG))).status_code == 201
        refused = upload(alice, thread_id, PNG + b"\x00" * (1001 - len(PNG)))
        assert refused.status_code == 413
        body = error_of(refused)
        assert body["code"] == "RequestEntityTooLarge" and body["target"] == "chatImageFile"
        chunked = alice.session.post(  # no Content-Length: refused while streaming
            f"{alice.base}/chat/threads/{q(thread_id)}/images", params={"api-version": PREVIEW},
            data=iter([PNG, b"\x00" * 2000]), headers={"Authorization": f"Bearer {alice.token}"}, timeout=30,
        )
        assert chunked.status_code == 413
        uploaded(alice, thread_id)
        uploaded(alice, thread_id)  # three images: the limit
        full = upload(alice, thread_id, PNG)
        assert full.status_code == 400 and "at most 3 images" in error_of(full)["message"]
