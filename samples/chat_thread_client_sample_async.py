"""The ChatThreadClient examples of the ``azure.communication.chat.aio`` docs, run against Threadline.

Each ``[START name]`` block is the official example with only the import changed
(``azure.communication.chat`` -> ``threadline.chat``), plus one fix: the published
``get_properties`` example forgets to ``await``. Run all examples, or some (a thread,
a message and the users they need are created first):

    python samples/chat_thread_client_sample_async.py [send_message get_message ...]

See ``_sample_env.py`` for the environment variables.
"""

import asyncio
import sys

from _sample_env import endpoint, new_user, new_user_and_token


class ChatThreadClientSamplesAsync:
    def __init__(self) -> None:
        self.user, self.token = new_user_and_token()
        self.new_user = new_user()
        self.endpoint = endpoint()
        self._thread_id = None
        self._message_id = None

    def _chat_client(self):
        from threadline.chat.aio import ChatClient, CommunicationTokenCredential
        return ChatClient(self.endpoint, CommunicationTokenCredential(self.token))

    async def create_chat_thread_client(self):
        token, endpoint, user = self.token, self.endpoint, self.user
        # [START create_chat_thread_client]
        from datetime import datetime
        from threadline.chat.aio import ChatClient, CommunicationTokenCredential
        from threadline.chat import ChatParticipant, CommunicationUserIdentifier
        # set `endpoint` to an existing ACS endpoint
        chat_client = ChatClient(endpoint, CommunicationTokenCredential(token))

        async with chat_client:
            topic = "test topic"
            participants = [ChatParticipant(
                identifier=user,
                display_name='name',
                share_history_time=datetime.utcnow()
            )]
            create_chat_thread_result = await chat_client.create_chat_thread(topic, thread_participants=participants)
            chat_thread_client = chat_client.get_chat_thread_client(create_chat_thread_result.chat_thread.id)
        # [END create_chat_thread_client]
        self._thread_id = create_chat_thread_result.chat_thread.id
        print("chat_thread_client created with thread id: ", chat_thread_client.thread_id)

    async def get_properties(self):
        token, endpoint, thread_id = self.token, self.endpoint, self._thread_id
        # [START get_thread]
        from threadline.chat.aio import ChatClient, CommunicationTokenCredential

        # set `endpoint` to an existing ACS endpoint
        chat_client = ChatClient(endpoint, CommunicationTokenCredential(token))
        async with chat_client:
            chat_thread_client = chat_client.get_chat_thread_client(thread_id)

            async with chat_thread_client:
                chat_thread_properties = await chat_thread_client.get_properties()  # the docs omit this await
                print('Expected Thread Id: ', thread_id, ' Actual Value: ', chat_thread_properties.id)
        # [END get_thread]

    async def update_topic(self):
        thread_id, chat_client = self._thread_id, self._chat_client()
        # [START update_topic]
        # set `thread_id` to an existing thread id
        async with chat_client:
            chat_thread_client = chat_client.get_chat_thread_client(thread_id=thread_id)

            async with chat_thread_client:
                chat_thread_properties = await chat_thread_client.get_properties()
                previous_topic = chat_thread_properties.topic

                topic = "updated thread topic"
                await chat_thread_client.update_topic(topic=topic)

                chat_thread_properties = await chat_thread_client.get_properties()
                updated_topic = chat_thread_properties.topic

                print("Chat Thread Topic Update: Previous value: ", previous_topic, ", Current value: ", updated_topic)
        # [END update_topic]

    async def send_message(self):
        thread_id, chat_client = self._thread_id, self._chat_client()
        # [START send_message]
        from threadline.chat import ChatMessageType
        async with chat_client:
            chat_thread_client = chat_client.get_chat_thread_client(thread_id=thread_id)
            async with chat_thread_client:
                # Scenario 1: Send message without specifying chat_message_type
                send_message_result = await chat_thread_client.send_message(
                    "Hello! My name is Fred Flinstone",
                    sender_display_name="Fred Flinstone",
                    metadata={"tags": "tags"})
                send_message_result_id = send_message_result.id

                # Scenario 2: Send message specifying chat_message_type
                send_message_result_w_type = await chat_thread_client.send_message(
                    "Hello! My name is Wilma Flinstone",
                    sender_display_name="Wilma Flinstone",
                    chat_message_type=ChatMessageType.TEXT)  # equivalent to setting chat_message_type='text'
                send_message_result_w_type_id = send_message_result_w_type.id

                # Verify message content
                chat_message_1 = await chat_thread_client.get_message(send_message_result_id)
                print("First Message:", chat_message_1.content.message, chat_message_1.metadata)
                print("Second Message:", (await chat_thread_client.get_message(send_message_result_w_type_id)).content.message)
        # [END send_message]
        self._message_id = send_message_result_id

    async def get_message(self):
        thread_id, message_id, chat_client = self._thread_id, self._message_id, self._chat_client()
        # [START get_message]
        async with chat_client:
            # set `thread_id` to an existing thread id
            chat_thread_client = chat_client.get_chat_thread_client(thread_id=thread_id)
            async with chat_thread_client:
                # set `message_id` to an existing message id
                chat_message = await chat_thread_client.get_message(message_id)

                print("Message received: ChatMessage: content=", chat_message.content.message, ", id=", chat_message.id)
        # [END get_message]

    async def list_messages(self):
        thread_id, chat_client = self._thread_id, self._chat_client()
        # [START list_messages]
        from datetime import datetime, timedelta
        async with chat_client:
            # set `thread_id` to an existing thread id
            chat_thread_client = chat_client.get_chat_thread_client(thread_id=thread_id)
            async with chat_thread_client:
                start_time = datetime.utcnow() - timedelta(days=1)
                chat_messages = chat_thread_client.list_messages(results_per_page=1, start_time=start_time)
                print("list_messages succeeded with results_per_page is 1, and start time is yesterday UTC")
                async for chat_message_page in chat_messages.by_page():
                    async for chat_message in chat_message_page:
                        print("ChatMessage: message=", chat_message.content.message)
        # [END list_messages]

    async def update_message(self):
        thread_id, message_id, chat_client = self._thread_id, self._message_id, self._chat_client()
        # [START update_message]
        async with chat_client:
            # set `thread_id` to an existing thread id
            chat_thread_client = chat_client.get_chat_thread_client(thread_id=thread_id)
            async with chat_thread_client:
                # set `message_id` to an existing message id
                previous_content = (await chat_thread_client.get_message(message_id)).content.message

                content = "updated message content"
                await chat_thread_client.update_message(self._message_id, content=content)

                current_content = (await chat_thread_client.get_message(message_id)).content.message

                print("Chat Message Updated: Previous value: ", previous_content, ", Current value: ", current_content)
        # [END update_message]

    async def send_read_receipt(self):
        thread_id, message_id, chat_client = self._thread_id, self._message_id, self._chat_client()
        # [START send_read_receipt]
        async with chat_client:
            # set `thread_id` to an existing thread id
            chat_thread_client = chat_client.get_chat_thread_client(thread_id=thread_id)
            async with chat_thread_client:
                # set `message_id` to an existing message id
                await chat_thread_client.send_read_receipt(message_id)
        # [END send_read_receipt]
        print("send_read_receipt succeeded")

    async def list_read_receipts(self):
        thread_id, chat_client = self._thread_id, self._chat_client()
        # [START list_read_receipts]
        async with chat_client:
            # set `thread_id` to an existing thread id
            chat_thread_client = chat_client.get_chat_thread_client(thread_id=thread_id)
            async with chat_thread_client:
                read_receipts = chat_thread_client.list_read_receipts()
                print("list_read_receipts succeeded, receipts:")
                async for read_receipt_page in read_receipts.by_page():
                    async for read_receipt in read_receipt_page:
                        print(read_receipt)
        # [END list_read_receipts]

    async def send_typing_notification(self):
        thread_id, chat_client = self._thread_id, self._chat_client()
        # [START send_typing_notification]
        async with chat_client:
            # set `thread_id` to an existing thread id
            chat_thread_client = chat_client.get_chat_thread_client(thread_id=thread_id)
            async with chat_thread_client:
                await chat_thread_client.send_typing_notification()
        # [END send_typing_notification]
        print("send_typing_notification succeeded")

    async def add_participants(self):
        thread_id, chat_client = self._thread_id, self._chat_client()
        # [START add_participants]
        def decide_to_retry(error):
            """
            Custom logic to decide whether to retry to add or not
            """
            return True

        async with chat_client:
            # set `thread_id` to an existing thread id
            chat_thread_client = chat_client.get_chat_thread_client(thread_id=thread_id)
            async with chat_thread_client:
                from threadline.chat import ChatParticipant
                from datetime import datetime
                new_participant = ChatParticipant(
                        identifier=self.new_user,
                        display_name='name',
                        share_history_time=datetime.utcnow())
                thread_participants = [new_participant]
                result = await chat_thread_client.add_participants(thread_participants)

                # list of participants which were unsuccessful to be added to chat thread
                retry = [p for p, e in result if decide_to_retry(e)]
                if retry:
                    await chat_thread_client.add_participants(retry)
        # [END add_participants]
        print("add_participants succeeded, failures:", result)

    async def list_participants(self):
        thread_id, chat_client = self._thread_id, self._chat_client()
        # [START list_participants]
        async with chat_client:
            # set `thread_id` to an existing thread id
            chat_thread_client = chat_client.get_chat_thread_client(thread_id=thread_id)
            async with chat_thread_client:
                chat_thread_participants = chat_thread_client.list_participants()
                print("list_participants succeeded, participants:")
                async for chat_thread_participant_page in chat_thread_participants.by_page():
                    async for chat_thread_participant in chat_thread_participant_page:
                        print("ChatParticipant: ", chat_thread_participant)
        # [END list_participants]

    async def remove_participant(self):
        from threadline.chat import ChatParticipant, CommunicationUserIdentifier
        thread_id, chat_client = self._thread_id, self._chat_client()
        user1, user2 = new_user(), new_user()
        async with chat_client:
            chat_thread_client = chat_client.get_chat_thread_client(thread_id=thread_id)
            async with chat_thread_client:
                # add user1 (Fred) and user2 (Wilma) to the thread first
                await chat_thread_client.add_participants([
                    ChatParticipant(identifier=user1, display_name="Fred Flinstone"),
                    ChatParticipant(identifier=user2, display_name="Wilma Flinstone"),
                ])
                # [START remove_participant]
                # Option 1 : Iterate through all participants, find and delete Fred Flinstone
                chat_thread_participants = chat_thread_client.list_participants()

                async for chat_thread_participant_page in chat_thread_participants.by_page():
                    async for chat_thread_participant in chat_thread_participant_page:
                        print("ChatParticipant: ", chat_thread_participant)
                        if chat_thread_participant.identifier.properties['id'] == user1.properties['id']:
                            print("Found Fred!")
                            await chat_thread_client.remove_participant(chat_thread_participant.identifier)
                            print("Fred has been removed from the thread...")
                            break

                # Option 2: Directly remove Wilma Flinstone
                unique_identifier = user2.properties['id']  # in real scenario the identifier would need to be retrieved from elsewhere
                await chat_thread_client.remove_participant(CommunicationUserIdentifier(unique_identifier))
                print("Wilma has been removed from the thread...")
                # [END remove_participant]

    async def delete_message(self):
        thread_id, message_id, chat_client = self._thread_id, self._message_id, self._chat_client()
        # [START delete_message]
        async with chat_client:
            # set `thread_id` to an existing thread id
            chat_thread_client = chat_client.get_chat_thread_client(thread_id=thread_id)
            async with chat_thread_client:
                # set `message_id` to an existing message id
                await chat_thread_client.delete_message(message_id)
        # [END delete_message]
        print("delete_message succeeded")


EXAMPLES = [
    "create_chat_thread_client", "get_properties", "update_topic", "send_message", "get_message", "list_messages",
    "update_message", "send_read_receipt", "list_read_receipts", "send_typing_notification", "add_participants",
    "list_participants", "remove_participant", "delete_message",
]
NEED_MESSAGE = {"get_message", "update_message", "send_read_receipt", "delete_message"}


async def main(names):
    prerequisites = ["create_chat_thread_client"]
    if set(names) & NEED_MESSAGE:
        prerequisites.append("send_message")
    names = [n for n in prerequisites if n not in names] + list(names)
    sample = ChatThreadClientSamplesAsync()
    for name in names:
        await getattr(sample, name)()
        print(f"OK {name}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:] or EXAMPLES))
