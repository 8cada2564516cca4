"""What every Lipschitz bound of this package is about, in words (the ``Bound.quantity`` they share).

A certificate covers the numbers it was computed from: the spec's float64 weights, evaluated in exact
arithmetic. A model trained and deployed in float32 computes a slightly different map; its deviation from
the spec over a region is bounded by :func:`unfoldtheory.lipschitz.forward_error.float32_deviation`, and
``‖f₃₂(y₁) − f₃₂(y₂)‖ ≤ L‖y₁ − y₂‖ + 2·deviation`` for inputs of that region.
"""

QUANTITY = "Lipschitz constant of the input-output map (l2), exact arithmetic on the float64 spec"

LOCAL_QUANTITY = ("Lipschitz constant of the input-output map (l2) over the region, exact arithmetic on the float64 "
                  "spec")
