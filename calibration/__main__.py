"""``python -m calibration ...`` == ``xbarsim calibrate ...``."""
import sys

from xbarsim.cli import run

from .cli import main

sys.exit(run(main, prog="python -m calibration"))
