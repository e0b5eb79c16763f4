"""Helpers shared by the stages of ``benchmarks/scale.py``: peak memory, CPU timing, the tet box."""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


class PeakRSS:
    """Peak resident memory above the level at entry, sampled in a thread."""

    def __enter__(self) -> PeakRSS:
        import psutil

        self._p = psutil.Process()
        self.base = self._p.memory_info().rss
        self.peak = self.base
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._p.memory_info().rss)
            time.sleep(0.005)

    def __exit__(self, *exc: Any) -> None:
        self.peak = max(self.peak, self._p.memory_info().rss)
        self._stop.set()
        self._t.join()

    @property
    def mb(self) -> float:
        return (self.peak - self.base) / 2**20


def tet_box(n: int, seed: int = 0, graded: bool = False):
    """A jittered structured tet mesh of about ``n`` points (six tets per grid cube); ``graded``: a
    square duct whose cells shrink towards the four side walls (y, z = 0, 1; tanh stretching, the
    wall cells ~40x thinner than the centre ones), as a wall-resolved CFD mesh."""
    import numpy as np

    from meshops import CellBlock, Mesh

    m = max(2, round(n ** (1 / 3)))
    g = np.stack(np.meshgrid(*[np.linspace(0, 1, m)] * 3, indexing="ij"), -1).reshape(-1, 3)
    rng = np.random.default_rng(seed)
    inner = np.all((g > 0) & (g < 1), axis=1)
    g[inner] += rng.uniform(-0.2, 0.2, (int(inner.sum()), 3)) / (m - 1)
    if graded:
        beta = 2.5
        g[:, 1:] = 0.5 * (1.0 + np.tanh(beta * (2.0 * g[:, 1:] - 1.0)) / np.tanh(beta))
    i, j, k = (a.ravel() for a in np.meshgrid(*[np.arange(m - 1)] * 3, indexing="ij"))
    v = lambda di, dj, dk: ((i + di) * m + (j + dj)) * m + (k + dk)  # noqa: E731
    c = [v(0, 0, 0), v(1, 0, 0), v(1, 1, 0), v(0, 1, 0), v(0, 0, 1), v(1, 0, 1), v(1, 1, 1), v(0, 1, 1)]
    tets = [(0, 1, 2, 6), (0, 2, 3, 6), (0, 3, 7, 6), (0, 7, 4, 6), (0, 4, 5, 6), (0, 5, 1, 6)]
    cells = np.concatenate([np.stack([c[a], c[b], c[d], c[e]], 1) for a, b, d, e in tets]).astype(np.int64)
    p = g[:, 0]
    return Mesh(g, [CellBlock("tetra", cells)], point_data={"p": np.sin(3 * p), "u": g.copy()}, dim=3)


def _timed_cpu(fn, repeat: int = 1) -> tuple[float, float, float]:
    """``(best wall s, peak MB, best CPU s of this process)``: CPU time is what one core spends,
    less inflated than wall time on a shared, loaded machine."""
    best, mb, cpu = math.inf, 0.0, math.inf
    for _ in range(repeat):
        with PeakRSS() as m:
            t, c = time.perf_counter(), time.process_time()
            fn()
            best, cpu = min(best, time.perf_counter() - t), min(cpu, time.process_time() - c)
        mb = max(mb, m.mb)
    return best, mb, cpu


def _side_by_side(fns: dict[str, Any], repeat: int) -> dict[str, Any]:
    """Each implementation in turn, ``repeat`` rounds; best wall time, peak MB and best CPU time."""
    runs: dict[str, list] = {k: [] for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            runs[k].append(_timed_cpu(fn))
    out: dict[str, Any] = {k: [min(r[0] for r in v), max(r[1] for r in v)] for k, v in runs.items()}
    out["cpu"] = {k: min(r[2] for r in v) for k, v in runs.items()}
    return out
