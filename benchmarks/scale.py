"""``meshops bench scale``: every stage from file to prediction at growing sizes, next to the peers.

Graded tet meshes of a box (a jittered structured grid, six tets a cube, ~14 directed edges a point)
of 1e4 to 4e6 points (``--sizes``; 1e7 with ``--huge``). Each stage runs in a fresh process, so the
peak RSS reported is the stage's own (sampled every 5 ms above the process's RSS before the stage):

| stage | meshops | peers |
|---|---|---|
| read | ``meshops.read`` of a zlib appended ``.vtu`` written by VTK | ``pyvista.read``, ``meshio.read`` |
| write | ``meshops.write`` ``.vtu`` | ``pyvista`` ``save``, ``meshio.write`` |
| edges | ``meshops.graph.build(mesh, levels=1)`` (mesh edges + features) | |
| neighbors | ``knn_graph(pos, 8)``, random point order | ``cKDTree(pos).query(pos, 9, workers=1)`` |
| neighbors-ordered | the same on points in a mesh's order | the same |
| radius | ``radius_graph(pos, r, max_num_neighbors=None)`` (~14 a point) | ``cKDTree(pos).query_ball_point(pos, r, workers=1)`` |
| radius-ordered | the same on points in a mesh's order | the same |
| hierarchy | ``graph.build(points, levels=3, k=8)``; levels 1-2 alone (``add_levels``) | |
| hierarchy-ordered | the same on points in a mesh's order | |
| hierarchy-mesh | ``graph.build(tet mesh, levels=3, k=8)``: level 0 = the mesh's cell edges | |
| hierarchy-graded | the same on a tet duct graded towards its side walls (cells ~40x thinner there) | |
| forward | ``mgn`` no-grad, per directed edge memory | today's (E, 3H) concatenation formula |
| fwd+bwd | ``mgn`` forward + backward | PhysicsNeMo 2.2.2 ``MeshGraphNet`` (concat trick on/off), PyG ``MessagePassing`` stack, equal parameters |
| predict | partitioned ``mgn`` inference (``max_nodes_per_part``) | |

Neighbor stages run ours and the peer alternately, three times each (once at 4e6), with one worker each
(``$MESHOPS_WORKERS=1``); cells add each side's CPU time. Growth exponents are least-squares slopes of log(time) against log(points), of CPU time where the
row has it. Results print as a
table and, with ``--readme``, replace the block in ``benchmarks/README.md``.
Model stages use ``--hidden`` (128) and ``--blocks`` (4; 15 is the MeshGraphNet default) and are
capped at ``--model-max`` points (memory of the concatenating peers).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the sibling helper modules, also when run through `meshops bench`

from _scale_common import _side_by_side, _timed_cpu, tet_box  # noqa: E402
from _scale_models import stage_forward, stage_fwdbwd, stage_predict  # noqa: E402


def _vtu(n: int, work: Path) -> Path:
    path = work / f"box_{n}.vtu"
    if not path.is_file():
        import pyvista as pv

        from meshops.mesh import Mesh  # noqa: F401

        mesh = tet_box(n)
        grid = pv.UnstructuredGrid({pv.CellType.TETRA: mesh.cells[0].data}, mesh.points)
        for k, val in mesh.point_data.items():
            grid.point_data[k] = val
        grid.save(str(path))  # VTK's writer: appended, zlib-compressed binary
    return path


# ---------------------------------------------------------------- stages (one process each)

def stage_read(n: int, a: argparse.Namespace) -> dict[str, Any]:
    import meshio
    import pyvista as pv

    import meshops

    path = _vtu(n, Path(a.work))
    return _side_by_side({"meshops": lambda: meshops.read(str(path)), "pyvista": lambda: pv.read(str(path)),
                          "meshio": lambda: meshio.read(str(path))}, 2 if n <= 1_000_000 else 1)


# every VTK flavour meshops reads, written by VTK's own writers: (suffix, writer setup)
FLAVOURS = {
    "vtu-appended-raw-zlib": (".vtu", {"mode": "Appended", "encode": False, "compressor": "ZLib"}),
    "vtu-appended-base64-zlib": (".vtu", {"mode": "Appended", "encode": True, "compressor": "ZLib"}),
    "vtu-appended-raw-lz4": (".vtu", {"mode": "Appended", "encode": False, "compressor": "LZ4"}),
    "vtu-appended-raw-none": (".vtu", {"mode": "Appended", "encode": False, "compressor": None}),
    "vtu-inline-base64-zlib": (".vtu", {"mode": "Binary", "encode": True, "compressor": "ZLib"}),
    "vtu-ascii": (".vtu", {"mode": "Ascii", "encode": False, "compressor": None}),
    "vtp-appended-raw-zlib": (".vtp", {"mode": "Appended", "encode": False, "compressor": "ZLib"}),
    "pvtu-4-pieces": (".pvtu", {"pieces": 4}),
    "pvd-2-steps": (".pvd", {}),
    "legacy-binary": (".vtk", {"binary": True}),
    "legacy-ascii": (".vtk", {"binary": False}),
}


def _vtk_grid(n: int, surface: bool, work: Path):
    """The tet box as a pyvista grid, or for ``.vtp`` a triangulated plane of ~n points."""
    import pyvista as pv

    if surface:
        k = max(2, int(round(n ** 0.5)))
        grid = pv.Plane(i_resolution=k - 1, j_resolution=k - 1).triangulate()
        grid.point_data["p"] = grid.points[:, 0].copy()
        return grid
    return pv.read(str(_vtu(n, work)))  # the tet box, built and written once per size


def _write_flavour(grid: Any, path: Path, setup: dict[str, Any]) -> None:
    import vtk

    suffix = path.suffix
    if suffix == ".vtk":
        grid.save(str(path), binary=setup["binary"])
        return
    if suffix == ".pvd":
        for i in range(2):
            _write_flavour(grid, path.with_name(f"{path.stem}_{i}.vtu"), FLAVOURS["vtu-appended-raw-zlib"][1])
        items = "".join(f'<DataSet timestep="{i}" file="{path.stem}_{i}.vtu"/>' for i in range(2))
        path.write_text(f'<?xml version="1.0"?><VTKFile type="Collection" version="0.1"><Collection>{items}'
                        "</Collection></VTKFile>")
        return
    w = {".vtu": vtk.vtkXMLUnstructuredGridWriter, ".vtp": vtk.vtkXMLPolyDataWriter,
         ".pvtu": vtk.vtkXMLPUnstructuredGridWriter}[suffix]()
    w.SetFileName(str(path))
    w.SetInputData(grid)
    if suffix == ".pvtu":
        w.SetNumberOfPieces(setup["pieces"])
        w.SetStartPiece(0)
        w.SetEndPiece(setup["pieces"] - 1)
    else:
        getattr(w, f"SetDataModeTo{setup['mode']}")()
        w.SetEncodeAppendedData(setup["encode"])
        if setup["compressor"] is None:
            w.SetCompressorTypeToNone()
        else:
            getattr(w, f"SetCompressorTypeTo{setup['compressor']}")()
    if not w.Write():
        raise RuntimeError(f"{path}: VTK's writer failed")


def stage_read_flavour(flavour: str, n: int, a: argparse.Namespace) -> dict[str, Any]:
    """``meshops.read`` against ``pyvista.read`` on one VTK flavour (``.pvd``: every step)."""
    import pyvista as pv

    import meshops

    suffix, setup = FLAVOURS[flavour]
    path = Path(a.work) / f"box_{n}_{flavour}{suffix}"
    if not path.is_file():
        _write_flavour(_vtk_grid(n, suffix == ".vtp", Path(a.work)), path, setup)
    if suffix == ".pvd":
        def ours():
            return meshops.read(str(path), time="all")

        def peer():  # every step, as ours does
            r = pv.get_reader(str(path))
            return [(r.set_active_time_value(t), r.read()) for t in r.time_values]
    else:
        def ours():
            return meshops.read(str(path))

        def peer():
            return pv.read(str(path))
    return _side_by_side({"meshops": ours, "pyvista": peer}, 2 if n <= 1_000_000 else 1)


def stage_write(n: int, a: argparse.Namespace) -> dict[str, Any]:
    import meshio
    import pyvista as pv

    import meshops

    mesh = meshops.read(str(_vtu(n, Path(a.work))))
    d = Path(tempfile.mkdtemp(dir=a.work))
    grid = pv.read(str(_vtu(n, Path(a.work))))
    mm = meshio.read(str(_vtu(n, Path(a.work))))
    return _side_by_side({"meshops": lambda: meshops.write(mesh, d / "a.vtu"),
                          "pyvista": lambda: grid.save(str(d / "b.vtu")),
                          "meshio": lambda: meshio.write(str(d / "c.vtu"), mm, compression="zlib")}, 1)


def stage_edges(n: int, a: argparse.Namespace) -> dict[str, Any]:
    from meshops.graph import build

    mesh = tet_box(n)
    return _side_by_side({"meshops": lambda: build(mesh, {"levels": 1})}, 1)


def _neighbor_points(n: int, ordered: bool):
    """Random points in a unit cube: in random order, or in a mesh's order (the jittered tet grid's)."""
    import numpy as np

    if ordered:
        return np.ascontiguousarray(tet_box(n).points)
    return np.random.default_rng(0).random((n, 3))


def _pair(ours, peer, n: int) -> dict[str, Any]:
    """meshops and the peer back to back, alternating, 3 times each (once above 1e6 points); best of each."""
    repeat = 3 if n <= 1_000_000 else 1
    o, p = [], []
    for _ in range(repeat):
        o.append(_timed_cpu(ours))
        p.append(_timed_cpu(peer))
    best = lambda rs: [min(r[0] for r in rs), max(r[1] for r in rs)]  # noqa: E731
    return {"meshops": best(o), "cKDTree": best(p),
            "cpu": {"meshops": min(r[2] for r in o), "cKDTree": min(r[2] for r in p)}}


def _knn_stage(n: int, ordered: bool) -> dict[str, Any]:
    import torch
    from scipy.spatial import cKDTree

    from meshops.graph.neighbors import knn_graph

    os.environ["MESHOPS_WORKERS"] = "1"  # the same worker count as the peer
    x = _neighbor_points(n, ordered)
    xt = torch.from_numpy(x)
    return _pair(lambda: knn_graph(xt, 8), lambda: cKDTree(x).query(x, 9, workers=1), n)


def _radius_stage(n: int, ordered: bool) -> dict[str, Any]:
    import torch
    from scipy.spatial import cKDTree

    from meshops.graph.neighbors import radius_graph

    os.environ["MESHOPS_WORKERS"] = "1"
    x = _neighbor_points(n, ordered)
    r = 1.2 * (8 / (n * 4 / 3 * math.pi)) ** (1 / 3)  # ~14 neighbors a point
    xt = torch.from_numpy(x)
    return _pair(lambda: radius_graph(xt, r, max_num_neighbors=None),
                 lambda: cKDTree(x).query_ball_point(x, r, workers=1), n)


def stage_neighbors(n: int, a: argparse.Namespace) -> dict[str, Any]:
    """``knn_graph(pos, 8)`` vs ``cKDTree(pos).query(pos, 9)``, random point order."""
    return _knn_stage(n, False)


def stage_neighbors_ordered(n: int, a: argparse.Namespace) -> dict[str, Any]:
    """As ``neighbors`` with the points in a mesh's order (spatially coherent already: our worst case)."""
    return _knn_stage(n, True)


