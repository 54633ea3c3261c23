"""Identifiers to and from the wire's ``CommunicationIdentifierModel``."""

from __future__ import annotations

from typing import Any

from threadline.protocol import wire

from .identifiers import (
    CommunicationCloudEnvironment,
    CommunicationIdentifier,
    CommunicationIdentifierKind,
    CommunicationUserIdentifier,
    MicrosoftTeamsAppIdentifier,
    MicrosoftTeamsUserIdentifier,
    PhoneNumberIdentifier,
    UnknownIdentifier,
    identifier_from_raw_id,
)

__all__ = ["identifier_from_wire", "identifier_to_wire"]


def _cloud_to_wire(cloud: Any) -> str:
    return str(getattr(cloud, "value", cloud)).lower()


def identifier_to_wire(identifier: CommunicationIdentifier) -> wire.Identifier:
    """Describe an identifier as the service expects it: a raw id plus its typed form.

    Like the official SDK, ``kind`` is not sent.

    Raises:
        TypeError: ``identifier`` is not a communication identifier (no ``raw_id``/``kind``),
            as the official SDK raises.
    """
    try:
        raw_id = identifier.raw_id
        kind = identifier.kind
        props = identifier.properties
    except AttributeError:
        raise TypeError("Unsupported identifier type " + type(identifier).__name__) from None
    model = wire.Identifier(raw_id=raw_id)
    if kind == CommunicationIdentifierKind.COMMUNICATION_USER:
        model.communication_user = wire.CommunicationUser(id=props["id"])
    elif kind == CommunicationIdentifierKind.PHONE_NUMBER:
        model.phone_number = wire.PhoneNumber(value=props["value"])
    elif kind == CommunicationIdentifierKind.MICROSOFT_TEAMS_USER:
        model.microsoft_teams_user = wire.TeamsUser(
            user_id=props["user_id"],
            is_anonymous=bool(props.get("is_anonymous", False)),
            cloud=_cloud_to_wire(props.get("cloud") or CommunicationCloudEnvironment.PUBLIC),
        )
    elif kind == CommunicationIdentifierKind.MICROSOFT_TEAMS_APP:
        model.microsoft_teams_app = wire.TeamsApp(
            app_id=props["app_id"],
            cloud=_cloud_to_wire(props.get("cloud") or CommunicationCloudEnvironment.PUBLIC),
        )
    return model


def identifier_from_wire(model: wire.Identifier) -> CommunicationIdentifier:
    """Read an identifier from a response.

    The typed form decides the kind, as in the official SDK; unlike 1.3.0, a
    ``microsoftTeamsApp`` gives a :class:`MicrosoftTeamsAppIdentifier`, and a
    bare ``rawId`` is parsed with :func:`identifier_from_raw_id` instead of
    always giving an :class:`UnknownIdentifier`.
    """
    raw_id = model.raw_id
    if model.communication_user is not None:
        user_id = raw_id or model.communication_user.id
        return CommunicationUserIdentifier(user_id, raw_id=user_id)
    if model.phone_number is not None:
        return PhoneNumberIdentifier(model.phone_number.value, raw_id=raw_id)
    if model.microsoft_teams_user is not None:
        teams = model.microsoft_teams_user
        kwargs: dict[str, Any] = {"is_anonymous": bool(teams.is_anonymous), "raw_id": raw_id}
        if teams.cloud:
            kwargs["cloud"] = _cloud_from_wire(teams.cloud)
        return MicrosoftTeamsUserIdentifier(teams.user_id, **kwargs)
    if model.microsoft_teams_app is not None:
        app = model.microsoft_teams_app
        cloud = _cloud_from_wire(app.cloud) if app.cloud else None
        return MicrosoftTeamsAppIdentifier(app.app_id, cloud=cloud, raw_id=raw_id)
    if raw_id:
        return identifier_from_raw_id(raw_id)
    return UnknownIdentifier("")


def _cloud_from_wire(value: str) -> CommunicationCloudEnvironment | str:
    try:
        return CommunicationCloudEnvironment(value.upper())
    except ValueError:
        return value
