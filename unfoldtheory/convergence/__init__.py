"""Convergence and contraction: closed-form rates and certified worst cases of learned schedules (PEP)."""

from unfoldtheory.convergence.pep import pep_rate

__all__ = ["pep_rate"]
