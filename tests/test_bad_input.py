"""Every bad input is refused from the CLI with one clear line, exit code 2, no traceback, and nothing
already written is lost (issue: reliability)."""
import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from adaptaug.cli import main
from conftest import shared


def _image_tree(root: Path, sizes=None, classes=("a", "b"), per_class=3) -> Path:
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for c in classes:
            (root / split / c).mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                size = (sizes or {}).get((split, c, i), (8, 8))
                Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(root / split / c / f"{i}.png")
    return root


def _mnist_copy(root: Path) -> Path:
    root.mkdir()
    for f in shared("mnist").iterdir():
        if f.name.endswith(".gz"):
            shutil.copy(f, root / f.name)
    return root


def missing_path(tmp):
    return ["--task", "mnist", "--data", str(tmp / "nowhere")], "does not exist"


def empty_folder(tmp):
    (tmp / "empty").mkdir()
    return ["--task", "imagefolder", "--data", str(tmp / "empty")], "is empty"


def truncated_gzip_idx(tmp):
    root = _mnist_copy(tmp / "mnist")
    data = (root / "t10k-labels-idx1-ubyte.gz").read_bytes()
    (root / "t10k-labels-idx1-ubyte.gz").write_bytes(data[: len(data) // 2])
    return ["--task", "mnist", "--data", str(root)], "t10k-labels-idx1-ubyte.gz"


def truncated_idx(tmp):
    root = _mnist_copy(tmp / "mnist")
    raw = gzip.decompress((root / "t10k-images-idx3-ubyte.gz").read_bytes())
    (root / "t10k-images-idx3-ubyte.gz").unlink()
    (root / "t10k-images-idx3-ubyte").write_bytes(raw[:-100])
    return ["--task", "mnist", "--data", str(root)], "t10k-images-idx3-ubyte"


def label_out_of_range(tmp):
    root = _mnist_copy(tmp / "mnist")
    raw = bytearray(gzip.decompress((root / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    raw[8 + 5] = 12  # label of test image 5
    (root / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes(raw)))
    return ["--task", "mnist", "--data", str(root)], "label 12"


def corrupt_image(tmp):
    root = _image_tree(tmp / "tree")
    (root / "train" / "a" / "1.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return ["--task", "imagefolder", "--data", str(root)], "1.png"


def wrong_image_size(tmp):
    root = _image_tree(tmp / "tree", sizes={("train", "b", 2): (9, 8)})
    return ["--task", "imagefolder", "--data", str(root)], "2.png"


def empty_class_folder(tmp):
    root = _image_tree(tmp / "tree")
    (root / "train" / "c").mkdir()
    return ["--task", "imagefolder", "--data", str(root)], "contains no images"


def unknown_test_class(tmp):
    root = _image_tree(tmp / "tree")
    (root / "test" / "z").mkdir()
    shutil.copy(root / "test" / "a" / "0.png", root / "test" / "z" / "0.png")
    return ["--task", "imagefolder", "--data", str(root)], "not a training class"


def _jsonl(tmp, train_lines):
    root = tmp / "text"
    root.mkdir()
    (root / "train.jsonl").write_text("\n".join(train_lines) + "\n")
    (root / "test.jsonl").write_text(json.dumps({"text": "fine film", "label": 1}) + "\n")
    return root


def empty_text(tmp):
    ok = json.dumps({"text": "a good film", "label": 1})
    return ["--task", "sst2", "--data", str(_jsonl(tmp, [ok, json.dumps({"text": "  ", "label": 0})]))], \
        "line 2: empty text"


def invalid_json_line(tmp):
    ok = json.dumps({"text": "a good film", "label": 1})
    return ["--task", "sst2", "--data", str(_jsonl(tmp, [ok, ok, '{"text": "oops"']))], "line 3: invalid JSON"


def text_label_out_of_range(tmp):
    return ["--task", "sst2", "--data", str(_jsonl(tmp, [json.dumps({"text": "meh", "label": 3})]))], \
        "label must be 0 or 1"


def _conll(tmp, train_text):
    root = tmp / "conll"
    root.mkdir()
    good = "EU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\n"
    (root / "train.txt").write_text(train_text)
    (root / "valid.txt").write_text(good)
    (root / "test.txt").write_text(good)
    return root


def malformed_conll_line(tmp):
    root = _conll(tmp, "EU NNP B-NP B-ORG\nrejects VBZ O\n\n")
    return ["--task", "conll2003", "--data", str(root)], "train.txt:2"


def invalid_tag(tmp):
    root = _conll(tmp, "EU NNP B-NP B-ORG\nrejects VBZ B-VP X-PER\n\n")
    return ["--task", "conll2003", "--data", str(root)], "invalid NER tag 'X-PER'"


def unknown_policy(tmp):
    return ["--policy", "autoaugment"], "invalid choice: 'autoaugment'"


def unknown_task(tmp):
    return ["--task", "imagenet"], "invalid choice: 'imagenet'"


def zero_batch_size(tmp):
    return ["--batch-size", "0"], "expected a positive integer, got '0'"


def negative_lr(tmp):
    return ["--lr", "-0.1"], "expected a positive number, got '-0.1'"


def nan_lr(tmp):
    return ["--lr", "nan"], "expected a positive number, got 'nan'"


def zero_probe_size(tmp):
    return ["--policy", "augnet", "--augnet-probe-size", "0"], "AugNet probe_size must be >= 1, got 0"


def val_size_of_one_and_a_half(tmp):
    return ["--val-size", "1.5"], "expected a fraction in (0, 1) or a count >= 1, got '1.5'"


CASES = [missing_path, empty_folder, truncated_gzip_idx, truncated_idx, label_out_of_range, corrupt_image,
         wrong_image_size, empty_class_folder, unknown_test_class, empty_text, invalid_json_line,
         text_label_out_of_range, malformed_conll_line, invalid_tag, unknown_policy, unknown_task,
         zero_batch_size, negative_lr, nan_lr, zero_probe_size, val_size_of_one_and_a_half]


@pytest.mark.parametrize("case", CASES, ids=[c.__name__ for c in CASES])
def test_bad_input_is_one_clear_line(case, tmp_path, capsys):
    args, message = case(tmp_path)
    out = tmp_path / "run"
    rc = main(["train", *args, "--epochs", "1", "--out", str(out), "--no-progress", "--no-robustness"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and err[0].startswith("adaptaug: error:"), err
    assert message in err[0], err[0]


def test_diverging_model_stops_with_the_last_good_checkpoint_kept(tmp_path):
    """A NaN loss in epoch 3 stops the run with a clear error; the epoch-2 checkpoint and history stay."""
    import torch

    from adaptaug.config import TrainConfig
    from adaptaug.tasks import build_task
    from adaptaug.train import train

    task = build_task("digits")
    steps_per_epoch = -(-task.size("train") // 64)
    calls = {"n": 0}
    clean_loss = task.loss_fn

    def poisoned_loss(logits, targets):  # the model "diverges" half-way through epoch 3
        calls["n"] += 1
        loss = clean_loss(logits, targets)
        return loss * float("nan") if calls["n"] > 2.5 * steps_per_epoch else loss

    task.loss_fn = poisoned_loss
    out = tmp_path / "run"
    config = TrainConfig(policy="none", epochs=5, out=str(out), robustness=False)
    with pytest.raises(FloatingPointError, match="training loss became nan in epoch 3"):
        train(config, task=task, progress=False)
    assert torch.load(out / "checkpoint.pt", weights_only=True)["epoch"] == 2
    assert [line.split(",")[0] for line in (out / "history.csv").read_text().splitlines()[1:]] == ["1", "2"]
    assert not (out / "metrics.json").exists()
