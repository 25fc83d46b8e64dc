"""IR drop: the resistive row and column wires of one tile, solved exactly.

Circuit of one array of ``R x C`` cells (rows = inputs, columns = outputs; a differential
pair is two such arrays, G+ and G-, each with its own wires, and the tile's output is the
difference of their sensed currents)::

    V_i --[driver_ohm]-- r(i,0) --[row_ohm]-- r(i,1) -- ... -- r(i,C-1)        row i (word line)
                           |                    |                  |
                         G[i,0]               G[i,1]            G[i,C-1]        cells (ohmic)
                           |                    |                  |
                         c(i,0)               c(i,1)            c(i,C-1)
                           |  col_ohm           |                  |           columns (bit lines)
                          ...                  ...                ...
                         c(R-1,0)  ...                          c(R-1,C-1)
                           |                                       |
                       [sense_ohm]                             [sense_ohm]
                           |                                       |
                       virtual ground (0 V): I_j is the current into it

Each row is driven at its first cell (column 0) through ``driver_ohm``; ``row_ohm`` sits
between neighbouring cells of a row (``C - 1`` segments); ``col_ohm`` between neighbouring
cells of a column (``R - 1`` segments); each column ends at the last row (``R - 1``) in a
sense amplifier of input resistance ``sense_ohm`` holding a virtual ground. A wire before
the first cell or after the last one is part of ``driver_ohm`` / ``sense_ohm``. Cells are
linear conductances, so the sensed currents are a linear map of the row voltages::

    I = V @ A(G),     A: (R, C) transfer conductances, A == G when every resistance is 0.

Three solvers of this circuit; the reference is independent of the other two:

* :func:`transfer_matrix` (the fast path's one-time cost per programmed tile and time)
  computes ``A`` exactly, by one of two algorithms that agree to rounding:

  - **nested dissection** (``method="dissection"``; the default from ``DISSECTION_MIN``
    cells a side when both wire resistances are > 0): the tile is cut into leaf blocks of
    2-4 cells a side, each reduced to the Schur complement of its nodal matrix onto its
    ports (the row nodes of its first and last column, the column nodes of its first and
    last row), and neighbouring blocks are merged pairwise (joined by the wire segments
    between them, the nodes where they meet eliminated) until the whole tile is seen from
    its row ends and sense ends, which the driver and sense resistances close. About
    ``(R + C)^3`` flops in the last merges: 1.6 s for a 512 x 512 array on one core.
  - **row sweep** (``method="sweep"``; any tile, also zero wire resistances): the network
    above the current row kept as a Norton equivalent on the ``C`` column nodes of that row
    (a dense ``C x C`` conductance matrix ``F`` and the short-circuit currents ``J`` per
    unit row voltage). One row adds ``H = D - D T^-1 D`` (``D = diag(G[i])``, ``T`` the
    row's tridiagonal nodal matrix) to ``F``; one column segment turns ``F`` into
    ``F (I + r F)^-1`` and ``J`` into ``(I + r F)^-1 J``. The sweep runs along the longer
    side (by reciprocity the transposed tile has the same map). Per row one in-place
    Cholesky inverse (``C^3`` flops) and one product of the ``J`` rows so far
    (``2 i C^2``): about ``R C^3 + R^2 C^2`` flops for ``C <= R`` (1.4e11 at 512 x 512).
* :func:`mna_read` (the reference): modified nodal analysis of the whole circuit
  (``scipy.sparse``): every resistor stamped, every ideal source and every zero
  resistance a voltage source with its current as an unknown, solved by sparse LU for
  each input vector; per-cell read noise is drawn on the conductances before the solve.

numpy and scipy; the small dense eliminations of the dissection run in a numba kernel
(:func:`crossbar._kernels.schur_tail`).
"""
from __future__ import annotations

import functools

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from . import _kernels

__all__ = ["transfer_matrix", "mna_matrix", "mna_read", "attenuation", "linear_noise_std", "max_relative_drop",
           "noise_error_bound", "NOISE_BOUND_FACTOR", "DISSECTION_MIN"]

_S_PER_US = 1e-6

#: The fast path's read-noise std error (against the exact first-order std of the circuit)
#: stayed below ``NOISE_BOUND_FACTOR * d + NOISE_BOUND_FLOOR``, ``d`` the largest relative
#: IR drop of a cell (:func:`max_relative_drop`), in every circuit we measured: four sets
#: of about 1450 random tiles of 1-12 cells a side, every resistance drawn log-uniform from
#: 0.1 ohm to 3 kohm (or 0), sparse inputs (worst 1.73 d, at d = 0.53; tiles of 8 x 8 or
#: more: below 1.1 d + 1e-6), and the README table (tiles 16-128, far below). The error is
#: largest where a cell's own series resistance dominates: its noise then sees the
#: attenuation twice, in the cell's voltage and in the current it injects.
NOISE_BOUND_FACTOR = 2.0
#: ``transfer_matrix(method="auto")`` uses nested dissection from this many cells a side
DISSECTION_MIN = 64
NOISE_BOUND_FLOOR = 1e-5
_DROP_G_FLOOR = 0.01  # cells below this fraction of g_max are left out of the drop (their A / G is mostly cross terms)


