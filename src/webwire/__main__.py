"""``python -m webwire``: the ``webwire`` command line."""

from __future__ import annotations

import sys

from webwire.cli import main

if __name__ == "__main__":
    sys.exit(main())
