"""Paging and bounded concurrency: :func:`paginate_offset` and :func:`bounded_map`."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice
from typing import Generic, TypeVar

from bridge.errors import AdapterError

T = TypeVar("T")
R = TypeVar("R")


class PagingMismatch(AdapterError):
    """What a listing sent cannot be reconciled with the total it reported; the run fails."""


class OffsetPages(Generic[T]):
    """The pages of a Limit/Skip API, read until an empty page (see :func:`paginate_offset`).

    After iteration, :attr:`shifted` tells whether the source's total fell while the pages
    were read: offsets then moved under the reader, so an item may have been skipped and
    the caller must read the listing again (deduplicating) to make up for it.
    """

    def __init__(
        self, fetch_page: Callable[[int, int], tuple[Sequence[T], int | None]], *, page_size: int, start: int = 0
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self._fetch_page = fetch_page
        self._page_size = page_size
        self._start = start
        self.shifted = False
        self.total: int | None = None
        """The total of the latest answer, when the source reports one."""

    def __iter__(self) -> Iterator[Sequence[T]]:
        offset = self._start
        while True:
            items, total = self._fetch_page(offset, self._page_size)
            if total is not None:
                if self.total is not None and total < self.total:
                    self.shifted = True
                self.total = total
            if not items:
                if total is not None and offset < total:
                    raise PagingMismatch(
                        f"the source reported {total} records but sent none from record {offset + 1} on; "
                        "what was read cannot be reconciled with its total"
                    )
                return
            if total is not None and offset + len(items) > total:
                raise PagingMismatch(
                    f"the source reported {total} records but sent {offset + len(items)}; "
                    "what was read cannot be reconciled with its total"
                )
            yield items
            offset += len(items)


def paginate_offset(
    fetch_page: Callable[[int, int], tuple[Sequence[T], int | None]],
    *,
    page_size: int,
    start: int = 0,
) -> OffsetPages[T]:
    """The pages of a Limit/Skip API until it runs out.

    ``fetch_page(offset, limit)`` returns the page's items and the total the source reports
    (``None`` if it reports none). The end is an empty page, never a short one: servers cap
    the page size below the ``Limit`` asked for without saying so. The total is checked, not
    trusted to end paging: an empty page before the total is reached, or a page reaching
    past it, raises :class:`PagingMismatch` (a silent loss is worse than a failed run). A
    total that changes between pages is followed; one that falls sets
    :attr:`OffsetPages.shifted`, since offsets then move under the reader.
    """
    return OffsetPages(fetch_page, page_size=page_size, start=start)


def bounded_map(fn: Callable[[T], R], items: Iterable[T], concurrency: int) -> Generator[R, None, None]:
    """Yield ``fn(item)`` for each item, in input order, with at most ``concurrency`` calls running.

    Items are read lazily: at most ``2 * concurrency`` are submitted ahead of the one being
    yielded, so memory stays bounded however many items there are, and workers keep busy while
    one slow call holds up the order. An exception from ``fn`` is raised when its turn comes;
    work not yet started is then cancelled, as it is when the caller closes the generator early.
    ``fn`` runs in worker threads (an ``httpx.Client`` is safe to share between them).
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    pending: deque[Future[R]] = deque()
    remaining = iter(items)
    executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="bridge-map")
    try:
        pending.extend(executor.submit(fn, item) for item in islice(remaining, 2 * concurrency))
        while pending:
            result = pending.popleft().result()
            pending.extend(executor.submit(fn, item) for item in islice(remaining, 1))
            yield result
    finally:
        for future in pending:
            future.cancel()
        executor.shutdown(wait=True, cancel_futures=True)