def max_relative_drop(a_us, g_us, g_max_us: float) -> float:
    """Largest relative IR drop of a cell, ``max (1 - clip(A / G, 0, 1))`` over the cells with
    ``G >= 0.01 g_max`` (0 when there are none)."""
    g = np.asarray(g_us, dtype=np.float64)
    keep = g >= _DROP_G_FLOOR * g_max_us
    if not keep.any():
        return 0.0
    att = np.clip(np.asarray(a_us, dtype=np.float64)[keep] / g[keep], 0.0, 1.0)
    return float((1.0 - att).max())


def noise_error_bound(max_drop: float) -> float:
    """Stated bound on the relative error of the fast path's read-noise std for a tile whose
    largest relative cell IR drop is ``max_drop`` (:func:`max_relative_drop`)."""
    return NOISE_BOUND_FACTOR * float(max_drop) + NOISE_BOUND_FLOOR


def _row_norton(g: np.ndarray, row_ohm: float, driver_ohm: float) -> tuple[np.ndarray, np.ndarray]:
    """Norton equivalent of one row (driver, row wire, cells) seen from its cells' column ends.

    Returns ``(H, h)``: the current the row pushes into the column nodes ``c`` is
    ``h V - H c`` for row voltage ``V``. ``g`` in S.
    """
    n = g.shape[0]
    if row_ohm == 0.0:
        if driver_ohm == 0.0:            # every cell sees V: no coupling
            return np.diag(g), g.copy()
        total = g.sum()                  # one row node behind the driver
        h = g / (1.0 + driver_ohm * total)
        return np.diag(g) - np.outer(g, g) / (1.0 / driver_ohm + total), h
    gw = 1.0 / row_ohm
    if driver_ohm == 0.0:                # node 0 held at V: unknown nodes 1..n-1
        H = np.zeros((n, n))
        h = np.zeros(n)
        H[0, 0] = h[0] = g[0]
        if n > 1:
            Hs, hs = _chain_norton(g[1:], gw, gw)
            H[1:, 1:] = Hs
            h[1:] = hs
        return H, h
    return _chain_norton(g, gw, 1.0 / driver_ohm)


def _chain_norton(g: np.ndarray, gw: float, g_end: float) -> tuple[np.ndarray, np.ndarray]:
    """Chain of nodes joined by ``gw``, node 0 tied to the source by ``g_end``, cell ``g[j]``
    from node j to its column node. ``T = L + g_end e0 e0^T + diag(g)``; returns
    ``(diag(g) - D T^-1 D, g_end D T^-1 e0)``."""
    n = g.shape[0]
    if n == 1:
        t = g_end + g[0]
        return np.array([[g[0] - g[0] * g[0] / t]]), np.array([g_end * g[0] / t])
    diag = np.full(n, 2.0 * gw) + g
    diag[-1] -= gw
    diag[0] += g_end - gw
    off = np.full(n - 1, -gw)
    d, e, info = sla.lapack.dpttrf(diag, off)
    if info != 0:
        raise np.linalg.LinAlgError(f"row nodal matrix not positive definite (dpttrf info {info})")
    rhs = np.zeros((n, n + 1), order="F")
    rhs[np.arange(n), np.arange(n)] = g
    rhs[0, n] = g_end
    x, info = sla.lapack.dpttrs(d, e, rhs, overwrite_b=1)     # T^-1 [D | g_end e0]
    H = x[:, :n]
    H *= -g[:, None]
    H[np.arange(n), np.arange(n)] += g
    return H, g * x[:, n]


_SYM_BLOCK = 64


