"""What a sample can conclude: attribute sampling with zero expected errors.

- :func:`sample_size` — the smallest n such that, if the true error rate were the tolerable
  rate, a sample of n would show no error with probability at most 1 − confidence:
  n = ⌈ln(1 − confidence) / ln(1 − tolerable)⌉ (59 for 95 %/5 %, 29 for 95 %/10 %).
- :func:`upper_error_limit` — the one-sided Clopper–Pearson upper limit of the error rate after
  finding ``errors`` in ``n``: the rate p at which seeing ``errors`` or fewer has probability
  exactly 1 − confidence (0 in 59 → 4,95 %, 1 in 59 → 7,79 % at 95 %).

The limit is the (confidence) quantile of Beta(errors + 1, n − errors). It is computed here as
the root of the binomial tail P(X ≤ errors; n, p) = 1 − confidence by bisection, which is exact
to the last bit of a float for any n a ledelsestilsyn meets (the tail is a finite sum, summed in
log space so large n cannot overflow) and keeps a 40 MB scientific library out of the
dependencies for one quantile.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

from bridge.errors import ConfigError


def _check_rate(name: str, value: float) -> None:
    if not 0.0 < value < 1.0:
        raise ConfigError(f"{name} must be between 0 and 1 (exclusive), e.g. 0.95; got {value}")


def sample_size(confidence: float = 0.95, tolerable: float = 0.05) -> int:
    """Cases needed to conclude, with no error found, that the error rate is below ``tolerable``."""
    _check_rate("confidence", confidence)
    _check_rate("tolerable error rate", tolerable)
    # The quotient can land a hair above a whole number from rounding; 1e-9 keeps 59 from becoming 60.
    return math.ceil(math.log(1.0 - confidence) / math.log(1.0 - tolerable) - 1e-9)


def binomial_tail(errors: int, n: int, p: float) -> float:
    """P(X ≤ errors) for X ~ Binomial(n, p)."""
    if p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 1.0 if errors >= n else 0.0
    log_p, log_q = math.log(p), math.log1p(-p)
    terms = [
        math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * log_p + (n - k) * log_q
        for k in range(errors + 1)
    ]
    peak = max(terms)
    return min(1.0, math.exp(peak) * math.fsum(math.exp(t - peak) for t in terms))


def upper_error_limit(errors: int, n: int, confidence: float = 0.95) -> float:
    """The one-sided Clopper–Pearson upper limit of the error rate, as a fraction."""
    _check_rate("confidence", confidence)
    if n <= 0:
        raise ConfigError("the sample is empty: there is no error rate to bound")
    if not 0 <= errors <= n:
        raise ConfigError(f"{errors} errors cannot be found in {n} cases")
    if errors == n:
        return 1.0
    low, high = 0.0, 1.0
    alpha = 1.0 - confidence
    for _ in range(200):
        middle = (low + high) / 2
        if binomial_tail(errors, n, middle) > alpha:
            low = middle
        else:
            high = middle
        if high - low < 1e-15:
            break
    return high


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a share ``successes / n``, as fractions (two-sided).

    Unlike ``p ± z·√(p(1 − p)/n)`` it stays within 0…1 and does not shrink to a point at 0 or n
    successes, so a share that rests on few cases shows how little it says.
    """
    _check_rate("confidence", confidence)
    if n <= 0:
        raise ConfigError("no cases: a share of none has no interval")
    if not 0 <= successes <= n:
        raise ConfigError(f"{successes} of {n} cases is not a share")
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    low = 0.0 if successes == 0 else centre - half
    high = 1.0 if successes == n else centre + half
    return low, high


@dataclass(frozen=True)
class Conclusion:
    """What ``errors`` in ``n`` cases lets a leader say, in numbers and in Danish words."""

    n: int
    errors: int
    confidence: float
    upper_limit: float
    tolerable: float | None

    @property
    def error_rate(self) -> float:
        return self.errors / self.n

    @property
    def within_tolerable(self) -> bool | None:
        return None if self.tolerable is None else self.upper_limit <= self.tolerable

    def statement(self) -> str:
        """The conclusion in words, for the report."""
        confidence = _pct(self.confidence, 0)
        found = "ingen fejl" if self.errors == 0 else ("1 fejl" if self.errors == 1 else f"{self.errors} fejl")
        text = (
            f"Stikprøven på {self.n} sager viste {found}. Med {confidence} sikkerhed er fejlandelen i alle sager "
            f"højst {_pct(self.upper_limit, 2)} (ensidet Clopper–Pearson-grænse)."
        )
        if self.tolerable is not None:
            verdict = "under" if self.within_tolerable else "ikke under"
            text += f" Det er {verdict} den acceptable fejlandel på {_pct(self.tolerable, 0)}."
            if not self.within_tolerable and self.errors == 0:
                needed = sample_size(self.confidence, self.tolerable)
                text += f" Det kræver {needed} sager uden fejl at kunne sige det."
        return text


def conclude(errors: int, n: int, *, confidence: float = 0.95, tolerable: float | None = None) -> Conclusion:
    return Conclusion(n, errors, confidence, upper_error_limit(errors, n, confidence), tolerable)


def _pct(fraction: float, decimals: int) -> str:
    return f"{fraction * 100:.{decimals}f} %".replace(".", ",")


__all__ = ["Conclusion", "binomial_tail", "conclude", "sample_size", "upper_error_limit", "wilson_interval"]
