"""The public surface of our SDK against the installed official packages.

For each official module: every name of its ``__all__`` exists in ours (the
chat ``__all__`` lists differ only by the real-time event models); for every public class, every public
method the official one has exists in ours, with the same parameter names,
kinds and defaults, and is a coroutine function exactly when the official one
is. We may add keyword-only parameters with defaults where the official
signature has ``**kwargs`` (it accepted them there), and must keep ``**kwargs``
wherever the official has it. Any drift fails here.
"""

from __future__ import annotations

import importlib
import inspect
from types import ModuleType
from typing import Any

import pytest

PAIRS = [
    ("azure.communication.chat", "threadline.chat"),
    ("azure.communication.chat.aio", "threadline.chat.aio"),
    ("azure.communication.identity", "threadline.identity"),
    ("azure.communication.identity.aio", "threadline.identity.aio"),
]
DUNDERS = {"__init__", "__enter__", "__exit__", "__aenter__", "__aexit__"}


def _modules(pair: tuple[str, str]) -> tuple[ModuleType, ModuleType]:
    return importlib.import_module(pair[0]), importlib.import_module(pair[1])


def _public_members(cls: type) -> dict[str, Any]:
    members: dict[str, Any] = {}
    for name in dir(cls):
        if name.startswith("_") and name not in DUNDERS:
            continue
        if issubclass(cls, str) and name in dir(str):
            continue  # str methods of str enums
        if name in DUNDERS and name not in vars(cls) and not any(name in vars(b) for b in cls.__mro__[:-1]):
            continue
        members[name] = inspect.getattr_static(cls, name)
    return members


def _same_default(ours: Any, theirs: Any) -> bool:
    if callable(theirs) and callable(ours):
        return getattr(ours, "__name__", None) == getattr(theirs, "__name__", None)
    return bool(ours == theirs)


def _compare_signatures(where: str, ours: Any, theirs: Any) -> list[str]:
    problems: list[str] = []
    try:
        sig_theirs = inspect.signature(theirs)
    except (TypeError, ValueError):
        return problems
    sig_ours = inspect.signature(ours)
    p_ours = sig_ours.parameters
    for name, param in sig_theirs.parameters.items():
        if param.kind is inspect.Parameter.VAR_POSITIONAL:
            if not any(p.kind is param.kind for p in p_ours.values()):
                problems.append(f"{where}: missing *{name}")
            continue
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            if not any(p.kind is param.kind for p in p_ours.values()):
                problems.append(f"{where}: missing **{name}")
            continue
        mine = p_ours.get(name)
        if mine is None:
            problems.append(f"{where}: missing parameter {name!r}")
            continue
        if mine.kind is not param.kind:
            problems.append(f"{where}: {name!r} is {mine.kind.name}, official {param.kind.name}")
        if not _same_default(mine.default, param.default):
            problems.append(f"{where}: {name!r} defaults to {mine.default!r}, official {param.default!r}")
    official_has_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig_theirs.parameters.values())
    for name, mine in p_ours.items():
        if name in sig_theirs.parameters or mine.kind in (
            inspect.Parameter.VAR_KEYWORD,
            inspect.Parameter.VAR_POSITIONAL,
        ):
            continue
        if not (official_has_kwargs and mine.kind is inspect.Parameter.KEYWORD_ONLY and
                mine.default is not inspect.Parameter.empty):
            problems.append(f"{where}: extra parameter {name!r} the official does not accept")
    return problems


def _raw(member: Any) -> Any:
    return member.__func__ if isinstance(member, classmethod | staticmethod) else member


@pytest.mark.parametrize("pair", PAIRS, ids=[p[1] for p in PAIRS])
def test_every_official_name_is_exported(pair: tuple[str, str]) -> None:
    official, ours = _modules(pair)
    missing = [name for name in official.__all__ if not hasattr(ours, name)]
    assert missing == []
    assert set(official.__all__) <= set(ours.__all__)


#: The one documented extension of the chat surface: real-time event models (docs/realtime.md).
REALTIME_EVENTS = {
    "ChatEvent",
    "ChatMessageDeletedEvent",
    "ChatMessageEditedEvent",
    "ChatMessageReceivedEvent",
    "ChatThreadCreatedEvent",
    "ChatThreadDeletedEvent",
    "ChatThreadPropertiesUpdatedEvent",
    "ParticipantsAddedEvent",
    "ParticipantsRemovedEvent",
    "ReadReceiptReceivedEvent",
    "RealTimeNotificationConnectedEvent",
    "RealTimeNotificationDisconnectedEvent",
    "ResumeGapEvent",
    "TypingIndicatorReceivedEvent",
}


