"""The Cell Key Method: noise that stays the same for the same people and differs for others.

Why: suppressing each table on its own does not hold across queries — two overlapping periods,
or a grouped and an ungrouped report, give a hidden cell by subtraction. German official
statistics (Destatis, the 2022 census) answer this with the Cell Key Method: every person has a
random *record key* in [0, 1), drawn once and never shown; a cell's *cell key* is the sum of the
keys of its persons, modulo 1 (here with a fixed mix of the cell's value: see ``cell_key``); and
the figure shown is the true one plus a noise looked up by the cell key in a fixed
*perturbation table* (ptable). The same people give the same cell key and so the same noise,
whatever report, grouping, period or format the cell appears in: asking again or in another
format averages nothing away. A cell with other people has an unrelated key, so the difference
of two reports carries the noise of both.

The ptable follows the approach of the ``ptable`` R package (Destatis): for each true value
``i`` the noise ``d`` lies in ``[-D, D]`` (maximum deviation ``D``), ``i + d`` never falls below
the table's floor (no negative counts; a floor above zero also blocks small published values,
the package's ``js``), zero stays zero, and among the distributions with mean 0 and variance
``V`` the one of maximum entropy is taken — ``p(d) ∝ exp(a·d + b·d²)``, found by Newton's method
on its convex dual. Where the floor leaves no room below (the value at the floor itself), a mean
of 0 is impossible: there the noise keeps ``E[d²] = V`` only, and leans upwards (by about 1 for
D = 3, V = 2). The table is computed from ``D``, ``V`` and the floor; no randomness enters it,
so it is the same on every machine and in every run.

Record keys are integers of ``KEY_BITS`` bits (a cell key is their sum modulo ``2**KEY_BITS``,
divided by it), drawn with :mod:`secrets`.
"""
from __future__ import annotations

import bisect
import math
import secrets
from dataclasses import dataclass, field
from functools import cache

KEY_BITS = 32
KEY_RANGE = 1 << KEY_BITS


def new_record_key() -> int:
    """A person's record key: uniform over ``[0, 2**KEY_BITS)``, from the system's CSPRNG."""
    return secrets.randbits(KEY_BITS)


# Knuth's multiplicative hash constant: spreads consecutive values over the key range.
_VALUE_MIX = 2654435761


def cell_key(key_sum: int | None, value: int) -> float:
    """The cell key in [0, 1): the sum of the cell's persons' record keys, plus a fixed mix of
    the true value, modulo ``2**KEY_BITS``.

    Reports count referrals (and needs), and the same persons can stand behind two different
    counts — a cell over January–February and the same cell over January–March when only its
    known persons were referred again in March. With the persons' keys alone both would get the
    same noise, and their difference would give March exactly; mixing in the value makes their
    noises unrelated, while the same persons with the same figure still get the same noise."""
    return (((key_sum or 0) + value * _VALUE_MIX) % KEY_RANGE) / KEY_RANGE