def stage_radius(n: int, a: argparse.Namespace) -> dict[str, Any]:
    """``radius_graph(pos, r, max_num_neighbors=None)`` vs ``cKDTree(pos).query_ball_point(pos, r)``."""
    return _radius_stage(n, False)


def stage_radius_ordered(n: int, a: argparse.Namespace) -> dict[str, Any]:
    return _radius_stage(n, True)


def stage_hierarchy(n: int, a: argparse.Namespace) -> dict[str, Any]:
    """``graph.build(points, levels=3, k=8)``: the whole build, and levels 1-2 alone (``add_levels``)."""
    return _hierarchy_stage(n, False, a.repeat)


def stage_hierarchy_ordered(n: int, a: argparse.Namespace) -> dict[str, Any]:
    return _hierarchy_stage(n, True, a.repeat)


def stage_hierarchy_mesh(n: int, a: argparse.Namespace, graded: bool = False) -> dict[str, Any]:
    """``graph.build(mesh, levels=3, k=8)`` on the tet box: level 0 from its cells (what a CFD mesh gets)."""
    from meshops.graph import build

    os.environ["MESHOPS_WORKERS"] = "1"
    mesh = tet_box(n, graded=graded)
    build(tet_box(WARM), {"levels": 3, "k": 8})  # load the compiled kernels first
    t, mb, cpu = _timed_cpu(lambda: build(mesh, {"levels": 3, "k": 8}), a.repeat)
    return {"meshops": [t, mb], "cpu": {"meshops": cpu}}


