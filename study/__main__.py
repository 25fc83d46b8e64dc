"""``python -m study train|sweep|deploy ...`` (the same as ``xbarsim train|sweep|deploy``)."""
import sys

from study.cli import main
from xbarsim.cli import run

if __name__ == "__main__":
    sys.exit(run(main, prog="python -m study"))
