"""Pageable lists: the first request, the ``nextLink`` requests, and the pagers of both twins."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from typing import Generic, TypeVar

from azure.core.async_paging import AsyncItemPaged
from azure.core.paging import ItemPaged

from threadline._shared.call import Call, with_api_version

__all__ = ["Page", "Pager", "async_item_paged", "item_paged"]

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page: its items and the link to the next page (None on the last)."""

    items: list[T]
    next_link: str | None


@dataclass(frozen=True)
class Pager(Generic[T]):
    """How to fetch each page of one list operation.

    Attributes:
        first: the call for the first page.
        api_version: the version written into every ``nextLink`` request.
    """

    first: Call[Page[T]]
    api_version: str

    def call(self, continuation: str | None) -> Call[Page[T]]:
        """The call for the first page (``None``) or for the page at a ``nextLink``.

        The link is followed with its own query, except that ``api-version``
        is replaced by :attr:`api_version`; the paging parameters of the first
        call are not re-sent (the service puts them in the link).
        """
        if continuation is None:
            return self.first
        return replace(self.first, url=with_api_version(continuation, self.api_version), query={})


def _extract(page: Page[T]) -> tuple[str | None, Iterator[T]]:
    return page.next_link or None, iter(page.items)


def item_paged(run: Callable[[Call[Page[T]]], Page[T]], pager: Pager[T]) -> ItemPaged[T]:
    """Wrap a pager into azure-core's :class:`~azure.core.paging.ItemPaged`."""

    def get_next(continuation: str | None) -> Page[T]:
        return run(pager.call(continuation))

    return ItemPaged(get_next, _extract)


def async_item_paged(
    run: Callable[[Call[Page[T]]], Awaitable[Page[T]]], pager: Pager[T]
) -> AsyncItemPaged[T]:
    """Wrap a pager into azure-core's :class:`~azure.core.async_paging.AsyncItemPaged`."""

    async def get_next(continuation: str | None) -> Page[T]:
        return await run(pager.call(continuation))

    async def extract(page: Page[T]) -> tuple[str | None, AsyncIterator[T]]:
        async def items() -> AsyncIterator[T]:
            for item in page.items:
                yield item

        return page.next_link or None, items()

    return AsyncItemPaged(get_next, extract)
