"""Stages of one fast read (pcm, 512x512, batch 64, float32, t=3600 s), each timed alone,
interleaved with the clean matmul (x @ W.T, float32), medians of 15 rounds of 200 calls;
prints each as x blas (README "Speed": where the time goes). Uses the read's internals (a
measurement script kept with its results, not part of any package). Run from any tree:

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 NUMBA_NUM_THREADS=1 \
        PYTHONPATH=TREE python benchmarks/results/mvm/s20_stages.py

``seq``: the read's kernels and products back to back with no glue; ``python_and_rest``:
the read minus its products, DAC and noise + ADC pass (Python, allocation, cache effects).
"""
import time

import numpy as np
from numba import njit

import crossbar
import crossbar.array as CA
from crossbar import derive_key, fill_normals

K = CA.K   # the read's kernels, as the array module calls them


@njit(cache=False, nogil=True)
def normals_only(nb, m, seed):
    z = np.empty(m, np.float32); s = np.uint64(seed); t = 0.0
    for b in range(nb):
        fill_normals(z, derive_key(s, np.uint64(b)))
        t += z[0]
    return t
cfg = crossbar.preset("pcm")
rng = np.random.default_rng(0)
W = rng.normal(size=(512, 512))
arr = crossbar.program(W, cfg, seed=1)
x = rng.uniform(-1, 1, size=(64, 512)).astype(np.float32)
t = 3600.0
arr.mvm(x, t)
st = arr._state(t, np.dtype(np.float32)); wk = arr._work_for(64, np.dtype(np.float32), st)
wt = np.ascontiguousarray(W.T, dtype=np.float32)
dac32 = getattr(st, "dac32", False)
dk = K.dac_rows_squares32 if dac32 else K.dac_rows_squares
acc = np.empty((64, 512), np.float32)
def prods():
    np.matmul(wk.xn_t[0], st.gn_t[0], out=wk.parts_t[0]); np.matmul(wk.xsq_t[0], st.var_t[0], out=wk.v_t[0])
def seq():
    dk(x, st.dac, float(st.alpha), wk.xn, wk.xsq, wk.rs)
    np.matmul(wk.xn_t[0], st.gn_t[0], out=wk.parts_t[0]); np.matmul(wk.xsq_t[0], st.var_t[0], out=wk.v_t[0])
    a = np.empty((64, 512), np.float32)
    K.noise_adc_tiles_bm(wk.parts, K.normal_seed(arr._rng), wk.v, wk.no_rows, st.cols_none, st.scale, st.adc, a, wk.rs)
    return a
fns = dict(blas=lambda: x @ wt, seq=seq, read=lambda: arr.mvm(x, t_s=t), products=prods,
           dac=lambda: dk(x, st.dac, float(st.alpha), wk.xn, wk.xsq, wk.rs),
           noise_adc=lambda: K.noise_adc_tiles_bm(wk.parts, 12345, wk.v, wk.no_rows, st.cols_none, st.scale, st.adc, acc, wk.rs),
           normals=lambda: normals_only(64, 512, 12345))
for f in fns.values(): f()
res = {k: [] for k in fns}
for r in range(15):
    for k, f in fns.items():
        t0 = time.perf_counter()
        for _ in range(200): f()
        res[k].append((time.perf_counter() - t0) / 200)
b = np.median(res["blas"])
m = {k: np.median(v) / b for k, v in res.items()}
m["python_and_rest"] = m["read"] - m["products"] - m["dac"] - m["noise_adc"]
print(" ".join(f"{k}={v:.3f}" for k, v in m.items()), f"blas_ms={b*1e3:.3f}", "dac32" if dac32 else "dac64")
