"""``python -m models train|sweep|deploy ...`` (the same as ``xbarsim train|sweep|deploy``)."""
import sys

from models.cli import main

if __name__ == "__main__":
    sys.exit(main())
