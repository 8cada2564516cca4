"""Problems: a forward model, an objective, a data generator and a reference solver each."""

from unfoldtheory.problems.robust_pca import RobustPCA
from unfoldtheory.problems.sparse_recovery import SparseRecovery

__all__ = ["RobustPCA", "SparseRecovery"]
