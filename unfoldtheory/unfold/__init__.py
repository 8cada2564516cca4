"""Unfolded networks of the four design paradigms (torch ``nn.Module`` s with ``spec()``).

| paradigm | models |
|---|---|
| learned hyperparameters | :class:`UnfoldedISTA`, :class:`UnfoldedFISTA`, :class:`ALISTA`, :class:`UnfoldedADMM` |
| learned objective parameters | :class:`LISTA`, :class:`LISTACP` |
| learned correction terms | :class:`HybridISTA` |
| DNN inductive bias | :class:`LearnedUpdate` |

:func:`soft_threshold` is the torch soft-threshold with a learnable threshold that
:func:`unfoldtheory.tracing.from_torch` recognises (one exportable op).
"""

from unfoldtheory.unfold.base import UnfoldedModel
from unfoldtheory.unfold.dnn_inductive_bias import LearnedUpdate
from unfoldtheory.unfold.io import CheckpointError, load, save
from unfoldtheory.unfold.learned_correction import HybridISTA
from unfoldtheory.unfold.learned_hyperparameters import ALISTA, UnfoldedADMM, UnfoldedFISTA, UnfoldedISTA
from unfoldtheory.unfold.learned_objective import LISTA, LISTACP
from unfoldtheory.unfold.learned_rpca import LearnedRPCA
from unfoldtheory.unfold.soft_threshold import soft_threshold

MODEL_CLASSES = ("UnfoldedISTA", "UnfoldedFISTA", "ALISTA", "UnfoldedADMM", "LISTA", "LISTACP", "HybridISTA",
                 "LearnedUpdate", "LearnedRPCA")

__all__ = ["ALISTA", "LISTA", "LISTACP", "MODEL_CLASSES", "CheckpointError", "HybridISTA", "LearnedRPCA", "LearnedUpdate",
           "UnfoldedADMM", "UnfoldedFISTA", "UnfoldedISTA", "UnfoldedModel", "load", "save", "soft_threshold"]
