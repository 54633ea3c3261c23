"""Thread properties of api-version 2025-03-15 with the Threadline SDK (sync, then async).

What ``azure-communication-chat`` 1.3.0 cannot do yet: thread metadata, a retention
policy (the service deletes the thread a number of days after its creation), participant
metadata, and ``update_properties`` to change topic, metadata and retention in one call.

    python samples/thread_properties_sample.py

See ``_sample_env.py`` for the environment variables.
"""

import asyncio

from _sample_env import endpoint, new_user, new_user_and_token


def sync_example(token, other):
    from threadline.chat import (
        ChatClient,
        ChatParticipant,
        CommunicationTokenCredential,
        NoneRetentionPolicy,
        ThreadCreationDateRetentionPolicy,
    )

    with ChatClient(endpoint(), CommunicationTokenCredential(token)) as chat_client:
        result = chat_client.create_chat_thread(
            "support case 42",
            thread_participants=[ChatParticipant(identifier=other, display_name="Agent", metadata={"role": "agent"})],
            metadata={"case": "42"},
            retention_policy=ThreadCreationDateRetentionPolicy(delete_thread_after_days=30),
        )
        thread = result.chat_thread
        print("created:", thread.topic, thread.metadata, thread.retention_policy)

        with chat_client.get_chat_thread_client(thread.id) as thread_client:
            # one call, three properties; a metadata key set to None is removed
            thread_client.update_properties(
                topic="support case 42 (closed)",
                metadata={"case": None, "status": "closed"},
                retention_policy=NoneRetentionPolicy(),
            )
            props = thread_client.get_properties()
            print("updated:", props.topic, props.metadata, props.retention_policy)
            for participant in thread_client.list_participants():
                print("participant:", participant.display_name, participant.metadata)
        chat_client.delete_chat_thread(thread.id)


async def async_example(token):
    from threadline.chat import ThreadCreationDateRetentionPolicy
    from threadline.chat.aio import ChatClient, CommunicationTokenCredential

    async with ChatClient(endpoint(), CommunicationTokenCredential(token)) as chat_client:
        result = await chat_client.create_chat_thread("standup", metadata={"team": "blue"})
        async with chat_client.get_chat_thread_client(result.chat_thread.id) as thread_client:
            await thread_client.update_properties(
                retention_policy=ThreadCreationDateRetentionPolicy(delete_thread_after_days=90)
            )
            props = await thread_client.get_properties()
            print("async updated:", props.topic, props.metadata, props.retention_policy)


if __name__ == "__main__":
    _, user_token = new_user_and_token()
    sync_example(user_token, new_user())
    asyncio.run(async_example(user_token))
