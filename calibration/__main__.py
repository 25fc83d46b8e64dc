"""``python -m calibration ...`` == ``xbarsim calibrate ...``."""
import sys

from .cli import main

sys.exit(main())
