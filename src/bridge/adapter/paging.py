"""Paging and bounded concurrency: :func:`paginate_offset` and :func:`bounded_map`."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def paginate_offset(
    fetch_page: Callable[[int, int], tuple[Sequence[T], int | None]],
    *,
    page_size: int,
    start: int = 0,
) -> Iterator[Sequence[T]]:
    """Yield the pages of a Limit/Skip API until it runs out.

    ``fetch_page(offset, limit)`` returns the page's items and the total the source reports
    (``None`` if it reports none). Paging stops after an empty page, a short page, or once the
    offset reaches the total of the latest page — a total that changes between pages is
    followed, not trusted from the first page. Offset paging can skip or repeat an item the
    source inserts or deletes meanwhile; adapters cover that with an overlap and dedup.
    """
    if page_size < 1:
        raise ValueError("page_size must be at least 1")
    offset = start
    while True:
        items, total = fetch_page(offset, page_size)
        if not items:
            return
        yield items
        offset += len(items)
        if len(items) < page_size or (total is not None and offset >= total):
            return


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
