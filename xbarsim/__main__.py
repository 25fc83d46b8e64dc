"""``python -m xbarsim ...`` is the ``xbarsim`` console script."""
import sys

from .cli import main

sys.exit(main())
