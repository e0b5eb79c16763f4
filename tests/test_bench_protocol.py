"""benchmarks/protocol.py: validation-only selection, early stopping, spread, splits, report lines."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "protocol.py"


@pytest.fixture(scope="module")
def P():
    spec = importlib.util.spec_from_file_location("meshops_bench_protocol_test", PATH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def fake_fit(P, val_of, test_of, calls):
    """A trainer whose validation and test scores disagree on the best candidate."""

    def fit(cand, seed, budget):
        key = (cand["lr"], cand["width"])

        def test():
            calls.append((key, seed))
            return {"rel_l2": test_of[key] + 0.01 * seed}

        return P.Run(val=val_of[key] + 0.001 * seed, epochs_used=budget.max_epochs, best_epoch=1, test=test,
                     info={"params": 10})

    return fit


def test_selection_uses_validation_only(P):
    cands = P.candidates([1e-3, 1e-2], [8, 16])
    val_of = {(1e-3, 8): 0.5, (1e-3, 16): 0.2, (1e-2, 8): 0.4, (1e-2, 16): 0.3}
    test_of = {(1e-3, 8): 0.01, (1e-3, 16): 0.9, (1e-2, 8): 0.8, (1e-2, 16): 0.7}  # test would pick (1e-3, 8)
    calls = []
    spec = P.ModelSpec(cands, fake_fit(P, val_of, test_of, calls))
    out = P.run_model(spec, [0, 1, 2], P.Budget(5, 2))
    assert (out["config"]["lr"], out["config"]["width"]) == (1e-3, 16)
    # test scores were computed for the selected candidate's three seeds and nothing else
    assert sorted(calls) == [((1e-3, 16), 0), ((1e-3, 16), 1), ((1e-3, 16), 2)]
    assert all("test" not in s for s in out["search"])
    assert out["summary"]["rel_l2"]["mean"] == pytest.approx(0.91)


def test_refine_stage_searches_variants_of_the_winner_on_validation(P):
    cands = P.candidates([1e-3, 1e-2], [8])
    seen, tested = [], []

    def fit(c, seed, budget):
        seen.append(dict(c))
        val = {1e-3: 0.5, 1e-2: 0.4}[c["lr"]] - (0.3 if c.get("opt") == "b" else 0.0)
        return P.Run(val=val, epochs_used=1, best_epoch=1, test=lambda: tested.append(dict(c)) or {"m": val})

    def refine(win):  # the winner itself (opt "a") and one other option
        return [{**win, "opt": "a"}, {**win, "opt": "b", "label": "stage 2"}]

    spec = P.ModelSpec([{**c, "opt": "a"} for c in cands], fit, refine=refine)
    out = P.run_model(spec, [0, 1], P.Budget(3, 1))
    assert [c.get("opt") for c in seen[:3]] == ["a", "a", "b"] and seen[2]["lr"] == 1e-2  # variant of the winner
    assert out["config"]["opt"] == "b" and len(out["search"]) == 3  # the winner is not trained twice; best of both stages
    assert [t["opt"] for t in tested] == ["b", "b"]  # test only for the kept candidate's seeds


def test_select_skips_diverged_and_raises_when_all_diverge(P):
    cands = P.candidates([1e-3, 1e-2], [8])

    def fit(c, seed, budget):
        return P.Run(val=math.nan if c["lr"] == 1e-3 else 0.3, epochs_used=1, best_epoch=1, test=dict)

    assert P.select(cands, fit, 0, P.Budget(3, 1))[0] == 1

    def bad(c, seed, budget):
        return P.Run(val=math.inf, epochs_used=1, best_epoch=1, test=dict)

    with pytest.raises(RuntimeError, match="every candidate diverged"):
        P.select(cands, bad, 0, P.Budget(3, 1))


def test_candidates_add_published_default_once(P):
    c = P.candidates([1e-3], [32, 64], default={"lr": 5e-4, "width": 24})
    assert len(c) == 3 and c[-1]["label"] == "published default"
    c2 = P.candidates([1e-3], [32, 64], default={"lr": 1e-3, "width": 64})
    assert len(c2) == 2 and c2[1]["label"] == "grid = published default"


def test_spread(P):
    s = P.spread([1.0, 2.0, 4.0])
    assert s["mean"] == pytest.approx(7 / 3)
    assert s["std"] == pytest.approx(np.std([1.0, 2.0, 4.0], ddof=1))
    assert (s["min"], s["max"], s["n"]) == (1.0, 4.0, 3)
    assert P.spread([3.0])["std"] == 0.0
    with pytest.raises(ValueError, match="over nothing"):
        P.spread([])


def test_early_stopping_stops_at_the_right_epoch_and_restores_best(P):
    torch = pytest.importorskip("torch")
    curve = [1.0, 0.8, 0.5, 0.6, 0.55, 0.7, 0.4, 0.3]  # best 0.5 at epoch 3; patience 3 -> stop at 6
    model = torch.nn.Linear(1, 1, bias=False)
    state = {"epoch": 0}

    def train(n):
        for _ in range(n):
            state["epoch"] += 1
            with torch.no_grad():
                model.weight.fill_(float(state["epoch"]))

    def validate():
        return curve[state["epoch"] - 1]

    f = P.fit_early_stopping(train, validate, P.Budget(max_epochs=8, patience=3), module=model)
    assert (f.best_epoch, f.epochs_used, f.stopped_early, f.best_val) == (3, 6, True, 0.5)
    assert float(model.weight.detach()) == 3.0  # the weights of epoch 3 are back
    # without stopping, the whole budget is used
    state["epoch"] = 0
    f2 = P.fit_early_stopping(train, validate, P.Budget(max_epochs=8, patience=10))
    assert (f2.best_epoch, f2.epochs_used, f2.stopped_early) == (8, 8, False)


def test_early_stopping_eval_every_and_min_delta(P):
    curve = {2: 1.0, 4: 0.995, 6: 0.99, 8: 0.5}
    state = {"e": 0}

    def train(n):
        state["e"] += n

    f = P.fit_early_stopping(train, lambda: curve[state["e"]], P.Budget(8, patience=2, eval_every=2, min_delta=0.02))
    assert (f.best_epoch, f.epochs_used) == (2, 6)  # 0.995 and 0.99 are < 2% better


def test_early_stopping_stops_on_divergence(P):
    stop = P.EarlyStopping(patience=5)
    assert not stop.update(1, 0.5)
    assert stop.update(2, float("nan"))
    assert stop.diverged and stop.best == 0.5


def test_fixed_split_is_fixed_and_disjoint(P):
    a, b = P.fixed_split(50, 10, 5, seed=3), P.fixed_split(50, 10, 5, seed=3)
    assert a == b
    assert len(a["val"]) == 10 and len(a["test"]) == 5 and len(a["train"]) == 35
    assert set(a["val"]).isdisjoint(a["train"]) and set(a["test"]).isdisjoint(a["train"] + a["val"])
    with pytest.raises(ValueError, match="non-empty training"):
        P.fixed_split(10, 5, 5)
    rec = P.split_record(a)
    assert rec["counts"] == {"val": 10, "train": 35, "test": 5} and len(rec["digest"]) == 12


def _res(P, a_vals, b_vals):
    def model(label, vals):
        return {"label": label, "summary": {"err": P.spread(vals)}, "search": [{}] * 3, "config": {"lr": 1e-3},
                "runs": [{"params": 5}], "epochs_used": P.spread([4, 5, 6]), "best_epoch": [2, 3, 4],
                "val": P.spread(vals)}

    return {"budget": P.Budget(10, 3).__dict__, "seeds": [0, 1, 2],
            "splits": P.split_record(P.fixed_split(30, 5, 5)), "models": {"a": model("A", a_vals),
                                                                          "b": model("B", b_vals)}}


def test_conclusion_from_the_numbers(P):
    res = _res(P, [0.10, 0.11, 0.12], [0.20, 0.21, 0.22])
    line = P.conclusion(res, "err")
    assert "A beats B" in line and "48% lower" in line and "do not overlap" in line
    res2 = _res(P, [0.10, 0.30, 0.12], [0.20, 0.21, 0.22])
    line2 = P.conclusion(res2, "err")
    assert "A beats B" in line2 and "not a clear win" in line2
    table = P.results_table(res, [("err", "test err")])
    assert "0.1100 ± 0.0100 [0.1000, 0.1200]" in table
    para = P.statement(res, "a task", "validation err", "lr x width")
    assert "seeds [0, 1, 2]" in para and "5 val, 20 train, 5 test" in para and "3 candidates" in para


def test_merge_results_adds_seeds_and_models(P):
    val_of = {(1e-3, 8): 0.5}
    test_of = {(1e-3, 8): 0.1}
    spec = P.ModelSpec(P.candidates([1e-3], [8]), fake_fit(P, val_of, test_of, []))
    budget = P.Budget(3, 1)
    rec = P.split_record(P.fixed_split(20, 4))
    a = P.run_protocol({"m": spec}, [0], budget, splits=rec, min_seeds=1)
    b = P.run_protocol({"m": spec, "n": spec}, [1, 2], budget, splits=rec, min_seeds=1)
    merged = P.merge_results([a, b])
    assert merged["seeds"] == [0, 1, 2] and [r["seed"] for r in merged["models"]["m"]["runs"]] == [0, 1, 2]
    assert merged["models"]["m"]["summary"]["rel_l2"]["mean"] == pytest.approx(0.11)
    assert merged["models"]["m"]["summary"]["rel_l2"]["n"] == 3 and len(merged["models"]["n"]["runs"]) == 2
    other = P.run_protocol({"m": spec}, [3], P.Budget(5, 1), splits=rec, min_seeds=1)
    with pytest.raises(ValueError, match="budget"):
        P.merge_results([a, other])


def test_merge_results_joins_searches_run_apart_and_selects_on_validation(P):
    val_of = {(1e-3, 8): 0.5, (1e-3, 16): 0.3}
    test_of = {(1e-3, 8): 0.1, (1e-3, 16): 0.9}  # test would pick width 8
    budget, rec = P.Budget(3, 1), P.split_record(P.fixed_split(20, 4))

    def part(width, seeds):
        spec = P.ModelSpec(P.candidates([1e-3], [width]), fake_fit(P, val_of, test_of, []))
        return P.run_protocol({"m": spec}, seeds, budget, splits=rec, min_seeds=1)

    for parts in ([part(8, [0, 1, 2]), part(16, [0]), part(16, [1, 2])],
                  [part(16, [0]), part(8, [0, 1, 2]), part(16, [1, 2])]):
        m = P.merge_results(parts)["models"]["m"]
        assert m["config"]["width"] == 16 and [r["seed"] for r in m["runs"]] == [0, 1, 2]
        assert sorted(x["config"]["width"] for x in m["search"]) == [8, 16]
        assert m["summary"]["rel_l2"]["mean"] == pytest.approx(0.91)
