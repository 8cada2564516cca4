"""Hypothesis profiles: "ci" (the default) disables the per-example deadline, whose wall-clock
limit is flaky on shared machines; select another with ``--hypothesis-profile``."""

from hypothesis import settings

settings.register_profile("ci", deadline=None)
settings.load_profile("ci")
