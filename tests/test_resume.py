"""Exact resume after SIGKILL, from the CLI, with a real child process."""
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from adaptaug.checkpoint import CHECKPOINT
from adaptaug.cli import main

ARGS = ["train", "--task", "digits", "--policy", "augnet", "--epochs", "6", "--seed", "3", "--no-progress"]


def _child(out: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "adaptaug", *ARGS, "--out", str(out), *extra],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _epoch_of(run: Path) -> int:
    try:
        return torch.load(run / CHECKPOINT, weights_only=True)["epoch"]
    except Exception:
        return 0


def test_sigkill_then_resume_gives_the_uninterrupted_numbers(tmp_path):
    full = _child(tmp_path / "full")
    killed_dir = tmp_path / "killed"
    victim = _child(killed_dir)
    deadline = time.time() + 240
    while _epoch_of(killed_dir) < 1 and victim.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert victim.poll() is None, "the run finished before it could be killed"
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    killed_at = _epoch_of(killed_dir)
    assert 1 <= killed_at < 6 and not (killed_dir / "metrics.json").exists()

    resumed = subprocess.run([sys.executable, "-m", "adaptaug", "train", "--resume", str(killed_dir), "--no-progress"],
                             env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=240)
    assert resumed.returncode == 0, resumed.stderr
    assert full.wait(timeout=240) == 0, full.stderr.read()
    a = json.loads((tmp_path / "full" / "metrics.json").read_text())
    b = json.loads((killed_dir / "metrics.json").read_text())
    for key in ("eval_loss", "eval_accuracy", "eval_f1", "epoch", "best_epoch"):
        assert a[key] == b[key], (key, a[key], b[key])
    assert (tmp_path / "full" / "trace.csv").read_text() == (killed_dir / "trace.csv").read_text()
    history_a = (tmp_path / "full" / "history.csv").read_text().splitlines()
    history_b = (killed_dir / "history.csv").read_text().splitlines()
    strip = lambda rows: [r.rsplit(",", 1)[0] for r in rows]  # noqa: E731  (last column: epoch seconds)
    assert strip(history_a) == strip(history_b)


@pytest.mark.parametrize("make, message", [
    (lambda d: None, "config.json is missing"),
    (lambda d: (d / "config.json").write_text("{"), "not valid JSON"),
    (lambda d: (d / "config.json").write_text(json.dumps({"task": "digits"})), "checkpoint.pt is missing"),
    (lambda d: ((d / "config.json").write_text(json.dumps({"task": "digits"})),
                (d / CHECKPOINT).write_bytes(b"\x80\x04garbage")), "cannot read checkpoint"),
])
def test_resume_of_something_that_is_not_a_run_is_refused(tmp_path, capsys, make, message):
    make(tmp_path)
    assert main(["train", "--resume", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_a_run_resumes_with_the_augnet_it_began_with_not_todays_defaults(tmp_path):
    """A run's config.json from before a default changed (the gate, then the chunked probe under it) loads as it
    ran: fields it predates at their old values, None probe chunk as the whole probe it then meant."""
    from adaptaug.config import TrainConfig
    from adaptaug.policies.augnet import AugNetConfig
    from adaptaug.train import load_run_config
    saved = TrainConfig(task="digits", policy="augnet").to_dict()
    before_gate = {k: v for k, v in saved["augnet"].items() if k not in ("gate", "probe_chunk")}
    cases = [({**saved, "augnet": before_gate}, False, None),  # made before both fields
             ({**saved, "resolved_augnet_gate": True}, True, None),  # made under the gate, before the chunk default
             ({**saved, "resolved_augnet_gate": True, "resolved_augnet_probe_chunk": 32}, True, 32),
             ({**saved, "resolved_augnet": {**saved["augnet"], "gate": True, "probe_chunk": 32}}, True, 32)]  # since
    for config, gate, chunk in cases:
        (tmp_path / "config.json").write_text(json.dumps(config))
        augnet = load_run_config(tmp_path).augnet.resolved(stacked=True)
        whole = augnet.probe_chunk is not None and augnet.probe_chunk >= augnet.probe_size
        assert augnet.gate is gate and (augnet.probe_chunk if chunk else whole) == (chunk or True), config
    assert AugNetConfig().resolved(stacked=True).probe_chunk == 32  # what an old config would have become


def test_trace_text_is_write_csvs_text_and_reads_back_exactly(tmp_path):
    from adaptaug.io import CsvText, numeric_rows, write_csv

    gen = torch.Generator().manual_seed(0)
    rows = [{"step": 4 * i, "reward": float(torch.randn((), generator=gen)) * 10.0 ** (i % 40 - 20), "n": -i,
             "level": float(i)} for i in range(50)]
    rows[7]["gate_reward_gap"] = 0.1  # a column that first appears late: every line before it gains a cell
    rows[9]["reward"] = math.inf
    text = CsvText()
    for n in (0, 1, 5, 8, 8, 30, 50):  # grows, a new column at row 7, then a call with nothing new
        write_csv(tmp_path / "t.csv", rows[:n])
        assert text.of(rows[:n]).encode() == (tmp_path / "t.csv").read_bytes(), n
    back = numeric_rows(text.of(rows))
    assert back == rows  # floats bit for bit (math.inf too), missing cells stay missing
    assert [type(r["step"]) for r in back] == [int] * 50 and type(back[0]["level"]) is float
    assert numeric_rows(rows[:3]) == rows[:3]  # checkpoints from before held the list itself
