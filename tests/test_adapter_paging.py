"""Limit/Skip paging and order-keeping bounded concurrency."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.adapter import PagingMismatch, bounded_map, paginate_offset


@dataclass
class FakeSearch:
    """A Limit/Skip endpoint over a list that tests may change between pages."""

    items: list[int]
    report_total: bool = True
    calls: list[tuple[int, int]] = field(default_factory=list)

    def __call__(self, offset: int, limit: int) -> tuple[Sequence[int], int | None]:
        self.calls.append((offset, limit))
        return self.items[offset : offset + limit], len(self.items) if self.report_total else None


@dataclass
class CappedSearch(FakeSearch):
    """A server that serves at most ``cap`` items whatever is asked, and may misstate its total."""

    cap: int = 1000
    claimed_total: int | None = None

    def __call__(self, offset: int, limit: int) -> tuple[Sequence[int], int | None]:
        items, total = super().__call__(offset, min(limit, self.cap))
        self.calls[-1] = (offset, limit)
        return items, self.claimed_total if self.claimed_total is not None else total


def test_an_exact_multiple_ends_on_the_empty_page_after_the_total() -> None:
    search = FakeSearch(list(range(8)))

    assert [list(p) for p in paginate_offset(search, page_size=4)] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert search.calls == [(0, 4), (4, 4), (8, 4)]


def test_an_exact_multiple_without_a_total_ends_on_an_empty_page() -> None:
    search = FakeSearch(list(range(8)), report_total=False)

    assert [list(p) for p in paginate_offset(search, page_size=4)] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert search.calls == [(0, 4), (4, 4), (8, 4)]


@pytest.mark.parametrize("report_total", [True, False])
def test_a_short_page_does_not_end_paging(report_total: bool) -> None:
    """Servers cap pages below the Limit asked for; the reader goes on to the end."""
    search = CappedSearch(list(range(10)), cap=3, report_total=report_total)

    assert [list(p) for p in paginate_offset(search, page_size=4)] == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert search.calls == [(0, 4), (3, 4), (6, 4), (9, 4), (10, 4)]


def test_an_empty_result_yields_no_page() -> None:
    search = FakeSearch([])

    assert list(paginate_offset(search, page_size=4)) == []
    assert search.calls == [(0, 4)]


def test_a_start_offset_resumes_mid_way() -> None:
    search = FakeSearch(list(range(10)))

    assert [list(p) for p in paginate_offset(search, page_size=4, start=6)] == [[6, 7, 8, 9]]


def test_a_total_that_shrinks_mid_way_is_followed_and_reported_as_a_shift() -> None:
    search = FakeSearch(list(range(12)))
    pages = paginate_offset(search, page_size=4)
    reading = iter(pages)

    first = list(next(reading))
    del search.items[2:7]  # five cases vanish while we page: 7 remain, offset 4 is now item 9
    rest = [list(p) for p in reading]

    assert first == [0, 1, 2, 3]
    assert rest == [[9, 10, 11]]
    assert pages.shifted  # items 7 and 8 moved below the offset: the caller must read again
    assert search.calls == [(0, 4), (4, 4), (7, 4)]


def test_a_total_that_shrinks_below_the_offset_ends_paging() -> None:
    search = FakeSearch(list(range(12)))
    pages = paginate_offset(search, page_size=4)
    reading = iter(pages)

    next(reading)
    del search.items[3:]

    assert list(reading) == []
    assert pages.shifted
    assert search.calls == [(0, 4), (4, 4)]


def test_a_total_that_grows_mid_way_is_followed() -> None:
    search = FakeSearch(list(range(8)))
    pages = paginate_offset(search, page_size=4)
    reading = iter(pages)

    next(reading)
    search.items.extend([8, 9])

    assert [list(p) for p in reading] == [[4, 5, 6, 7], [8, 9]]
    assert not pages.shifted


@pytest.mark.parametrize(
    ("claimed", "message"), [(12, "sent none from record 11 on"), (8, "reported 8 records but sent 9")]
)
def test_a_total_that_disagrees_with_what_arrives_fails_loudly(claimed: int, message: str) -> None:
    search = CappedSearch(list(range(10)), cap=3, claimed_total=claimed)

    with pytest.raises(PagingMismatch, match=message):
        list(paginate_offset(search, page_size=5))


def test_page_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="page_size"):
        list(paginate_offset(FakeSearch([1]), page_size=0))


@given(
    n=st.integers(min_value=0, max_value=120),
    page_size=st.integers(min_value=1, max_value=30),
    cap=st.integers(min_value=1, max_value=30),
    report_total=st.booleans(),
)
def test_paging_yields_everything_once_whatever_the_server_caps(
    n: int, page_size: int, cap: int, report_total: bool
) -> None:
    search = CappedSearch(list(range(n)), cap=cap, report_total=report_total)

    pages = [list(p) for p in paginate_offset(search, page_size=page_size)]

    assert [x for page in pages for x in page] == list(range(n))
    # One request per page, and one more for the empty page that ends the listing.
    assert len(search.calls) == len(pages) + 1


# --- bounded_map --------------------------------------------------------------------------------


@dataclass
class InFlight:
    """Counts calls running at the same time."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    now: int = 0
    peak: int = 0

    def enter(self) -> None:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)

    def leave(self) -> None:
        with self.lock:
            self.now -= 1


