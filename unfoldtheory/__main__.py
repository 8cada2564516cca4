"""``python -m unfoldtheory``: the same entry point as the ``unfoldtheory`` console script."""

import sys

from unfoldtheory.cli import main

sys.exit(main())
