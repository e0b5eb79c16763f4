"""Real files from other projects' solvers (../shared/data): counts, fields, boundaries, times.

Counts are checked against SOURCES.md and against an independent reader (vtk through pyvista, or
the file's own text), so a reader that drops, merges or reorders anything fails here.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import numpy as np
import pytest

from meshops.io import list_times, probe, read


@pytest.fixture(scope="module")
def cavity(tmp_path_factory, shared_data) -> Path:
    root = tmp_path_factory.mktemp("foam")
    with zipfile.ZipFile(shared_data / "vtk-data" / "openfoam_cavity.zip") as z:
        z.extractall(root)
    return root / "OpenFOAM" / "cavity"


def _independent(path: Path):
    import pyvista as pv

    return pv.read(str(path))


def test_cylinder_vtu_counts_and_fields(shared_data):
    path = shared_data / "simvascular" / "cylinder_all_results.vtu"
    m = read(path)
    assert (m.n_points, m.cell_types) == (2349, {"tetra": 11079})
    assert m.point_data["velocity_00100"].shape == (2349, 3)
    assert m.point_data["pressure_00100"].shape == (2349,)
    assert "vWSS_00100" in m.point_data
    ref = _independent(path)
    assert np.array_equal(m.points, np.asarray(ref.points, dtype=np.float64))  # same order, same values
    assert np.array_equal(m.cells[0].data.ravel(), np.asarray(ref.cell_connectivity))
    assert np.array_equal(m.point_data["pressure_00100"], ref.point_data["pressure_00100"])
    info = probe(path)
    assert info["loaded"] is False and info["n_points"] == 2349 and info["n_cells"] == 11079
    assert info["point_fields"]["velocity_00100"] == {"shape": [3], "dtype": "float64"}


def test_aorta_volume_and_wall(shared_data):
    vol = read(shared_data / "simvascular" / "demo_aorta_volume.vtu")
    ref = _independent(shared_data / "simvascular" / "demo_aorta_volume.vtu")
    assert (vol.n_points, vol.n_cells) == (ref.n_points, ref.n_cells) == (1093, 3471)
    assert vol.boundaries == {}  # ModelRegionID labels volume regions, not boundaries
    wall = read(shared_data / "simvascular" / "demo_aorta_wall.vtp")
    ref = _independent(shared_data / "simvascular" / "demo_aorta_wall.vtp")
    assert (wall.n_points, wall.cell_types) == (ref.n_points, {"triangle": ref.n_cells})
    ids, counts = np.unique(np.asarray(ref.cell_data["ModelFaceID"]), return_counts=True)
    assert {k: sum(len(b) for b in v) for k, v in wall.boundaries.items()} == {
        f"ModelFaceID_{i}": int(c) for i, c in zip(ids, counts, strict=True)}
    assert wall.cell_data["Normals"].dtype == np.float32
    # every boundary face is a face of the surface, in the same order
    tri = wall.cells[0].data
    sel = wall.cell_data["ModelFaceID"] == 3
    assert np.array_equal(wall.boundaries["ModelFaceID_3"][0].data, tri[sel])


@pytest.mark.parametrize("name,n_points", [("demo_aorta_centerlines.vtp", 2354), ("demo_aorta_rom_centerlines.vtp", 1274)])
def test_centerlines(shared_data, name, n_points):
    path = shared_data / "simvascular" / name
    m = read(path)
    ref = _independent(path)
    assert m.n_points == ref.n_points == n_points
    r = m.point_data["MaximumInscribedSphereRadius"]
    assert r.shape == (n_points,) and r.min() > 0
    # poly-lines become 2-point segments: a polyline of k points gives k-1 segments
    lines = np.asarray(ref.lines)
    k, i, n_seg = [], 0, 0
    while i < len(lines):
        n_seg += lines[i] - 1
        k.append(lines[i])
        i += lines[i] + 1
    assert m.cell_types == {"line": n_seg}
    assert m.topological_dim == 1


def test_su2_naca0012(shared_data):
    m = read(shared_data / "su2" / "mesh_NACA0012_inv.su2")
    assert (m.n_points, m.cell_types, m.dim) == (5233, {"triangle": 10216}, 2)
    assert {k: sum(len(b) for b in v) for k, v in m.boundaries.items()} == {"airfoil": 200, "farfield": 50}
    # the airfoil marker is a closed loop of edges around the wing
    edges = m.boundaries["airfoil"][0].data
    assert np.array_equal(np.sort(edges[:, 0]), np.sort(edges[:, 1]))


def test_su2_solution_csv_matches_mesh(shared_data):
    sol = read(shared_data / "su2" / "naca0012_solution_flow.csv")
    mesh = read(shared_data / "su2" / "mesh_NACA0012_inv.su2")
    assert sol.n_points == mesh.n_points and sol.n_cells == 0
    assert np.array_equal(sol.point_data["PointID"], np.arange(5233))
    assert np.allclose(sol.points, mesh.points, atol=1e-9)  # same point order as the mesh file
    with_fields = mesh.with_fields(pressure=sol.point_data["Pressure"])
    assert with_fields.point_data["pressure"].min() > 0


def test_openfoam_cavity(cavity):
    assert list_times(cavity) == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    info = probe(cavity)
    assert info["loaded"] is False and info["n_cells"] == 400
    assert info["cell_fields"] == {"U": {"shape": [3], "dtype": "float64"}, "p": {"shape": [], "dtype": "float64"}}
    steps = read(cavity, time="all")
    assert [s.time for s in steps] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    for s in steps[1:]:
        assert s.cell_types == {"hexahedron": 400}
        assert s.cell_data["U"].shape == (400, 3) and s.cell_data["p"].shape == (400,)
    assert not np.array_equal(steps[1].cell_data["p"], steps[-1].cell_data["p"])
    m = read(cavity / "case.foam", time=0.5)
    # points in polyMesh order, in full precision, and p exactly as the ASCII file holds it
    text = (cavity / "constant" / "polyMesh" / "points").read_text()
    pts = np.array(re.findall(r"\(([-\d.e+]+) ([-\d.e+]+) ([-\d.e+]+)\)", text), dtype=float)
    assert np.array_equal(m.points, pts)
    ptext = (cavity / "0.5" / "p").read_text()
    body = ptext.split("List<scalar>")[1]
    n = int(body.split()[0])
    p = np.array(body.split("(")[1].split(")")[0].split(), dtype=float)
    assert n == 400 and np.array_equal(m.cell_data["p"], p)
    # patches index the internal mesh points
    sizes = {k: sum(len(b) for b in v) for k, v in m.boundaries.items()}
    assert sizes == {"movingWall": 20, "fixedWalls": 60, "frontAndBack": 800}
    lid = m.boundaries["movingWall"][0].data
    assert np.allclose(m.points[lid][:, :, 1], 0.1)  # the lid is the y = 0.1 wall


def test_ensight_cylinder_crossflow(shared_data):
    path = shared_data / "vtk-data" / "cylinder_crossflow" / "cylinder_Re35.case"
    info = probe(path)
    assert info["loaded"] is False
    assert set(info["point_fields"]) == {"pressure", "velocity", "vorticity_mag"}
    m = read(path)
    ref = _independent(path)
    fluid = ref["fluid"]
    assert m.n_points == fluid.n_points == 14831 and m.n_cells == fluid.n_cells
    assert m.dim == 2
    assert m.point_data["velocity"].shape == (14831, 3)
    assert np.array_equal(m.point_data["pressure"], np.asarray(fluid.point_data["pressure"]))
    assert sorted(m.boundaries) == ["inlet", "outlet", "outlet_bottom", "outlet_top", "wall_cylinder"]
    for name in m.boundaries:
        part = ref[name]
        (blk,) = m.boundaries[name]
        assert blk.type == "line" and len(blk) == part.n_cells
        # boundary edges lie on the domain's points at the part's own coordinates
        assert np.array_equal(np.sort(m.points[np.unique(blk.data)], axis=0),
                              np.sort(np.asarray(part.points, dtype=np.float64), axis=0))
    wall = m.points[np.unique(m.boundaries["wall_cylinder"][0].data)]
    r = np.linalg.norm(wall[:, :2] - wall[:, :2].mean(0), axis=1)
    assert r.std() < 1e-3 * r.mean()  # the cylinder wall is a circle


def test_gmsh_versions_agree(tmp_path):
    """Gmsh itself writes the same mesh as v2.2/v4.1, ASCII/binary: all read identically."""
    gmsh = pytest.importorskip("gmsh")
    gmsh.initialize(["", "-v", "0"])
    try:
        gmsh.model.add("box")
        gmsh.model.occ.addBox(0, 0, 0, 1, 1, 1)
        gmsh.model.occ.synchronize()
        faces = [t for _, t in gmsh.model.getEntities(2)]
        gmsh.model.addPhysicalGroup(3, [1], name="fluid")
        inlet = gmsh.model.addPhysicalGroup(2, faces[:1], name="inlet")
        gmsh.model.addPhysicalGroup(2, faces[1:], name="walls")
        gmsh.option.setNumber("Mesh.MeshSizeMax", 0.4)
        gmsh.model.mesh.generate(3)
        node_tags, coords, _ = gmsh.model.mesh.getNodes()
        inlet_nodes, _ = gmsh.model.mesh.getNodesForPhysicalGroup(2, inlet)
        _, tet_tags, _ = gmsh.model.mesh.getElements(3)
        paths = []
        for version in (2.2, 4.1):
            for binary in (0, 1):
                gmsh.option.setNumber("Mesh.MshFileVersion", version)
                gmsh.option.setNumber("Mesh.Binary", binary)
                p = tmp_path / f"box_{version}_{binary}.msh"
                gmsh.write(str(p))
                paths.append(p)
    finally:
        gmsh.finalize()
    meshes = [read(p) for p in paths]
    first = meshes[0]
    assert first.cell_types == {"tetra": len(tet_tags[0])}
    assert sorted(first.boundaries) == ["inlet", "walls"]
    order = np.argsort(node_tags)
    # Gmsh's ASCII writer prints 16 digits: exact up to the last bit only for binary files
    assert np.allclose(first.points, coords.reshape(-1, 3)[order], rtol=0, atol=1e-15)
    assert np.array_equal(meshes[1].points, coords.reshape(-1, 3)[order])
    got = np.unique(first.boundaries["inlet"][0].data)
    assert np.array_equal(np.sort(node_tags[order][got]), np.sort(inlet_nodes))
    assert np.all(first.cell_data["gmsh:physical"] == 1)
    for other in meshes[1:]:
        assert np.allclose(other.points, first.points, rtol=0, atol=1e-15)
        same = other.copy()
        same.points = first.points
        assert same.diff(first) == [], other.source
