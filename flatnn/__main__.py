"""``python -m flatnn``: the same entry point as the ``flatnn`` script."""

import sys

from flatnn.cli import main

if __name__ == "__main__":
    sys.exit(main())
