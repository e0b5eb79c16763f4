"""coronary_mixed: single vessels then trees, unique names, the centerline tree on every case."""

from __future__ import annotations

import pytest

from meshops.data import load_dataset


def test_mixed_has_both_kinds_with_unique_names_and_centerlines():
    ds = load_dataset("coronary_mixed")
    names = ds.case_names()
    assert len(set(names)) == len(names) == len(ds)
    trees = [i for i, n in enumerate(names) if n.startswith("tree_")]
    if not trees:
        pytest.skip("datasets/coronary_trees has no packed cases")
    assert names[0] == "case_00000" and trees[0] == len(names) - len(trees)
    for i in (0, trees[0]):
        case = ds[i]
        assert case.name == names[i]
        fd = case.mesh.field_data
        assert len(fd["centerline_points"]) == len(fd["centerline_radius"])
    assert len(ds[trees[0]].mesh.field_data["centerline_branches"]) > 1
