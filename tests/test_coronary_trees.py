"""The coronary_trees dataset: the shipped packed trees, the tree draw, the Murray split (fast), and
one generated case end to end (slow, needs OpenFOAM and gmsh)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from meshops.cfd.foam import openfoam_available
from meshops.cfd.tree import Tree, TreeError, clearance, flow_split, tree_from_centerline, validate_tree
from meshops.data import load_dataset, recipe_module

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "datasets" / "coronary_trees"
SHIPPED = HERE / "data" / "coronary_trees.npz"
needs_data = pytest.mark.skipif(not SHIPPED.is_file(), reason=f"{SHIPPED} not shipped")


@pytest.fixture(scope="module")
def ds():
    return load_dataset("coronary_trees", path=str(SHIPPED))


@needs_data
def test_shipped_cards_mass_balance_and_convergence(ds):
    assert len(ds) >= 1
    for i in range(len(ds)):
        c = ds.card(i)
        assert c["solver"]["converged"], c["name"]
        mb = c["mass_balance"]
        assert mb["imbalance_rel"] < 0.01, (c["name"], mb)
        assert mb["max_outlet_split_error_rel"] < 0.01, (c["name"], mb)
        flows = [o["flow_mL_s"] for o in c["outlets"].values()]
        assert abs(sum(flows) - c["Q_mL_s"]) < 0.01 * c["Q_mL_s"]
        assert sum(o["reference"] for o in c["outlets"].values()) == 1


@needs_data
def test_shipped_topology_and_fields(ds):
    for i in range(len(ds)):
        case = ds[i]
        cl = ds.centerline(i)
        parent, attach, branches = cl["parent"], cl["attach"], cl["branches"]
        nb = len(parent)
        assert parent[0] == -1 and 2 <= nb <= 8
        assert all(0 <= parent[b] < b for b in range(1, nb))
        ptr = np.concatenate([[0], np.cumsum(np.bincount(cl["branch"], minlength=nb))])
        for b in range(1, nb):
            assert 0 <= attach[b] < ptr[parent[b] + 1] - ptr[parent[b]]
            j = ptr[parent[b]] + attach[b]
            # the child starts on its parent's centerline (within the station spacing)
            assert np.linalg.norm(cl["points"][ptr[b]] - cl["points"][j]) < cl["radius"][j]
            assert branches[b][0] == j
        assert case.mesh.field_data["centerline_outlet"].sum() == len(ds.card(i)["outlets"])
        pd = case.mesh.point_data
        for k in ("p", "wss", "wss_mag", "s", "radius"):
            assert np.isfinite(pd[k]).all(), (case.name, k)
        assert (pd["wss_mag"] >= 0).all()
        assert set(np.unique(pd["branch"]).astype(int)) == set(range(nb))
        # pressure falls from the inlet to the reference outlet (the drop is positive)
        inlet = pd["p"][(pd["branch"] == 0) & (pd["s"] == pd["s"][pd["branch"] == 0].min())].mean()
        assert inlet > 0, case.name


@needs_data
def test_splits_partition_the_cases():
    names = [set(load_dataset("coronary_trees", path=str(SHIPPED), split=s).case_names()) for s in ("train", "val", "test")]
    assert sum(len(n) for n in names) == len(load_dataset("coronary_trees", path=str(SHIPPED)))
    assert not (names[0] & names[1]) and not (names[0] & names[2]) and not (names[1] & names[2])


def test_tree_draws_murray_and_clearance():
    T = recipe_module(HERE, "tree")
    for seed in range(5):
        tree, params = T.sample_tree(seed)
        validate_tree(tree)
        assert 3 <= tree.n_branches <= T.MAX_BRANCHES
        assert clearance(tree)[0] > T.MIN_CLEARANCE
        assert len(params["stenoses"]) <= 3
        out, inflow = flow_split(tree, 1.3)
        assert abs(sum(out.values()) - 1.3) < 1e-9
        for b in range(1, tree.n_branches):  # Murray: r_parent^3 = r_cont^3 + r_child^3 on the healthy radii
            pb, a = tree.parent[b], tree.attach[b]
            rp = tree.ref_radius[pb][a]
            phi = params["branches"][b]["phi"]
            assert tree.ref_radius[b][0] == pytest.approx(rp * phi ** (1 / 3), rel=1e-6)


def test_flow_split_follows_radius_cubed():
    s = np.linspace(0, 20, 41)[:, None]
    main = np.hstack([0 * s, 0 * s, s])
    kid = main[10] + np.hstack([s * 0.7, 0 * s, s * 0.7])[:21]
    tree = Tree([main, kid], [np.full(41, 1.5), np.full(21, 1.0)], [-1, 0], [-1, 10])
    out, _ = flow_split(tree, 2.0)
    assert out[1] / out[0] == pytest.approx(1.0 / 1.5**3)
    cl = tree.to_centerline()
    back = tree_from_centerline(cl)
    assert back.parent == [-1, 0] and back.attach == [-1, 10]
    np.testing.assert_allclose(back.points[1], kid)


def test_validate_tree_names_the_branch():
    s = np.linspace(0, 10, 11)[:, None]
    line = np.hstack([0 * s, 0 * s, s])
    with pytest.raises(TreeError, match=r"branch 1: radius\[3\] = -1"):
        r = np.ones(11)
        r[3] = -1
        validate_tree(Tree([line, line + [1, 0, 0]], [np.ones(11), r], [-1, 0], [-1, 2]))


@pytest.mark.slow
@pytest.mark.skipif(not openfoam_available() or shutil.which("gmshToFoam") is None, reason="OpenFOAM not installed")
def test_generate_one_case_end_to_end(tmp_path):
    gen = recipe_module(HERE, "generate")
    stats = gen.generate(tmp_path, n=1, seed=0, progress=False)
    assert stats["done"] == 1, (tmp_path / "failures.jsonl").read_text() if (tmp_path / "failures.jsonl").exists() else stats
    card = json.loads((tmp_path / "case_00000" / "case.json").read_text())
    assert card["solver"]["converged"] and card["mass_balance"]["imbalance_rel"] < 0.01
    pack = recipe_module(HERE, "pack")
    summary = pack.pack(tmp_path, tmp_path / "t.npz")
    assert summary["cases"] == 1 and summary["max_gap_over_r"] < 0.3
    case = load_dataset("coronary_trees", path=str(tmp_path / "t.npz"))[0]
    assert np.isfinite(case.mesh.point_data["p"]).all()


@pytest.mark.slow
@pytest.mark.skipif(not openfoam_available() or shutil.which("gmshToFoam") is None, reason="OpenFOAM not installed")
def test_tree_pipeline_matches_poiseuille():
    verify = recipe_module(HERE, "verify")
    r = verify.poiseuille(r=1.5, L=30.0, Q=1.0)
    assert abs(r["dpdx_rel_error"]) < 0.03 and abs(r["wss_rel_error"]) < 0.03, r
    assert r["mass_imbalance_rel"] < 1e-3


@pytest.mark.slow
@pytest.mark.skipif(not openfoam_available() or shutil.which("snappyHexMesh") is None, reason="OpenFOAM not installed")
def test_wall_prism_layers_cover_a_tube_and_keep_poiseuille():
    from meshops.cfd.tree_mesh import TreeMeshSettings

    verify = recipe_module(HERE, "verify")
    base = verify.poiseuille(r=1.5, L=30.0, Q=2.5, ms=TreeMeshSettings(layers=0))
    r = verify.poiseuille(r=1.5, L=30.0, Q=2.5, ms=TreeMeshSettings(layers=3))
    assert r["cells"] > base["cells"]  # the layers were added
    # Re 321: aligned wall cells halve the WSS error and its spread around the tube
    assert abs(r["wss_rel_error"]) < abs(base["wss_rel_error"]) and r["wss_spread_rel"] < base["wss_spread_rel"], (r, base)
    assert abs(r["dpdx_rel_error"]) < 0.04 and abs(r["wss_rel_error"]) < 0.04, r


def _mesh_stenosed_tree(case: Path, **settings) -> dict:
    """The refinement study's stenosed tree meshed at the coarse level with 3 wall layers into ``case``."""
    from meshops.cfd.foam import SolverSettings, write_system
    from meshops.cfd.tree_mesh import TreeMeshSettings, mesh_tree
    from meshops.cfd.tree_solve import DEFAULT_SOLVER, MU, RHO

    _, tree, _ = recipe_module(HERE, "verify").stenosed_tree()
    write_system(case, MU / RHO, SolverSettings(**DEFAULT_SOLVER))
    return mesh_tree(tree, case, TreeMeshSettings(wall_size=0.27, core_size=0.54, layers=3, **settings))


