"""Test-session settings.

* Hypothesis profile "ci" (the default) disables the per-example deadline, whose wall-clock limit
  is flaky on shared machines; select another with ``--hypothesis-profile``.
* torch uses one thread: the test models are tiny, and several threads on a small machine only
  contend with each other (tens of times slower on 2 shared cores).
"""

import torch
from hypothesis import settings

torch.set_num_threads(1)

settings.register_profile("ci", deadline=None)
settings.load_profile("ci")