#: Warm-up size of the hierarchy stages: big enough for grid-sampled levels (> AUTO_FPS_MAX coarse
#: nodes), so every compiled kernel of the timed build is loaded before it.
WARM = 100_000


def _hierarchy_stage(n: int, ordered: bool, repeat: int = 1) -> dict[str, Any]:
    import numpy as np

    from meshops.graph import build
    from meshops.graph.build import GraphSpec, add_levels

    os.environ["MESHOPS_WORKERS"] = "1"
    x = _neighbor_points(n, ordered)
    build(np.random.default_rng(1).random((WARM, 3)), {"levels": 3, "k": 8})  # load the compiled kernels first
    t, mb, cpu = _timed_cpu(lambda: build(x, {"levels": 3, "k": 8}), repeat)
    g = build(x, {"levels": 1, "k": 8})
    e = g.edge_index.numpy()
    spec = GraphSpec(levels=3, k=8)
    th, mbh, cpuh = _timed_cpu(lambda: add_levels(g, x, e, spec), repeat)
    return {"meshops": [t, mb], "meshops levels 1-2": [th, mbh], "cpu": {"meshops": cpu, "meshops levels 1-2": cpuh}}


STAGES = {"read": stage_read, "write": stage_write, "edges": stage_edges, "neighbors": stage_neighbors,
          "neighbors-ordered": stage_neighbors_ordered, "radius": stage_radius, "radius-ordered": stage_radius_ordered,
          "hierarchy": stage_hierarchy, "hierarchy-ordered": stage_hierarchy_ordered,
          "hierarchy-mesh": stage_hierarchy_mesh, "hierarchy-graded": functools.partial(stage_hierarchy_mesh, graded=True),
          "forward": stage_forward,
          "fwd+bwd": stage_fwdbwd, "predict": stage_predict}
