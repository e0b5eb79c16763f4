"""``meshops bench graph``: neighbor-graph and hierarchy build times next to scipy cKDTree (and torch_cluster).

For each size (default 1e4, 1e5, 1e6 uniform random points in the unit cube) it times

* ``knn_graph(k)`` and ``radius_graph(r, max_num_neighbors=cap)`` through meshops (cKDTree route on
  CPU; the torch cell list on CPU and, when CUDA is present, on the GPU),
* the raw scipy baseline: ``cKDTree(x)`` + ``query(k+1, workers=-1)`` / ``query(cap+1,
  distance_upper_bound=r, workers=-1)``, i.e. the same neighbor sets without meshops' exact tie/cap
  handling and tensor conversion,
* ``torch_cluster.knn_graph`` / ``radius_graph`` when it is importable,
* ``meshops.graph.build`` of a point cloud with a 3-level FPS hierarchy (sizes up to ``--hier-max``),

and prints seconds and ratios (meshops / cKDTree; > 1 means slower than the baseline).
"""

from __future__ import annotations

import argparse
import math
import os
import time
from collections.abc import Callable, Sequence


def _time(fn: Callable[[], object], repeat: int, sync: Callable[[], None] | None = None) -> float:
    best = math.inf
    for _ in range(repeat):
        if sync:
            sync()
        t = time.perf_counter()
        fn()
        if sync:
            sync()
        best = min(best, time.perf_counter() - t)
    return best


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="meshops bench graph", description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1e4,1e5,1e6", help="comma list of point counts")
    p.add_argument("--dim", type=int, default=3)
    p.add_argument("--k", type=int, default=16)
    p.add_argument("--neighbors", type=float, default=16.0, help="mean neighbors inside r (sets r)")
    p.add_argument("--cap", type=int, default=32, help="max_num_neighbors for radius graphs")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--hier-max", type=float, default=1e5, help="largest size for the hierarchy build")
    p.add_argument("--no-cell-cpu", action="store_true", help="skip the torch cell list on CPU")
    args = p.parse_args(list(argv or []))

    import numpy as np
    import torch
    from scipy.spatial import cKDTree

    from meshops.graph import build, knn_graph, radius_graph

    try:
        import torch_cluster  # type: ignore[import-not-found]
    except ImportError:
        torch_cluster = None
    cuda = torch.cuda.is_available()
    sync = torch.cuda.synchronize if cuda else None
    d = args.dim
    unit = math.pi ** (d / 2) / math.gamma(d / 2 + 1)
    print(f"# meshops bench graph: dim={d} k={args.k} cap={args.cap} repeat={args.repeat} "
          f"threads={torch.get_num_threads()} OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')} "
          f"cuda={cuda} torch_cluster={'yes' if torch_cluster else 'not installed'}")
    print(f"{'n':>9} {'op':<8} {'route':<22} {'seconds':>9} {'vs cKDTree':>10}")
    rng = np.random.default_rng(0)
    def one_size(n: int) -> None:
        x = rng.random((n, d))
        r = (args.neighbors / (n * unit)) ** (1.0 / d)
        xt = torch.from_numpy(x)
        rows = []

        def base_knn() -> object:
            return cKDTree(x).query(x, k=args.k + 1, workers=-1)

        def base_rad() -> object:
            return cKDTree(x).query(x, k=args.cap + 1, distance_upper_bound=r, workers=-1)

        tk = _time(base_knn, args.repeat)
        tr = _time(base_rad, args.repeat)
        rows.append(("knn", "scipy cKDTree", tk, tk))
        rows.append(("radius", "scipy cKDTree", tr, tr))
        rows.append(("knn", "meshops kdtree", _time(lambda: knn_graph(xt, args.k), args.repeat), tk))
        rows.append(("radius", "meshops kdtree",
                     _time(lambda: radius_graph(xt, r, max_num_neighbors=args.cap), args.repeat), tr))
        if not args.no_cell_cpu:
            xf = xt.float()
            rows.append(("knn", "meshops cell (cpu)",
                         _time(lambda: knn_graph(xf, args.k, backend="cell"), args.repeat), tk))
            rows.append(("radius", "meshops cell (cpu)",
                         _time(lambda: radius_graph(xf, r, max_num_neighbors=args.cap, backend="cell"),
                               args.repeat), tr))
        if cuda:
            xg = xt.float().cuda()
            knn_graph(xg, args.k)  # warm-up
            rows.append(("knn", "meshops cell (cuda)", _time(lambda: knn_graph(xg, args.k), args.repeat, sync), tk))
            rows.append(("radius", "meshops cell (cuda)",
                         _time(lambda: radius_graph(xg, r, max_num_neighbors=args.cap), args.repeat, sync), tr))
        if torch_cluster is not None:
            xf = xt.float()
            rows.append(("knn", "torch_cluster (cpu)",
                         _time(lambda: torch_cluster.knn_graph(xf, args.k), args.repeat), tk))
            rows.append(("radius", "torch_cluster (cpu)",
                         _time(lambda: torch_cluster.radius_graph(xf, r, max_num_neighbors=args.cap), args.repeat), tr))
            if cuda:
                xg = xt.float().cuda()
                rows.append(("knn", "torch_cluster (cuda)",
                             _time(lambda: torch_cluster.knn_graph(xg, args.k), args.repeat, sync), tk))
                rows.append(("radius", "torch_cluster (cuda)",
                             _time(lambda: torch_cluster.radius_graph(xg, r, max_num_neighbors=args.cap),
                                   args.repeat, sync), tr))
        if n <= args.hier_max:
            x3 = x if d == 3 else np.hstack([x, np.zeros((n, 3 - d))])
            th = _time(lambda: build(x3, {"k": args.k, "levels": 3}), 1)
            rows.append(("build", "meshops 3 levels (fps)", th, tk))
        for op, route, t, ref in rows:
            print(f"{n:>9} {op:<8} {route:<22} {t:>9.4f} {t / ref:>9.2f}x")

    for n in (int(float(s)) for s in args.sizes.split(",")):
        one_size(n)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
