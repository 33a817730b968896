"""Sample size and the upper error limit reproduce published attribute-sampling figures.

The figures are the standard tables for attribute sampling with zero expected errors (e.g. the
AICPA audit-sampling tables: 59 cases for 95 % confidence and a 5 % tolerable rate, 29 for
10 %), and the one-sided Clopper–Pearson limits 1 − 0.05^(1/59) = 4.95 % and 7.79 % for one
error in 59.
"""

from __future__ import annotations

import math

import pytest

from bridge.errors import ConfigError
from bridge.services.assurance import binomial_tail, conclude, sample_size, upper_error_limit, wilson_interval


@pytest.mark.parametrize(
    ("confidence", "tolerable", "n"),
    [(0.95, 0.05, 59), (0.95, 0.10, 29), (0.90, 0.05, 45), (0.99, 0.05, 90), (0.95, 0.02, 149), (0.90, 0.10, 22)],
)
def test_sample_size_matches_the_published_tables(confidence: float, tolerable: float, n: int) -> None:
    assert sample_size(confidence, tolerable) == n


def test_zero_errors_in_59_bounds_the_rate_at_4_95_percent() -> None:
    limit = upper_error_limit(0, 59, 0.95)
    assert round(limit * 100, 2) == 4.95
    assert limit == pytest.approx(1 - 0.05 ** (1 / 59), abs=1e-12)  # the closed form for zero errors


def test_one_error_in_59_bounds_the_rate_at_7_79_percent() -> None:
    limit = upper_error_limit(1, 59, 0.95)
    assert round(limit * 100, 2) == 7.79
    # at the limit, seeing one error or none has probability exactly 5 %
    assert binomial_tail(1, 59, limit) == pytest.approx(0.05, abs=1e-12)


def test_the_limit_grows_with_errors_and_shrinks_with_n() -> None:
    assert upper_error_limit(2, 59) > upper_error_limit(1, 59) > upper_error_limit(0, 59)
    assert upper_error_limit(0, 200) < upper_error_limit(0, 59)
    assert upper_error_limit(59, 59) == 1.0


def test_binomial_tail_against_a_direct_sum() -> None:
    n, p = 30, 0.07
    direct = sum(math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(3))
    assert binomial_tail(2, n, p) == pytest.approx(direct, rel=1e-12)
    assert 0.0 < binomial_tail(5, 5000, 0.01) < 1e-10  # large n, no overflow


def test_the_statement_says_it_in_words() -> None:
    text = conclude(0, 59, tolerable=0.05).statement()
    assert "59 sager viste ingen fejl" in text
    assert "højst 4,95 %" in text
    assert "under den acceptable fejlandel på 5 %" in text
    short = conclude(0, 30, tolerable=0.05).statement()
    assert "ikke under" in short
    assert "59 sager uden fejl" in short


@pytest.mark.parametrize(("confidence", "tolerable"), [(1.0, 0.05), (0.95, 0.0), (95, 0.05)])
def test_rates_outside_0_and_1_are_refused(confidence: float, tolerable: float) -> None:
    with pytest.raises(ConfigError, match="between 0 and 1"):
        sample_size(confidence, tolerable)


def test_more_errors_than_cases_is_refused() -> None:
    with pytest.raises(ConfigError, match="cannot be found"):
        upper_error_limit(5, 3)


@pytest.mark.parametrize(
    ("successes", "n", "low", "high"),
    [
        # Worked by hand from (p + z²/2n ± z·√(p(1−p)/n + z²/4n²)) / (1 + z²/n), z = 1.959964.
        (5, 10, 0.236593, 0.763407),
        (0, 10, 0.0, 0.277533),
        (10, 10, 0.722467, 1.0),
        (81, 263, 0.255289, 0.366210),  # Newcombe (1998), Table I, method 3: 0.2553–0.3662
    ],
)
def test_wilson_interval_against_worked_values(successes: int, n: int, low: float, high: float) -> None:
    found = wilson_interval(successes, n)
    assert found == pytest.approx((low, high), abs=1e-6)


def test_wilson_interval_refuses_an_empty_base() -> None:
    with pytest.raises(ConfigError, match="no cases"):
        wilson_interval(0, 0)
