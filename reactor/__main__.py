"""``python -m reactor``: see ``reactor.cli``."""

import sys

from .cli import main

sys.exit(main())
