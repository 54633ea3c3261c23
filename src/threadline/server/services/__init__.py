"""The rules of the service, free of HTTP and SQL.

Services take an :class:`~threadline.server.services.actor.Actor` and plain
values, check membership, validation and idempotency, write through the
:class:`~threadline.store.base.Store`, and publish committed events to the hub.
"""
