"""One evaluation protocol for the model benchmarks (darcy, elliptic, sphere, coronary, transient).

A benchmark states its protocol once, through this module:

* **Fixed splits**: :func:`fixed_split` draws train / validation / test ids from one seeded
  permutation; :func:`split_record` writes them (counts, ids, a digest) into the results JSON.
* **Validation search**: :func:`candidates` builds a small grid (learning rate x width) plus each
  model's published default configuration as one more candidate. Every candidate is trained once
  (seed ``seeds[0]``) and the one with the lowest *validation* score is kept: the test scores of
  the search runs are never computed (a run's test score is a callable that is only called for
  the selected candidate's runs).
* **Early stopping**: :class:`EarlyStopping` / :func:`fit_early_stopping` train under a stated
  maximum budget (epochs or steps), validate every ``eval_every`` units, keep the weights of the
  best validation score and stop after ``patience`` evaluations without improvement. Epochs used
  and the best-validation epoch are recorded.
* **Seeds and spread**: the selected candidate is trained with every seed in ``seeds`` (>= 3;
  the search run of ``seeds[0]`` is reused); :func:`spread` gives mean, sample std (ddof 1),
  min and max.
* **Report**: :func:`results_table` (Markdown, mean +- std [min, max]), :func:`statement` (the
  protocol in one paragraph) and :func:`conclusion` (which model wins, by how much, whether the
  seed ranges overlap) are generated from the numbers.

A benchmark provides, per model, a list of candidate configurations and a ``fit(candidate, seed,
budget) -> Run`` function; :func:`run_protocol` does the rest. ``meshops bench protocol`` prints an
example statement.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import logging
import math
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

log = logging.getLogger("meshops.bench.protocol")


# ----------------------------------------------------------------------------- budget and early stopping
@dataclass(frozen=True)
class Budget:
    """The training budget every candidate and seed gets.

    ``max_epochs``: the most units (``unit``: "epochs" or "steps") a run may train; ``patience``:
    validations without improvement before stopping; ``eval_every``: units between validations;
    ``min_delta``: relative improvement that counts as better (0.01 = 1%).
    """

    max_epochs: int
    patience: int
    eval_every: int = 1
    min_delta: float = 0.0
    unit: str = "epochs"

    def __post_init__(self) -> None:
        if self.max_epochs < 1 or self.patience < 1 or self.eval_every < 1:
            raise ValueError(f"Budget: max_epochs ({self.max_epochs}), patience ({self.patience}) and eval_every "
                             f"({self.eval_every}) must be >= 1")
        if self.min_delta < 0:
            raise ValueError(f"Budget: min_delta must be >= 0, got {self.min_delta}")

    def describe(self) -> str:
        every = "" if self.eval_every == 1 else f" (validated every {self.eval_every} {self.unit})"
        return (f"at most {self.max_epochs} {self.unit}{every}, early stopping after {self.patience} validations "
                "without improvement, the weights of the best validation score kept")


class EarlyStopping:
    """Track a validation score (lower is better) and say when to stop.

    ``update(epoch, value)`` returns True when training should stop: after ``patience`` updates
    without a (relative ``min_delta``) improvement, or at once on a non-finite value (a diverged
    run; logged with the value). ``best``, ``best_epoch`` and ``history`` hold what was seen.
    """

    def __init__(self, patience: int, min_delta: float = 0.0):
        self.patience, self.min_delta = patience, min_delta
        self.best = math.inf
        self.best_epoch = 0
        self.bad = 0
        self.diverged = False
        self.history: list[tuple[int, float]] = []

    def update(self, epoch: int, value: float) -> bool:
        value = float(value)
        self.history.append((epoch, value))
        if not math.isfinite(value):
            log.warning("validation score %r at epoch %d: the run diverged, stopping", value, epoch)
            self.diverged = True
            return True
        if value < self.best * (1.0 - self.min_delta) or not math.isfinite(self.best):
            self.best, self.best_epoch, self.bad = value, epoch, 0
            return False
        self.bad += 1
        return self.bad >= self.patience


@dataclass
class Fitted:
    """What :func:`fit_early_stopping` returns."""

    best_val: float
    best_epoch: int
    epochs_used: int
    stopped_early: bool
    diverged: bool
    history: list[tuple[int, float]]
    seconds: float


def fit_early_stopping(train_units: Callable[[int], Any], validate: Callable[[], float], budget: Budget,
                       module: Any = None) -> Fitted:
    """Train ``budget.eval_every`` units at a time, validate, stop early; restore the best weights.

    ``train_units(n)`` trains n more units (epochs or steps); ``validate()`` returns the
    validation score (lower is better). With ``module`` (a ``torch.nn.Module``), its state at the
    best validation score is restored at the end. A run whose first validation is non-finite
    keeps best_val = inf.
    """
    stop = EarlyStopping(budget.patience, budget.min_delta)
    best_state = None
    done = 0
    t0 = time.perf_counter()
    stopped = False
    while done < budget.max_epochs:
        n = min(budget.eval_every, budget.max_epochs - done)
        train_units(n)
        done += n
        before = stop.best_epoch
        if stop.update(done, validate()):
            stopped = done < budget.max_epochs
            break
        if module is not None and stop.best_epoch == done and stop.best_epoch != before:
            best_state = copy.deepcopy(module.state_dict())
    if module is not None and best_state is not None:
        module.load_state_dict(best_state)
    return Fitted(stop.best, stop.best_epoch, done, stopped, stop.diverged, stop.history,
                  time.perf_counter() - t0)


# ----------------------------------------------------------------------------- splits and candidates
def fixed_split(n: int, n_val: int, n_test: int = 0, seed: int = 0) -> dict[str, list[int]]:
    """Train / val / test ids of ``range(n)`` from one permutation seeded by ``seed`` (always the same)."""
    if n_val < 1 or n_test < 0 or n_val + n_test >= n:
        raise ValueError(f"fixed_split: n={n} items cannot give {n_val} validation and {n_test} test items "
                         "and a non-empty training split")
    perm = np.random.default_rng(seed).permutation(n).tolist()
    out = {"val": sorted(perm[:n_val]), "train": sorted(perm[n_val + n_test:])}
    if n_test:
        out["test"] = sorted(perm[n_val:n_val + n_test])
    return out


def split_record(splits: dict[str, Sequence[Any]], note: str = "") -> dict[str, Any]:
    """A JSON-able record of named splits: counts, the ids themselves and a short digest of them."""
    ids = {k: [v if isinstance(v, (int, str)) else str(v) for v in vals] for k, vals in splits.items()}
    digest = hashlib.sha256(json.dumps(ids, sort_keys=True).encode()).hexdigest()[:12]
    return {"counts": {k: len(v) for k, v in ids.items()}, "ids": ids, "digest": digest, "note": note}


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two candidates with the same settings (their labels aside)."""
    return {k: v for k, v in a.items() if k != "label"} == {k: v for k, v in b.items() if k != "label"}


