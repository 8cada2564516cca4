"""Shared helpers for the symbolic proof scripts in this folder.

* ``check(name, ok)`` records one named claim; it passes only if ``ok`` is
  exactly ``True`` (a sympy ``true`` counts, an undecided ``None`` does not).
  ``finish()`` prints a summary and exits with status 1 if any claim failed.

* ``holds_on`` / ``is_empty`` decide statements about piecewise-linear
  functions on a polyhedral region (a list of linear inequalities).  They work
  by a *slack substitution*: pick k linearly independent inequalities
  ``g_1, ..., g_k`` of the region, introduce slack symbols ``s_j = g_j(x)``
  (declared ``positive`` for a strict inequality, ``nonnegative`` otherwise),
  complete the system with n - k of the original variables (left free and
  real), and solve for the variables.  Every point of the region is the image
  of admissible slack values, so if sympy's assumption system proves the
  statement for all admissible slacks, it holds on the whole region.  This is
  a Farkas-type certificate; the certificate used is printed.  The
  substitution also resolves every ``Piecewise`` branch condition, so a
  function given in ``Piecewise`` form evaluates to the branch that is active
  on the region.

* ``check_slope`` proves ``lo <= (f(a) - f(b)) / (a - b) <= hi`` for a scalar
  piecewise-linear ``f`` by enumerating every pair of regions (see there), and
  ``check_firm_from_slope`` derives firm nonexpansiveness from slope in [0, 1].
"""

from __future__ import annotations

import functools
import itertools
import sys
from dataclasses import dataclass
from fractions import Fraction

import sympy as sp

_failures: list[str] = []
_passed = 0


def check(name: str, ok) -> bool:
    """Record the claim ``name``; it passes only if ``ok`` is exactly True."""
    global _passed
    passed = ok is True or ok is sp.true
    print(f"  [{'ok' if passed else 'FAIL'}] {name}")
    if passed:
        _passed += 1
    else:
        _failures.append(name)
    return passed


def section(title: str) -> None:
    print(f"\n{title}")


def finish() -> None:
    """Print a summary; exit with status 1 if any check failed."""
    if _failures:
        print(f"\nFAILED: {len(_failures)} of {len(_failures) + _passed} checks")
        for name in _failures:
            print(f"  - {name}")
        sys.exit(1)
    print(f"\nall {_passed} checks passed")


# --- deciding signs -----------------------------------------------------------


def _forms(expr):
    expr = sp.sympify(expr)
    yield expr
    yield sp.together(expr)
    yield sp.factor(expr)
    yield sp.expand(sp.cancel(expr))


def is_zero(expr) -> bool:
    expr = sp.sympify(expr)
    return sp.cancel(expr) == 0 or sp.simplify(expr) == 0


def is_nonneg(expr) -> bool:
    return any(form.is_nonnegative is True for form in _forms(expr))


def is_pos(expr) -> bool:
    return any(form.is_positive is True for form in _forms(expr))


def is_nonpos(expr) -> bool:
    return is_nonneg(-sp.sympify(expr))


def is_neg(expr) -> bool:
    return is_pos(-sp.sympify(expr))


# --- polyhedral regions -------------------------------------------------------


@dataclass(frozen=True)
class Ineq:
    """The linear inequality ``expr > 0`` (strict) or ``expr >= 0``."""

    expr: sp.Expr
    strict: bool

    def __str__(self) -> str:
        return f"{self.expr} {'>' if self.strict else '>='} 0"


def gt(lhs, rhs=0) -> Ineq:
    """lhs > rhs"""
    return Ineq(sp.sympify(lhs) - sp.sympify(rhs), True)


def ge(lhs, rhs=0) -> Ineq:
    """lhs >= rhs"""
    return Ineq(sp.sympify(lhs) - sp.sympify(rhs), False)


def _inverse(rows: list[list[Fraction]]) -> list[list[Fraction]] | None:
    """Exact inverse of a small rational matrix by Gauss-Jordan elimination, or None if singular."""
    n = len(rows)
    aug = [[*row, *(Fraction(int(i == j)) for j in range(n))] for i, row in enumerate(rows)]
    for col in range(n):
        pivot = next((r for r in range(col, n) if aug[r][col] != 0), None)
        if pivot is None:
            return None
        aug[col], aug[pivot] = aug[pivot], aug[col]
        aug[col] = [x / aug[col][col] for x in aug[col]]
        for r in range(n):
            if r != col and aug[r][col] != 0:
                aug[r] = [x - aug[r][col] * y for x, y in zip(aug[r], aug[col], strict=True)]
    return [row[n:] for row in aug]


