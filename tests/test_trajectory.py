"""The trajectory contract: 2D recognition, one-cell-thick collapse, node types, series folders."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest

from meshops.data import DatasetError
from meshops.data.trajectory import (
    Trajectory,
    TrajectoryFolder,
    flatten_extruded,
    node_type_onehot,
    planar_axes,
    split_step_fields,
    trajectory_from_meshes,
)
from meshops.mesh import CellBlock, Mesh


def _square(n: int = 4) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.meshgrid(np.linspace(0, 1, n), np.linspace(0, 1, n), indexing="ij")
    pts = np.stack([x.ravel(), y.ravel(), np.zeros(n * n)], 1)
    idx = np.arange(n * n).reshape(n, n)
    q = np.stack([idx[:-1, :-1], idx[1:, :-1], idx[1:, 1:], idx[:-1, 1:]], -1).reshape(-1, 4)
    return pts, q


def _extruded(n: int = 4, z: float = 0.1) -> Mesh:
    pts, q = _square(n)
    top = pts.copy()
    top[:, 2] = z
    hexes = np.concatenate([q, q + len(pts)], axis=1)
    left = np.nonzero(pts[:, 0] == 0)[0]
    bnd = {"inlet": [CellBlock("vertex", np.concatenate([left, left + len(pts)])[:, None])]}
    return Mesh(np.concatenate([pts, top]), [CellBlock("hexahedron", hexes)], boundaries=bnd)


def test_planar_axes():
    pts, _ = _square()
    assert planar_axes(pts) == (0, 1)
    p2 = pts[:, [2, 0, 1]]
    assert planar_axes(p2) == (1, 2)
    pts[0, 2] = 0.5
    assert planar_axes(pts) is None


def test_flatten_extruded_keeps_first_layer_and_regions():
    m = _extruded()
    m2, keep, ax = flatten_extruded(m)
    assert ax == 2 and m2.dim == 2 and len(keep) == 16
    assert m2.cells[0].type == "quad" and len(m2.cells[0]) == 9
    assert np.all(m.points[keep, 2] == 0)
    ids = m2.boundaries["inlet"][0].data.ravel()
    assert np.allclose(m2.points[ids, 0], 0) and len(ids) == 4


def test_one_cell_thick_series_gives_2d_state_without_z_channel():
    m = _extruded()
    snaps = []
    for t in range(3):
        U = np.zeros((m.n_points, 3))
        U[:, 0] = 1 + t
        U[:, 2] = 1e-12  # numerical noise only: no warning
        snaps.append(m.with_fields(point_data={"U": U, "p": np.full(m.n_points, float(t))}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tr = trajectory_from_meshes("c", snaps, ["U", "p"], [0.0, 0.1, 0.2])
    assert tr.dim == 2 and tr.mesh.n_points == 16
    assert tr.states(["U", "p"]).shape == (3, 16, 3)
    assert tr.channel_names(["U", "p"]) == ["U_x", "U_y", "p"]


def test_dropped_out_of_plane_component_warns():
    m = _extruded()
    U = np.zeros((m.n_points, 3))
    U[:, 2] = 0.5
    snaps = [m.with_fields(point_data={"U": U}) for _ in range(2)]
    with pytest.warns(UserWarning, match="out-of-plane component 'z' up to 0.5"):
        trajectory_from_meshes("c", snaps, ["U"], [0, 1])


def test_mesh_without_regions_gets_them_from_its_topology_with_a_warning():
    pts, q = _square(6)  # 5 x 5 quads; the middle one removed: a hole
    q = np.delete(q, 12, axis=0)
    m = Mesh(pts, [CellBlock("quad", q)], point_data={"u": np.ones(36)})
    with pytest.warns(UserWarning, match="no boundary regions; marked from the mesh topology: 'boundary' 20 points, "
                                         "'obstacle' 4 points"):
        t = trajectory_from_meshes("c", [m, m], ["u"], [0, 1])
    hole = np.unique(t.mesh.boundaries["obstacle"][0].data)
    assert np.allclose(np.sort(pts[hole, 0]), [0.4, 0.4, 0.6, 0.6]) and np.allclose(np.sort(pts[hole, 1]), [0.4, 0.4, 0.6, 0.6])
    oh, names = node_type_onehot(t.mesh)
    assert names == ["interior", "boundary", "obstacle"] and oh.sum(0).tolist() == [12, 20, 4]
    with pytest.raises(DatasetError, match=r"regions \['boundary', 'obstacle'\] were not seen in training"):
        node_type_onehot(t.mesh, ["interior", "inlet"])  # a model trained on named regions refuses such a case
    cloud = Mesh(pts, [], point_data={"u": np.ones(36)})  # no cells: no topology to mark
    with pytest.warns(UserWarning, match="every node gets the type 'interior'"):
        trajectory_from_meshes("c", [cloud, cloud], ["u"], [0, 1])


def test_node_type_onehot_order_and_unknown_region():
    m = _extruded()
    oh, names = node_type_onehot(m)
    assert names == ["interior", "inlet"] and oh.sum(1).tolist() == [1.0] * m.n_points
    assert oh[:, 1].sum() == 8
    oh2, _ = node_type_onehot(m, ["interior", "wall", "inlet"])
    assert oh2[:, 1].sum() == 0 and oh2[:, 2].sum() == 8
    with pytest.raises(DatasetError, match=r"regions \['inlet'\] were not seen in training"):
        node_type_onehot(m, ["interior", "wall"])


def test_trajectory_checks_shapes_and_times():
    pts, q = _square()
    m = Mesh(pts, [CellBlock("quad", q)])
    with pytest.raises(DatasetError, match="field 'u' has shape"):
        Trajectory("c", m, np.arange(3.0), {"u": np.zeros((3, 15))})
    with pytest.raises(DatasetError, match="not increasing"):
        Trajectory("c", m, np.array([0.0, 2.0, 1.0]), {"u": np.zeros((3, 16))})


def test_trajectory_folder_reads_pvd_series_and_snapshot_folder(tmp_path):
    from meshops.io import write, write_series

    pts, q = _square()
    base = Mesh(pts, [CellBlock("quad", q)])
    snaps = [base.with_fields(point_data={"u": np.full(16, float(k), dtype=np.float32)}) for k in range(4)]
    (tmp_path / "cases").mkdir()
    write_series(snaps, tmp_path / "cases" / "a.pvd", times=[0.0, 0.5, 1.0, 1.5])
    (tmp_path / "snaps" / "b").mkdir(parents=True)
    for k, s in enumerate(snaps):
        write(s, tmp_path / "snaps" / "b" / f"s_{k}.vtu")
    a = TrajectoryFolder(str(tmp_path / "cases"), ["u"], pattern="*.pvd")[0]
    assert a.dim == 2 and np.allclose(a.times, [0, 0.5, 1.0, 1.5])
    assert np.allclose(a.states(["u"])[:, 0, 0], [0, 1, 2, 3])
    b = TrajectoryFolder(str(tmp_path / "snaps"), ["u"], dt=0.25)[0]
    assert np.allclose(b.times, [0, 0.25, 0.5, 0.75]) and np.allclose(b.states(["u"])[3], 3)


def test_one_file_with_a_field_per_time_step_is_a_trajectory(shared_data):
    """SimVascular writes every step of a run into one VTU as ``pressure_00020``, ``velocity_00020``, ..."""
    import meshops

    path = shared_data / "simvascular" / "cylinder_all_results.vtu"
    with pytest.warns(UserWarning, match="no boundary regions"):
        t = TrajectoryFolder(str(path.parent), ["pressure", "velocity"], pattern=path.name)[0]
    m = meshops.read(path)
    assert t.name == "cylinder_all_results" and t.dim == 3
    assert np.array_equal(t.times, np.arange(0.0, 201.0, 20.0))  # the step numbers: the file has no physical times
    assert t.fields["velocity"].shape == (11, m.n_points, 3)
    assert np.allclose(t.fields["pressure"][5], m.point_data["pressure_00100"], rtol=1e-6)  # float32 states
    assert np.allclose(t.fields["velocity"][10], m.point_data["velocity_00200"], rtol=1e-6)
    assert t.channel_names(["pressure", "velocity"]) == ["pressure", "velocity_x", "velocity_y", "velocity_z"]


def test_step_fields_keep_the_steps_every_field_holds(caplog):
    pts, q = _square()
    u = {f"u_{k:03d}": np.full(16, float(k)) for k in (0, 10, 20, 30)}
    p = {f"p_{k:03d}": np.full(16, -float(k)) for k in (10, 20, 30)}
    m = Mesh(pts, [CellBlock("quad", q)], point_data={**u, **p, "id": np.arange(16.0)}, source="run.vtu")
    with caplog.at_level(logging.WARNING):
        snaps = split_step_fields(m, ["u", "p"])
    assert [s.time for s in snaps] == [10.0, 20.0, 30.0]
    assert "run.vtu: time steps [0] are not held by every field of ['u', 'p']; dropped" in caplog.text
    assert sorted(snaps[2].point_data) == ["p", "u"] and snaps[2].point_data["p"][0] == -30
    assert split_step_fields(m, ["u", "w"]) is None  # 'w' has no steps: the usual missing-field error follows
    comps = Mesh(pts, [CellBlock("quad", q)], point_data={f"U_{k}": np.zeros(16) for k in range(3)})
    assert split_step_fields(comps, ["U"]) is None  # a vector's components, not three steps
    assert split_step_fields(m.with_fields(point_data={"u": np.zeros(16), "p": np.zeros(16)}), ["u", "p"]) is None


def test_a_cell_field_asked_for_as_a_state_is_named_as_one():
    pts, q = _square()
    m = Mesh(pts, [CellBlock("quad", q)], cell_data={"U": np.zeros(9)}, source="snap.vtu")
    with pytest.raises(DatasetError, match=r"snap.vtu: point field 'U' missing; it has \[\] \('U' is a cell field here"):
        trajectory_from_meshes("c", [m, m], ["U"], [0.0, 1.0])
