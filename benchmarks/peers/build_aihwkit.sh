#!/usr/bin/env bash
# Build IBM's aihwkit (CPU only) into its own virtual environment, beside xbarsim, so that
# `xbarsim bench mvm|rnn` times it in the same run. PyPI has only aihwkit's sdist, so it
# is compiled here: about 7 minutes on one core. Not needed for anything else in xbarsim.
#
#   bash benchmarks/peers/build_aihwkit.sh [VENV]        (default VENV: ../aihwkit-venv)
#   VENV/bin/xbarsim bench mvm --preset pcm --rows 512 --cols 512 --batch 64
#   VENV/bin/xbarsim bench rnn
#
# Needs: python3.11, a C++ compiler, and OpenBLAS headers (Debian: apt-get install libopenblas-dev).
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${1:-$repo/../aihwkit-venv}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

python3.11 -m venv "$venv"
pip="$venv/bin/pip"
# torch first and pinned: an unpinned torch would pull a multi-GB CUDA build.
"$pip" install --quiet torch==2.13.0
"$pip" install --quiet numpy scipy "scikit-build>=0.18.1" "pybind11>=3.0.1" ninja "cmake>=4.2.1" wheel \
    "setuptools>=77" "requests>=2.32,<3" protobuf tqdm scikit-learn mypy
"$pip" download --quiet --no-deps --no-binary aihwkit -d "$work" aihwkit==1.2.0
tar -xzf "$work"/aihwkit-1.2.0.tar.gz -C "$work"

torch_dir="$("$venv/bin/python" -c 'import os, torch; print(os.path.dirname(torch.__file__))')"
export VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" USE_CUDA=OFF
export CMAKE_BUILD_PARALLEL_LEVEL="${JOBS:-1}" SKBUILD_BUILD_OPTIONS="-j${JOBS:-1}"
# aihwkit's CMake does not find torch by itself; mypy's stubgen runs after the compile.
export SKBUILD_CONFIGURE_OPTIONS="-DUSE_CUDA=OFF -DRPU_BLAS=OpenBLAS -DBUILD_TEST=OFF -DBUILD_EXTENSION=OFF \
-DTorch_DIR=$torch_dir/share/cmake/Torch -DTORCH_LIB_DIR=$torch_dir/lib"
(cd "$work/aihwkit-1.2.0" && "$pip" install --no-deps --no-build-isolation .)

# xbarsim itself, against the same torch (torchvision, which aihwkit lists, is not needed
# for the inference tile or the analog LSTM and does not import beside this torch).
"$pip" install --quiet -e "$repo" torch==2.13.0
"$venv/bin/python" -c "import aihwkit; from aihwkit.simulator.tiles import InferenceTile; print('aihwkit', aihwkit.__version__, 'ok')"