DEFAULT_STAGES = list(STAGES)
STAGES.update({f"read:{f}": functools.partial(stage_read_flavour, f) for f in FLAVOURS})
MODEL_STAGES = {"forward", "fwd+bwd", "predict"}


def _run_stage(stage: str, n: int, a: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--one", stage, "--n", str(n), "--work", a.work, "--hidden", str(a.hidden),
           "--blocks", str(a.blocks), "--repeat", str(a.repeat), "--parts", str(a.parts),
           "--concat-max", str(a.concat_max)] + (["--checkpointing"] if a.checkpointing else [])
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), MKL_NUM_THREADS=str(a.threads))
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        return {"error": (r.stderr.strip().splitlines() or ["killed"])[-1]}
    return json.loads(r.stdout.strip().splitlines()[-1])


def _slope(ns: list[int], ts: list[float]) -> float | None:
    import numpy as np

    ok = [(math.log(n), math.log(t)) for n, t in zip(ns, ts, strict=True) if t and t > 0]
    if len(ok) < 2:
        return None
    x, y = np.array(ok).T
    return float(np.polyfit(x, y, 1)[0])


def table(results: dict[str, dict[int, dict[str, Any]]]) -> str:
    lines = ["| stage | impl | " + " | ".join(f"{n:.0e} pts" for n in sorted({n for r in results.values() for n in r}))
             + " | growth |", ""]
    sizes = sorted({n for r in results.values() for n in r})
    lines[1] = "|" + "---|" * (len(sizes) + 3)
    for stage, by_n in results.items():
        impls = [k for r in by_n.values() for k, v in r.items()
                 if k != "cpu" and isinstance(v, list) and len(v) == 2 and all(isinstance(x, float) for x in v)]
        for impl in dict.fromkeys(impls):
            cells, ns, ts = [], [], []
            for n in sizes:
                v = by_n.get(n, {}).get(impl)
                if v is None:
                    err = by_n.get(n, {}).get("error")
                    cells.append("err" if err else "")
                    continue
                t, mb = v
                extra = ""
                ref = by_n[n].get("meshops")
                if not impl.startswith("meshops") and ref:
                    extra = f", {t / ref[0]:.2f}x ours"
                e = by_n[n].get("edges")
                per = f", {mb * 2**20 / e:.0f} B/edge" if e and stage == "forward" else ""
                cpu = by_n[n].get("cpu") or {}
                if isinstance(cpu, list):  # older runs: CPU times in the order of the row's entries
                    cpu = dict(zip([k for k, x in by_n[n].items() if k != "cpu" and isinstance(x, list)], cpu,
                                   strict=False))
                if impl in cpu:
                    c, c0 = cpu[impl], cpu.get("meshops")
                    ratio = f" ({c / c0:.2f}x ours)" if c0 and not impl.startswith("meshops") else ""
                    extra += f", CPU {c:.3g} s{ratio}"
                cells.append(f"{t:.3g} s, {mb:.0f} MB{per}{extra}")
                ns.append(n)
                ts.append(cpu.get(impl, t))  # growth from CPU time where measured (less noisy)
            s = _slope(ns, ts)
            lines.append(f"| {stage} | {impl} | " + " | ".join(cells) + f" | {'' if s is None else f'{s:.2f}'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="meshops bench scale", description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1e4,1e5,1e6,4e6")
    p.add_argument("--huge", action="store_true", help="add 1e7 points")
    p.add_argument("--stages", default=",".join(DEFAULT_STAGES),
                   help="comma-separated; 'read-formats' = read:FLAVOUR for every VTK flavour (" + ", ".join(FLAVOURS) + ")")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--blocks", type=int, default=4)
    p.add_argument("--model-max", type=float, default=1e6, help="largest size for the model stages")
    p.add_argument("--concat-max", type=float, default=3e5, help="largest size for the concatenating reference")
    p.add_argument("--cap", default="fwd+bwd=3e4",
                   help="largest size per stage, e.g. 'fwd+bwd=3e4,read=1e5' (the concatenating peers' memory)")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--parts", type=int, default=8)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--checkpointing", action="store_true")
    p.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "meshops-bench-scale"))
    p.add_argument("--readme", action="store_true", help="write the table into benchmarks/README.md")
    p.add_argument("--block", default="scale",
                   help="README block to fill: 'scale' (all stages) or e.g. 'scale-graph-io' (I/O and graph rows)")
    p.add_argument("--json", default=None)
    p.add_argument("--from-json", default=None, help="print (and with --readme write) the table of a saved run")
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, default=0, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    a.concat_max = int(float(a.concat_max))
    Path(a.work).mkdir(parents=True, exist_ok=True)
    if a.one:
        import torch

        torch.set_num_threads(a.threads)
        print(json.dumps(STAGES[a.one](a.n, a)))
        return 0
    if a.from_json:
        saved = json.loads(Path(a.from_json).read_text())
        results = {st: {int(n): r for n, r in by.items()} for st, by in saved["results"].items()}
        return _report(results, a, saved["command"])
    sizes = [int(float(s)) for s in a.sizes.split(",")] + ([10_000_000] if a.huge else [])
    caps = {k: float(v) for k, v in (c.split("=") for c in a.cap.split(",") if c)}
    results: dict[str, dict[int, dict[str, Any]]] = {}
    stages = [x for st in a.stages.split(",") for x in ([f"read:{f}" for f in FLAVOURS] if st == "read-formats" else [st])]
    unknown = [st for st in stages if st not in STAGES]
    if unknown:
        raise SystemExit(f"meshops bench scale: unknown stage(s) {unknown}; known: {list(STAGES)} and read-formats")
    for stage in stages:
        for n in sizes:
            if (stage in MODEL_STAGES and n > a.model_max) or n > caps.get(stage, math.inf):
                continue
            t = time.perf_counter()
            r = _run_stage(stage, n, a)
            results.setdefault(stage, {})[n] = r
            print(f"{stage:10s} {n:>9d}  {time.perf_counter() - t:7.1f} s  {json.dumps(r)}", flush=True)
            if a.json:  # after every stage, so a cut-short run keeps what it measured
                Path(a.json).write_text(json.dumps({"command": _cmd(argv), "results": results}, indent=1))
    return _report(results, a, _cmd(argv))


def _cmd(argv: list[str] | None) -> str:
    return "meshops bench scale " + " ".join(argv if argv is not None else sys.argv[1:])


def _report(results: dict[str, dict[int, dict[str, Any]]], a: argparse.Namespace, cmd: str) -> int:
    text = table(results)
    print(text)
    if a.readme:
        from meshops.atomic import replace_block

        body = (f"Command: `{cmd}` ({a.threads} thread(s), hidden {a.hidden}, {a.blocks} blocks). Cells: best "
                "time, peak RSS above the stage's start, ratio to meshops (> 1: the peer is slower).\n\n" + text)
        replace_block(HERE / "README.md", f"<!-- {a.block}:begin -->\n", f"\n<!-- {a.block}:end -->", body,
                      prefix="## Real sizes, end to end (`meshops bench scale`, issue 16)\n\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