@functools.cache
def _parametrisations(region: tuple[Ineq, ...], variables: tuple[sp.Symbol, ...]):
    """All slack substitutions of the region, as (substitution, basis, slacks).

    The inequalities must be linear in ``variables`` with rational coefficients.
    """
    n = len(variables)
    symbols = set(variables).union(*(ineq.expr.free_symbols for ineq in region))
    if any(x.name.startswith("s") and x.name[1:].isdigit() for x in symbols):
        raise ValueError("names s1, s2, ... are reserved for slack variables")
    rows = []
    for ineq in region:
        row = [sp.diff(ineq.expr, x) for x in variables]
        if not all(entry.is_Rational for entry in row):
            raise ValueError(f"inequality is not linear with rational coefficients in {variables}: {ineq}")
        rows.append([Fraction(int(entry.p), int(entry.q)) for entry in row])
    found = []
    for k in range(min(n, len(region)), -1, -1):
        for chosen in itertools.combinations(range(len(region)), k):
            for free in itertools.combinations(range(n), n - k):
                inverse = _inverse([rows[i] for i in chosen] + [[Fraction(int(j == f)) for j in range(n)] for f in free])
                if inverse is None:
                    continue
                slacks = [
                    sp.Symbol(f"s{j + 1}", positive=True) if region[i].strict else sp.Symbol(f"s{j + 1}", nonnegative=True)
                    for j, i in enumerate(chosen)
                ]
                # g_i(x) = row_i . x + c_i = s_i  and  x_f = x_f for free f.
                offsets = [region[i].expr.subs({x: 0 for x in variables}) for i in chosen]
                rhs = [s - c for s, c in zip(slacks, offsets, strict=True)] + [variables[f] for f in free]
                substitution = {
                    x: sp.expand(sum(sp.Rational(m.numerator, m.denominator) * r for m, r in zip(row, rhs, strict=True)))
                    for x, row in zip(variables, inverse, strict=True)
                }
                found.append((substitution, [region[i] for i in chosen], slacks))
    return found


def _describe(basis, slacks) -> str:
    if not basis:
        return "no slack needed"
    return ", ".join(f"{s} = {b}" for s, b in zip(slacks, basis, strict=True))


def holds_on(region, variables, expr, relation: str) -> str | None:
    """Prove ``expr <relation> 0`` on the region; relation is '==', '>=' or '>'.

    Returns a description of the certificate, or None if none was found.
    """
    test = {"==": is_zero, ">=": is_nonneg, ">": is_pos}[relation]
    expr = sp.sympify(expr)
    if any(x.name.startswith("s") and x.name[1:].isdigit() for x in expr.free_symbols):
        raise ValueError("names s1, s2, ... are reserved for slack variables")
    for substitution, basis, slacks in _parametrisations(tuple(region), tuple(variables)):
        try:
            reduced = expr.subs(substitution)
            if reduced.has(sp.Piecewise) or not test(reduced):
                continue
        except (RecursionError, TypeError, ValueError):
            # sympy could not evaluate under this substitution (e.g. an undecided
            # Piecewise condition); that is not a proof, so try the next one.
            continue
        return f"{_describe(basis, slacks)}; expression = {sp.factor(reduced)}"
    return None


def is_empty(region, variables) -> str | None:
    """Prove the region is empty: after a slack substitution some other
    inequality of the region becomes impossible.  Returns the certificate."""
    for substitution, basis, slacks in _parametrisations(tuple(region), tuple(variables)):
        for ineq in region:
            if ineq in basis:
                continue
            value = sp.expand(ineq.expr.subs(substitution))  # linear in the slacks
            if value.is_nonpositive if ineq.strict else value.is_negative:
                return f"{_describe(basis, slacks)} gives {ineq.expr} = {value}, contradicting {ineq}"
    return None


