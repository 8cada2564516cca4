"""Exact-arithmetic oracles: recompute a certified quantity in rational arithmetic on the float64 data.

A certificate computed in floating point covers the numbers it was computed from. These oracles take
those same numbers (the spec's weights, the multipliers, the witness, the Lasso instance, …), convert
them exactly to :class:`fractions.Fraction`, and decide the certified inequality without rounding.
They are slow (exact rationals) and meant for tiny instances in property-based tests, yours included.
"""
