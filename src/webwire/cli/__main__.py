"""``python -m webwire.cli``: the ``webwire`` command."""

from __future__ import annotations

import sys

from webwire.cli import main

if __name__ == "__main__":
    sys.exit(main())