def check_cover(label, regions, params=(), assumptions=()) -> None:
    """Prove the regions cover the real line: the set of points outside every
    region is empty.  A point lies outside region R iff it violates one of R's
    inequalities (the negation of g > 0 is -g >= 0 and vice versa), so every
    way of picking one violated inequality per region must give an empty set."""
    v = sp.Symbol("v", real=True)
    negations = [[Ineq(-ineq.expr, not ineq.strict) for ineq in region(v)] for _, region in regions]
    for choice in itertools.product(*negations):
        if is_empty([*assumptions, *choice], [*params, v]) is None:
            check(f"{label}: regions cover the real line (uncovered part {list(map(str, choice))})", False)
            return
    check(f"{label}: the regions {', '.join(name for name, _ in regions)} cover the real line", True)


# --- slope restriction and firm nonexpansiveness ------------------------------


def check_slope(label, f, regions, params=(), assumptions=(), lo=0, hi=1) -> None:
    """Prove lo <= (f(a) - f(b)) / (a - b) <= hi for all real a != b.

    ``f`` maps a sympy expression to a Piecewise expression; ``regions`` is a
    list of (name, v -> list of Ineq) covering the real line; ``params`` are
    the parameters of f, constrained by ``assumptions``.  The difference
    quotient is symmetric in (a, b) (checked), so it suffices to take a > b,
    i.e. a = b + t with t > 0.  For each of the len(regions)**2 ordered region
    pairs either the pair is empty under a > b (certificate printed) or both
    q - lo >= 0 and hi - q >= 0 are proved on it.  That the regions cover the
    real line is checked too (``check_cover``).
    """
    check_cover(label, regions, params, assumptions)
    a, b = sp.symbols("a b", real=True)
    F = sp.Function("F")
    generic_q = (F(a) - F(b)) / (a - b)
    check(
        f"{label}: (F(a)-F(b))/(a-b) is symmetric in (a, b), so a > b is no loss",
        is_zero(generic_q - generic_q.subs({a: b, b: a}, simultaneous=True)),
    )
    q = (f(a) - f(b)) / (a - b)
    variables = [*params, a, b]
    for (name_a, region_a), (name_b, region_b) in itertools.product(regions, repeat=2):
        region = [*assumptions, *region_a(a), *region_b(b), gt(a, b)]
        pair = f"{label}: a in {name_a}, b in {name_b}, a > b"
        empty = is_empty(region, variables)
        if empty is not None:
            check(f"{pair}: impossible [{empty}]", True)
            continue
        lower = holds_on(region, variables, q - lo, ">=")
        upper = holds_on(region, variables, hi - q, ">=")
        check(f"{pair}: q - {lo} >= 0 [{lower or 'no certificate found'}]", lower is not None)
        check(f"{pair}: {hi} - q >= 0 [{upper or 'no certificate found'}]", upper is not None)


def check_firm_from_slope(label: str, coordinates: int = 4) -> None:
    """Slope in [0, 1] implies firm nonexpansiveness (coordinatewise, then summed).

    If a != b write f(a) - f(b) = q (a - b) with 0 <= q <= 1.  Then
    (f(a)-f(b))(a-b) - (f(a)-f(b))**2 = q (1 - q) (a-b)**2 >= 0; for a = b both
    sides vanish.  For a separable map the vector inequality
    <Dz, Dv> >= ||Dz||**2 is the sum of the coordinate inequalities.
    """
    q, d = sp.symbols("q d", real=True)
    dz = q * d
    check(
        f"{label}: Dz*Dv - Dz**2 == q*(1-q)*Dv**2 when Dz = q*Dv",
        is_zero(dz * d - dz**2 - q * (1 - q) * d**2),
    )
    q0, one_minus_q = sp.symbols("q0 w", nonnegative=True)
    check(
        f"{label}: q >= 0 and 1 - q >= 0 imply q*(1-q)*Dv**2 >= 0",
        is_nonneg(q0 * one_minus_q * d**2),
    )
    dv = sp.symbols(f"dv1:{coordinates + 1}", real=True)
    dzs = sp.symbols(f"dz1:{coordinates + 1}", real=True)
    vector_gap = sum(z * v for z, v in zip(dzs, dv, strict=True)) - sum(z**2 for z in dzs)
    per_coordinate = sum(z * v - z**2 for z, v in zip(dzs, dv, strict=True))
    check(
        f"{label}: <Dz,Dv> - ||Dz||^2 is the sum of the coordinate gaps (n={coordinates})",
        is_zero(vector_gap - per_coordinate),
    )
