"""``python -m flatnn.compare``: the same as ``flatnn compare``."""

import sys

from flatnn.compare.command import main

sys.exit(main())