@pytest.mark.slow
@pytest.mark.skipif(not openfoam_available() or shutil.which("snappyHexMesh") is None, reason="OpenFOAM not installed")
def test_wall_layers_below_the_required_coverage_are_refused(tmp_path):
    # layers as thick as the small branches' radius: the medial-axis rule strips nearly all of them
    with pytest.raises(TreeError, match=r"wall layers: .*\(coverage \d+% < 90%\)"):
        _mesh_stenosed_tree(tmp_path, layer_thickness=1.0)


@pytest.mark.slow
@pytest.mark.skipif(not openfoam_available() or shutil.which("snappyHexMesh") is None, reason="OpenFOAM not installed")
def test_stenosed_tree_takes_the_wall_layers_without_bad_cells(tmp_path):
    info = _mesh_stenosed_tree(tmp_path)
    # 74 % when polyDualMesh kept the junction creases as feature edges (stop 36)
    assert info["layers"]["coverage"] > 0.95 and info["check"]["negative_volume_cells"] == 0, info


@pytest.mark.skipif(not openfoam_available() or shutil.which("blockMesh") is None, reason="OpenFOAM not installed")
def test_check_mesh_counts_inverted_cells_and_the_tree_mesher_refuses_them(tmp_path):
    from meshops.cfd.foam import SolverSettings, write_system
    from meshops.cfd.tree_mesh import _foam_tool, _refuse_negative, check_mesh
    from meshops.cfd.tree_solve import DEFAULT_SOLVER, MU, RHO

    write_system(tmp_path, MU / RHO, SolverSettings(**DEFAULT_SOLVER))
    (tmp_path / "system" / "blockMeshDict").write_text(
        "FoamFile { version 2.0; format ascii; class dictionary; object blockMeshDict; }\n"
        "convertToMeters 1;\nvertices ((0 0 0) (2 0 0) (2 1 0) (0 1 0) (0 0 1) (2 0 1) (2 1 1) (0 1 1));\n"
        "blocks (hex (0 1 2 3 4 5 6 7) (2 1 1) simpleGrading (1 1 1));\nedges ();\n"
        "boundary (walls { type wall; faces ((0 3 2 1) (4 5 6 7) (0 1 5 4) (1 2 6 5) (2 3 7 6) (3 0 4 7)); });\n")
    _foam_tool(tmp_path, ["blockMesh", "-case", str(tmp_path)], "blockMesh", 60)
    assert check_mesh(tmp_path)["negative_volume_cells"] == 0
    pts = tmp_path / "constant" / "polyMesh" / "points"
    pts.write_text(re.sub(r"\((\S+) (\S+) 1\)", r"(\1 \2 -1)", pts.read_text()))  # the lid through the floor
    check = check_mesh(tmp_path)
    assert check["negative_volume_cells"] == 2 and not (tmp_path / "constant" / "polyMesh" / "sets").exists(), check
    with pytest.raises(TreeError, match=r"case_7: the dual mesh has 2 cells of negative volume"):
        _refuse_negative(check, "case_7", "the dual mesh")
