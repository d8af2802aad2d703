"""Data-parallel training (torchrun, gloo on the CPU): ranks stay identical, AugNet decides on rank 0 and
every rank samples from its distribution, shards are disjoint, rank 0 alone writes the run."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from adaptaug.distributed import DistContext, shard

RECORDER = '''
import os, sys, torch
from adaptaug.config import TrainConfig
from adaptaug.policies.augnet import AugNetPolicy
from adaptaug.train import train

seen = []
sample = AugNetPolicy._sample
def recording(self, n, sample_ids=None):
    seen.append(self._op_probs.clone())  # the distribution this rank draws its batch from
    return sample(self, n, sample_ids)
AugNetPolicy._sample = recording
out = sys.argv[1]
result = train(TrainConfig(task="digits", policy="augnet", epochs=2, lr=3e-3, seed=0, out=out + "/run",
                           robustness=False), progress=False)
torch.save({"probs": torch.stack(seen), "params": [p.detach() for p in result.model.parameters()],
            "accuracy": result.metrics["eval_accuracy"]}, f"{out}/rank{os.environ['RANK']}.pt")
'''


def _torchrun(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_shards_are_disjoint_equal_and_cover_all_but_the_tail() -> None:
    order = torch.randperm(103, generator=torch.Generator().manual_seed(0))
    parts = [shard(order, DistContext(rank=r, world_size=3)) for r in range(3)]
    assert [len(p) for p in parts] == [34, 34, 34]
    joined = torch.cat(parts)
    assert len(set(joined.tolist())) == 102 and set(joined.tolist()) <= set(order.tolist())
    assert torch.equal(shard(order, DistContext()), order)


def test_two_ranks_agree_and_augnet_decides_on_rank_zero(tmp_path: Path) -> None:
    (tmp_path / "recorder.py").write_text(RECORDER)
    done = _torchrun(["recorder.py", str(tmp_path)], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    # AugNet learned on rank 0 and rank 1 drew every batch from the same distribution
    assert torch.equal(r0["probs"], r1["probs"])
    assert not torch.allclose(r0["probs"][0], r0["probs"][-1])
    for a, b in zip(r0["params"], r1["params"]):  # DDP kept the models identical
        assert torch.equal(a, b)
    assert r0["accuracy"] == r1["accuracy"] > 0.3  # it trained (chance 0.1); the point is the agreement
    run = tmp_path / "run"
    config = json.loads((run / "config.json").read_text())
    assert config["world_size"] == 2
    assert (run / "metrics.json").exists() and (run / "trace.csv").exists()
    assert len((run / "history.csv").read_text().splitlines()) == 3  # header + 2 epochs, written once


def test_torchrun_cli(tmp_path: Path) -> None:
    done = _torchrun(["-m", "adaptaug", "train", "--task", "digits", "--policy", "standard", "--epochs", "1",
                      "--no-robustness", "--no-progress", "--out", str(tmp_path / "run")], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads(done.stdout[done.stdout.index("{"):])  # printed once, by rank 0
    assert done.stdout.count('"eval_accuracy"') == 1
    assert metrics == json.loads((tmp_path / "run" / "metrics.json").read_text())