def _max_entropy(support: list[int], variance: float, *, mean_zero: bool) -> list[float]:
    """``p(d) ∝ exp(a·d + b·d²)`` over ``support`` with ``E[d²] = variance`` and, when
    ``mean_zero``, ``E[d] = 0`` — the maximum-entropy distribution with those moments.

    Newton's method on the dual, ``min log Z(a, b) − b·variance``, which is convex."""
    a = b = 0.0

    def moments(a: float, b: float) -> tuple[list[float], float, float, float, float, float]:
        exponents = [a * d + b * d * d for d in support]
        top = max(exponents)
        weights = [math.exp(e - top) for e in exponents]
        total = sum(weights)
        p = [w / total for w in weights]
        m1 = sum(pi * d for pi, d in zip(p, support, strict=True))
        m2 = sum(pi * d * d for pi, d in zip(p, support, strict=True))
        m3 = sum(pi * d ** 3 for pi, d in zip(p, support, strict=True))
        m4 = sum(pi * d ** 4 for pi, d in zip(p, support, strict=True))
        return p, m1, m2, m3, m4, math.log(total) + top

    def dual(a: float, b: float) -> float:
        return moments(a, b)[5] - b * variance

    for _ in range(200):
        p, m1, m2, m3, m4, _log_z = moments(a, b)
        if mean_zero:
            grad = (m1, m2 - variance)
            hessian = ((m2 - m1 * m1, m3 - m1 * m2), (m3 - m1 * m2, m4 - m2 * m2))
            det = hessian[0][0] * hessian[1][1] - hessian[0][1] * hessian[1][0]
            if abs(det) < 1e-15:
                break
            step = ((hessian[1][1] * grad[0] - hessian[0][1] * grad[1]) / det,
                    (hessian[0][0] * grad[1] - hessian[1][0] * grad[0]) / det)
        else:
            grad = (0.0, m2 - variance)
            curvature = m4 - m2 * m2
            if curvature < 1e-15:
                break
            step = (0.0, grad[1] / curvature)
        if max(abs(g) for g in grad) < 1e-12:
            break
        scale, current = 1.0, dual(a, b)
        while scale > 1e-9 and dual(a - scale * step[0], b - scale * step[1]) > current:
            scale /= 2
        a, b = a - scale * step[0], b - scale * step[1]
    return moments(a, b)[0]


@dataclass(frozen=True)
class PerturbationTable:
    """Noise by true value and cell key: maximum deviation ``D``, variance ``V``, and the
    smallest non-zero value a perturbed figure may take (``floor``; 0 means no blocking)."""

    max_deviation: int
    variance: float
    floor: int = 0
    # true value → (noises, cumulative probabilities); values above the last row use it.
    rows: dict[int, tuple[tuple[int, ...], tuple[float, ...]]] = field(
        default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_deviation < 1:
            raise ValueError("The maximum deviation D must be at least 1.")
        if not 0 < self.variance < self.max_deviation ** 2:
            raise ValueError("The variance V must be above 0 and below D².")
        last = self.floor + self.max_deviation
        for value in range(max(self.floor, 1), last + 1):
            low = max(-self.max_deviation, -value)
            support = [d for d in range(low, self.max_deviation + 1)
                       if value + d == 0 or value + d >= max(self.floor, 1)]
            # A mean of 0 needs room below; with k steps down and D up, V ≤ k·D at most.
            below = -min(support)
            mean_zero = below > 0 and self.variance < below * self.max_deviation
            p = _max_entropy(support, self.variance, mean_zero=mean_zero)
            cumulative, running = [], 0.0
            for pi in p:
                running += pi
                cumulative.append(running)
            cumulative[-1] = 1.0
            self.rows[value] = (tuple(support), tuple(cumulative))

    def _row(self, value: int) -> tuple[tuple[int, ...], tuple[float, ...]]:
        if value < self.floor:
            raise ValueError(f"{value} is below the floor {self.floor}: suppress it instead.")
        return self.rows[min(value, self.floor + self.max_deviation)]

    def distribution(self, value: int) -> dict[int, float]:
        """The noise's probabilities for a true value (for the documentation and the tests)."""
        if value <= 0:
            return {0: 1.0}
        noises, cumulative = self._row(value)
        previous = 0.0
        result = {}
        for noise, upto in zip(noises, cumulative, strict=True):
            result[noise] = upto - previous
            previous = upto
        return result

    def noise(self, value: int, key: float) -> int:
        """The noise for a cell of true ``value`` and cell key ``key`` in [0, 1)."""
        if value <= 0:
            return 0
        noises, cumulative = self._row(value)
        return noises[min(bisect.bisect_right(cumulative, key), len(noises) - 1)]

    def perturb(self, value: int, key: float) -> int:
        return value + self.noise(value, key)


@cache
def table(max_deviation: int, variance: float, floor: int = 0) -> PerturbationTable:
    """The table for these parameters, computed once per process."""
    return PerturbationTable(max_deviation=max_deviation, variance=variance, floor=floor)
