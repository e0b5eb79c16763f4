"""The bad-input catalogue (issue 19): bad and hostile inputs through every CLI verb and the API. Each case
checks the exit code, one line naming what is wrong (no traceback), nothing written or changed. A tiny model is trained once per session; the CLI runs in-process."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import meshops
from meshops.cli import main
from meshops.train.checkpoint import load_checkpoint, save_checkpoint


def grid_mesh(n: int = 6, seed: int = 0, scale: float = 1.0, q: float = 2.0) -> meshops.Mesh:
    """A triangulated unit square (n x n points) with an input 'a', targets 'p' (>= 0) and 'U'
    (3 channels, U_z identically ~0 as in a 2D case)."""
    rng = np.random.default_rng(seed)
    x, y = np.meshgrid(np.linspace(0, 1, n), np.linspace(0, 1, n), indexing="ij")
    pts = np.stack([x.ravel(), y.ravel(), np.zeros(n * n)], 1) * scale
    pts[:, :2] += rng.normal(0, 0.01, (n * n, 2)) * scale
    tri = []
    for i in range(n - 1):
        for j in range(n - 1):
            a, b, c, d = i * n + j, (i + 1) * n + j, (i + 1) * n + j + 1, i * n + j + 1
            tri += [[a, b, c], [a, c, d]]
    a = np.sin(3 * pts[:, 0] / scale) + 0.1 * rng.normal(size=n * n)
    p = (q * (1.0 + a) ** 2).astype(np.float32)
    U = np.stack([a, -a, 1e-19 * rng.normal(size=n * n)], 1).astype(np.float32)
    return meshops.Mesh(pts, [("triangle", np.array(tri))],
                        point_data={"a": a.astype(np.float32), "p": p, "U": U})


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> dict[str, Path]:
    """A 6-case folder dataset (global Q in globals.json) and a 1-epoch mgn trained on it."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("tiny")
    data = root / "data"
    data.mkdir()
    table = {}
    for i in range(6):
        q = 1.0 + 0.4 * i
        meshops.write(grid_mesh(6, seed=i, q=q), data / f"c{i}.vtu")
        table[f"c{i}"] = {"Q": q}
    (data / "globals.json").write_text(json.dumps(table))
    cfg = root / "train.yaml"
    cfg.write_text("dataset: folder\ndataset_options:\n  path: data\n  inputs: [a]\n  targets: [p, U]\n"
                   "  globals: [Q]\nmodel: mgn\nmodel_options: {hidden: 8, n_blocks: 1}\nepochs: 1\n"
                   f"out: {root / 'run'}\ncache: {root / 'cache'}\nprogress: false\ndevice: cpu\n")
    assert main(["train", str(cfg)]) == 0
    return {"root": root, "data": data, "yaml": cfg, "run": root / "run", "ckpt": root / "run" / "best.pt",
            "mesh": data / "c0.vtu"}


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` and the hash of its bytes."""
    out = {}
    for p in sorted(Path(folder).rglob("*")):
        if p.is_file():
            out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def run_cli(capsys, argv: list[str], code: int, match: str, watch: list[Path] | tuple = ()) -> str:
    """Run the CLI; assert the exit code, exactly one ``meshops <verb>: ...`` line on stderr matching
    ``match`` (no traceback), and that nothing under ``watch`` was added, removed or changed."""
    before = [snapshot(w) for w in watch]
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert rc == code, f"exit {rc}, expected {code}; stderr: {err}"
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.startswith("meshops")]
    assert len(lines) == 1, err
    verb = next((a for a in argv if not str(a).startswith("-")), "")
    assert lines[0].startswith(f"meshops {verb}: "), lines[0]
    assert re.search(match, lines[0]), f"{match!r} not in {lines[0]!r}"
    for w, b in zip(watch, before, strict=True):
        assert snapshot(w) == b, f"files under {w} changed"
    return lines[0]
VERBS = ["info", "graph", "predict", "evaluate", "train", "show", "datasets", "demo", "bench"]

VERBS = ["info", "graph", "predict", "evaluate", "train", "show", "datasets", "demo", "bench"]


@pytest.mark.parametrize("verb", VERBS)
def test_unknown_option_is_usage_error(verb, capsys, tmp_path):
    run_cli(capsys, [verb, "--no-such-option", "x"], 2, r"unrecognized arguments|required|invalid choice",
            [tmp_path])


def test_a_command_that_exits_with_a_message_prints_it(capsys, tmp_path):
    """A ``SystemExit("...")`` from a command (here a benchmark refusing an option) is one line on stderr, exit 1."""
    out = tmp_path / "d.json"
    assert main(["bench", "darcy", "--models", "fno", "--inputs", "permeability", "--skip-physics", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "meshops bench: --inputs: FNO reads permeability and wall distance; give --inputs without fno in --models"
    assert not out.exists()


@pytest.mark.parametrize("verb", ["info", "graph", "show"])
def test_missing_file(verb, capsys, tmp_path):
    extra = ["--field", "p", "--out", tmp_path / "x.png"] if verb == "show" else ["--out", tmp_path / "g.pt"] \
        if verb == "graph" else []
    run_cli(capsys, [verb, tmp_path / "nope.vtu", *extra], 1, r"nope\.vtu: no such file", [tmp_path])


@pytest.fixture
def bad_files(tmp_path):
    (tmp_path / "empty.vtu").write_bytes(b"")
    (tmp_path / "garbage.vtu").write_bytes(b"\x00\x01not xml at all" * 50)
    (tmp_path / "text.stl").write_text("solid x\n facet nonsense\nendsolid\n")
    (tmp_path / "mesh.xyz123").write_text("1 2 3\n")
    (tmp_path / "half.vtk").write_text("# vtk DataFile Version 4.2\nx\nASCII\nDATASET UNSTRUCTURED_GRID\n"
                                       "POINTS 10 double\n0 0 0\n")
    (tmp_path / "folder.vtu").mkdir()
    return tmp_path


@pytest.mark.parametrize("name", ["empty.vtu", "garbage.vtu", "text.stl", "mesh.xyz123", "half.vtk", "folder.vtu"])
@pytest.mark.parametrize("verb", ["info", "graph"])
def test_unreadable_mesh(verb, name, bad_files, capsys):
    extra = ["--out", bad_files / "out" / "g.pt"] if verb == "graph" else []
    run_cli(capsys, [verb, bad_files / name, *extra], 1, name.replace(".", r"\."), [bad_files])


@pytest.mark.parametrize("args,match", [
    (["--k", "abc"], r"--k: expected an integer, got 'abc'"),
    (["--k", "0"], r"--k: expected a value > 0"),
    (["--k", "3,x"], r"--k: expected an integer, got 'x'"),
    (["--ratio", "abc"], r"--ratio: expected a number, got 'abc'"),
    (["--ratio", "-1"], r"--ratio: expected a value > 0"),
    (["--ratio", "nan"], r"--ratio: expected a finite number"),
    (["--radius", "big"], r"--radius: expected a number, got 'big'"),
    (["--levels", "0"], r"--levels: expected an integer >= 1"),
    (["--levels", "two"], r"argument --levels: invalid int value"),
    (["--time", "soon"], r"--time: expected a number, got 'soon'"),
    (["--edges", "magic"], r"argument --edges: invalid choice"),
])
def test_graph_bad_options(args, match, tiny, capsys, tmp_path):
    run_cli(capsys, ["graph", tiny["mesh"], "--out", tmp_path / "g.pt", *args], 2, match, [tmp_path, tiny["data"]])


def test_graph_out_is_a_directory(tiny, capsys, tmp_path):
    (tmp_path / "g.pt").mkdir()
    run_cli(capsys, ["graph", tiny["mesh"], "--out", tmp_path / "g.pt"], 1, r"g\.pt", [tmp_path])


def test_graph_permission_denied(tiny, capsys, tmp_path, monkeypatch):
    def deny(src, dst):
        raise PermissionError(13, "Permission denied", str(dst))

    monkeypatch.setattr(os, "replace", deny)
    run_cli(capsys, ["graph", tiny["mesh"], "--out", tmp_path / "g.pt"], 1, r"g\.pt: permission denied", [tmp_path])


# ----------------------------------------------------------------------------------------- predict
@pytest.mark.parametrize("glob,match", [
    (["Q=abc"], r"--global: Q: expected a number, got 'abc'"),
    (["Q"], r"--global: expected NAME=VALUE, got 'Q'"),
    (["=3"], r"--global: expected NAME=VALUE"),
    (["Q=inf"], r"Q: expected a finite number"),
    (["Q=nan"], r"Q: expected a finite number"),
    (["Q=1", "R=x", "S"], r"R: expected a number.*expected NAME=VALUE, got 'S'"),
])
def test_predict_bad_global(glob, match, tiny, capsys, tmp_path):
    flags = [x for g in glob for x in ("--global", g)]
    run_cli(capsys, ["predict", tiny["ckpt"], tiny["mesh"], "--out", tmp_path / "o", *flags], 2, match,
            [tmp_path, tiny["data"]])
    assert not (tmp_path / "o").exists()


def test_predict_reports_all_missing_globals(tiny, capsys, tmp_path):
    m = tmp_path / "in" / "lone.vtu"
    m.parent.mkdir()
    meshops.write(grid_mesh(5), m)
    run_cli(capsys, ["predict", tiny["ckpt"], m, "--out", tmp_path / "o"], 1,
            r"lone\.vtu: the model needs global parameter 'Q'.*--global Q=VALUE", [tmp_path])
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_predict_uses_globals_json_of_the_mesh_folder(tiny, capsys, tmp_path):
    assert main(["predict", str(tiny["ckpt"]), str(tiny["data"] / "c3.vtu"), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "c3.vtu").is_file()


@pytest.mark.parametrize("what", ["missing", "garbage", "foreign", "empty"])
def test_predict_bad_checkpoint(what, tiny, capsys, tmp_path):
    ck = tmp_path / "m.pt"
    if what == "garbage":
        ck.write_bytes(os.urandom(300))
    elif what == "foreign":
        torch.save({"state_dict": {"w": torch.zeros(1)}}, ck)
    elif what == "empty":
        ck.write_bytes(b"")
    run_cli(capsys, ["predict", ck, tiny["mesh"], "--out", tmp_path / "o"], 1, r"m\.pt", [tmp_path, tiny["data"]])


def test_predict_out_is_input_folder(tiny, capsys):
    run_cli(capsys, ["predict", tiny["ckpt"], tiny["mesh"], "--out", tiny["data"]], 1,
            r"c0\.vtu: the output would overwrite this input", [tiny["data"]])


def test_predict_same_input_twice(tiny, capsys, tmp_path):
    run_cli(capsys, ["predict", tiny["ckpt"], tiny["mesh"], tiny["mesh"], "--out", tmp_path / "o"], 1,
            r"c0\.vtu: given more than once", [tmp_path, tiny["data"]])


def test_predict_out_is_a_file(tiny, capsys, tmp_path):
    (tmp_path / "o").write_text("keep me")
    run_cli(capsys, ["predict", tiny["ckpt"], tiny["mesh"], "--out", tmp_path / "o"], 1, r"o: file exists|exists",
            [tmp_path, tiny["data"]])


def _with(tmp_path, name, mutate, q=2.0):
    m = grid_mesh(6, seed=9, q=q)
    mutate(m)
    p = tmp_path / "in" / name
    p.parent.mkdir(exist_ok=True)
    meshops.write(m, p)
    (p.parent / "globals.json").write_text(json.dumps({p.stem: {"Q": q}}))
    return p


@pytest.mark.parametrize("name,mutate,match", [
    ("nan_a.vtu", lambda m: m.point_data["a"].__setitem__(3, np.nan), r"input field 'a' has 1 non-finite"),
    ("inf_a.vtu", lambda m: m.point_data["a"].__setitem__(slice(0, 4), np.inf), r"'a' has 4 non-finite"),
    ("all_inf.vtu", lambda m: m.point_data["a"].__setitem__(slice(None), -np.inf), r"'a' has 36 non-finite"),
])
def test_predict_non_finite_input(name, mutate, match, tiny, capsys, tmp_path):
    p = _with(tmp_path, name, mutate)
    run_cli(capsys, ["predict", tiny["ckpt"], p, "--out", tmp_path / "o"], 1, name.replace(".", r"\.") + ".*" + match,
            [tmp_path])
    assert not list((tmp_path / "o").glob("*")) if (tmp_path / "o").exists() else True


@pytest.fixture
def nan_ckpt(tiny, tmp_path):
    ck = load_checkpoint(tiny["ckpt"])
    state = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in ck["model"].items()}
    out = tmp_path / "ck" / "nan.pt"
    save_checkpoint(out, model_state=state, config=ck["config"], normalization=ck["normalization"])
    (out.parent / "splits.json").write_text((tiny["run"] / "splits.json").read_text())
    return out


def test_predict_nan_weights_writes_nothing(nan_ckpt, tiny, capsys, tmp_path):
    run_cli(capsys, ["predict", nan_ckpt, tiny["mesh"], "--out", tmp_path / "o"], 1,
            r"c0\.vtu: the model predicted 36 of 36 nodes non-finite", [tmp_path, tiny["data"]])
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").rglob("*"))


def test_predict_second_mesh_fails_first_not_written(tiny, capsys, tmp_path):
    bad = _with(tmp_path, "zz_nan.vtu", lambda m: m.point_data["a"].__setitem__(0, np.nan))
    (tmp_path / "o").mkdir()
    run_cli(capsys, ["predict", tiny["ckpt"], tiny["mesh"], bad, "--out", tmp_path / "o"], 1, r"non-finite",
            [tmp_path, tiny["data"]])


def test_predict_stale_stage_files_removed(tiny, capsys, tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / ".meshops-stage-abc.vtu").write_text("left by a killed run")
    assert main(["predict", str(tiny["ckpt"]), str(tiny["mesh"]), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["c0.vtu"]


@pytest.mark.parametrize("ext", [".stl", ".obj", ".su2"])
def test_predict_format_without_fields_gets_vtp(ext, tiny, tmp_path):
    m = grid_mesh(6, seed=1)
    src = tmp_path / "in" / f"shape{ext}"
    src.parent.mkdir()
    meshops.write(meshops.Mesh(m.points, m.cells), src)
    pd = {"a": m.point_data["a"]}
    # the input field travels in a sidecar-free way: the model needs 'a', so give it on a VTU copy
    full = tmp_path / "in" / "shape_full.vtu"
    meshops.write(meshops.Mesh(m.points, m.cells, point_data=pd), full)
    (src.parent / "globals.json").write_text(json.dumps({"shape": {"Q": 2.0}, "shape_full": {"Q": 2.0}}))
    rc = main(["predict", str(tiny["ckpt"]), str(full), "--out", str(tmp_path / "o")])
    assert rc == 0
    # STL/OBJ/SU2 lack the input field 'a': a clear one-line error, nothing written
    rc = main(["predict", str(tiny["ckpt"]), str(src), "--out", str(tmp_path / "o2")])
    assert rc == 1 and not (tmp_path / "o2").exists() or not any((tmp_path / "o2").iterdir())


def test_predict_field_less_format_written_as_vtp(tiny, tmp_path, monkeypatch):
    """A mesh read from a format that cannot hold fields is written as .vtp beside the input name."""
    from meshops.cli._outputs import field_format

    m = grid_mesh(4)
    m2 = meshops.Mesh(m.points, m.cells, source=str(tmp_path / "x.stl"))
    assert field_format(m2, tmp_path / "x.stl").name == "x.vtp"
    assert field_format(m2, tmp_path / "x.vtu").name == "x.vtu"
    tet = meshops.Mesh(np.eye(4, 3), [("tetra", np.array([[0, 1, 2, 3]]))])
    assert field_format(tet, tmp_path / "t.su2").name == "t.vtu"


def test_predict_same_names_from_two_folders_do_not_collide(tiny, capsys, tmp_path):
    for d in ("left", "right"):
        (tmp_path / "in" / d).mkdir(parents=True)
        meshops.write(grid_mesh(6, seed=3), tmp_path / "in" / d / "m.vtu")
        (tmp_path / "in" / d / "globals.json").write_text(json.dumps({"m": {"Q": 2.0}}))
    assert main(["predict", str(tiny["ckpt"]), str(tmp_path / "in/left/m.vtu"), str(tmp_path / "in/right/m.vtu"),
                 "--out", str(tmp_path / "o")]) == 0
    assert (tmp_path / "o/left/m.vtu").is_file() and (tmp_path / "o/right/m.vtu").is_file()


def test_predict_out_of_range_global_warns(tiny, caplog, tmp_path):
    out = tmp_path / "o"
    with caplog.at_level(logging.WARNING):
        assert main(["predict", str(tiny["ckpt"]), str(tiny["mesh"]), "--out", str(out), "--global", "Q=1000"]) == 0
    assert re.search(r"c0\.vtu: global 'Q' = 1000 is outside the training range \[1, 2\.\d+\]", caplog.text)
    got = meshops.read(out / "c0.vtu")
    assert np.isfinite(got.point_data["p_pred"]).all() and (got.point_data["p_pred"] >= 0).all()


def test_predict_scaled_geometry_warns(tiny, caplog, tmp_path):
    p = tmp_path / "in" / "big.vtu"
    p.parent.mkdir()
    meshops.write(grid_mesh(6, scale=1000.0), p)
    (p.parent / "globals.json").write_text(json.dumps({"big": {"Q": 2.0}}))
    with caplog.at_level(logging.WARNING):
        rc = main(["predict", str(tiny["ckpt"]), str(p), "--out", str(tmp_path / "o")])
    assert "geometry extent" in caplog.text and "outside the training range" in caplog.text
    if rc == 0:
        assert np.isfinite(meshops.read(tmp_path / "o" / "big.vtu").point_data["p_pred"]).all()


def test_predict_no_meshes(tiny, capsys, tmp_path):
    run_cli(capsys, ["predict", tiny["ckpt"], "--out", tmp_path / "o"], 2, r"give mesh files", [tmp_path])


# ---------------------------------------------------------------------------------------- evaluate
def test_evaluate_nan_model_is_not_a_perfect_score(nan_ckpt, tiny, capsys, tmp_path):
    run_cli(capsys, ["evaluate", nan_ckpt, tiny["data"], "--out", tmp_path / "r.json"], 1,
            r"non-finite", [tmp_path, tiny["data"]])
    assert not (tmp_path / "r.json").exists()


def test_evaluate_nan_truth(tiny, capsys, tmp_path):
    d = tmp_path / "ds"
    d.mkdir()
    m = grid_mesh(6, seed=2)
    m.point_data["p"][:] = np.nan
    meshops.write(m, d / "c.vtu")
    (d / "globals.json").write_text(json.dumps({"c": {"Q": 2.0}}))
    run_cli(capsys, ["evaluate", tiny["ckpt"], d, "--out", tmp_path / "r.json"], 1, r"p", [tmp_path])


@pytest.mark.parametrize("args,code,match", [
    (["--split", "bogus"], 2, r"argument --split: invalid choice"),
    (["--option", "nope=1"], 1, r"--option nope: .*unexpected keyword argument 'nope'"),
    (["--option", "nope"], 2, r"--option expects KEY=VALUE, got 'nope'"),
])
def test_evaluate_bad_options(args, code, match, tiny, capsys, tmp_path):
    run_cli(capsys, ["evaluate", tiny["ckpt"], tiny["data"], "--out", tmp_path / "r.json", *args], code, match,
            [tmp_path, tiny["data"]])


def test_evaluate_missing_dataset(tiny, capsys, tmp_path):
    run_cli(capsys, ["evaluate", tiny["ckpt"], tmp_path / "nothing_here", "--out", tmp_path / "r.json"], 1,
            r"nothing_here", [tmp_path])


def test_evaluate_split_without_splits_file(nan_ckpt, tiny, capsys, tmp_path):
    (nan_ckpt.parent / "splits.json").unlink()
    run_cli(capsys, ["evaluate", nan_ckpt, tiny["data"], "--split", "test", "--out", tmp_path / "r.json"], 1,
            r"splits\.json does not exist", [tmp_path])


def test_evaluate_empty_folder(tiny, capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    run_cli(capsys, ["evaluate", tiny["ckpt"], tmp_path / "empty", "--out", tmp_path / "r.json"], 1, r"empty",
            [tmp_path])


# ------------------------------------------------------------------------------------------- train
BASE = ("dataset: folder\ndataset_options: {path: data, inputs: [a], targets: [p, U], globals: [Q]}\n"
        "model: mgn\nmodel_options: {hidden: 8, n_blocks: 1}\nepochs: 1\nprogress: false\ndevice: cpu\n")


@pytest.mark.parametrize("extra,match", [
    ("lr: abc\n", r"'lr': expected float, got str 'abc'"),
    ("features: yes\n", r"'features': expected dict"),
    ("features: {pos: maybe}\n", r"'features.pos': expected bool"),
    ("features: {colour: true}\n", r"'features.colour': unknown key"),
    ("learning_rate: 0.1\n", r"unknown key\(s\) \['learning_rate'\]"),
    ("epochs: 0\n", r"'epochs' must be a positive integer"),
    ("epochs: 2.5\n", r"'epochs': expected int, got float"),
    ("batch_size: many\n", r"'batch_size': expected int"),
    ("amp: sometimes\n", r"'amp' must be auto, on or off"),
    ("split_fractions: half\n", r"'split_fractions': expected list"),
    ("splits: missing_splits.json\n", r"'splits' file .*missing_splits\.json does not exist"),
    ("graph: {levelz: 2}\n", r"'graph': GraphSpec: unknown keys \['levelz'\]"),
    ("resume: perhaps\n", r"'resume': expected bool"),
])
def test_train_bad_config_value(extra, match, tiny, capsys, tmp_path):
    y = tmp_path / "t.yaml"
    y.write_text(BASE + f"out: {tmp_path / 'run'}\n" + extra)
    os.symlink(tiny["data"], tmp_path / "data")
    run_cli(capsys, ["train", y], 1, r"t\.yaml: .*" + match, [tmp_path, tiny["data"]])
    assert not (tmp_path / "run").exists() and not (tmp_path / "missing_splits.json").exists()


@pytest.mark.parametrize("opts,match", [
    ("{hidden: 8, colour: red}", r"'model_options.colour': model 'mgn' has no option 'colour'"),
    ("{hidden: lots}", r"'model_options.hidden': expected int, got str 'lots'"),
    ("{in_channels: 3}", r"'model_options.in_channels': set from the data"),
])
def test_train_bad_model_options(opts, match, tiny, capsys, tmp_path):
    y = tmp_path / "t.yaml"
    y.write_text(BASE.replace("{hidden: 8, n_blocks: 1}", opts) + f"out: {tmp_path / 'run'}\n")
    run_cli(capsys, ["train", y], 1, match, [tmp_path, tiny["data"]])


def test_train_unknown_model(tiny, capsys, tmp_path):
    y = tmp_path / "t.yaml"
    y.write_text(BASE.replace("model: mgn", "model: nosuchnet") + f"out: {tmp_path / 'run'}\n")
    run_cli(capsys, ["train", y], 1, r"'model': unknown model 'nosuchnet'", [tmp_path])


@pytest.mark.parametrize("text,match", [
    ("a: [unclosed\n", r"not valid YAML"),
    ("- just\n- a list\n", r"expected a mapping at the top level"),
])
def test_train_bad_yaml(text, match, capsys, tmp_path):
    y = tmp_path / "t.yaml"
    y.write_text(text)
    run_cli(capsys, ["train", y], 1, match, [tmp_path])


@pytest.mark.parametrize("args,code,match", [
    (["--set", "lr"], 1, r"--set expects KEY=VALUE"),
    (["--set", "lr=abc"], 1, r"'lr': expected float"),
    (["--set", "model_options.hidden=x"], 1, r"'model_options.hidden': expected int"),
    (["--set", "nosuch=1"], 1, r"unknown key\(s\) \['nosuch'\]"),
    (["--lr", "abc"], 2, r"argument --lr: invalid float value"),
    (["--epochs", "x"], 2, r"argument --epochs: invalid int value"),
    (["--batch-size", "-"], 2, r"argument --batch-size"),
])
def test_train_bad_flags(args, code, match, tiny, capsys, tmp_path):
    run_cli(capsys, ["train", tiny["yaml"], "--out", tmp_path / "run", *args], code, match, [tmp_path, tiny["data"]])


def test_train_missing_config(capsys, tmp_path):
    run_cli(capsys, ["train", tmp_path / "none.yaml"], 1, r"none\.yaml does not exist", [tmp_path])


def test_train_no_config_no_path(capsys, tmp_path):
    run_cli(capsys, ["train", "--out", tmp_path / "r"], 1, r"give a CONFIG\.yaml", [tmp_path])


def test_train_dataset_path_missing(capsys, tmp_path):
    y = tmp_path / "t.yaml"
    y.write_text(BASE + f"out: {tmp_path / 'run'}\n")
    run_cli(capsys, ["train", y], 1, r"data", [])
    assert not (tmp_path / "run").exists()


def test_splits_resolve_against_yaml_folder(tiny, tmp_path, monkeypatch):
    from meshops.train.config import TrainConfig

    sub = tmp_path / "cfg"
    sub.mkdir()
    (sub / "splits.json").write_text(json.dumps({"train": [], "val": [], "test": []}))
    (sub / "t.yaml").write_text(BASE + "splits: splits.json\n")
    monkeypatch.chdir(tmp_path)
    c = TrainConfig.from_yaml(sub / "t.yaml")
    assert Path(c.splits) == sub / "splits.json" and Path(c.dataset_options["path"]) == sub / "data"


# -------------------------------------------------------------------------------------------- show
@pytest.mark.parametrize("size,match", [
    ("abc", r"--size: expected WIDTHxHEIGHT"),
    ("100000x100000", r"--size: 100000x100000 is too large"),
    ("0x10", r"--size: expected a value > 0"),
    ("10xten", r"--size: expected an integer, got 'ten'"),
    ("--size=-5x5", r"--size: expected a value > 0"),
])
def test_show_bad_size(size, match, tiny, capsys, tmp_path):
    run_cli(capsys, ["show", tiny["mesh"], "--field", "p", "--out", tmp_path / "x.png",
                     *([size] if size.startswith("--") else ["--size", size])], 2, match,
            [tmp_path, tiny["data"]])


def test_show_all_nan_field(capsys, tmp_path):
    m = grid_mesh(5)
    m.point_data["p"][:] = np.nan
    meshops.write(m, tmp_path / "n.vtu")
    run_cli(capsys, ["show", tmp_path / "n.vtu", "--field", "p", "--out", tmp_path / "x.png"], 1,
            r"n\.vtu: the truth of 'p' is NaN/infinite at every point", [tmp_path])


def test_show_missing_field(tiny, capsys, tmp_path):
    run_cli(capsys, ["show", tiny["mesh"], "--field", "nope", "--out", tmp_path / "x.png"], 1,
            r"no point field 'nope'", [tmp_path, tiny["data"]])


# ---------------------------------------------------------------------------------------- datasets
@pytest.mark.parametrize("args,code,match", [
    (["generate", "no-such-set", "--n", "1", "--out", "X"], 1, r"no generator for dataset 'no-such-set'"),
    (["generate", "failing", "--n", "-1", "--out", "X"], 1, r"--n must be >= 0"),
    (["generate", "failing", "--n", "1", "--workers", "0", "--out", "X"], 1, r"--workers must be >= 1"),
    (["generate", "failing", "--n", "x", "--out", "X"], 2, r"argument --n: invalid int value"),
    (["generate", "failing", "--n", "1", "--set", "noeq", "--out", "X"], 1, r"--set expects key=value"),
    (["generate", "failing", "--n", "1", "--set", "colour=1", "--out", "X"], 1,
     r"--set colour: not an option of this generator"),
    (["generate", "failing", "--n", "2", "--out", "X"], 1, r"all 2 case\(s\) failed"),
    (["bogus"], 2, r"invalid choice"),
])
def test_datasets_generate(args, code, match, capsys, tmp_path, monkeypatch):
    rec = tmp_path / "recipes" / "failing"
    rec.mkdir(parents=True)
    (rec / "generate.py").write_text(
        "def generate(out, n, workers=1, seed=0, *, size=1):\n"
        "    return {'done': 0, 'skipped': 0, 'failed': n}\n")
    monkeypatch.setenv("MESHOPS_DATASETS", str(tmp_path / "recipes"))
    args = [str(tmp_path / "X") if a == "X" else a for a in args]
    run_cli(capsys, ["datasets", *args], code, match, [tmp_path / "recipes"])


# ------------------------------------------------------------------------------------ error path
def test_keyboard_interrupt_is_130(capsys, monkeypatch, tmp_path):
    import meshops.cli.info as info

    def boom(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(info, "run", boom)
    run_cli(capsys, ["info", tmp_path / "x.vtu"], 130, r"interrupted", [tmp_path])


def test_internal_error_is_one_line_and_3(capsys, monkeypatch, tmp_path):
    import meshops.cli.info as info

    def boom(args):
        raise TypeError("unexpected thing")

    monkeypatch.setattr(info, "run", boom)
    run_cli(capsys, ["info", tmp_path / "x.vtu"], 3, r"internal error TypeError: unexpected thing.*--debug",
            [tmp_path])


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.vtu"):
        main(["info", str(tmp_path / "nope.vtu"), "--debug"])


def test_help_exits_0(capsys):
    assert main(["--help"]) == 0 and main(["info", "--help"]) == 0


# ----------------------------------------------------------------------------------- public API
def test_field_metrics_refuse_nan_predictions():
    from meshops.train.metrics import MetricError, field_metrics

    t = np.ones((5, 1))
    with pytest.raises(MetricError, match="prediction of 'p' is non-finite at 5 of 5 points"):
        field_metrics(np.full((5, 1), np.nan), t, ["p"], [1])


def test_field_metrics_refuse_nan_truth():
    from meshops.train.metrics import MetricError, field_metrics

    t = np.ones((4, 3))
    t[1, 2] = np.inf
    with pytest.raises(MetricError, match="truth of 'U' is non-finite at 1 of 4 points"):
        field_metrics(np.ones((4, 3)), t, ["U"], [3])


def test_field_metrics_refuse_nothing():
    from meshops.train.metrics import MetricError, field_metrics

    with pytest.raises(MetricError, match="no points to score"):
        field_metrics(np.zeros((0, 1)), np.zeros((0, 1)), ["p"], [1])


def test_field_metrics_refuse_mismatch():
    from meshops.train.metrics import MetricError, field_metrics

    with pytest.raises(MetricError, match="do not match"):
        field_metrics(np.zeros((3, 1)), np.zeros((4, 1)), ["p"], [1])


def test_mean_metrics_refuse_no_cases():
    from meshops.train.metrics import MetricError, mean_metrics

    with pytest.raises(MetricError, match="over nothing"):
        mean_metrics({})


def test_field_metrics_zero_truth_is_undefined_not_infinite(caplog):
    from meshops.train.metrics import field_metrics, mean_metrics

    t = np.zeros((4, 1))
    with caplog.at_level("WARNING"):
        m = field_metrics(np.full((4, 1), 0.5), t, ["p"], [1], where="case 'a'")
    assert m["p"]["rel_l2"] is None and m["p"]["max_abs"] == 0.5
    assert "case 'a'" in caplog.text and "'p' is zero everywhere" in caplog.text
    good = field_metrics(np.array([[1.0], [2.0]]), np.array([[1.0], [1.0]]), ["p"], [1])
    mean = mean_metrics({"a": m, "b": good})["p"]
    assert mean["rel_l2"] == pytest.approx(1 / np.sqrt(2)) and mean["rel_l2_cases"] == 1
    assert mean_metrics({"a": m})["p"]["rel_l2"] is None


def test_emit_report_refuses_non_finite(tmp_path):
    from meshops.cli._outputs import emit_report

    out = tmp_path / "r.json"
    with pytest.raises(ValueError, match="NaN or infinite"):
        emit_report({"mean": {"p": float("inf")}}, out)
    assert not out.exists()


def test_field_metrics_exact_values():
    from meshops.train.metrics import field_metrics

    m = field_metrics(np.array([[1.0], [2.0]]), np.array([[1.0], [1.0]]), ["p"], [1])["p"]
    assert m["rel_l2"] == pytest.approx(1 / np.sqrt(2)) and m["max_abs"] == 1.0 and m["rmse"] == pytest.approx(
        np.sqrt(0.5))


def test_evaluate_no_cases_is_an_error(tiny):
    from meshops.train.inference import evaluate, load_trained
    from meshops.train.metrics import MetricError

    with pytest.raises(MetricError, match="no cases to evaluate"):
        evaluate(load_trained(tiny["ckpt"]), [])


def test_zero_channel_gets_floor_relative_to_its_field(caplog):
    from meshops.data.normalize import REL_FLOOR, Stats

    rng = np.random.default_rng(0)
    u = np.stack([rng.normal(3, 1, 500), rng.normal(0, 2, 500), 1e-19 * rng.normal(size=500)], 1)
    with caplog.at_level(logging.WARNING):
        st = Stats.fit([u], 3, groups=[3], names=["U"], what="target", constant_std="floor")
    assert st.constant == [2] and st.std[2] < 1e-3 and st.std[2] >= REL_FLOOR * 3
    assert "target 'U'[2] is constant" in caplog.text
    # a model output of 1 (normalized) decodes to a tiny U_z, never to the size of the flow
    assert abs(st.decode(np.array([[0.0, 0.0, 1.0]]))[0, 2]) < 1e-3 * np.abs(u[:, 0]).max()


def test_constant_input_channel_scaled_by_its_size():
    from meshops.data.normalize import Stats

    st = Stats.fit([np.full((10, 1), 5.0)], 1, groups=[1], names=["inlet"], what="input")
    assert st.constant == [0] and st.std[0] == pytest.approx(5.0)


def test_stats_round_trip_with_and_without_ranges():
    from meshops.data.normalize import Stats

    st = Stats.fit([np.arange(6.0).reshape(3, 2)], 2)
    back = Stats.from_dict(st.to_dict())
    assert np.array_equal(back.lo, [0, 1]) and np.array_equal(back.hi, [4, 5])
    old = Stats.from_dict({"mean": [0.0], "std": [1.0]})  # a checkpoint from before ranges were stored
    assert old.lo is None and old.hi is None


def test_stats_refuse_nan_training_data():
    from meshops.data.normalize import Stats

    a = np.ones((4, 2))
    a[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"target 'v'\[1\] has 1 non-finite value"):
        Stats.fit([a], 2, groups=[2], names=["v"], what="target")


def test_clamp_nonnegative_only_for_never_negative_targets(caplog):
    from meshops.data.normalize import Normalizer, Stats
    from meshops.train.guard import clamp_nonnegative

    tg = Stats(np.zeros(2), np.ones(2), np.array([0.0, -1.0]), np.array([1.0, 1.0]))
    z = Stats(np.zeros(0), np.ones(0))
    norm = Normalizer(z, tg, z, Stats(np.zeros(3), np.ones(3)))
    fields = {"wss": np.array([-0.5, 0.2], np.float32), "p": np.array([-0.5, 0.2], np.float32)}
    with caplog.at_level(logging.WARNING):
        out = clamp_nonnegative(norm, ["wss", "p"], [1, 1], fields, "m.vtu")
    assert out["wss"].tolist() == [0.0, pytest.approx(0.2)] and out["p"][0] == -0.5
    assert fields["wss"][0] == -0.5  # input unchanged
    assert "1 predicted value(s) of 'wss' are negative" in caplog.text


def test_check_finite_prediction_names_field():
    from meshops.train.guard import PredictionError, check_finite_prediction

    p = torch.zeros(5, 4)
    p[3, 2] = float("nan")
    with pytest.raises(PredictionError, match=r"m\.vtu: the model predicted 1 of 5 nodes non-finite \(field 'U'\[1\]\)"):
        check_finite_prediction(p, ["p", "U"], [1, 3], "m.vtu")


def test_old_checkpoint_without_ranges_still_predicts(tiny, tmp_path):
    ck = load_checkpoint(tiny["ckpt"])
    norm = ck["normalization"]
    for k in ("inputs", "targets", "globals", "pos"):
        norm[k] = {"mean": norm[k]["mean"], "std": norm[k]["std"]}
    norm.pop("extra", None)
    old = tmp_path / "old.pt"
    save_checkpoint(old, model_state=ck["model"], config=ck["config"], normalization=norm)
    assert main(["predict", str(old), str(tiny["mesh"]), "--out", str(tmp_path / "o"), "--global", "Q=99"]) == 0


def test_predict_mesh_api_refuses_nan_input(tiny):
    from meshops.train.guard import PredictionError
    from meshops.train.inference import load_trained, predict_mesh

    m = grid_mesh(6)
    m.point_data["a"][0] = np.nan
    with pytest.raises(PredictionError, match="input field 'a' has 1 non-finite"):
        predict_mesh(load_trained(tiny["ckpt"]), m, globals={"Q": 2.0})


def test_predict_mesh_api_reports_every_missing_global(tiny):
    from meshops.data import DatasetError
    from meshops.train.inference import case_for_mesh, load_trained

    tr = load_trained(tiny["ckpt"])
    tr.pipeline.features.globals = ["Q", "R"]
    with pytest.raises(DatasetError, match=r"'Q', 'R'.*--global Q=VALUE --global R=VALUE"):
        case_for_mesh(tr, grid_mesh(4))


@pytest.mark.parametrize("d,match", [
    ({"lr": "abc"}, r"'lr': expected float, got str 'abc'"),
    ({"lr": -1}, r"'lr' must be positive"),
    ({"features": "yes"}, r"'features': expected dict"),
    ({"model": 3}, r"'model': expected str"),
    ({"dataset_options": [1]}, r"'dataset_options': expected dict"),
    ({"seed": "x"}, r"'seed': expected int"),
    ({"split_fractions": [0.8, "a"]}, r"'split_fractions': expected list\[float\]"),
    ({"nope": 1, "lr": "x"}, r"unknown key\(s\) \['nope'\].*'lr': expected float"),
    ({"model": "ugraph", "model_options": {"levelz": 2}}, r"model 'ugraph' has no option 'levelz'"),
])
def test_train_config_api(d, match):
    from meshops.train.config import ConfigError, TrainConfig

    with pytest.raises(ConfigError, match=match):
        TrainConfig.from_dict(d, where="cfg.yaml")


def test_train_config_accepts_yaml_number_strings():
    from meshops.train.config import TrainConfig

    assert TrainConfig.from_dict({"lr": "1e-3", "weight_decay": "0"}).lr == 1e-3


def test_resume_refuses_another_task():
    from meshops.train.config import ConfigError, TrainConfig
    from meshops.train.validate_config import check_resume

    a = TrainConfig(dataset_options={"targets": ["p"]}).to_dict()
    b = TrainConfig(dataset_options={"targets": ["wss"]}, epochs=50).to_dict()
    with pytest.raises(ConfigError, match=r"dataset_options.targets: \['p'\] -> \['wss'\].*another --out"):
        check_resume(a, b, "runs/x/last.pt")
    check_resume(a, dict(a, epochs=99, max_steps=5), "runs/x/last.pt")  # the budget may change


@pytest.mark.parametrize("text,match", [
    ("abc", "expected WIDTHxHEIGHT"), ("1x1x1", "expected an integer"), ("20000x10", "too large"),
])
def test_parse_size(text, match):
    from meshops.cli._errors import UsageError, parse_size

    with pytest.raises(UsageError, match=match):
        parse_size("--size", text)
    assert parse_size("--size", "1500x500") == (1500, 500)


def test_mirror_destinations_refuse_input_and_duplicates(tmp_path):
    from meshops.cli._outputs import mirror_destinations

    (tmp_path / "a").mkdir()
    f = tmp_path / "a" / "m.vtu"
    f.write_text("x")
    with pytest.raises(ValueError, match="would overwrite this input"):
        mirror_destinations([str(f)], tmp_path / "a")
    with pytest.raises(ValueError, match="given more than once"):
        mirror_destinations([str(f), str(tmp_path / "a" / ".." / "a" / "m.vtu")], tmp_path / "o")
    assert mirror_destinations([str(f)], tmp_path / "o") == [tmp_path / "o" / "m.vtu"]


def test_generator_failures_keyed_by_configuration(tmp_path):
    from meshops.cli.datasets import load_recipe

    mod = load_recipe(Path(__file__).resolve().parents[1] / "datasets" / "coronary_synthetic" / "generate.py")
    f1 = mod._fingerprint(0, {"a": 1}, {"b": 2}, None)
    (tmp_path / "failures.jsonl").write_text(
        json.dumps({"name": "case_00000", "reason": "bad", "config": f1}) + "\n"
        + json.dumps({"name": "case_00001", "reason": "old record without config"}) + "\n")
    assert mod.recorded_failures(tmp_path, f1) == {"case_00000": "bad"}
    assert mod.recorded_failures(tmp_path, mod._fingerprint(0, {"a": 2}, {"b": 2}, None)) == {}


def test_predict_finds_globals_in_the_training_globals_json(tiny, tmp_path):
    """A copy of a training file elsewhere: its globals come from the globals.json training used."""
    import shutil

    (tmp_path / "elsewhere").mkdir()
    shutil.copy(tiny["data"] / "c2.vtu", tmp_path / "elsewhere" / "c2.vtu")
    assert main(["predict", str(tiny["ckpt"]), str(tmp_path / "elsewhere" / "c2.vtu"), "--out",
                 str(tmp_path / "o")]) == 0


def test_graph_refuses_nan_node_field(capsys, tmp_path):
    m = grid_mesh(5)
    m.point_data["a"][4] = np.nan
    meshops.write(m, tmp_path / "n.vtu")
    run_cli(capsys, ["graph", tmp_path / "n.vtu", "--fields", "a", "--out", tmp_path / "g.pt"], 1,
            r"n\.vtu: point field 'a' has 1 non-finite", [tmp_path])


@pytest.mark.parametrize("flag", ["--out", "--cache"])
def test_train_out_or_cache_is_a_file(flag, tiny, capsys, tmp_path):
    (tmp_path / "f").write_text("a file")
    argv = ["train", tiny["yaml"], flag, tmp_path / "f"]
    if flag == "--cache":
        argv += ["--out", tmp_path / "run"]
    run_cli(capsys, argv, 1, r"f: file exists|f: not a directory", [tiny["data"]])
    assert (tmp_path / "f").read_text() == "a file"
    assert not (tmp_path / "run").exists()  # a run that never started leaves no folder


@pytest.mark.parametrize("change,match", [
    (["--targets", "p"], r"dataset_options.targets: \['p', 'U'\] -> \['p'\]"),
    (["--seed", "7"], r"seed: 0 -> 7"),
    (["--set", "model_options.hidden=16"], r"model_options.hidden: 8 -> 16"),
    (["--lr", "0.5"], r"lr: 0.001 -> 0.5"),
])
def test_train_resume_refuses_another_task(change, match, tiny, capsys):
    run_cli(capsys, ["train", tiny["yaml"], *change], 1,
            r"last\.pt: the run folder was trained with another config .*" + match + r".*another --out",
            [tiny["run"], tiny["data"]])


def test_graph_warns_about_degenerate_cells(tmp_path, caplog):
    m = grid_mesh(4)
    tri = np.concatenate([m.cells[0].data, [[0, 0, 1], [0, 1, 2]]])  # a repeated node, a zero-area sliver
    pts = m.points.copy()
    pts[2] = (pts[0] + pts[1]) / 2
    meshops.write(meshops.Mesh(pts, [("triangle", tri)], point_data=m.point_data), tmp_path / "d.vtu")
    with caplog.at_level(logging.WARNING):
        assert main(["graph", str(tmp_path / "d.vtu"), "--out", str(tmp_path / "g.pt")]) == 0
    assert re.search(r"d\.vtu: 1 cell\(s\) with a repeated node and [1-9]\d* of zero", caplog.text)
