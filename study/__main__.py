"""``python -m study train|sweep|deploy ...`` (the same as ``xbarsim train|sweep|deploy``)."""
import sys

from study.cli import main

if __name__ == "__main__":
    sys.exit(main())
