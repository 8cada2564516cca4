"""unfoldtheory: certified theory for deep-unfolded networks.

Lipschitz constants, contraction rates and generalization bounds of unfolded networks (LISTA,
ALISTA, unfolded ISTA/FISTA/ADMM, learned RPCA), each returned as a :class:`Bound` with its
certificate, and cross-checked empirically.
"""

from unfoldtheory.results import Bound
from unfoldtheory.spec import Layer, NetworkSpec, NotRepresentable, unrolled

__version__ = "0.1.0"

__all__ = ["Bound", "Layer", "NetworkSpec", "NotRepresentable", "__version__", "unrolled"]
