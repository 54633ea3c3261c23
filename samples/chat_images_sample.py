"""Images and attachments (api-version 2024-06-05-preview) with the Threadline SDK.

Uploads a picture to a thread, sends a message that shows it, reads the message
and the picture back, then replaces and deletes it:

    python samples/chat_images_sample.py

See ``_sample_env.py`` for the environment variables.
"""

import base64

from _sample_env import endpoint, new_user_and_token

# A 1x1 PNG; any JPEG, PNG, GIF, WebP or HEIC file works (the server reads the type from the bytes).
PICTURE = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVQYV2P4DwABAQEAWk1v8QAAAABJRU5ErkJggg==")


def main() -> None:
    from threadline.chat import ChatAttachmentType, ChatClient, CommunicationTokenCredential

    _, token = new_user_and_token()
    with ChatClient(endpoint(), CommunicationTokenCredential(token)) as chat_client:
        thread_id = chat_client.create_chat_thread("pictures").chat_thread.id
        thread = chat_client.get_chat_thread_client(thread_id)

        uploaded = thread.upload_image(PICTURE, "dot.png")
        print("uploaded:", uploaded.id, uploaded.name)

        sent = thread.send_message("here is a picture", attachments=[uploaded])
        message = thread.get_message(sent.id)
        for attachment in message.content.attachments:
            kind = ChatAttachmentType(attachment.attachment_type).value  # "image"
            print("attachment:", attachment.id, kind, attachment.name)
            print("same bytes:", thread.get_image(attachment.id) == PICTURE)

        thread.update_message(sent.id, content="no picture any more", attachments=[])
        print("after the edit:", thread.get_message(sent.id).content.attachments)
        chat_client.delete_chat_thread(thread_id)  # would delete any images left


if __name__ == "__main__":
    main()
