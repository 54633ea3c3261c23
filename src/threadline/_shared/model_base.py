"""A small base for the models the official SDK generates with AutoRest.

``ChatError``, ``ChatThreadItem`` and ``SendChatMessageResult`` are AutoRest
models in ``azure.communication.chat``; users call their ``as_dict()``,
``serialize()``, ``from_dict()`` and ``deserialize()``. This base gives the
same methods (same signatures) for flat models described by ``_attribute_map``.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from datetime import UTC, datetime
from enum import Enum
from typing import Any, ClassVar, TypeVar

from threadline.protocol.times import parse_iso

__all__ = ["Model", "attribute_transformer", "format_datetime"]

ModelType = TypeVar("ModelType", bound="Model")


def attribute_transformer(key: str, attr_desc: dict[str, Any], value: Any) -> tuple[str, Any]:
    """Key transformer of :meth:`Model.as_dict`: keep the Python attribute name."""
    return (key, value)


def format_datetime(value: datetime) -> str:
    """Format a datetime as ACS does (UTC, ``Z``); a naive one is taken as UTC."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return f"{value.year:04d}" + value.strftime("-%m-%dT%H:%M:%S.%fZ")  # %Y drops zeros before 1000


def _plain(value: Any, wire_keys: bool) -> Any:
    if isinstance(value, Model):
        return value._to_dict(wire_keys=wire_keys, keep_readonly=True)
    if isinstance(value, list):
        return [_plain(v, wire_keys) for v in value]
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, Enum):
        return value.value
    return value


class Model:
    """Base of the AutoRest-style models.

    Subclasses describe their attributes in ``_attribute_map`` as
    ``{attribute: {"key": wire key, "type": "str" | "iso-8601" | "<Model>" | "[<Model>]"}}``
    and read-only ones in ``_validation``.
    """

    _attribute_map: ClassVar[dict[str, dict[str, str]]] = {}
    _validation: ClassVar[dict[str, dict[str, bool]]] = {}
    _subtypes: ClassVar[dict[str, type[Model]]] = {}

    def __init__(self, **kwargs: Any) -> None:
        self.additional_properties: dict[str, Any] | None = {}
        for key, value in kwargs.items():
            if key in self._attribute_map:
                setattr(self, key, value)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.__dict__ == other.__dict__

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={getattr(self, k, None)!r}" for k in self._attribute_map)
        return f"{type(self).__name__}({fields})"

    def _to_dict(self, *, wire_keys: bool, keep_readonly: bool) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for attr, desc in self._attribute_map.items():
            if not keep_readonly and self._validation.get(attr, {}).get("readonly"):
                continue
            value = getattr(self, attr, None)
            if value is not None:
                result[desc["key"] if wire_keys else attr] = _plain(value, wire_keys)
        return result

    def as_dict(
        self,
        keep_readonly: bool = True,
        key_transformer: Callable[[str, dict[str, Any], Any], Any] = attribute_transformer,
        **kwargs: Any,
    ) -> MutableMapping[str, Any]:
        """Return the model as a dict keyed by attribute name (or by ``key_transformer``).

        Args:
            keep_readonly: include read-only attributes.
            key_transformer: ``(attribute, description, value) -> (key, value)``.

        Returns:
            JSON-compatible data; datetimes become ISO 8601 strings.
        """
        result: dict[str, Any] = {}
        for attr, value in self._to_dict(wire_keys=False, keep_readonly=keep_readonly).items():
            key, val = key_transformer(attr, self._attribute_map[attr], value)
            result[key] = val
        return result

    def serialize(self, keep_readonly: bool = False, **kwargs: Any) -> MutableMapping[str, Any]:
        """Return the model as the JSON the service uses (camelCase keys).

        Args:
            keep_readonly: include read-only attributes.
        """
        return self._to_dict(wire_keys=True, keep_readonly=keep_readonly)

    @classmethod
    def _build(cls: type[ModelType], data: Any, *, wire_keys: bool) -> ModelType:
        if not isinstance(data, dict):
            raise TypeError(f"{cls.__name__} needs a dict, not {type(data).__name__}")
        obj = cls.__new__(cls)
        obj.additional_properties = {}
        for attr, desc in cls._attribute_map.items():
            key = desc["key"] if wire_keys else attr
            value = data.get(key, data.get(attr) if wire_keys else data.get(desc["key"]))
            setattr(obj, attr, cls._convert(desc["type"], value, wire_keys))
        return obj

    @classmethod
    def _convert(cls, kind: str, value: Any, wire_keys: bool) -> Any:
        if value is None:
            return None
        if kind.startswith("["):
            return [cls._convert(kind[1:-1], v, wire_keys) for v in value]
        if kind == "iso-8601":
            return value if isinstance(value, datetime) else parse_iso(value)
        if kind in cls._subtypes:
            return cls._subtypes[kind]._build(value, wire_keys=wire_keys)
        if kind == cls.__name__:
            return cls._build(value, wire_keys=wire_keys)
        return value

    @classmethod
    def from_dict(
        cls: type[ModelType],
        data: Any,
        key_extractors: Callable[[str, dict[str, Any], Any], Any] | None = None,
        content_type: str | None = None,
    ) -> ModelType:
        """Build the model from a dict keyed by attribute names (wire keys are accepted too)."""
        return cls._build(data, wire_keys=False)

    @classmethod
    def deserialize(cls: type[ModelType], data: Any, content_type: str | None = None) -> ModelType:
        """Build the model from the service's JSON (camelCase keys)."""
        return cls._build(data, wire_keys=True)

    @classmethod
    def enable_additional_properties_sending(cls) -> None:
        """Kept for API compatibility; additional properties are never sent."""

    @classmethod
    def is_xml_model(cls) -> bool:
        """Return False: ACS models are JSON."""
        return False