def candidates(lrs: Iterable[float], widths: Iterable[int], default: dict[str, Any] | None = None,
               width_key: str = "width", base: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The validation search: every (learning rate, width) pair, plus ``default`` (the model's
    published configuration) unless the grid already holds it. Each candidate has ``lr``,
    ``width_key`` and ``label`` ("grid" or "published default"); ``base`` is merged into all."""
    out = []
    for lr, w in itertools.product(lrs, widths):
        out.append({**(base or {}), "lr": float(lr), width_key: int(w), "label": "grid"})
    if default is not None:
        d = {**(base or {}), **default, "label": "published default"}
        same = [c for c in out if _same(c, d)]
        if same:
            same[0]["label"] = "grid = published default"
        else:
            out.append(d)
    return out


# ----------------------------------------------------------------------------- runs
@dataclass
class Run:
    """One trained model: its validation score, the budget it used, and a way to score it on test.

    ``test`` is called only for the selected candidate's runs (never during the search); it
    returns metric name -> value. ``info``: anything else to record (params, seconds, ...).
    """

    val: float
    epochs_used: int
    best_epoch: int
    test: Callable[[], dict[str, float]]
    info: dict[str, Any] = field(default_factory=dict)


FitFn = Callable[[dict[str, Any], int, Budget], Run]


@dataclass
class ModelSpec:
    """A model under the protocol: its candidates and how to train one (``fit(cand, seed, budget)``).

    ``refine(winner) -> candidates``: a second stage of the search, variants of the first stage's
    winner in options the grid does not span (trained and judged the same way, on validation);
    the best of both stages is kept.
    """

    candidates: list[dict[str, Any]]
    fit: FitFn
    label: str = ""
    peer: bool = False
    refine: Callable[[dict[str, Any]], list[dict[str, Any]]] | None = None


def spread(values: Sequence[float]) -> dict[str, float]:
    """mean, sample standard deviation (ddof 1; 0 for one value), min, max and n of ``values``."""
    v = np.asarray(list(values), dtype=np.float64)
    if v.size == 0:
        raise ValueError("spread: no values (a metric over nothing)")
    if not np.all(np.isfinite(v)):
        log.warning("spread: non-finite values %s", v.tolist())
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if v.size > 1 else 0.0,
            "min": float(v.min()), "max": float(v.max()), "n": int(v.size)}


def select(cands: list[dict[str, Any]], fit: FitFn, seed: int, budget: Budget) -> tuple[int, list[Run]]:
    """Train every candidate once with ``seed``; the index of the lowest validation score, and the runs.

    Only ``Run.val`` is looked at: no test score is computed here. Ties keep the first candidate;
    a non-finite validation score never wins (all non-finite: an error naming the candidates).
    """
    if not cands:
        raise ValueError("select: no candidates")
    runs = []
    for i, c in enumerate(cands):
        r = fit(dict(c), seed, budget)
        log.debug("candidate %d %s: val %.4g (%d %s, best at %d)", i, c, r.val, r.epochs_used, budget.unit,
                 r.best_epoch)
        runs.append(r)
    return best_candidate([r.val for r in runs], cands), runs


def best_candidate(vals: Sequence[float | None], cands: Sequence[Any]) -> int:
    """Index of the lowest validation score; ties keep the first; a non-finite (or missing) score
    never wins, and all non-finite is an error naming the candidates."""
    v = [x if x is not None and math.isfinite(x) else math.inf for x in vals]
    if not any(math.isfinite(x) for x in v):
        raise RuntimeError(f"select: every candidate diverged (validation scores {list(vals)}) for {list(cands)}")
    return int(np.argmin(v))


def _run_record(r: Run, seed: int, test: dict[str, float] | None) -> dict[str, Any]:
    out = {"seed": seed, "val": r.val, "epochs_used": r.epochs_used, "best_epoch": r.best_epoch, **r.info}
    if test is not None:
        out["test"] = test
    return out


def run_model(spec: ModelSpec, seeds: Sequence[int], budget: Budget, name: str = "") -> dict[str, Any]:
    """Search on validation (seed ``seeds[0]``), then train the winner with every seed and score it on test."""
    if len(seeds) < 1:
        raise ValueError("run_model: no seeds")
    t0 = time.perf_counter()
    cands = list(spec.candidates)
    best, search = select(cands, spec.fit, seeds[0], budget)
    if spec.refine is not None:
        more = [c for c in spec.refine(dict(cands[best])) if not any(_same(c, d) for d in cands)]
        if more:
            print(f"  {name}: stage 2, {len(more)} variants of {cands[best]}", flush=True)
            _, runs2 = select(more, spec.fit, seeds[0], budget)
            cands, search = cands + more, search + runs2
            best = best_candidate([r.val for r in search], cands)
    chosen = cands[best]
    print(f"  {name}: selected {chosen} on validation ({search[best].val:.4g})", flush=True)
    runs = [search[best]] + [spec.fit(dict(chosen), s, budget) for s in seeds[1:]]
    records = []
    for s, r in zip(seeds, runs, strict=True):
        records.append(_run_record(r, s, r.test()))
        print(f"    seed {s}: val {r.val:.4g}, {r.epochs_used} {budget.unit} (best {r.best_epoch}), test "
              + ", ".join(f"{k} {v:.4g}" for k, v in list(records[-1]["test"].items())[:4]), flush=True)
    metrics = list(records[0]["test"])
    return {
        "label": spec.label or name, "peer": spec.peer,
        "search": [{"config": c, "val": r.val, "epochs_used": r.epochs_used, "best_epoch": r.best_epoch}
                   for c, r in zip(cands, search, strict=True)],
        "selected": best, "config": chosen, "runs": records,
        "summary": {m: spread([rec["test"][m] for rec in records]) for m in metrics},
        "val": spread([r.val for r in runs]),
        "epochs_used": spread([r.epochs_used for r in runs]),
        "best_epoch": [r.best_epoch for r in runs],
        "seconds": time.perf_counter() - t0,
    }


def run_protocol(models: dict[str, ModelSpec], seeds: Sequence[int], budget: Budget,
                 splits: dict[str, Any] | None = None, min_seeds: int = 3,
                 on_model: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Every model through :func:`run_model`; the JSON-able results (with budget, seeds, splits).

    ``on_model(results so far)`` is called after each model (e.g. to write partial results)."""
    if len(seeds) < min_seeds:
        log.warning("%d seed(s) %s: the protocol asks for at least %d", len(seeds), list(seeds), min_seeds)
    out: dict[str, Any] = {"budget": budget.__dict__.copy(), "seeds": list(seeds), "splits": splits or {},
                           "models": {}}
    for name, spec in models.items():
        out["models"][name] = run_model(spec, seeds, budget, name)
        if on_model is not None:
            on_model(out)
    return out


def _search_val(model: dict[str, Any]) -> float:
    """The validation score of a model's selected candidate in its search."""
    return min(x["val"] for x in model["search"] if _same(x["config"], model["config"]))


def merge_results(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Protocol results of separate processes merged: other models are added; the same model run with
    other seeds (the same selected configuration) gets those runs added and its spreads recomputed;
    the same model searched over other candidates keeps the selection with the lower validation score
    (the searches are joined). Budgets and split digests must agree (an error names the differing part)."""
    if not parts:
        raise ValueError("merge_results: nothing to merge")
    out = json.loads(json.dumps(parts[0]))
    for i, r in enumerate(parts[1:], 1):
        if r["budget"] != out["budget"] or r.get("splits", {}).get("digest") != out.get("splits", {}).get("digest"):
            raise ValueError(f"merge_results: part {i} has budget {r['budget']} / splits "
                             f"{r.get('splits', {}).get('digest')}, the first {out['budget']} / "
                             f"{out.get('splits', {}).get('digest')}")
        for name, m in r["models"].items():
            if name not in out["models"]:
                out["models"][name] = json.loads(json.dumps(m))
                continue
            o = out["models"][name]
            search = o["search"] + [x for x in m["search"] if not any(_same(x["config"], y["config"]) for y in o["search"])]
            if not _same(o["config"], m["config"]):
                # more candidates of the same search, run in another process: the lower validation score
                # of the search runs (seed ``seeds[0]`` of each part) selects, as in one process
                keep = m if _search_val(m) < _search_val(o) else o
                out["models"][name] = {**json.loads(json.dumps(keep)), "search": search}
                continue
            seen = {x["seed"] for x in o["runs"]}
            o["runs"] += [x for x in m["runs"] if x["seed"] not in seen]
            o["search"] = search
    seeds: set[int] = set()
    for o in out["models"].values():
        runs = sorted(o["runs"], key=lambda x: x["seed"])
        o["runs"] = runs
        o["summary"] = {k: spread([x["test"][k] for x in runs]) for k in runs[0]["test"]}
        o["val"] = spread([x["val"] for x in runs])
        o["epochs_used"] = spread([x["epochs_used"] for x in runs])
        o["best_epoch"] = [x["best_epoch"] for x in runs]
        seeds |= {x["seed"] for x in runs}
    out["seeds"] = sorted(seeds)
    return out


# ----------------------------------------------------------------------------- report
def fmt(s: dict[str, float], digits: int = 4) -> str:
    """'mean +- std [min, max]' (one number when there is one seed)."""
    f = f"{{:.{digits}g}}" if s["mean"] != 0 and (abs(s["mean"]) < 1e-3 or abs(s["mean"]) >= 1e4) \
        else f"{{:.{digits}f}}"
    if s["n"] == 1:
        return f.format(s["mean"])
    return f"{f.format(s['mean'])} ± {f.format(s['std'])} [{f.format(s['min'])}, {f.format(s['max'])}]"


def value_text(v: Any) -> str:
    """A config value for a table cell: floats by ``g``, a dict as ``k=v`` pairs (e.g. a per-channel noise)."""
    if isinstance(v, dict):
        return ",".join(f"{k}={value_text(x)}" for k, x in v.items())
    return f"{v:g}" if isinstance(v, float) else str(v)


def _config_text(cfg: dict[str, Any], keys: Sequence[str] | None) -> str:
    keys = keys or [k for k in cfg if k != "label"]
    text = ", ".join(f"{k} {value_text(cfg[k])}" for k in keys if k in cfg)
    return text + (" (published default)" if "default" in str(cfg.get("label", "")) else "")


def results_table(res: dict[str, Any], metrics: Sequence[tuple[str, str]], config_keys: Sequence[str] | None = None,
                  digits: int = 4) -> str:
    """Markdown: one row per model with the selected config, params, budget used, and each test
    metric as mean ± std [min, max] over the seeds. ``metrics``: (key, column title) pairs."""
    b = res["budget"]
    head = ["model", "selected on val", "params", f"{b['unit']} used (max {b['max_epochs']})", "best-val epoch",
            "val"] + [t for _, t in metrics]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in res["models"].values():
        params = m["runs"][0].get("params")
        used = m["epochs_used"]
        cells = [m["label"], _config_text(m["config"], config_keys), f"{params:,}" if params else "-",
                 f"{used['mean']:.0f} [{used['min']:.0f}, {used['max']:.0f}]",
                 ", ".join(str(e) for e in m["best_epoch"]), fmt(m["val"], digits)]
        cells += [fmt(m["summary"][k], digits) if k in m["summary"] else "-" for k, _ in metrics]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def statement(res: dict[str, Any], task: str, val_metric: str, search: str, extra: str = "") -> str:
    """The protocol in one paragraph, from the recorded splits, budget, seeds and candidates."""
    b = Budget(**res["budget"])
    counts = res.get("splits", {}).get("counts", {})
    split = ", ".join(f"{v} {k}" for k, v in counts.items()) if counts else "see the splits in the JSON"
    n_cand = sorted({len(m["search"]) for m in res["models"].values()})
    seeds = res["seeds"]
    return (f"Protocol: {task}; fixed splits ({split}; ids and digest "
            f"{res.get('splits', {}).get('digest', '-')} in the results JSON). Every model gets the same validation "
            f"search ({search}; {'/'.join(map(str, n_cand))} candidates, each trained once with seed {seeds[0]}), the "
            f"candidate with the lowest {val_metric} is kept -- test scores are computed only for the kept "
            f"candidate. Budget: {b.describe()}. The kept candidate is trained with seeds {seeds} "
            f"({len(seeds)} runs; the search run of seed {seeds[0]} is reused) and the table gives the test "
            f"metrics as mean ± sample std [min, max] over the seeds. {extra}").strip()


def compare(res: dict[str, Any], metric: str, a: str, b: str, lower_is_better: bool = True) -> str:
    """One sentence: ``a`` against ``b`` on ``metric`` (relative difference of the means, overlap of the seed ranges)."""
    sa, sb = res["models"][a]["summary"][metric], res["models"][b]["summary"][metric]
    la, lb = res["models"][a]["label"], res["models"][b]["label"]
    better = (sa["mean"] < sb["mean"]) == lower_is_better
    win, lose, sw, sl = (la, lb, sa, sb) if better else (lb, la, sb, sa)
    rel = abs(sw["mean"] - sl["mean"]) / max(abs(sl["mean"]), 1e-300)
    overlap = sw["max"] >= sl["min"] and sl["max"] >= sw["min"]
    word = "lower" if lower_is_better else "higher"
    conf = ("the min-max ranges overlap: not a clear win" if overlap else
            f"the min-max ranges do not overlap: every seed of {win} beats every seed of {lose}")
    return (f"{win} beats {lose} on {metric}: {fmt(sw)} against {fmt(sl)} ({100 * rel:.0f}% {word} mean over "
            f"{sw['n']}/{sl['n']} seeds; {conf}).")


def conclusion(res: dict[str, Any], metric: str, title: str = "", lower_is_better: bool = True,
               pairs: Sequence[tuple[str, str]] = ()) -> str:
    """Which model wins on ``metric`` and by how much against the runner-up, plus ``pairs`` compared."""
    names = [n for n in res["models"] if metric in res["models"][n]["summary"]]
    if not names:
        raise ValueError(f"conclusion: no model has the metric {metric!r}")
    sign = 1.0 if lower_is_better else -1.0
    ranked = sorted(names, key=lambda n: sign * res["models"][n]["summary"][metric]["mean"])
    text = [f"**Conclusion ({title or metric})**:"]
    if len(ranked) == 1:
        text.append(f"only {res['models'][ranked[0]]['label']} ran: {fmt(res['models'][ranked[0]]['summary'][metric])}.")
    else:
        text.append(compare(res, metric, ranked[0], ranked[1], lower_is_better))
    for a, b in pairs:
        if a in names and b in names and {a, b} != {ranked[0], ranked[1]}:
            text.append(compare(res, metric, a, b, lower_is_better))
    return " ".join(text)


def main(argv: list[str] | None = None) -> int:
    """``meshops bench protocol``: print the protocol of a small synthetic example (no training)."""
    res = {"budget": Budget(50, 5).__dict__, "seeds": [0, 1, 2], "splits": split_record(fixed_split(100, 20, 20)),
           "models": {"a": {"search": [{}] * 5}}}
    print(statement(res, "an example", "validation relative L2", "lr in {1e-3, 3e-3} x width in {32, 64}, "
                    "plus the published default"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
