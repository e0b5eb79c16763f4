"""Training on graph parts from the config: the accumulated gradient is the whole-graph gradient;
``meshops train`` runs with ``max_nodes_per_part`` / ``partitions``; bad values and models refuse."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from meshops.train import ConfigError, TrainConfig, train
from meshops.train import distributed as D

HARMONIC = str(Path(__file__).resolve().parents[1] / "examples" / "harmonic_dataset.py")
OPTS = {"n": 4, "n_interior": 200, "n_side": 12, "degree": 2}


def _sample():
    from meshops import models
    from meshops.data import load_dataset
    from meshops.data.graphs import FeatureSpec, Pipeline

    ds = load_dataset(HARMONIC, **OPTS)
    cases = [ds[i] for i in range(2)]
    pipe = Pipeline(FeatureSpec.from_case(cases[0]))
    pipe.fit(cases)
    samples = [pipe.sample(c, targets=True) for c in cases]
    f = pipe.features
    torch.manual_seed(0)
    model = models.create("mgn", in_channels=f.in_channels, out_channels=f.out_channels, hidden=16, n_blocks=3)
    return model, samples


def test_parts_step_gradient_equals_whole_graph_gradient():
    from meshops.train.loop import collate, per_graph_mse
    from meshops.train.parts import PartCache, parts_step

    model, samples = _sample()
    batch = collate(samples)
    model.zero_grad()
    per_graph_mse(model(batch), batch.y, batch.batch, 2).mean().backward()
    whole = {k: p.grad.clone() for k, p in model.named_parameters()}
    with torch.no_grad():
        loss_whole = float(per_graph_mse(model(batch), batch.y, batch.batch, 2).mean())
    cfg = TrainConfig(max_nodes_per_part=40, partition_method="rcb", clip=0.0)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    run = SimpleNamespace(bare_model=model, optimizer=opt, scheduler=torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1))
    cache = PartCache(cfg, model)
    info = D.DistInfo(rank=0, world=1, local_rank=0, device=torch.device("cpu"), initialized_here=False)
    loss = parts_step(cfg, info, run, samples, [0, 1], 2, cache)
    assert len(cache.get(0, samples[0])) >= 3  # really cut into parts
    assert loss == pytest.approx(loss_whole, rel=1e-5)
    for k, p in model.named_parameters():
        torch.testing.assert_close(p.grad, whole[k], rtol=1e-4, atol=1e-6, msg=k)


def test_train_on_parts_from_the_config(tmp_path):
    res = train(dict(dataset=HARMONIC, dataset_options=OPTS, model="mgn", model_options={"hidden": 16, "n_blocks": 2},
                     epochs=3, batch_size=1, seed=0, out=str(tmp_path / "p"), progress=False, lr=3e-3,
                     split_fractions=[0.5, 0.25, 0.25], partitions=3))
    assert res.best_checkpoint.is_file() and res.steps == 6
    losses = [h["train_loss"] for h in res.history]
    assert losses[-1] < losses[0]


def test_parts_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="'max_nodes_per_part' must be a positive integer"):
        TrainConfig(max_nodes_per_part=0)
    with pytest.raises(ConfigError, match="not both"):
        TrainConfig(max_nodes_per_part=10, partitions=2)
    with pytest.raises(ConfigError, match="model 'ugraph' cannot run on graph parts"):
        train(dict(dataset=HARMONIC, dataset_options=OPTS, model="ugraph", model_options={"hidden": 8},
                   epochs=1, out=str(tmp_path / "u"), progress=False, partitions=2))


def test_resume_counts_keys_added_since_as_their_defaults():
    from meshops.train.validate_config import resume_problems

    new = TrainConfig().to_dict()
    old = {k: v for k, v in new.items() if k not in ("stepping", "lr")}
    assert resume_problems(old, dict(new, lr=old.get("lr", 1e-3)), TrainConfig().to_dict()) == []
    assert resume_problems(old, dict(new, lr=0.5), TrainConfig().to_dict()) == ["lr: 0.001 -> 0.5"]
    assert resume_problems(old, dict(new, partitions=4), TrainConfig().to_dict()) == []  # memory, not the task
