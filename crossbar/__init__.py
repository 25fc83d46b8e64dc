"""crossbar: memory-cell arrays (crossbars) and their noisy matrix-vector product.

Program a weight matrix once (long-term noise), read it many times (short-term noise)::

    >>> import numpy as np, crossbar
    >>> cfg = crossbar.preset("pcm", adc_bits=8, tile_rows=256)
    >>> arr = crossbar.program(np.random.default_rng(0).normal(size=(16, 32)), cfg, seed=1)
    >>> arr.mvm(np.ones((4, 32)), t_s=3600.0).shape
    (4, 16)

numpy, numba, scipy and h5py only; never torch. Importing it changes no thread pool: a program
that mixes torch and numpy sets one thread per pool itself (``crossbar.set_blas_threads(1)`` or
:func:`xbarsim.threads.limit_threads`); see crossbar/README.md.
"""
import os as _os
from pathlib import Path as _Path

from xbarsim.threads import set_blas_threads

from ._kernel_cache import drop_stale_caches as _drop_stale_caches

# numba's cache does not see a changed module that a kernel calls: drop it when any changed
# (before a kernel loads; NUMBA_CACHE_DIR elsewhere is not looked at)
if not _os.environ.get("NUMBA_CACHE_DIR"):
    _drop_stale_caches(_Path(__file__).parent)

from ._kernels import standard_normal  # noqa: E402
from ._normals import derive_key, fill_normals, fill_standard_normal
from ._fused_noise import StepNoise, fill_standard_normal_steps, lstm_cell_update, lstm_hidden
from .array import ProgrammedArray, as_generator, load_programmed, mvm, program, program_and_prepare
from .config import (
    ADCConfig,
    ArrayConfig,
    DACConfig,
    DeviceConfig,
    Law,
    MappingConfig,
    OutputNoiseConfig,
    PRESETS,
    TileConfig,
    WIRE_EXAMPLES,
    WireConfig,
    preset,
)
from .timespan import measured_time_span, time_span_warning

__all__ = [
    "ADCConfig", "ArrayConfig", "DACConfig", "DeviceConfig", "Law", "MappingConfig", "OutputNoiseConfig",
    "PRESETS", "TileConfig", "WireConfig", "WIRE_EXAMPLES", "preset", "ProgrammedArray", "program",
    "program_and_prepare", "mvm",
    "load_programmed", "as_generator", "set_blas_threads", "measured_time_span", "time_span_warning",
    "standard_normal",
    "fill_standard_normal",
    "StepNoise", "fill_standard_normal_steps", "lstm_cell_update", "lstm_hidden",
    "fill_normals",
    "derive_key",
]