@pytest.mark.parametrize("concurrency", [1, 3, 5])
def test_in_flight_calls_reach_but_never_exceed_the_concurrency(concurrency: int) -> None:
    flight = InFlight()
    # Each call waits until `concurrency` calls are running together: it proves the limit is
    # used in full, and a call beyond it would break the barrier.
    barrier = threading.Barrier(concurrency, timeout=10)

    def fetch(n: int) -> int:
        flight.enter()
        try:
            barrier.wait()
            return n * 10
        finally:
            flight.leave()

    items = list(range(concurrency * 6))
    assert list(bounded_map(fetch, items, concurrency)) == [n * 10 for n in items]
    assert flight.peak == concurrency


def test_results_keep_input_order_when_later_calls_finish_first() -> None:
    finished: list[int] = []
    last_done = threading.Event()
    lock = threading.Lock()

    def fetch(n: int) -> int:
        if n == 0:
            assert last_done.wait(timeout=10)
        with lock:
            finished.append(n)
        if n == 5:
            last_done.set()
        return n * n

    assert list(bounded_map(fetch, range(6), concurrency=3)) == [0, 1, 4, 9, 16, 25]
    assert finished[-1] == 0, "the first item was held back until the others were done"


def test_items_are_read_lazily() -> None:
    pulled: list[int] = []

    def items() -> Iterator[int]:
        for n in range(1_000):
            pulled.append(n)
            yield n

    results = bounded_map(lambda n: n, items(), concurrency=4)

    assert [next(results) for _ in range(3)] == [0, 1, 2]
    assert len(pulled) <= 2 * 4 + 3
    results.close()


def test_an_error_surfaces_in_its_turn_and_stops_the_rest() -> None:
    calls: list[int] = []
    lock = threading.Lock()

    def fetch(n: int) -> int:
        with lock:
            calls.append(n)
        if n == 3:
            raise RuntimeError("case 3 failed")
        return n

    results = bounded_map(fetch, range(1_000), concurrency=2)

    assert [next(results) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(RuntimeError, match="case 3 failed"):
        next(results)
    # The window: 2 * concurrency submitted ahead, topped up by one per result yielded.
    assert len(calls) <= 2 * 2 + 3


def test_stopping_early_cancels_work_not_yet_started() -> None:
    calls: list[int] = []
    lock = threading.Lock()
    release = threading.Event()

    def fetch(n: int) -> int:
        with lock:
            calls.append(n)
        if n > 0:
            assert release.wait(timeout=10)
        return n

    results = bounded_map(fetch, range(1_000), concurrency=2)
    assert next(results) == 0
    # Items 1 and 2 run (held) once both workers have taken them; 3 and 4 wait in the queue.
    # Closing must cancel those two and then wait for the running ones, which the timer lets go.
    deadline = time.monotonic() + 10
    while len(calls) < 3 and time.monotonic() < deadline:
        time.sleep(0.005)
    threading.Timer(0.2, release.set).start()
    results.close()

    assert sorted(calls) == [0, 1, 2]


def test_concurrency_must_be_positive() -> None:
    with pytest.raises(ValueError, match="concurrency"):
        list(bounded_map(str, [1], concurrency=0))


@settings(max_examples=40, deadline=None)
@given(items=st.lists(st.integers(), max_size=60), concurrency=st.integers(min_value=1, max_value=8))
def test_bounded_map_equals_map(items: list[int], concurrency: int) -> None:
    assert list(bounded_map(lambda n: n * 3 + 1, items, concurrency)) == [n * 3 + 1 for n in items]
