"""Communication identifiers, as ``azure.communication.chat`` / ``.identity`` expose them.

The classes have the names, constructor signatures, ``kind``/``properties``/``raw_id``
attributes and equality of the official SDKs. Raw ids are told apart by
:func:`threadline.protocol.ids.parse_raw_id`, the same function the server uses,
so both sides agree on every string. Both the chat and the identity package
export these very classes, so ``isinstance`` works across them (the official
packages ship two unrelated copies).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any, Literal, Protocol, TypedDict, runtime_checkable

from azure.core import CaseInsensitiveEnumMeta

from threadline.protocol import ids

__all__ = [
    "CommunicationCloudEnvironment",
    "CommunicationIdentifier",
    "CommunicationIdentifierKind",
    "CommunicationUserIdentifier",
    "CommunicationUserProperties",
    "MicrosoftTeamsAppIdentifier",
    "MicrosoftTeamsAppProperties",
    "MicrosoftTeamsUserIdentifier",
    "MicrosoftTeamsUserProperties",
    "PhoneNumberIdentifier",
    "PhoneNumberProperties",
    "UnknownIdentifier",
    "identifier_from_raw_id",
]


class CommunicationIdentifierKind(str, Enum, metaclass=CaseInsensitiveEnumMeta):  # noqa: UP042 - str() as upstream
    """The kind of a communication identifier.

    Rely on ``raw_id`` rather than on ``UNKNOWN``: an identifier unknown to
    this version may become a distinct kind later.
    """

    UNKNOWN = ids.UNKNOWN
    COMMUNICATION_USER = ids.COMMUNICATION_USER
    PHONE_NUMBER = ids.PHONE_NUMBER
    MICROSOFT_TEAMS_USER = ids.MICROSOFT_TEAMS_USER
    MICROSOFT_TEAMS_APP = ids.MICROSOFT_TEAMS_APP


class CommunicationCloudEnvironment(str, Enum, metaclass=CaseInsensitiveEnumMeta):  # noqa: UP042 - str() as upstream
    """The cloud an identifier belongs to."""

    PUBLIC = "PUBLIC"
    DOD = "DOD"
    GCCH = "GCCH"


@runtime_checkable
class CommunicationIdentifier(Protocol):
    """Anything with a ``raw_id``, a ``kind`` and ``properties``."""

    @property
    def raw_id(self) -> str:
        """The raw id of the identifier."""
        ...

    @property
    def kind(self) -> CommunicationIdentifierKind:
        """The kind of identifier."""
        ...

    @property
    def properties(self) -> Mapping[str, Any]:
        """The kind-specific properties."""
        ...


class CommunicationUserProperties(TypedDict):
    """Properties of a :class:`CommunicationUserIdentifier`."""

    id: str


class PhoneNumberProperties(TypedDict):
    """Properties of a :class:`PhoneNumberIdentifier`."""

    value: str


class MicrosoftTeamsUserProperties(TypedDict):
    """Properties of a :class:`MicrosoftTeamsUserIdentifier`."""

    user_id: str
    is_anonymous: bool
    cloud: CommunicationCloudEnvironment | str


class MicrosoftTeamsAppProperties(TypedDict):
    """Properties of a :class:`MicrosoftTeamsAppIdentifier`."""

    app_id: str
    cloud: CommunicationCloudEnvironment | str


_TEAMS_USER_PREFIX = {
    CommunicationCloudEnvironment.PUBLIC: "8:orgid:",
    CommunicationCloudEnvironment.DOD: "8:dod:",
    CommunicationCloudEnvironment.GCCH: "8:gcch:",
}
_TEAMS_APP_PREFIX = {
    CommunicationCloudEnvironment.PUBLIC: "28:orgid:",
    CommunicationCloudEnvironment.DOD: "28:dod:",
    CommunicationCloudEnvironment.GCCH: "28:gcch:",
}


def _cloud(value: Any) -> CommunicationCloudEnvironment | str:
    """Read a cloud name in any case (the wire uses ``public``); unknown names stay strings."""
    if isinstance(value, CommunicationCloudEnvironment):
        return value
    try:
        return CommunicationCloudEnvironment(str(value).upper())
    except ValueError:
        return str(value)


class _Identifier:
    """Equality, hashing and repr shared by the identifier classes."""

    raw_id: str
    properties: Any

    def _format_raw_id(self, properties: Any) -> str:
        return self.raw_id

    def __eq__(self, other: object) -> bool:
        try:
            other_raw = other.raw_id  # type: ignore[attr-defined]
            if other_raw:
                return bool(self.raw_id == other_raw)
            return self.raw_id == self._format_raw_id(other.properties)  # type: ignore[attr-defined]
        except Exception:
            return False

    def __hash__(self) -> int:
        return hash(self.raw_id)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(raw_id={self.raw_id!r})"


class CommunicationUserIdentifier(_Identifier):
    """An Azure Communication Services user.

    Args:
        id: the user id as returned by the identity service (``8:acs:...``).
        **kwargs: ``raw_id`` (str): the raw id; ``id`` when omitted.
    """

    kind: Literal[CommunicationIdentifierKind.COMMUNICATION_USER] = (
        CommunicationIdentifierKind.COMMUNICATION_USER
    )
    properties: CommunicationUserProperties
    raw_id: str

    def __init__(self, id: str, **kwargs: Any) -> None:
        self.properties = CommunicationUserProperties(id=id)
        raw_id: str | None = kwargs.get("raw_id")
        self.raw_id = raw_id if raw_id is not None else id

    def _format_raw_id(self, properties: Any) -> str:
        return str(properties["id"])


class PhoneNumberIdentifier(_Identifier):
    """A phone number.

    Args:
        value: the number in E.164 format (``+14255550123``).
        **kwargs: ``raw_id`` (str): the raw id; ``4:<value>`` when omitted.
    """

    kind: Literal[CommunicationIdentifierKind.PHONE_NUMBER] = CommunicationIdentifierKind.PHONE_NUMBER
    properties: PhoneNumberProperties
    raw_id: str

    def __init__(self, value: str, **kwargs: Any) -> None:
        self.properties = PhoneNumberProperties(value=value)
        raw_id: str | None = kwargs.get("raw_id")
        self.raw_id = raw_id if raw_id is not None else self._format_raw_id(self.properties)

    def _format_raw_id(self, properties: Any) -> str:
        return f"{ids.PHONE_PREFIX}{properties['value']}"


class MicrosoftTeamsUserIdentifier(_Identifier):
    """A Microsoft Teams user.

    Args:
        user_id: the Entra object id of the user (or the visitor id when anonymous).
        **kwargs: ``is_anonymous`` (bool, default False), ``cloud``
            (:class:`CommunicationCloudEnvironment` or str, default PUBLIC) and
            ``raw_id`` (str; built from the other properties when omitted).
    """

    kind: Literal[CommunicationIdentifierKind.MICROSOFT_TEAMS_USER] = (
        CommunicationIdentifierKind.MICROSOFT_TEAMS_USER
    )
    properties: MicrosoftTeamsUserProperties
    raw_id: str

    def __init__(self, user_id: str, **kwargs: Any) -> None:
        self.properties = MicrosoftTeamsUserProperties(
            user_id=user_id,
            is_anonymous=bool(kwargs.get("is_anonymous", False)),
            cloud=kwargs.get("cloud") or CommunicationCloudEnvironment.PUBLIC,
        )
        raw_id: str | None = kwargs.get("raw_id")
        self.raw_id = raw_id if raw_id is not None else self._format_raw_id(self.properties)

    def _format_raw_id(self, properties: Any) -> str:
        if properties["is_anonymous"]:
            return f"8:teamsvisitor:{properties['user_id']}"
        prefix = _TEAMS_USER_PREFIX.get(_cloud(properties["cloud"]), "8:orgid:")  # type: ignore[call-overload]
        return f"{prefix}{properties['user_id']}"


class MicrosoftTeamsAppIdentifier(_Identifier):
    """A Microsoft Teams application (bot).

    Args:
        app_id: the application id.
        **kwargs: ``cloud`` (default PUBLIC) and ``raw_id`` (built when omitted).
    """

    kind: Literal[CommunicationIdentifierKind.MICROSOFT_TEAMS_APP] = (
        CommunicationIdentifierKind.MICROSOFT_TEAMS_APP
    )
    properties: MicrosoftTeamsAppProperties
    raw_id: str

    def __init__(self, app_id: str, **kwargs: Any) -> None:
        self.properties = MicrosoftTeamsAppProperties(
            app_id=app_id,
            cloud=kwargs.get("cloud") or CommunicationCloudEnvironment.PUBLIC,
        )
        raw_id: str | None = kwargs.get("raw_id")
        self.raw_id = raw_id if raw_id is not None else self._format_raw_id(self.properties)

    def _format_raw_id(self, properties: Any) -> str:
        prefix = _TEAMS_APP_PREFIX.get(_cloud(properties["cloud"]), "28:orgid:")  # type: ignore[call-overload]
        return f"{prefix}{properties['app_id']}"


class UnknownIdentifier(_Identifier):
    """An identifier of a kind this SDK does not know; only its raw id is kept.

    Args:
        identifier: the raw id.
    """

    kind: Literal[CommunicationIdentifierKind.UNKNOWN] = CommunicationIdentifierKind.UNKNOWN
    properties: Mapping[str, Any]
    raw_id: str

    def __init__(self, identifier: str) -> None:
        self.raw_id = identifier
        self.properties = {}

    def __eq__(self, other: object) -> bool:
        try:
            return bool(self.raw_id == other.raw_id)  # type: ignore[attr-defined]
        except AttributeError:
            return False

    __hash__ = _Identifier.__hash__


def identifier_from_raw_id(raw_id: str) -> CommunicationIdentifier:
    """Restore the identifier a raw id encodes.

    Args:
        raw_id: a raw id such as ``8:acs:...``, ``4:+1...``, ``8:orgid:...`` or ``28:orgid:...``.

    Returns:
        The identifier of the matching kind; :class:`UnknownIdentifier` otherwise.
    """
    parsed = ids.parse_raw_id(raw_id)
    props = parsed.properties
    if parsed.kind == ids.COMMUNICATION_USER:
        return CommunicationUserIdentifier(props["id"], raw_id=raw_id)
    if parsed.kind == ids.PHONE_NUMBER:
        return PhoneNumberIdentifier(props["value"], raw_id=raw_id)
    if parsed.kind == ids.MICROSOFT_TEAMS_USER:
        kwargs: dict[str, Any] = {"is_anonymous": props["is_anonymous"], "raw_id": raw_id}
        if props["cloud"] is not None:
            kwargs["cloud"] = CommunicationCloudEnvironment(props["cloud"])
        return MicrosoftTeamsUserIdentifier(props["user_id"], **kwargs)
    if parsed.kind == ids.MICROSOFT_TEAMS_APP:
        return MicrosoftTeamsAppIdentifier(
            props["app_id"], cloud=CommunicationCloudEnvironment(props["cloud"]), raw_id=raw_id
        )
    return UnknownIdentifier(raw_id)
