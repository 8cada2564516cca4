"""Generalization bounds for unfolded networks, each beside the measured gap (issue 6).

Every bound is on the **gap** ``E ℓ − (1/m) Σ ℓ`` of the squared loss ``ℓ = ‖h(y) − x‖²``, with
probability ≥ 1 − δ over the training set; the bound on the expected loss is the training loss plus
the gap. Data sets are ``(Y, X)`` pairs.

| name | what |
|---|---|
| :func:`parameter_lipschitz` | certified ``K_L``: ``‖h_θ(y) − h_θ'(y)‖ ≤ K_L‖θ − θ'‖`` on a parameter ball, ``‖y‖ ≤ R`` |
| :func:`parameter_lipschitz_estimate` | lower bound on ``K_L`` with a witness pair |
| :func:`covering_bound` | covering-number / Dudley-integral bound on the gap |
| :func:`empirical_gap` | measured gap (test − train) with a confidence interval |
| :func:`pac_bayes_bound` | certified PAC-Bayes-kl bound of the Gibbs predictor around the model, data-free prior |
| :func:`split_prior_bound` | certified split-prior bound: the package splits, trains the prior, bounds the rest |
| :func:`domain_loss_bound` | certified range of the unclipped loss on a data domain |
"""

from unfoldtheory.generalization.covering import covering_bound
from unfoldtheory.generalization.data import as_dataset, data_radii, squared_losses
from unfoldtheory.generalization.empirical import empirical_gap
from unfoldtheory.generalization.loss_range import domain_loss_bound
from unfoldtheory.generalization.pac_bayes import pac_bayes_bound
from unfoldtheory.generalization.parameter_lipschitz import parameter_lipschitz, parameter_lipschitz_estimate
from unfoldtheory.generalization.split_prior import split_prior_bound

__all__ = ["as_dataset", "covering_bound", "data_radii", "domain_loss_bound", "empirical_gap", "pac_bayes_bound",
           "parameter_lipschitz", "parameter_lipschitz_estimate", "split_prior_bound", "squared_losses"]
