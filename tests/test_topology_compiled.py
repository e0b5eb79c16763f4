"""The compiled mesh edges (numba) against the numpy route (pairs, one sort of packed keys), bit for
bit: mixed fixed-size blocks (linear, quadratic, polygons, surface cells beside volume cells),
degenerate cells, shuffled point ids, and the symmetric adjacency the graph uses."""

import numpy as np
import pytest

pytest.importorskip("numba")

import meshops.geometry.topology as topo  # noqa: E402
from meshops.graph.hierarchy import symmetric_edges  # noqa: E402
from meshops.mesh import CellBlock  # noqa: E402


def _blocks(rng, n):
    def ids(m, k):
        return rng.integers(0, n, size=(m, k))
    tet = ids(4000, 4)
    tet[:50, 1] = tet[:50, 0]  # degenerate: a repeated node
    return [CellBlock("tetra", tet), CellBlock("wedge", ids(500, 6)), CellBlock("hexahedron", ids(300, 8)),
            CellBlock("pyramid", ids(200, 5)), CellBlock("triangle", tet[:700, :3]), CellBlock("quad", ids(100, 4)),
            CellBlock("tetra10", ids(50, 10)), CellBlock("polygon", ids(40, 6)), CellBlock("line", ids(30, 2)),
            CellBlock("tetra", np.zeros((0, 4), dtype=np.int64))]


def _numpy(fn, monkeypatch, *args):
    with monkeypatch.context() as m:
        m.setattr(topo, "_compiled", None)
        return fn(*args)


@pytest.mark.parametrize("n", [3000, 70000])
def test_cell_edges_and_adjacency_match_numpy(n, monkeypatch):
    cells = _blocks(np.random.default_rng(n), n)
    e = topo.cell_edges(cells, n)
    ref = _numpy(topo.cell_edges, monkeypatch, cells, n)
    assert e.dtype == np.int64 and np.array_equal(e, ref) and (e[:, 0] < e[:, 1]).all()
    a = topo.cell_adjacency(cells, n)
    assert np.array_equal(a, _numpy(topo.cell_adjacency, monkeypatch, cells, n))
    assert np.array_equal(a, symmetric_edges(ref, n))
    assert np.array_equal(topo.cell_edges(cells), _numpy(topo.cell_edges, monkeypatch, cells, None))


def test_ragged_blocks_take_the_numpy_route_and_bad_ids_are_refused():
    faces = [[0, 3, 2, 1], [4, 5, 6, 7], [0, 1, 5, 4], [1, 2, 6, 5], [2, 3, 7, 6], [3, 0, 4, 7]]
    cube = np.empty(1, dtype=object)
    cube[0] = faces
    cells = [CellBlock("polyhedron", cube), CellBlock("tetra", np.array([[0, 1, 2, 8]]))]
    assert len(topo.cell_edges(cells)) == 12 + 4  # the tet adds 0-2, 0-8, 1-8, 2-8
    assert topo.cell_adjacency(cells, 9).shape == (2, 32)
    with pytest.raises(ValueError, match="indexes point 12 but there are 10 points"):
        topo.cell_edges([CellBlock("tetra", np.array([[0, 1, 2, 12]]))], 10)
    with pytest.raises(ValueError, match="indexes point -1"):
        topo.cell_adjacency([CellBlock("tetra", np.array([[0, 1, 2, -1]]))], 10)
    assert topo.cell_edges([], 5).shape == (0, 2) and topo.cell_adjacency([], 5).shape == (2, 0)
