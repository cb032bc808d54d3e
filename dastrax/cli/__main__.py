"""``python -m dastrax.cli``: the ``dastrax`` command line."""

import sys

from dastrax.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
