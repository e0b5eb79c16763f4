"""dolfin HDF5File layout: mesh + CG1 scalar/vector functions with permuted, interleaved dof maps, time series."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from scipy.spatial import Delaunay

import meshops
from meshops.mesh import MeshError

TIMES = [0.0, 0.25, 0.5]


def _mesh(rng):
    pts = rng.uniform(size=(40, 3))
    tets = Delaunay(pts).simplices.astype(np.int64)
    return pts, tets


def u_exact(pts, t):
    return np.c_[np.sin(pts[:, 0] + t), pts[:, 1] * (1 + t), -pts[:, 2] ** 2 + 3 * t]


def p_exact(pts, t):
    return pts[:, 0] * pts[:, 1] - t


def _write_function(f, name, values_at_vertex, tets, perm_cells, rng, times, vs, sig):
    """values_at_vertex(t) -> (n, vs); global dofs interleaved (dof = b * vs + i) on a permuted vertex numbering."""
    n = values_at_vertex(0.0).reshape(-1, vs).shape[0]
    block = rng.permutation(n)                              # vertex -> dof block
    g = f.create_group(name)
    rows = tets[perm_cells]                                 # dof-map rows in another cell order
    k = rows.shape[1]
    cd = np.stack([block[rows] * vs + i for i in range(vs)], axis=1).reshape(len(rows), vs * k)  # component-major
    g.create_dataset("cell_dofs", data=cd.ravel().astype(np.uint64))
    g.create_dataset("x_cell_dofs", data=(np.arange(len(rows) + 1) * vs * k).astype(np.uint64))
    g.create_dataset("cells", data=perm_cells.astype(np.uint64))
    g.attrs["signature"] = sig
    for j, t in enumerate(times):
        vals = values_at_vertex(t).reshape(n, vs)
        vec = np.empty(n * vs)
        for i in range(vs):
            vec[block * vs + i] = vals[:, i]
        ds = g.create_dataset(f"vector_{j}", data=vec)
        ds.attrs["timestamp"] = t
    g.attrs["count"] = len(times)


def write_case(folder, rng):
    pts, tets = _mesh(rng)
    with h5py.File(folder / "mesh.h5", "w") as f:
        g = f.create_group("mesh")
        g.create_dataset("coordinates", data=pts)
        top = g.create_dataset("topology", data=tets.astype(np.uint64))
        top.attrs["celltype"] = "tetrahedron"
        g.create_dataset("cell_indices", data=np.arange(len(tets), dtype=np.uint64))
    perm = rng.permutation(len(tets))
    with h5py.File(folder / "u.h5", "w") as f:
        _write_function(f, "u", lambda t: u_exact(pts, t), tets, perm, rng, TIMES, 3,
                        "VectorElement(FiniteElement('Lagrange', tetrahedron, 1), dim=3)")
    with h5py.File(folder / "p.h5", "w") as f:
        _write_function(f, "p", lambda t: p_exact(pts, t), tets, rng.permutation(len(tets)), rng, TIMES, 1,
                        "FiniteElement('Lagrange', tetrahedron, 1)")
    return pts, tets


def test_dolfin_vector_and_scalar_series_read_exactly(tmp_path):
    pts, tets = write_case(tmp_path, np.random.default_rng(0))
    meshes = meshops.read(tmp_path / "mesh.h5", time="all")
    assert [m.time for m in meshes] == TIMES
    for m in meshes:
        np.testing.assert_array_equal(m.points, pts)
        np.testing.assert_array_equal(m.cells[0].data, tets)
        assert m.cells[0].type == "tetra"
        np.testing.assert_array_equal(m.point_data["u"], u_exact(pts, m.time))   # bit-exact, no reshape scramble
        np.testing.assert_array_equal(m.point_data["p"], p_exact(pts, m.time))
    one = meshops.read(tmp_path / "mesh.h5", time=0.25)
    np.testing.assert_array_equal(one.point_data["u"], u_exact(pts, 0.25))
    latest = meshops.read(tmp_path / "u.h5")                  # a function file finds its mesh next to it
    assert latest.time == 0.5 and "p" not in latest.point_data
    np.testing.assert_array_equal(latest.point_data["u"], u_exact(pts, 0.5))


def test_dolfin_probe_and_info(tmp_path, capsys):
    write_case(tmp_path, np.random.default_rng(1))
    info = meshops.io.probe(tmp_path / "mesh.h5")
    assert info["format"] == "dolfin" and info["times"] == TIMES
    assert info["point_fields"]["u"]["shape"] == [3] and info["point_fields"]["p"]["shape"] == []
    from meshops.cli import main

    assert main(["info", str(tmp_path / "mesh.h5")]) == 0
    out = capsys.readouterr().out
    assert "dolfin" in out and "u" in out and "p" in out and "0.25" in out


def test_dolfin_errors_name_the_problem(tmp_path):
    rng = np.random.default_rng(2)
    write_case(tmp_path, rng)
    with h5py.File(tmp_path / "u.h5", "a") as f:
        f["u"].attrs["signature"] = "VectorElement(FiniteElement('Lagrange', tetrahedron, 2), dim=3)"
    with pytest.raises(MeshError, match=r"u\.h5:/u: element .*Lagrange degree 2.* not supported"):
        meshops.read(tmp_path / "u.h5")
    with h5py.File(tmp_path / "u.h5", "a") as f:
        f["u"].attrs["signature"] = "VectorElement(FiniteElement('Lagrange', tetrahedron, 1), dim=3)"
        cd = f["u/cell_dofs"][()]
        cd[0], cd[3 * 4] = cd[3 * 4], cd[0]          # one vertex gets two different dofs
        f["u/cell_dofs"][...] = cd
    with pytest.raises(MeshError, match="different dofs"):
        meshops.read(tmp_path / "u.h5")
    lone = tmp_path / "alone"
    lone.mkdir()
    (tmp_path / "p.h5").rename(lone / "p.h5")
    with pytest.raises(MeshError, match="without a mesh"):
        meshops.read(lone / "p.h5")
    with pytest.raises(MeshError, match="time step 9"):
        meshops.read(tmp_path / "mesh.h5", time=9.0)


def _xdmf_checkpoint(folder, rng, times=(0.0, 0.5)):
    """An XDMFFile.write_checkpoint-style file: FiniteElementFunction attributes pointing at u.h5."""
    pts = rng.uniform(size=(30, 2))
    tri = Delaunay(pts).simplices.astype(np.int64)
    n, m = len(pts), len(tri)
    grids = []
    with h5py.File(folder / "u.h5", "w") as f:
        f["Mesh/0/mesh/geometry"] = pts
        f["Mesh/0/mesh/topology"] = tri
        for j, t in enumerate(times):
            block = rng.permutation(n)
            perm = rng.permutation(m)
            rows = tri[perm]
            cd = np.stack([block[rows] * 2 + i for i in range(2)], axis=1).reshape(m, 6)
            vals = np.c_[pts[:, 0] + t, pts[:, 1] * pts[:, 0] - t]
            vec = np.empty(2 * n)
            for i in range(2):
                vec[block * 2 + i] = vals[:, i]
            g = f.create_group(f"VisualisationVector/{j}")
            g["cell_dofs"], g["vector"] = cd.ravel(), vec
            g["x_cell_dofs"], g["cells"] = np.arange(m + 1) * 6, perm
            items = "".join(f'<DataItem Dimensions="{g[k].size} 1" Format="HDF">u.h5:/VisualisationVector/{j}/{k}'
                            f"</DataItem>" for k in ("cell_dofs", "vector", "x_cell_dofs", "cells"))
            grids.append(f'''<Grid Name="mesh" GridType="Uniform">
 <Topology NumberOfElements="{m}" TopologyType="Triangle" NodesPerElement="3">
  <DataItem Dimensions="{m} 3" NumberType="UInt" Format="HDF">u.h5:/Mesh/0/mesh/topology</DataItem></Topology>
 <Geometry GeometryType="XY"><DataItem Dimensions="{n} 2" Format="HDF">u.h5:/Mesh/0/mesh/geometry</DataItem></Geometry>
 <Time Value="{t}" />
 <Attribute ItemType="FiniteElementFunction" ElementFamily="CG" ElementDegree="1" ElementCell="triangle"
   Name="u" Center="Other" AttributeType="Vector">{items}</Attribute></Grid>''')
    (folder / "u.xdmf").write_text('<?xml version="1.0"?>\n<Xdmf Version="3.0"><Domain>'
                                   '<Grid Name="TimeSeries_u" GridType="Collection" CollectionType="Temporal">'
                                   + "".join(grids) + "</Grid></Domain></Xdmf>\n")
    return pts, tri


def test_dolfin_xdmf_checkpoint_reads_exactly(tmp_path):
    pts, tri = _xdmf_checkpoint(tmp_path, np.random.default_rng(5))
    meshes = meshops.read(tmp_path / "u.xdmf", time="all")
    assert [m.time for m in meshes] == [0.0, 0.5]
    for m in meshes:
        t = m.time
        np.testing.assert_array_equal(m.cells[0].data, tri)
        np.testing.assert_array_equal(m.point_data["u"], np.c_[pts[:, 0] + t, pts[:, 1] * pts[:, 0] - t])
    info = meshops.io.probe(tmp_path / "u.xdmf")
    assert info["format"] == "dolfin-xdmf" and info["times"] == [0.0, 0.5]
    assert info["point_fields"]["u"]["shape"] == [2]