@functools.lru_cache(maxsize=8)
def _tril(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.tril_indices(n, -1)


def _mirror_upper(m: np.ndarray) -> None:
    """Copy the upper triangle of the square array ``m`` onto its lower one, in place, in
    cache-sized blocks (a plain ``m += m.T`` costs as much as the Cholesky factorisation)."""
    n = m.shape[0]
    b = _SYM_BLOCK
    for i in range(0, n, b):
        e = min(i + b, n)
        blk = m[i:e, i:e]
        lo = _tril(e - i)
        blk[lo] = blk.T[lo]
        for j in range(e, n, b):
            m[j:j + b, i:e] = m[i:e, j:j + b].T


class _Frontier:
    """The sweep's state: ``F`` (C x C, symmetric, Fortran order so LAPACK works on it in
    place), ``J^T`` (first ``k`` rows valid) and the work arrays reused on every row."""

    def __init__(self, n_rows: int, n_cols: int):
        self.F = np.zeros((n_cols, n_cols), order="F")
        self.Jt = np.zeros((n_rows, n_cols))       # J^T: row i = short-circuit currents per unit V_i
        self._jt_work = np.empty((n_rows, n_cols))
        self._m = np.empty((n_cols, n_cols), order="F")

    def series(self, k: int, r: float) -> None:
        """Add a series resistance ``r`` in front of every frontier node, in place:
        ``F <- F (I + r F)^-1``, ``J <- (I + r F)^-1 J`` (first ``k`` rows of ``J^T``).

        With ``M = I + r F`` (symmetric positive definite for conductances >= 0) one Cholesky
        inverse gives both: ``F (I + r F)^-1 = (I - M^-1) / r``. While ``r F`` is tiny that
        difference would cancel, so then ``F M^-1`` is formed instead.
        """
        F = self.F
        n = F.shape[0]
        diag = np.diag_indices(n)
        m = self._m
        np.multiply(F, r, out=m)
        m[diag] += 1.0
        # upper triangles only (m is Fortran-ordered: potrf/potri work in place, no copies)
        c, info = sla.lapack.dpotrf(m, lower=0, overwrite_a=1, clean=0)
        if info == 0:
            minv, info = sla.lapack.dpotri(c, lower=0, overwrite_c=1)
        if info == 0:
            _mirror_upper(minv)
        else:  # not positive definite (negative conductances drawn by noise): general inverse
            minv = np.asfortranarray(np.linalg.inv(F * r + np.eye(n)))
        if r * float(np.abs(F[diag]).max(initial=0.0)) > 1e-6:
            np.multiply(minv, -1.0 / r, out=F)
            F[diag] += 1.0 / r
        else:
            F[...] = F @ minv
        if k:
            np.matmul(self.Jt[:k], minv, out=self._jt_work[:k])
            self.Jt, self._jt_work = self._jt_work, self.Jt   # rows >= k of the new Jt are rewritten later

    def add_row(self, i: int, H: np.ndarray, h: np.ndarray) -> None:
        self.F += H.T                                  # H is symmetric; its transpose matches F's order
        self.Jt[i] = h


def _sweep(g_s: np.ndarray, row_ohm: float, col_ohm: float, driver_ohm: float, sense_ohm: float) -> np.ndarray:
    """Transfer matrix (S) of a tile, sweeping over its rows (frontier: the C column nodes)."""
    n_rows, n_cols = g_s.shape
    fr = _Frontier(n_rows, n_cols)
    for i in range(n_rows):
        if i and col_ohm > 0.0:
            fr.series(i, col_ohm)
        H, h = _row_norton(g_s[i], row_ohm, driver_ohm)
        fr.add_row(i, H, h)
    if sense_ohm > 0.0:
        fr.series(n_rows, sense_ohm)
    return fr.Jt


def transfer_matrix(g_us, *, row_ohm: float = 0.0, col_ohm: float = 0.0, driver_ohm: float = 0.0,
                    sense_ohm: float = 0.0, method: str = "auto") -> np.ndarray:
    """Exact transfer conductances of one array with resistive wires: ``I = V @ A``.

    Args:
        g_us: (R, C) cell conductances in uS (rows = inputs, columns = outputs).
        row_ohm, col_ohm: wire resistance of one segment between neighbouring cells, ohm.
        driver_ohm, sense_ohm: row driver output and column sense input resistance, ohm.
        method: ``"sweep"`` (row sweep, any tile), ``"dissection"`` (nested dissection: both
            wire resistances > 0, at least 2 x 2 cells, conductances >= 0) or ``"auto"``
            (dissection where it applies and the tile has at least ``DISSECTION_MIN`` cells
            a side, else the sweep). Both are exact; they agree to rounding.

    Returns:
        (R, C) float64 ``A`` in uS: ``A[i, j]`` is the current into sense j per volt on
        row i with every other row at 0 V. Every resistance 0: ``A`` is ``g_us`` itself.

    Example:
        >>> A = transfer_matrix(np.full((2, 3), 20.0), row_ohm=100.0)
        >>> bool((A < 20.0).all())
        True
    """
    g = np.asarray(g_us, dtype=np.float64)
    if g.ndim != 2 or g.size == 0:
        raise ValueError(f"g_us must be a non-empty 2-D array, got shape {g.shape}")
    if row_ohm == col_ohm == driver_ohm == sense_ohm == 0.0:
        return g.copy()
    if method not in ("auto", "sweep", "dissection"):
        raise ValueError(f"method must be 'auto', 'sweep' or 'dissection', got {method!r}")
    g_s = g * _S_PER_US
    n_rows, n_cols = g.shape
    fits = row_ohm > 0.0 and col_ohm > 0.0 and min(n_rows, n_cols) >= 2 and float(g.min()) >= 0.0
    if method == "dissection" and not fits:
        raise ValueError("method='dissection' needs row_ohm > 0, col_ohm > 0, at least 2 x 2 cells and "
                         f"conductances >= 0; got row_ohm={row_ohm}, col_ohm={col_ohm}, shape {g.shape}, "
                         f"min conductance {float(g.min())} uS")
    if method == "dissection" or (method == "auto" and fits and min(n_rows, n_cols) >= DISSECTION_MIN):
        return _dissect(g_s, row_ohm, col_ohm, driver_ohm, sense_ohm) / _S_PER_US
    if n_cols <= n_rows:
        a = _sweep(g_s, row_ohm, col_ohm, driver_ohm, sense_ohm)
    else:
        # reciprocity: the tile turned over (sense ends become driver ends) has the transposed
        # map; the sweep then keeps the shorter side as its frontier
        flip = g_s[::-1, ::-1].T
        a = _sweep(np.ascontiguousarray(flip), col_ohm, row_ohm, sense_ohm, driver_ohm)[::-1, ::-1].T
    return np.ascontiguousarray(a) / _S_PER_US


def attenuation(a_us: np.ndarray, g_us: np.ndarray) -> np.ndarray:
    """Per-cell attenuation ``A / G`` of a tile (1 where ``G`` is 0): the fraction of a cell's
    ideal current that reaches its sense, used to carry read noise through the wires."""
    g = np.asarray(g_us, dtype=np.float64)
    out = np.ones_like(g)
    nz = g > 0
    out[nz] = np.asarray(a_us, dtype=np.float64)[nz] / g[nz]
    return out


# ----------------------------------------------------------------------------- nested dissection
# The tile is cut into leaf blocks of 2-4 cells a side (rows and columns each halved
# recursively to the same depth), and each block is reduced to its ports: the row nodes of
# its first and last column (L, Rt) and the column nodes of its first and last row (T, B),
# as the Schur complement of its nodal matrix onto them. Neighbouring blocks are then
# merged pairwise, alternating directions so blocks stay near square: the two blocks'
# port matrices are joined by the wire segments between them and the nodes where they meet
# are eliminated. Ports on the open edges (the last column's row ends, the first row's
# column ends) have nothing outside and are eliminated as soon as a block owns them. What
# is left is the whole tile seen from its row ends and sense ends; the driver and sense
# resistances close it. About ``(R + C)^3`` flops in the last merges instead of the
# sweep's ``R C^3``: at 512 x 512 a sixth of the time, and the gap grows with the size.
# Every merge of a level that has the same shape is one batched call: small matrices in
# :func:`crossbar._kernels.schur_tail`, large ones in LAPACK (Cholesky) and BLAS.

_LEAF_MIN = 2          # leaves have 2-4 cells a side
_NUMBA_MAX = 160       # matrices up to this size are eliminated by the numba kernel


def _bands(n: int) -> np.ndarray:
    """Band sizes of ``n`` halved recursively as deep as every band keeps >= _LEAF_MIN cells."""
    depth = 0
    while n >> (depth + 1) >= _LEAF_MIN:
        depth += 1
    out = [n]
    for _ in range(depth):
        out = [h for m in out for h in (m // 2, m - m // 2)]
    return np.array(out, dtype=np.int64)


def _ports(a: int, b: int, top: bool, right: bool) -> list[tuple[str, int]]:
    """Port groups of a block of ``a x b`` cells in their order: L (row nodes of its first
    column), Rt (of its last column; none on the tile's right edge), T (column nodes of its
    first row; none on the tile's top edge), B (of its last row)."""
    groups = [("L", a)]
    if not right:
        groups.append(("Rt", a))
    if not top:
        groups.append(("T", b))
    groups.append(("B", b))
    return groups


def _stamp(m: np.ndarray, p: np.ndarray, q: np.ndarray, g) -> None:
    """Add conductances ``g`` between nodes ``p[i]`` and ``q[i]`` to every nodal matrix of the
    stack ``m`` (N, n, n), in place; ``g`` a scalar or (N, len(p))."""
    m[:, p, p] += g
    m[:, q, q] += g
    m[:, p, q] -= g
    m[:, q, p] -= g


def _eliminate(m: np.ndarray, k: int) -> np.ndarray:
    """Schur complements of the stack ``m`` (N, n, n) onto its first ``k`` nodes."""
    n = m.shape[1]
    if n == k:
        return m
    if n <= _NUMBA_MAX:
        if _kernels.schur_tail(m, k) != 0:   # cannot happen for G >= 0 and wires > 0
            raise np.linalg.LinAlgError("nested dissection met a pivot <= 0 (conductances >= 0 expected)")
        return m[:, :k, :k]
    out = np.empty((m.shape[0], k, k))
    for b in range(m.shape[0]):
        mkk, mke, mee = m[b, :k, :k], m[b, :k, k:], m[b, k:, k:]
        try:
            c = sla.cholesky(mee, lower=True, check_finite=False)
            y = sla.solve_triangular(c, mke.T, lower=True, check_finite=False)
            out[b] = mkk - y.T @ y
        except np.linalg.LinAlgError:          # not positive definite (cannot happen for G >= 0)
            out[b] = mkk - mke @ np.linalg.solve(mee, mke.T)
    return out


class _Level:
    """The blocks of one level: a grid of ``len(rb) x len(cb)`` blocks (row and column band
    sizes ``rb``, ``cb``), held as groups of blocks of one shape; ``gid[i, j]`` and
    ``pos[i, j]`` say where block (i, j)'s port matrix is."""

    def __init__(self, rb, cb, gid, pos, keys, stacks):
        self.rb, self.cb, self.gid, self.pos, self.keys, self.stacks = rb, cb, gid, pos, keys, stacks

    @classmethod
    def build(cls, rb, cb, keys_of_cell, make):
        """Group the cells of a new grid by key (``keys_of_cell[i, j]`` an int code) and fill
        each group's stack with ``make(code, rows, cols)``."""
        gid = np.empty(keys_of_cell.shape, dtype=np.int64)
        pos = np.empty(keys_of_cell.shape, dtype=np.int64)
        keys, stacks = [], []
        for code in np.unique(keys_of_cell):
            rows, cols = np.nonzero(keys_of_cell == code)
            key, stack = make(int(code), rows, cols)
            gid[rows, cols] = len(keys)
            pos[rows, cols] = np.arange(rows.size)
            keys.append(key)
            stacks.append(stack)
        return cls(rb, cb, gid, pos, keys, stacks)


def _leaf_level(g_s: np.ndarray, gr: float, gc: float) -> _Level:
    rb, cb = _bands(g_s.shape[0]), _bands(g_s.shape[1])
    r0 = np.concatenate([[0], np.cumsum(rb)[:-1]])
    c0 = np.concatenate([[0], np.cumsum(cb)[:-1]])
    nr, nc = rb.size, cb.size
    top = np.zeros((nr, nc), dtype=bool)
    top[0] = True
    right = np.zeros((nr, nc), dtype=bool)
    right[:, -1] = True
    code = ((rb[:, None] * 64 + cb[None, :]) * 2 + top) * 2 + right

    def make(c, rows, cols):
        a, b = int(rb[rows[0]]), int(cb[cols[0]])
        t, rt = bool(top[rows[0], cols[0]]), bool(right[rows[0], cols[0]])
        rn = np.arange(a * b).reshape(a, b)
        cn = a * b + rn
        ports = {"L": rn[:, 0], "Rt": rn[:, -1], "T": cn[0], "B": cn[-1]}
        keep = np.concatenate([ports[name] for name, _ in _ports(a, b, t, rt)])
        order = np.concatenate([keep, np.setdiff1d(np.arange(2 * a * b), keep)])
        where = np.empty_like(order)
        where[order] = np.arange(order.size)          # node -> position in the stack
        n = order.size
        m = np.zeros((rows.size, n, n))
        cells = g_s[(r0[rows][:, None, None] + np.arange(a)[:, None]),
                    (c0[cols][:, None, None] + np.arange(b)[None, :])].reshape(rows.size, -1)
        for p, q, val in ((rn[:, :-1], rn[:, 1:], gr), (cn[:-1], cn[1:], gc), (rn, cn, cells)):
            _stamp(m, where[p.ravel()], where[q.ravel()], val)
        return (a, b, t, rt), _eliminate(m, keep.size)

    return _Level.build(rb, cb, code, make)


def _merge(level: _Level, vertical: bool, gr: float, gc: float) -> _Level:
    """Merge the blocks of ``level`` pairwise: rows of blocks (2i, 2i + 1) when ``vertical``,
    else columns of blocks (2j, 2j + 1)."""
    if vertical:
        gp, gq = level.gid[0::2], level.gid[1::2]
        pp, pq = level.pos[0::2], level.pos[1::2]
        rb, cb = level.rb[0::2] + level.rb[1::2], level.cb
    else:
        gp, gq = level.gid[:, 0::2], level.gid[:, 1::2]
        pp, pq = level.pos[:, 0::2], level.pos[:, 1::2]
        rb, cb = level.rb, level.cb[0::2] + level.cb[1::2]
    n_groups = len(level.keys)
    code = gp * n_groups + gq

    def make(c, rows, cols):
        kp, kq = level.keys[c // n_groups], level.keys[c % n_groups]
        sp = level.stacks[c // n_groups][pp[rows, cols]]
        sq = level.stacks[c % n_groups][pq[rows, cols]]
        return _join(kp, kq, sp, sq, vertical, gc if vertical else gr)

    new = _Level.build(rb, cb, code, make)
    # blocks of equal shape made from different pairs of shapes: one group, so the next
    # level batches them together
    merged: dict[tuple, list] = {}
    for gi, key in enumerate(new.keys):
        merged.setdefault(key, []).append(gi)
    if len(merged) == len(new.keys):
        return new
    keys, stacks = [], []
    gid = np.empty_like(new.gid)
    pos = np.empty_like(new.pos)
    for key, members in merged.items():
        offset = 0
        for gi in members:
            sel = new.gid == gi
            gid[sel] = len(keys)
            pos[sel] = new.pos[sel] + offset
            offset += new.stacks[gi].shape[0]
        keys.append(key)
        stacks.append(np.concatenate([new.stacks[gi] for gi in members]))
    return _Level(rb, cb, gid, pos, keys, stacks)


def _join(kp, kq, sp, sq, vertical, g):
    """Join blocks P (first) and Q (second) by the wire segments ``g`` between P's last and
    Q's first line of nodes, and eliminate those nodes. Returns the merged key and stack."""
    (a1, b1, t1, r1), (a2, b2, t2, r2) = kp, kq

    def offsets(key):
        out, o = {}, 0
        for name, size in _ports(*key):
            out[name] = (o, size)
            o += size
        return out

    op, oq = offsets(kp), offsets(kq)
    if vertical:          # P above Q: P.B meets Q.T
        key = (a1 + a2, b1, t1, r1)
        keep = [("P", "L"), ("Q", "L")] + ([("P", "Rt"), ("Q", "Rt")] if not r1 else [])
        keep += ([("P", "T")] if not t1 else []) + [("Q", "B")]
        meet = [("P", "B"), ("Q", "T")]
    else:                 # P left of Q: P.Rt meets Q.L
        key = (a1, b1 + b2, t1, r2)
        keep = [("P", "L")] + ([("Q", "Rt")] if not r2 else [])
        keep += ([("P", "T"), ("Q", "T")] if not t1 else []) + [("P", "B"), ("Q", "B")]
        meet = [("P", "Rt"), ("Q", "L")]
    segs = keep + meet
    src = {"P": (sp, op), "Q": (sq, oq)}
    start, o = [], 0
    for who, name in segs:
        start.append(o)
        o += src[who][1][name][1]
    e = op[meet[0][1]][1]                 # nodes on each side of the meeting line
    n, k = o, o - 2 * e
    m = np.zeros((sp.shape[0], n, n))
    for (w1, n1), s1 in zip(segs, start):
        stack, offs = src[w1]
        a0, la = offs[n1]
        for (w2, n2), s2 in zip(segs, start):
            if w2 == w1:
                b0, lb = offs[n2]
                m[:, s1:s1 + la, s2:s2 + lb] = stack[:, a0:a0 + la, b0:b0 + lb]
    _stamp(m, np.arange(k, k + e), np.arange(k + e, n), g)
    return key, _eliminate(m, k)


def _dissect(g_s: np.ndarray, row_ohm: float, col_ohm: float, driver_ohm: float, sense_ohm: float) -> np.ndarray:
    """Transfer matrix (S) of a tile by nested dissection (``row_ohm, col_ohm > 0``, at least
    2 x 2 cells, conductances >= 0)."""
    R, C = g_s.shape
    gr, gc = 1.0 / row_ohm, 1.0 / col_ohm
    level = _leaf_level(g_s, gr, gc)
    while level.rb.size > 1 or level.cb.size > 1:
        vertical = level.cb.size == 1 or (level.rb.size > 1 and level.rb.max() <= level.cb.max())
        level = _merge(level, vertical, gr, gc)
    s = level.stacks[0][0]                         # ports: L (R row ends), B (C sense ends)
    s_ll, s_lb, s_bb = s[:R, :R], s[:R, R:], s[R:, R:]
    if driver_ohm > 0.0 and sense_ohm > 0.0:
        gd, gs = 1.0 / driver_ohm, 1.0 / sense_ohm
        m = s.copy()
        m[np.diag_indices(R + C)] += np.concatenate([np.full(R, gd), np.full(C, gs)])
        rhs = np.zeros((R + C, R))
        rhs[np.arange(R), np.arange(R)] = gd
        return (gs * np.linalg.solve(m, rhs)[R:]).T
    if driver_ohm == 0.0 and sense_ohm > 0.0:     # row ends held at V
        gs = 1.0 / sense_ohm
        return -gs * np.linalg.solve(s_bb + gs * np.eye(C), s_lb.T).T
    if driver_ohm == 0.0:                          # both ends held: the sensed current is -S_BL V
        return -s_lb.copy()
    gd = 1.0 / driver_ohm                          # sense ends held at 0 V
    return -gd * np.linalg.solve(s_ll + gd * np.eye(R), s_lb)


# ----------------------------------------------------------------------------- reference
def mna_matrix(g_us, *, row_ohm: float = 0.0, col_ohm: float = 0.0, driver_ohm: float = 0.0,
               sense_ohm: float = 0.0) -> tuple[sp.csc_matrix, int, int]:
    """The modified-nodal-analysis matrix of one array (units: S, ohm, V, A).

    Nodes: row nodes ``r(i, j)``, column nodes ``c(i, j)``, source nodes ``s_i`` and sense
    nodes ``o_j`` (ground excluded). Voltage sources (their currents are unknowns, after the
    node voltages): ``V_i`` from ``s_i`` to ground, ``0 V`` from ``o_j`` to ground (the
    virtual ground; its current is the output ``I_j``), and ``0 V`` for every resistance
    that is 0. Resistors: driver ``s_i - r(i,0)``, row segments, cells ``r(i,j) - c(i,j)``,
    column segments, sense ``c(R-1,j) - o_j``.

    Returns:
        ``(M, first_input, first_output)``: the (n, n) CSC matrix, and the indices of the
        unknowns of the first input source current and the first sense current (the
        right-hand side of input i sits at ``first_input + i``).
    """
    g = np.asarray(g_us, dtype=np.float64) * _S_PER_US
    R, C = g.shape
    rn = np.arange(R * C).reshape(R, C)
    cn = R * C + rn
    sn = 2 * R * C + np.arange(R)
    on = 2 * R * C + R + np.arange(C)
    n_nodes = 2 * R * C + R + C
    rows, cols, vals = [], [], []
    sources: list[tuple[np.ndarray, np.ndarray]] = []   # (+ node, - node or -1 for ground)

    def resistor(a, b, ohm):
        a, b = np.broadcast_arrays(np.asarray(a).ravel(), np.asarray(b).ravel())
        if np.isscalar(ohm) or np.ndim(ohm) == 0:
            if ohm == 0.0:
                sources.append((a, b))
                return
            gv = np.full(a.shape, 1.0 / ohm)
        else:
            gv = np.asarray(ohm).ravel()  # conductances given directly (cells)
        rows.extend([a, b, a, b])
        cols.extend([a, b, b, a])
        vals.extend([gv, gv, -gv, -gv])

    resistor(sn, rn[:, 0], driver_ohm)
    if C > 1:
        resistor(rn[:, :-1], rn[:, 1:], row_ohm)
    resistor(rn, cn, g)                          # the cells (conductances)
    if R > 1:
        resistor(cn[:-1], cn[1:], col_ohm)
    resistor(cn[-1], on, sense_ohm)
    src = [(sn, None), (on, None)] + [(a, b) for a, b in sources]
    k = n_nodes
    first_input, first_output = n_nodes, n_nodes + R
    for plus, minus in src:
        idx = k + np.arange(plus.size)
        rows.extend([plus, idx])
        cols.extend([idx, plus])
        vals.extend([np.ones(plus.size), np.ones(plus.size)])
        if minus is not None:
            rows.extend([minus, idx])
            cols.extend([idx, minus])
            vals.extend([-np.ones(plus.size), -np.ones(plus.size)])
        k += plus.size
    m = sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(k, k))
    return m.tocsc(), first_input, first_output


def mna_read(v, g_pos_us, g_neg_us=None, *, row_ohm: float = 0.0, col_ohm: float = 0.0, driver_ohm: float = 0.0,
             sense_ohm: float = 0.0, sigma_pos_us=None, sigma_neg_us=None, rng=None) -> np.ndarray:
    """Reference read of one tile by modified nodal analysis, one sparse LU per read.

    For every input vector ``v[b]`` (volts on the rows), per-cell read noise
    ``G + sigma N(0, 1)`` is drawn on every cell of both arrays (when sigmas are given; not
    clipped, so the read is Gaussian in the noise like the fast path), the circuit of each
    array is solved and the sensed currents are differenced.

    Args:
        v: (B, R) row voltages (normalised inputs) or (R,).
        g_pos_us, g_neg_us: (R, C) conductances of the two arrays, uS (g_neg None: one array).
        row_ohm, col_ohm, driver_ohm, sense_ohm: see :func:`transfer_matrix`.
        sigma_pos_us, sigma_neg_us: (R, C) read-noise standard deviations, uS, or None.
        rng: numpy Generator for the noise.

    Returns:
        (B, C) float64 currents in uA per volt (``I+ - I-``), i.e. in the units of ``v @ G``.
    """
    v = np.atleast_2d(np.asarray(v, dtype=np.float64))
    wires = dict(row_ohm=row_ohm, col_ohm=col_ohm, driver_ohm=driver_ohm, sense_ohm=sense_ohm)
    noisy = sigma_pos_us is not None or sigma_neg_us is not None
    arrays = [(np.asarray(g_pos_us, np.float64), sigma_pos_us, 1.0)]
    if g_neg_us is not None:
        arrays.append((np.asarray(g_neg_us, np.float64), sigma_neg_us, -1.0))
    R, C = arrays[0][0].shape
    out = np.zeros((v.shape[0], C))
    for g, sig, sign in arrays:
        if not noisy:
            m, i0, o0 = mna_matrix(g, **wires)
            rhs = np.zeros((m.shape[0], v.shape[0]))
            rhs[i0:i0 + R] = v.T
            x = spla.splu(m).solve(rhs)
            out += sign * x[o0:o0 + C].T / _S_PER_US
            continue
        for b in range(v.shape[0]):
            gb = g if sig is None else g + np.asarray(sig, np.float64) * rng.standard_normal(g.shape)
            m, i0, o0 = mna_matrix(gb, **wires)
            rhs = np.zeros(m.shape[0])
            rhs[i0:i0 + R] = v[b]
            x = spla.splu(m).solve(rhs)
            out[b] += sign * x[o0:o0 + C] / _S_PER_US
    return out


def linear_noise_std(v, g_pos_us, g_neg_us, sigma_pos_us, sigma_neg_us, *, row_ohm: float = 0.0,
                     col_ohm: float = 0.0, driver_ohm: float = 0.0, sense_ohm: float = 0.0) -> np.ndarray:
    """Exact first-order standard deviation of the reference read's output under per-cell noise.

    For independent cell noise ``dG ~ N(0, sigma^2)`` and small ``sigma / G``, the sensed
    current of output k moves by ``sum_ij (dI_k / dG_ij) dG_ij`` with the adjoint
    sensitivity ``dI_k / dG_ij = -(x_r - x_c)_ij (y^k_r - y^k_c)_ij`` (``x`` the node voltages
    of the read, ``y^k`` the solution of the transposed MNA system for output k). Returns
    ``sqrt(sum_ij sigma_ij^2 (dI_k / dG_ij)^2)`` over both arrays, (B, C) in uA/V.
    """
    v = np.atleast_2d(np.asarray(v, dtype=np.float64))
    wires = dict(row_ohm=row_ohm, col_ohm=col_ohm, driver_ohm=driver_ohm, sense_ohm=sense_ohm)
    var = np.zeros((v.shape[0], np.shape(g_pos_us)[1]))
    for g, sig in ((g_pos_us, sigma_pos_us), (g_neg_us, sigma_neg_us)):
        g = np.asarray(g, dtype=np.float64)
        R, C = g.shape
        m, i0, o0 = mna_matrix(g, **wires)
        lu = spla.splu(m)
        rhs = np.zeros((m.shape[0], v.shape[0]))
        rhs[i0:i0 + R] = v.T
        x = lu.solve(rhs)                                   # (n, B)
        sel = np.zeros((m.shape[0], C))
        sel[o0 + np.arange(C), np.arange(C)] = 1.0
        y = lu.solve(sel, trans="T")                        # (n, C)
        dx = x[:R * C] - x[R * C:2 * R * C]                 # (RC, B) voltage across each cell
        dy = y[:R * C] - y[R * C:2 * R * C]                 # (RC, C)
        s2 = (np.asarray(sig, dtype=np.float64) * _S_PER_US).reshape(-1) ** 2
        # var[b, k] = sum_cells s2 dx[cell, b]^2 dy[cell, k]^2
        var += (dx * dx).T @ (s2[:, None] * dy * dy)
    return np.sqrt(var) / _S_PER_US
