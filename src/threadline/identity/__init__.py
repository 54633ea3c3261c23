"""Users, access tokens and HMAC request signing.

The server-side primitives live in :mod:`.tokens` and :mod:`.hmac`; the
client, the twin of ``azure.communication.identity``, is
:class:`threadline.identity.CommunicationIdentityClient` (added by the SDK).
"""
