"""calibration: measured memory-cell data in, a device model the crossbar loads out.

numpy, scipy, h5py, matplotlib and crossbar only; never torch. See calibration/README.md.

    >>> from calibration import read_long, fit_long
    >>> # data = read_long("cells.csv"); fit = fit_long(data)
"""
from .fit import (DgLookupFit, LongFit, PolyFit, RampFit, distinguishable_levels, fit_dg_lookup, fit_long, fit_ramps,
                  quantile_moments, simulate_program_verify)
from .readers import (CalibrationInputError, DgLookupData, LongData, RampData, detect_format, read_dg_lookup, read_long,
                 read_pulse_ramps)

__all__ = [
    "CalibrationInputError", "LongData", "RampData", "DgLookupData", "detect_format", "read_long", "read_pulse_ramps",
    "read_dg_lookup", "LongFit", "RampFit", "DgLookupFit", "PolyFit", "fit_long", "fit_ramps", "fit_dg_lookup",
    "quantile_moments", "distinguishable_levels", "simulate_program_verify",
]
