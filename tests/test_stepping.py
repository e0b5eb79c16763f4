"""Learned time stepping: statistics, Dirichlet hold, a trained rollout that tracks the truth, the rollout CLI."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from meshops.data import DatasetError, load_dataset
from meshops.train import stepping as S


@pytest.fixture(scope="module")
def short_traj():
    return load_dataset("cylinder_flow", max_steps=14)[0]


@pytest.fixture(scope="module")
def trained(short_traj, tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("step")
    cfg = S.StepConfig(steps=300, batch_size=2, lr=3e-3, noise=0.01,
                       model_options={"hidden": 24, "n_blocks": 4})
    st, info = S.train_stepper([short_traj], cfg, out=out)
    return st, info, out / "best.pt"


def test_stats_find_dirichlet_entries_and_2d_edges(short_traj):
    cfg = S.StepConfig()
    s = S.fit_stats([short_traj], cfg)
    fixed = dict(zip(s["node_types"], s["fixed"], strict=True))
    assert s["dim"] == 2 and s["channels"] == ["u", "v", "p"]
    assert fixed["interior"] == [False, False, False]
    assert fixed["inlet"][:2] == [True, True] and not fixed["inlet"][2]  # inlet velocity fixed, p free
    assert fixed["obstacle"][:2] == [True, True]  # no slip
    assert fixed["outlet"] == [False, False, True]  # p = 0 at the outlet
    st = S.Stepper(S.build_model(cfg, s), cfg, s)
    g = st.graph(short_traj)
    assert g.edge_attr.shape[1] == 3  # dx, dy, |d|: no z column


def test_trained_rollout_tracks_the_truth_on_a_training_trajectory(trained, short_traj):
    st, info, _ = trained
    assert info["history"][-1]["loss"] < info["history"][0]["loss"] * 0.5
    X = short_traj.states(["u", "v", "p"])
    R = st.rollout(short_traj, 13)
    assert R.shape == (14,) + X.shape[1:]
    err = S.rollout_errors(R, X)
    pers = S.rollout_errors(np.repeat(X[:1], 14, 0), X)
    assert np.isfinite(err).all()
    # below copying the initial state at every step, for every channel, and well below on average
    assert (err[1:] < pers[1:]).all(), (err, pers)
    assert (err[1:].mean(0) < 0.8 * pers[1:].mean(0)).all(), (err[1:].mean(0), pers[1:].mean(0))
    ids = np.unique(short_traj.mesh.boundaries["obstacle"][0].data)
    assert np.abs(R[:, ids, :2]).max() < 1e-3  # no slip held exactly


def test_checkpoint_round_trip(trained, short_traj):
    st, _, path = trained
    st2 = S.load_stepper(path)
    a = st.rollout(short_traj, 3)
    b = st2.rollout(short_traj, 3)
    assert np.allclose(a, b, atol=1e-5)


def test_rollout_cli_writes_series_errors_and_movie(trained, tmp_path):
    import imageio.v2 as imageio

    from meshops.cli import main
    from meshops.io import read

    _, _, path = trained
    out = tmp_path / "ro"
    rc = main(["rollout", str(path), "cylinder_flow:0", "--option", "max_steps=14", "--steps", "12",
               "--out", str(out), "--frames", "7"])
    assert rc == 0
    series = read(out / "rollout.pvd", time="all")
    assert len(series) == 13
    assert {"u", "u_pred", "u_error", "v_pred", "p_error"} <= set(series[-1].point_data)
    rep = json.loads((out / "rollout_errors.json").read_text())
    assert len(rep["rel_l2"]["v"]) == 13 and rep["rel_l2"]["v"][0] == 0.0
    for c in ("u", "v", "p"):  # the written rollout tracks the truth: below persistence on average
        assert np.mean(rep["rel_l2"][c][1:]) < 0.8 * np.mean(rep["persistence_rel_l2"][c][1:]), c
    last = series[-1].point_data
    assert np.allclose(last["v_error"], last["v_pred"] - last["v"], atol=1e-5)
    frames = imageio.mimread(out / "rollout.gif")
    assert len(frames) == 7 == rep.get("movie_frames", 7)
    for f in frames:
        f = np.asarray(f)[..., :3].astype(float)
        assert f.std() > 10  # not blank
    assert not np.array_equal(np.asarray(frames[0]), np.asarray(frames[-1]))  # the wake moves


def test_rollout_cli_refuses_a_non_stepping_checkpoint(tmp_path):
    from meshops.cli import main
    from meshops.train.checkpoint import save_checkpoint

    p = save_checkpoint(tmp_path / "x.pt", model_state={}, config={"model": {"name": "mgn"}}, normalization={})
    assert main(["rollout", str(p), "cylinder_flow:0", "--steps", "2", "--out", str(tmp_path / "o")]) == 1


def test_meshops_train_trains_a_stepper_from_a_trajectory_config(tmp_path, capsys):
    import yaml

    from meshops.cli import main

    cfg = {"dataset": "cylinder_flow", "dataset_options": {"max_steps": 14}, "model": "mgn",
           "model_options": {"hidden": 16, "n_blocks": 2}, "epochs": 1, "max_steps": 60, "batch_size": 2,
           "lr": 3e-3, "seed": 0, "split_fractions": [0.6, 0.4, 0.0], "out": str(tmp_path / "run"),
           "progress": False, "stepping": {"history": 1, "noise": 0.05, "noise_ref": "increment", "val_every": 20}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["train", str(tmp_path / "c.yaml")]) == 0
    run = tmp_path / "run"
    splits = json.loads((run / "splits.json").read_text())
    assert len(splits["train"]) == 2 and len(splits["val"]) == 1 and not set(splits["train"]) & set(splits["val"])
    assert S.is_stepping_checkpoint(run / "best.pt")
    st = S.load_stepper(run / "best.pt")
    assert st.history == 1 and st.cfg.steps == 60 and st.cfg.noise_ref == "increment"
    metrics = json.loads((run / "metrics.json").read_text())
    vals = [h["val_one_step"] for h in metrics["history"] if "val_one_step" in h]
    assert len(vals) == 3 and metrics["best_val"] == min(vals) and metrics["val_metric"] == "one_step"
    losses = [h["loss"] for h in metrics["history"] if "loss" in h]
    assert losses[-1] < losses[0]
    ck = S.load_checkpoint(run / "best.pt")
    assert set(ck["config"]["train_names"]) == set(splits["train"])
    # a rollout of the trained model from its two-state window, through the CLI (starts at state 1)
    assert main(["rollout", str(run / "best.pt"), "cylinder_flow:0", "--option", "max_steps=14", "--steps", "6",
                 "--out", str(tmp_path / "ro"), "--no-movie"]) == 0
    rep = json.loads((tmp_path / "ro" / "rollout_errors.json").read_text())
    assert rep["start"] == 1 and len(rep["rel_l2"]["u"]) == 7 and all(np.isfinite(rep["rel_l2"]["u"]))
    assert main(["evaluate", str(run / "best.pt"), "cylinder_flow", "--option", "max_steps=14",
                 "--out", str(tmp_path / "ev.json")]) == 0
    ev = json.loads((tmp_path / "ev.json").read_text())
    assert len(ev["cases"]) == 3 and all(r["steps"] == 12 for r in ev["cases"].values())  # from state 1
    assert set(ev["mean"]["one_step"]) == {"u", "v", "p"} and np.isfinite(list(ev["mean"]["full"].values())).all()
    capsys.readouterr()
    assert main(["rollout", str(run / "best.pt"), "cylinder_flow:0", "--option", "max_steps=14", "--steps", "2",
                 "--start", "0", "--out", str(tmp_path / "ro0"), "--no-movie"]) != 0
    assert "past state" in capsys.readouterr().err


def test_meshops_train_names_an_unknown_stepping_key(tmp_path):
    from meshops.train.config import ConfigError, TrainConfig
    from meshops.train.stepping_run import step_config

    cfg = TrainConfig(dataset="cylinder_flow", stepping={"histroy": 1})
    with pytest.raises(ConfigError, match="stepping.histroy"):
        step_config(cfg, 10)


def _untrained(cfg, trajs):
    stats = S.fit_stats(trajs, cfg)
    return S.Stepper(S.build_model(cfg, stats), cfg, stats).eval()


def test_diagnosed_channel_is_predicted_directly_and_not_read(short_traj):
    torch.manual_seed(0)
    cfg = S.StepConfig(model_options={"hidden": 8, "n_blocks": 1}, history=1, diagnosed=["p"])
    st = _untrained(cfg, [short_traj])
    g = st.graph(short_traj)
    X = torch.from_numpy(short_traj.states(["u", "v", "p"]))
    assert st.inputs(g, X[1], X[:1]).shape[1] == S.in_channels(cfg, st.stats) == 2 * 2 + len(st.node_types)
    shifted = X[:2].clone()
    shifted[:, :, 2] += torch.randn_like(shifted[:, :, 2])
    a, b = st.step_window(g, X[:2]), st.step_window(g, shifted)
    free = ~g.fixed
    assert torch.allclose(a[free], b[free], atol=1e-5)  # p is not an input
    y = st.target(X[1], X[:1], X[2])  # p's target: the normalized next p itself
    assert torch.allclose(y[:, 2] * st.x_std[2] + st.x_mean[2], X[2, :, 2], atol=1e-5)
    with pytest.raises(ValueError, match="diagnosed channel 'w'"):
        _untrained(S.StepConfig(diagnosed=["w"]), [short_traj])


def test_case_globals_are_inputs_and_a_missing_one_is_named(short_traj):
    cfg = S.StepConfig(model_options={"hidden": 8, "n_blocks": 1}, globals=["Re"])
    ds = load_dataset("cylinder_flow", max_steps=6)
    st = _untrained(cfg, [ds[0], ds[1]])
    g0, g1 = st.graph(ds[0]), st.graph(ds[1])
    re = np.array([ds[0].globals["Re"], ds[1].globals["Re"]])
    assert np.allclose([g0.glob[0, 0], g1.glob[0, 0]], (re - re.mean()) / re.std(), atol=1e-5)
    assert st.inputs(g0, torch.zeros(ds[0].mesh.n_points, 3)).shape[1] == S.in_channels(cfg, st.stats)
    with pytest.raises(DatasetError, match="has no global 'Mach'"):
        S.fit_stats([short_traj], S.StepConfig(globals=["Mach"]))


def test_validation_on_rollout_error_keeps_the_best_scored_weights(short_traj):
    ds = load_dataset("cylinder_flow", max_steps=14)
    cfg = S.StepConfig(model_options={"hidden": 8, "n_blocks": 1}, steps=6, val_every=2, val_rollout=5, history=1)
    st, info = S.train_stepper([ds[0]], cfg, val=[ds[1]])
    vals = [h["val_rollout_5"] for h in info["history"] if "val_rollout_5" in h]
    assert len(vals) == 3 and info["best_val"] == min(vals) and info["val_metric"] == "rollout_5"
    assert np.isclose(S.rollout_score(st, [ds[1]], 5), info["best_val"], rtol=1e-5)


def test_patience_stops_early_after_validations_without_a_new_best():
    ds = load_dataset("cylinder_flow", max_steps=14)
    cfg = S.StepConfig(model_options={"hidden": 8, "n_blocks": 1}, steps=40, val_every=1, history=1, lr=0.0, patience=2)
    _, info = S.train_stepper([ds[0]], cfg, val=[ds[1]])  # lr 0: the score never improves after the first validation
    assert info["best_step"] == 1 and info["steps_used"] == 3
    _, full = S.train_stepper([ds[0]], dataclasses.replace(cfg, patience=0, steps=4), val=[ds[1]])
    assert full["steps_used"] == 4
    with pytest.raises(ValueError, match="patience"):
        S.StepConfig(patience=-1)


def test_zero_mean_channel_increment_keeps_the_training_mean(short_traj):
    torch.manual_seed(0)
    plain = _untrained(S.StepConfig(model_options={"hidden": 8, "n_blocks": 1}, history=1), [short_traj])
    cfg = S.StepConfig(model_options={"hidden": 8, "n_blocks": 1}, history=1, zero_mean=["p"])
    st = S.Stepper(plain.model, cfg, plain.stats).eval()
    g = st.graph(short_traj)
    X = torch.from_numpy(short_traj.states(["u", "v", "p"]))
    with torch.no_grad():
        a, b = plain.step_window(g, X[:2]), st.step_window(g, X[:2])
    free = ~g.fixed[:, 2]
    assert abs(float((a[free, 2] - X[1, free, 2]).mean()) - float(st.d_mean[2])) > 1e-4  # the untrained model drifts
    assert np.isclose(float((b[free, 2] - X[1, free, 2]).mean()), float(st.d_mean[2]), atol=1e-6)
    assert torch.equal(a[:, :2], b[:, :2])  # other channels untouched
    assert torch.equal(b[~free, 2], X[1, ~free, 2])  # Dirichlet p (outlet) held
    d = (b[free, 2] - a[free, 2])
    assert torch.allclose(d, d[:1].expand_as(d), atol=1e-6)  # one uniform shift
    with pytest.raises(ValueError, match="zero_mean channel 'q'"):
        S.Stepper(plain.model, S.StepConfig(zero_mean=["q"]), plain.stats)


def test_steps_below_counts_until_the_first_worse_step():
    from meshops.train.stepping_eval import steps_below

    ref = np.array([[0, 0], [1, 1], [2, 2], [3, 3], [4, 4]], dtype=float)
    err = np.array([[0, 0], [0.5, 0.5], [1, 2.5], [3.5, 1], [np.nan, 1]], dtype=float)
    assert steps_below(err, ref) == [2, 1]          # channel 0 worse at step 3, channel 1 at step 2
    assert steps_below(ref * 0.5, ref) == [4, 4]    # never worse: every step
    err[4, 1] = np.nan
    assert steps_below(err[:, 1:], ref[:, 1:]) == [1]


def test_p_error_diagnostic_splits_the_level_from_the_pattern(short_traj, bench_module):
    mod = bench_module("transient_p_error")
    torch.manual_seed(0)
    plain = _untrained(S.StepConfig(model_options={"hidden": 8, "n_blocks": 1}, history=1), [short_traj])
    st = S.Stepper(plain.model, S.StepConfig(model_options={"hidden": 8, "n_blocks": 1}, history=1, zero_mean=["p"]),
                   plain.stats).eval()
    r, e_model, e_pers = mod.level_errors(st, short_traj, stride=1)
    X = short_traj.states(["u", "v", "p"])
    g, Xt = st.graph(short_traj), torch.from_numpy(X)
    with torch.no_grad():
        held = [S.rel_l2(st.step_window(g, Xt[k - 1 : k + 1]).numpy()[None], X[k + 1][None])[0, 2] for k in range(1, len(X) - 1)]
    assert r[0] == pytest.approx(np.mean(held), rel=1e-4)  # "hold" is the model as it steps
    assert r[4] == pytest.approx(S.rel_l2(X[1:-1], X[2:])[:, 2].mean(), rel=1e-4)  # persistence
    # the true mean is the best uniform shift of the free nodes: never worse than the held or the raw increment
    assert r[2] <= min(r[0], r[1]) + 1e-7 and r[3] < r[4]  # and the hold's floor (truth, mean replaced) beats persistence
    dist = np.linspace(0.0, 10.0, len(e_model))
    assert mod.shares(e_model, dist).sum() == pytest.approx(1.0) and mod.shares(e_pers, dist)[-1] > 0


def test_per_channel_noise_scales_each_channel_and_must_name_every_one(short_traj):
    cfg = S.StepConfig(noise={"u": 0.5, "v": 0.5, "p": 0.0}, noise_ref="increment")
    s = S.fit_stats([short_traj], cfg)
    scale = S._noise_scale(cfg, s)
    assert torch.allclose(scale[:2], 0.5 * torch.tensor(s["d_std"][:2], dtype=torch.float32)) and scale[2] == 0
    st = S.Stepper(S.build_model(cfg, s), cfg, s)
    g, X = st.graph(short_traj), torch.from_numpy(short_traj.states(cfg.fields))
    state, _, _ = S._sample(st, g, X, np.random.default_rng(0), scale)
    t = next(k for k in range(len(X)) if torch.equal(state[:, 2], X[k][:, 2]))  # p came through clean
    assert not torch.equal(state[:, 0], X[t][:, 0])  # u did not
    with pytest.raises(ValueError, match="each of the channels"):
        S._noise_scale(S.StepConfig(noise={"u": 0.5, "v": 0.5}), s)
    with pytest.raises(ValueError, match="non-negative"):
        S.StepConfig(noise={"u": -1.0, "v": 0.5, "p": 0.1})


def test_transient_bench_reads_one_noise_or_one_per_channel(bench_module):
    mod = bench_module("transient")
    assert mod.parse(["--noise", "0.5"]).noise == 0.5
    assert mod.parse(["--noise", "u=0.5,v=0.5,p=0"]).noise == {"u": 0.5, "v": 0.5, "p": 0.0}
    with pytest.raises(SystemExit):
        mod.parse(["--noise", "u=half"])
    a = mod.parse(["--poisson", "p", "--diagnosed", "p", "--zero-mean", ""])
    cfg = mod.step_config("ugraph", a, 0, {"lr": 1e-3, "hidden": 8})
    assert cfg.poisson == ["p"] and cfg.diagnosed == ["p"] and cfg.zero_mean == []
    a = mod.parse(["--noise", "0.1", "--noises", "0.5;u=0.5,v=0.5,p=0.2"])
    assert a.noises == [0.5, {"u": 0.5, "v": 0.5, "p": 0.2}]
    assert mod.step_config("mgn", a, 0, {"lr": 1e-3, "hidden": 8, "noise": a.noises[1]}).noise == a.noises[1]
    assert mod.step_config("mgn", a, 0, {"lr": 1e-3, "hidden": 8}).noise == 0.1  # not searched: --noise
    with pytest.raises(SystemExit):
        mod.parse(["--noises", "0.5;p=x"])


def _shipped_case_as_folder(root, k: int, name: str, index: int) -> None:
    """Shipped case ``k`` written the way the generator writes a case folder, as case ``name`` / ``index``."""
    npz = Path(__file__).resolve().parents[1] / "datasets" / "cylinder_flow" / "data" / "cylinder_flow_subset.npz"
    with np.load(npz, allow_pickle=False) as z:
        cards = json.loads(str(z["cards"]))
        arrays = {n[len(f"c{k}_"):]: z[n] for n in z.files if n.startswith(f"c{k}_")}
    d = root / name
    d.mkdir(parents=True)
    np.savez_compressed(d / "trajectory.npz", **arrays)
    (d / "case.json").write_text(json.dumps(dict(cards[k], name=name, index=index)))


def test_transient_bench_adds_the_train_split_of_another_folder(bench_module, tmp_path):
    """``--extra-train DIR``: DIR's train-split cases join the training set; validation and test stay those
    of ``--data``; a case that ``--data`` also holds is refused by name."""
    mod = bench_module("transient")
    base = mod._setup(mod.parse(["--data", "shipped"]), [])
    extra = tmp_path / "more"
    _shipped_case_as_folder(extra, 0, "case_00091", 91)
    _shipped_case_as_folder(extra, 1, "case_00094", 94)  # test split (94 % 5 == 4): not used
    train, val, res = mod._setup(mod.parse(["--data", "shipped", "--extra-train", str(extra)]), [])
    assert res["extra_cases"] == ["case_00091"] and [t.name for t in train][-1] == "case_00091"
    assert len(train) == len(base[0]) + 1 and [t.name for t in val] == [t.name for t in base[1]]
    assert "(of them 1 from" in mod._extra_text(res) and res["splits"]["counts"]["extra_train"] == 1
    same = tmp_path / "same"
    _shipped_case_as_folder(same, 0, base[0][0].name, 1)
    with pytest.raises(ValueError, match=f"case {base[0][0].name} is also in shipped"):
        mod._setup(mod.parse(["--data", "shipped", "--extra-train", str(same)]), [])


def test_poisson_head_adds_a_solution_that_vanishes_where_the_channel_is_fixed(short_traj, tmp_path):
    from meshops.nn.poisson import poisson_solve

    torch.manual_seed(0)
    cfg = S.StepConfig(model_options={"hidden": 8, "n_blocks": 1}, history=1, poisson=["p"], steps=30, lr=3e-3,
                       noise=0.1, noise_ref="increment")
    st, info = S.train_stepper([short_traj], cfg, out=tmp_path)
    assert len(st.stats["poisson_scale"]) == 1 and st.stats["poisson_scale"][0] > 0
    g = st.graph(short_traj)
    X = torch.from_numpy(short_traj.states(["u", "v", "p"]))
    g.x = st.inputs(g, X[1], X[:1])
    with torch.no_grad():
        out = st.model(g)
        y = st.raw(g, X[1], X[:1])
    assert out.shape[1] == 4 and y.shape[1] == 3  # one source output for p
    assert torch.equal(y[:, :2], out[:, :2])
    fac = [st._factors[int(g.poisson[0, 0])]]
    x = poisson_solve(out[:, 3], fac, [0, len(out)]) / st.stats["poisson_scale"][0]
    assert torch.allclose(y[:, 2], out[:, 2] + x, atol=1e-6) and x.abs().max() > 1e-4
    outlet = g.fixed[:, 2]
    assert outlet.any() and torch.equal(x[outlet], torch.zeros(int(outlet.sum())))  # p = 0 at the outlet: no response
    st.model.zero_grad()
    st.raw(g, X[1], X[:1])[:, 2].pow(2).sum().backward()
    last = [p for p in st.model.parameters() if p.grad is not None][-1]
    assert last.grad.abs().sum() > 0
    st2 = S.load_stepper(tmp_path / "best.pt")
    assert np.allclose(st.rollout(short_traj, 3), st2.rollout(short_traj, 3), atol=1e-5)
    bare = dataclasses.replace(short_traj, mesh=short_traj.mesh.copy())
    bare.mesh.cells = []
    with pytest.raises(DatasetError, match="needs a triangle or quad mesh"):
        st.graph(bare)
    with pytest.raises(ValueError, match="poisson channel 'q'"):
        S.fit_stats([short_traj], S.StepConfig(poisson=["q"]))


def test_ensemble_steps_the_mean_of_its_members_and_rolls_out_from_it(trained, short_traj, tmp_path):
    from meshops.cli import main
    from meshops.train.stepping_ensemble import StepEnsemble, load_ensemble

    st, _, path = trained
    cfg = dataclasses.replace(st.cfg, seed=1, steps=40)
    other, _ = S.train_stepper([short_traj], cfg, out=tmp_path / "m2")
    ens = load_ensemble([str(path), str(tmp_path / "m2" / "best.pt")])
    assert isinstance(ens, StepEnsemble) and isinstance(load_ensemble([str(path)]), S.Stepper)
    X = torch.from_numpy(short_traj.states(["u", "v", "p"]))
    with torch.no_grad():
        a, b = st.step_window(st.graph(short_traj), X[3:4]), other.step_window(other.graph(short_traj), X[3:4])
        m = ens.step_window(ens.graph(short_traj), X[3:4])
    assert not torch.allclose(a, b, atol=1e-4) and torch.allclose(m, (a + b) / 2, atol=1e-6)
    R = ens.rollout(short_traj, 4)
    with torch.no_grad():  # each step is the mean of the members stepped from the ensemble's own state
        s1 = (st.step_window(st.graph(short_traj), torch.from_numpy(R[1])[None])
              + other.step_window(other.graph(short_traj), torch.from_numpy(R[1])[None])) / 2
    assert R.shape == (5,) + X.shape[1:] and np.allclose(R[2], s1.numpy(), atol=1e-5)
    w = StepEnsemble([st, other], weights=[[1, 1, 0.25], [0, 0, 0.75]])  # u, v from the first; p mostly the second
    with torch.no_grad():
        mw = w.step_window(w.graph(short_traj), X[3:4])
    assert torch.allclose(mw[:, :2], a[:, :2], atol=1e-6) and torch.allclose(mw[:, 2], 0.25 * a[:, 2] + 0.75 * b[:, 2], atol=1e-6)
    with pytest.raises(ValueError, match="columns"):
        StepEnsemble([st, other], weights=[[1, 1, 0.5], [0, 0, 0.6]])
    hist = S.train_stepper([short_traj], dataclasses.replace(st.cfg, history=1, steps=2))[0]
    with pytest.raises(ValueError, match="member 1 has history 1"):
        StepEnsemble([st, hist])
    dt = st.stats["dt"]
    with pytest.raises(ValueError, match=f"member 1 steps dt {2 * dt}, member 0 {dt}"):
        StepEnsemble([st, S.Stepper(other.model, other.cfg, {**other.stats, "dt": 2 * dt})])
    StepEnsemble([st, S.Stepper(other.model, other.cfg, {**other.stats, "dt": dt * (1 + 1e-9)})])  # the same interval
    with pytest.raises(ValueError, match="two or more"):
        StepEnsemble([st])
    out = tmp_path / "ro"
    assert main(["rollout", str(path), str(tmp_path / "m2" / "best.pt"), "cylinder_flow:0", "--option", "max_steps=14",
                 "--steps", "4", "--out", str(out), "--no-movie"]) == 0
    rep = json.loads((out / "rollout_errors.json").read_text())
    assert len(rep["checkpoint"]) == 2 and np.allclose(rep["rel_l2"]["u"], S.rollout_errors(R, X[:5].numpy())[:, 0], atol=1e-5)


def test_a_trajectory_the_model_cannot_step_is_refused_and_an_unseen_one_warned(caplog):
    cfg = S.StepConfig(model_options={"hidden": 8, "n_blocks": 1}, globals=["Re"])
    ds = load_dataset("cylinder_flow", max_steps=6)
    a, b = ds[0], ds[1]
    st = _untrained(cfg, [a, b])
    t0 = a.times[0]
    half = dataclasses.replace(a, name="half", times=t0 + 0.5 * (a.times - t0))
    with pytest.raises(DatasetError, match=r"'half': snapshots are 0.1 apart, the model steps 0.2 "):
        st.graph(half)
    uneven = dataclasses.replace(a, name="uneven", times=np.r_[a.times[:-1], a.times[-1] + 0.3])
    with pytest.raises(DatasetError, match=r"'uneven': snapshots are not evenly spaced in time \(intervals 0.2 .. 0.5\)"):
        st.graph(uneven)
    p = a.fields["p"].copy()
    p[3, 7] = np.nan
    with pytest.raises(DatasetError, match=r"'holed': channel 'p' has 1 non-finite value\(s\), the first at snapshot 3"):
        st.graph(dataclasses.replace(a, name="holed", fields={**a.fields, "p": p}))
    with pytest.raises(DatasetError, match=r"'half' has snapshots 0.1 apart, '.*' 0.2; a step model learns one interval"):
        S.fit_stats([a, half], cfg)
    with pytest.raises(DatasetError, match="'half': snapshots are 0.1 apart"):  # refused before any training step
        S.train_stepper([a, b], dataclasses.replace(cfg, steps=10**6, val_every=10), val=[half])
    fast = dataclasses.replace(a, name="fast", fields={**a.fields, "u": 3 * a.fields["u"]}, globals={"Re": 5000.0})
    with caplog.at_level(logging.WARNING):
        st.graph(fast)
        st.graph(fast)  # a second graph of the same case (validation, ensemble members) says nothing new
    assert len(re.findall(r"trajectory 'fast': state channel 'u' = .* is outside the training range", caplog.text)) == 1
    assert len(re.findall(r"trajectory 'fast': global 'Re' = 5000 is outside the training range \[", caplog.text)) == 1
    assert "'v'" not in caplog.text and "'p'" not in caplog.text  # the channels that are in range are not named
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        st.graph(a)
    assert not caplog.text  # a training case is in range


def test_a_rollout_that_blows_up_writes_the_steps_before_and_exits_1(trained, tmp_path, capsys):
    from meshops.cli import main
    from meshops.io import read

    st = S.load_stepper(trained[2])
    with torch.no_grad():
        for prm in st.model.parameters():
            prm.mul_(1e12)  # the real model with weights far too large: its first step overflows
    path = S.save_stepper(st, tmp_path / "huge" / "best.pt")
    out = tmp_path / "ro"
    rc = main(["rollout", str(path), "cylinder_flow:0", "--option", "max_steps=14", "--steps", "8",
               "--out", str(out), "--frames", "3"])
    err = capsys.readouterr().err
    assert rc == 1 and "meshops rollout: 'case_00000': the rollout blew up (non-finite state) at step 1 of 8" in err
    rep = json.loads((out / "rollout_errors.json").read_text())
    assert rep["blew_up_at_step"] == 1 and len(rep["rel_l2"]["u"]) == 1
    series = read(out / "rollout.pvd", time="all")
    series = series if isinstance(series, list) else [series]
    assert len(series) == 1 and all(np.isfinite(a).all() for a in series[0].point_data.values())


def test_evaluate_gives_no_error_over_a_horizon_the_rollout_did_not_reach(trained, short_traj, caplog):
    st = S.load_stepper(trained[2])
    st.d_std.mul_(1e30)  # increments scaled far past the data: one step is finite, the rollout overflows
    with caplog.at_level(logging.WARNING):
        ev = S.evaluate_trajectories(st, [short_traj])
    rec = ev["cases"][short_traj.name]
    k = rec["blew_up_at_step"]
    assert k is not None and 1 <= k < 13
    assert f"the rollout of '{short_traj.name}' blew up (non-finite state) at step {k}" in caplog.text
    assert np.isfinite(list(rec["one_step"].values())).all()  # float64 errors: 1e27 is a number, not inf
    for key in ("rollout_50", "full"):  # not a mean over the steps before the blow-up
        assert set(rec[key].values()) == {None} and set(ev["mean"][key].values()) == {None}
        assert np.isfinite(list(rec[key + "_persistence"].values())).all()
    json.dumps(ev, allow_nan=False)  # the report stays valid JSON


def test_an_openfoam_case_is_a_trajectory_a_model_trains_on_and_rolls_out(shared_data, tmp_path):
    """OpenFOAM's cavity tutorial (one cell thick, cell values): 2D point fields from vtk's cell-to-point
    averages with the patch values on the walls; the front/back ``empty`` patch is no region in 2D."""
    import zipfile

    from meshops.cli import main
    from meshops.data.trajectory import TrajectoryFolder
    from meshops.io import read

    with zipfile.ZipFile(shared_data / "vtk-data" / "openfoam_cavity.zip") as z:
        z.extractall(tmp_path)
    case = tmp_path / "OpenFOAM" / "cavity"
    t = TrajectoryFolder(str(case.parent), ["U", "p"], pattern="cavity")[0]
    assert t.dim == 2 and t.mesh.n_points == 21 * 21 and np.allclose(t.times, np.arange(0, 2.51, 0.5))
    assert sorted(t.mesh.boundaries) == ["fixedWalls", "movingWall"]
    assert t.channel_names(["U", "p"]) == ["U_x", "U_y", "p"]
    lid = np.unique(t.mesh.boundaries["movingWall"][0].data)
    inner = lid[(t.mesh.points[lid, 0] > 1e-9) & (t.mesh.points[lid, 0] < 0.1 - 1e-9)]
    assert np.allclose(t.fields["U"][3][inner], [1.0, 0.0])  # the lid's patch value, not a cell average
    cfg = S.StepConfig(fields=["U", "p"], steps=20, model_options={"hidden": 8, "n_blocks": 2})
    S.train_stepper([t], cfg, out=tmp_path / "m")
    assert main(["rollout", str(tmp_path / "m" / "best.pt"), str(case), "--steps", "3", "--out", str(tmp_path / "ro"),
                 "--no-movie"]) == 0
    last = read(tmp_path / "ro" / "rollout.pvd", time="all")[-1]
    assert {"U_x_pred", "U_y_pred", "p_pred", "p_error"} <= set(last.point_data) and last.n_points == 441


def test_rollout_refuses_an_unknown_movie_field_before_writing_anything(trained, tmp_path, capsys):
    from meshops.cli import main

    out = tmp_path / "ro"
    rc = main(["rollout", str(trained[2]), "cylinder_flow:0", "--option", "max_steps=14", "--steps", "3",
               "--out", str(out), "--field", "w"])
    assert rc == 1 and "--field 'w' is not a channel; channels: ['u', 'v', 'p']" in capsys.readouterr().err
    assert not out.exists()
