"""``python -m hpcsweep``: the same as the ``hpcsweep`` command."""

import sys

from hpcsweep.cli import main

sys.exit(main())
