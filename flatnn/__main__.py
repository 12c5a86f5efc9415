"""``python -m flatnn``: the same command line as the ``flatnn`` script."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