#: Models of api-version 2025-03-15 and of the image operations (2024-06-05-preview) that 1.3.0
#: lacks (docs/sdk.md); models live in ``threadline.chat`` only, as upstream keeps every model out of ``.aio``.
MODEL_ADDITIONS = {
    "threadline.chat": {"ChatRetentionPolicy", "NoneRetentionPolicy", "ThreadCreationDateRetentionPolicy",
                        "UploadChatImageResult"},
    "threadline.chat.aio": set(),
}


@pytest.mark.parametrize("pair", PAIRS[:2], ids=[p[1] for p in PAIRS[:2]])
def test_chat_all_is_the_official_all_plus_realtime_events(pair: tuple[str, str]) -> None:
    official, ours = _modules(pair)
    additions = REALTIME_EVENTS | MODEL_ADDITIONS[pair[1]]
    assert len(ours.__all__) == len(set(ours.__all__))
    assert set(ours.__all__) - set(official.__all__) == additions
    assert set(official.__all__) <= set(ours.__all__)
    for name in additions:
        assert getattr(ours, name).__doc__, name


@pytest.mark.parametrize("pair", PAIRS, ids=[p[1] for p in PAIRS])
def test_every_public_method_matches(pair: tuple[str, str]) -> None:
    official, ours = _modules(pair)
    problems: list[str] = []
    checked = 0
    for name in official.__all__:
        theirs_cls, ours_cls = getattr(official, name), getattr(ours, name)
        if not inspect.isclass(theirs_cls):
            problems += _compare_signatures(name, ours_cls, theirs_cls)
            continue
        if issubclass(theirs_cls, dict):  # TypedDicts
            assert set(theirs_cls.__annotations__) == set(ours_cls.__annotations__), name
            continue
        if issubclass(theirs_cls, str):  # enums: same members and values
            assert {m.name: m.value for m in theirs_cls} == {m.name: m.value for m in ours_cls}, name
            continue
        our_members = _public_members(ours_cls)
        for attr, theirs in _public_members(theirs_cls).items():
            where = f"{pair[1]}.{name}.{attr}"
            if attr not in our_members:
                problems.append(f"{where}: missing")
                continue
            mine = our_members[attr]
            if isinstance(theirs, property):
                if not isinstance(mine, property):
                    problems.append(f"{where}: should be a property")
                continue
            if isinstance(theirs, classmethod | staticmethod) and type(mine) is not type(theirs):
                problems.append(f"{where}: {type(mine).__name__}, official {type(theirs).__name__}")
            f_theirs, f_mine = _raw(theirs), _raw(mine)
            if not callable(f_theirs):
                continue
            if inspect.iscoroutinefunction(f_theirs) != inspect.iscoroutinefunction(f_mine):
                problems.append(f"{where}: coroutine function mismatch")
            problems += _compare_signatures(where, f_mine, f_theirs)
            checked += 1
    assert problems == []
    assert checked > 0


def test_aio_list_methods_are_plain_functions_returning_async_pagers() -> None:
    from azure.core.async_paging import AsyncItemPaged

    from threadline.chat.aio import ChatClient, ChatThreadClient

    for cls, names in ((ChatClient, ["list_chat_threads"]),
                       (ChatThreadClient, ["list_messages", "list_participants", "list_read_receipts"])):
        for name in names:
            method = getattr(cls, name)
            assert not inspect.iscoroutinefunction(method)
            assert "AsyncItemPaged" in str(inspect.signature(method).return_annotation)
    assert AsyncItemPaged is not None


def test_the_checker_catches_drift() -> None:
    def official(self: Any, topic: str, **kwargs: Any) -> None: ...
    def renamed(self: Any, subject: str, **kwargs: Any) -> None: ...
    def no_kwargs(self: Any, topic: str) -> None: ...
    def positional_extra(self: Any, topic: str, extra: int = 1, **kwargs: Any) -> None: ...
    def keyword_extra(self: Any, topic: str, *, extra: int = 1, **kwargs: Any) -> None: ...

    assert _compare_signatures("x", renamed, official)
    assert _compare_signatures("x", no_kwargs, official)
    assert _compare_signatures("x", positional_extra, official)
    assert _compare_signatures("x", keyword_extra, official) == []
