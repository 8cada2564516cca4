"""Test-session settings.

* Hypothesis profile "ci" (the default) disables the per-example deadline, whose wall-clock limit
  is flaky on shared machines, and derandomizes: every run tries the same examples, so a landing
  never depends on the draw. Profile "explore" (``--hypothesis-profile explore``) draws fresh
  random examples on every run; run it repeatedly to hunt for counterexamples.
* torch and BLAS use one thread: the test models are tiny, and several threads on a small machine only
  contend with each other (tens of times slower on 2 shared cores).
"""

import torch
from hypothesis import settings
from threadpoolctl import threadpool_limits

torch.set_num_threads(1)
threadpool_limits(1)  # BLAS too: the test matrices are small

settings.register_profile("ci", deadline=None, derandomize=True)
settings.register_profile("explore", deadline=None, derandomize=False)
settings.load_profile("ci")
