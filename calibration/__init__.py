"""calibration: measured memory-cell data in, a device model the crossbar loads out.

numpy, scipy, h5py, matplotlib and crossbar only; never torch. See calibration/README.md.

    >>> from calibration import read_long, fit_long
    >>> # data = read_long("cells.csv"); fit = fit_long(data)
"""
from .fit import LongFit, PolyFit, RampFit, distinguishable_levels, fit_long, fit_ramps, simulate_program_verify
from .io import CalibrationInputError, LongData, RampData, detect_format, read_long, read_pulse_ramps

__all__ = [
    "CalibrationInputError", "LongData", "RampData", "detect_format", "read_long", "read_pulse_ramps",
    "LongFit", "RampFit", "PolyFit", "fit_long", "fit_ramps", "distinguishable_levels", "simulate_program_verify",
]
