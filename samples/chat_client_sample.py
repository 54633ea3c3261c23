"""The ChatClient examples of the ``azure.communication.chat.aio`` docs in their sync form, run against Threadline.

Each ``[START name]`` block is the official example with only the import changed
(``azure.communication.chat`` -> ``threadline.chat``). Run all examples, or some
(examples that need a thread create one first):

    python samples/chat_client_sample.py [create_chat_client create_thread ...]

See ``_sample_env.py`` for the environment variables.
"""

import sys

from _sample_env import endpoint, new_user, new_user_and_token


class ChatClientSamples:
    def __init__(self) -> None:
        self.user, self.token = new_user_and_token()
        self.endpoint = endpoint()
        self._thread_id = None

    def create_chat_client(self):
        token, endpoint = self.token, self.endpoint
        # [START create_chat_client]
        from threadline.chat import ChatClient, CommunicationTokenCredential

        # set `endpoint` to an existing ACS endpoint
        chat_client = ChatClient(endpoint, CommunicationTokenCredential(token))
        # [END create_chat_client]
        chat_client.close()
        print("create_chat_client succeeded")

    def create_thread(self):
        token, endpoint = self.token, self.endpoint
        self.user = new_user()  # the other participant
        # [START create_thread]
        from datetime import datetime

        from threadline.chat import ChatClient, CommunicationTokenCredential
        from threadline.chat import ChatParticipant

        # set `endpoint` to an existing ACS endpoint
        chat_client = ChatClient(endpoint, CommunicationTokenCredential(token))
        with chat_client:

            topic = "test topic"
            participants = [ChatParticipant(
                identifier=self.user,
                display_name='name',
                share_history_time=datetime.utcnow()
            )]
            # creates a new chat_thread everytime
            create_chat_thread_result = chat_client.create_chat_thread(topic, thread_participants=participants)

            # creates a new chat_thread if not exists
            idempotency_token = 'b66d6031-fdcc-41df-8306-e524c9f226b8'  # unique identifier
            create_chat_thread_result_w_repeatability_id = chat_client.create_chat_thread(
                topic,
                thread_participants=participants,
                idempotency_token=idempotency_token)
        # [END create_thread]
        self._thread_id = create_chat_thread_result.chat_thread.id
        print("thread created: ", self._thread_id, create_chat_thread_result_w_repeatability_id.chat_thread.topic)

    def get_chat_thread_client(self):
        token, endpoint, thread_id = self.token, self.endpoint, self._thread_id
        # [START get_chat_thread_client]
        from threadline.chat import ChatClient, CommunicationTokenCredential

        # set `endpoint` to an existing ACS endpoint
        chat_client = ChatClient(endpoint, CommunicationTokenCredential(token))

        # set `thread_id` to an existing chat thread id
        chat_thread_client = chat_client.get_chat_thread_client(thread_id)
        # [END get_chat_thread_client]
        print("get_chat_thread_client succeeded with thread id: ", chat_thread_client.thread_id)

    def list_threads(self):
        token, endpoint = self.token, self.endpoint
        # [START list_threads]
        from threadline.chat import ChatClient, CommunicationTokenCredential

        # set `endpoint` to an existing ACS endpoint
        chat_client = ChatClient(endpoint, CommunicationTokenCredential(token))
        with chat_client:

            from datetime import datetime, timedelta
            start_time = datetime.utcnow() - timedelta(days=2)
            chat_threads = chat_client.list_chat_threads(results_per_page=5, start_time=start_time)
            print("list_threads succeeded with results_per_page is 5, and were created since 2 days ago.")
            for chat_thread_item_page in chat_threads.by_page():
                for chat_thread_item in chat_thread_item_page:
                    print("thread id: ", chat_thread_item.id)
        # [END list_threads]

    def delete_thread(self):
        token, endpoint, thread_id = self.token, self.endpoint, self._thread_id
        # [START delete_thread]
        from threadline.chat import ChatClient, CommunicationTokenCredential

        # set `endpoint` to an existing ACS endpoint
        chat_client = ChatClient(endpoint, CommunicationTokenCredential(token))
        with chat_client:
            # set `thread_id` to an existing chat thread id
            chat_client.delete_chat_thread(thread_id)
        # [END delete_thread]
        print("delete_thread succeeded")


EXAMPLES = ["create_chat_client", "create_thread", "get_chat_thread_client", "list_threads", "delete_thread"]
NEED_THREAD = {"get_chat_thread_client", "delete_thread"}


def main(names):
    if "create_thread" not in names and set(names) & NEED_THREAD:
        names = ["create_thread", *names]
    sample = ChatClientSamples()
    for name in names:
        getattr(sample, name)()
        print(f"OK {name}")


if __name__ == "__main__":
    main(sys.argv[1:] or EXAMPLES)
