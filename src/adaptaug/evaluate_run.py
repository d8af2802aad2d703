"""``adaptaug evaluate --run RUN_DIR --data PATH``: a finished run's best model on other data, no retraining.

A run directory holds ``config.json``, ``model.pt`` (the best weights, loaded with ``weights_only=True``) and,
written by :meth:`Task.save_assets <adaptaug.tasks.base.Task.save_assets>` when the run starts, what the model
needs to read new data exactly as it read its own:

- ``assets.json``: ``kind`` (image | text | tagging), the class names in id order (images, text), the image
  shape, the text ``max_len``, the tag names in id order and the tagger's settings (NER);
- ``vocab.json``: the token vocabulary (text) or the cased word vocabulary (NER), a JSON list, id = position;
- ``lower_vocab.json``: NER only, the vocabulary of the lower-cased forms the tagger embeds.

Runs made before these files existed still evaluate: the run's own data is loaded again (``config.json``
says from where, with which seed and limit) to rebuild them.

The data (see :mod:`adaptaug.data.eval_split`) is encoded with those, never with anything built from itself:
a class folder or a tag the model never saw is a :class:`~adaptaug.errors.DataError`. Without ``data`` the
run's own data source is used (``split`` test, val or train; val and train are the run's own splits, after
its ``limit`` and validation carve), which reproduces the run's ``metrics.json``.

The result has the keys of the training metrics that describe the model: ``eval_*`` (loss, accuracy, F1, runtime
keys), ``epoch``, ``best_epoch`` and ``best_val_*`` of the run, and the ``eval_robust_*`` keys plus
``robustness_runtime`` (when the run computed them, unless ``robustness=False``), with the same seeds as the run.
"""
from __future__ import annotations

import json
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from adaptaug.data.vocab import Vocab
from adaptaug.errors import ConfigError, DataError
from adaptaug.io import write_json

ASSETS = "assets.json"
VOCAB = "vocab.json"
LOWER_VOCAB = "lower_vocab.json"
MODEL = "model.pt"


def write_assets(run_dir: str | Path, info: dict[str, Any], vocab: Vocab | None = None,
                 lower_vocab: Vocab | None = None) -> None:
    """Write ``assets.json`` (``info``) and the vocabularies beside it (atomically, JSON lists)."""
    run_dir = Path(run_dir)
    if vocab is not None:
        write_json(run_dir / VOCAB, vocab.itos)
    if lower_vocab is not None:
        write_json(run_dir / LOWER_VOCAB, lower_vocab.itos)
    write_json(run_dir / ASSETS, info)


def read_assets(run_dir: str | Path) -> dict[str, Any] | None:
    """``assets.json`` with its vocabularies as :class:`Vocab` (keys ``vocab``, ``lower_vocab``), or None."""
    run_dir = Path(run_dir)
    path = run_dir / ASSETS
    if not path.is_file():
        return None
    try:
        assets = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ConfigError(f"cannot read {path}: {err}") from None
    if not isinstance(assets, dict) or assets.get("kind") not in ("image", "text", "tagging"):
        raise ConfigError(f"{path} is not an adaptaug assets file (no kind image/text/tagging)")
    for key, name in (("vocab", VOCAB), ("lower_vocab", LOWER_VOCAB)):
        if (run_dir / name).is_file():
            assets[key] = Vocab.load(run_dir / name)
    return assets


def _config(run_dir: Path):
    from adaptaug.train import load_run_config

    return load_run_config(run_dir)


def _build_own_task(config):
    from adaptaug.tasks import build_task_of

    return build_task_of(config)


def _assets_of(task) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="adaptaug-assets-") as tmp:
        task.save_assets(tmp)
        assets = read_assets(tmp)
    if assets is None:
        raise ConfigError(f"task {task.name!r} does not save assets (Task.save_assets); it cannot be evaluated "
                          "on other data")
    return assets


def _same_assets(a: dict[str, Any], b: dict[str, Any]) -> bool:
    def plain(x: dict[str, Any]) -> dict[str, Any]:
        return {k: (v.itos if isinstance(v, Vocab) else v) for k, v in x.items()}

    return plain(a) == plain(b)


def build_eval_task(assets: dict[str, Any], dataset: Any, source: str = ""):
    """A task of the run's kind whose splits are all ``dataset``, encoded with the run's assets: the model it
    builds has the run's shapes, and ``evaluate``/``robustness`` score ``dataset`` as its test split."""
    kind = assets["kind"]
    with warnings.catch_warnings():  # no synonym source: fine, nothing is augmented here
        warnings.simplefilter("ignore", RuntimeWarning)
        if kind == "image":
            from adaptaug.data.images import ImageSplits
            from adaptaug.tasks.image import ImageTask

            shape = tuple(assets["image_shape"])
            if tuple(dataset.images.shape[1:]) != shape:
                c, h, w = dataset.images.shape[1:]
                raise DataError(f"images at {source} are {w}x{h} with {c} channel(s); the model was trained on "
                                f"{shape[2]}x{shape[1]} with {shape[0]} channel(s)")
            c = shape[0]  # mean/std are buffers of the model: model.pt brings the run's own
            splits = ImageSplits(assets.get("name", "images"), dataset, dataset, dataset, (0.0,) * c, (1.0,) * c,
                                 source)
            return ImageTask(splits)
        if kind == "text":
            from adaptaug.data.text import TextSplits
            from adaptaug.tasks.text import TextClassificationTask

            splits = TextSplits(assets.get("name", "text"), dataset, dataset, dataset, vocab=assets["vocab"],
                                max_len=int(assets["max_len"]), source=source, synonyms=None, synonym_source="none",
                                classes=tuple(assets["classes"]))
            return TextClassificationTask(splits)
        from adaptaug.data.conll import ConllData, lookup_tables
        from adaptaug.tasks.tagging import TaggingTask

        words, lower = assets["vocab"], assets["lower_vocab"]
        lower_of, shape_of = lookup_tables(words, lower)
        data = ConllData(dataset, dataset, dataset, words=words, lower=lower, tags=tuple(assets["tags"]),
                         lower_of=lower_of, shape_of=shape_of, source=source, name=assets.get("name", "conll2003"))
        return TaggingTask(data, synonyms=None, casing=bool(assets.get("casing", True)),
                           layers=int(assets.get("layers", 1)), hidden=int(assets.get("hidden", 128)),
                           dropout=float(assets.get("dropout", 0.3)))


def load_eval_data(assets: dict[str, Any], data: str | Path, split: str = "test"):
    """``split`` of ``data`` encoded with the run's assets (see :mod:`adaptaug.data.eval_split`)."""
    from adaptaug.data import eval_split

    kind = assets["kind"]
    if kind == "image":
        return eval_split.load_image_eval_split(data, assets["classes"], split)
    if kind == "text":
        return eval_split.load_text_eval_split(data, assets["vocab"], int(assets["max_len"]), split)
    return eval_split.load_conll_eval_split(data, assets["vocab"], assets["tags"], split)


def load_model_state(run_dir: Path) -> dict[str, torch.Tensor]:
    path = run_dir / MODEL
    if not path.is_file():
        raise ConfigError(f"{run_dir} has no {MODEL}: the run has not finished (resume it with "
                          f"`adaptaug train --resume {run_dir}`)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated or foreign file: say which, never unpickle it
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise ConfigError(f"cannot read {path}: {type(err).__name__}: {first}") from None


def evaluate_run(run_dir: str | Path, data: str | Path | None = None, *, split: str = "test",
                 device: str = "auto", robustness: bool | None = None, batch_size: int = 256) -> dict[str, float]:
    """Metrics of ``run_dir``'s best model on ``split`` of ``data`` (default: the run's own data).

    ``robustness``: None = as the run was configured (``config.robustness``).
    """
    from adaptaug.evaluate import evaluate
    from adaptaug.train import resolve_device

    run_dir = Path(run_dir)
    config = _config(run_dir)
    state = load_model_state(run_dir)  # before any data is read: a run without a model fails at once
    assets = read_assets(run_dir)
    own = data is None
    if own and (config.data is None or split in ("val", "train")):
        task = _build_own_task(config)  # digits, hub data, or the run's own carved val / limited train
        rebuilt = _assets_of(task)
        if assets is not None and not _same_assets(assets, rebuilt):
            raise DataError(f"the run's data ({config.data or config.task}) no longer gives the classes / vocabulary "
                            f"/ tags saved in {run_dir}: it changed since the run; pass --data explicitly")
        assets = assets or rebuilt
        if split not in task.splits:
            raise ConfigError(f"unknown split {split!r} of the run's own data; use test, val or train")
        dataset = getattr(task, "_splits", None)
        dataset = dataset[split] if isinstance(dataset, dict) else getattr(task.data, split)
        source = f"{config.data or config.task} ({split})"
    else:
        if assets is None:  # a run from before assets.json: rebuild them from the run's own data
            assets = _assets_of(_build_own_task(config))
        data = config.data if own else data
        dataset = load_eval_data(assets, data, split)
        source = str(data)
    dev = resolve_device(device)
    task = build_eval_task(assets, dataset, source).to(dev)
    model = task.build_model()
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise ConfigError(f"{run_dir / MODEL} does not fit the model its assets describe: {first}") from None
    model.to(dev).eval()
    metrics = evaluate(model, task, "test", batch_size=batch_size)
    saved = _run_metrics(run_dir)
    for key in ("epoch", "best_epoch", "best_val_loss", "best_val_accuracy"):  # which model this is: from the run
        if key in saved:
            metrics[key] = saved[key]
    if config.robustness if robustness is None else robustness:
        from adaptaug.robustness import robustness as robust_metrics

        start = time.perf_counter()
        metrics.update(robust_metrics(model, task, seed=config.seed, batch_size=batch_size))
        metrics["robustness_runtime"] = round(time.perf_counter() - start, 4)
    return metrics


def _run_metrics(run_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


__all__ = ["ASSETS", "LOWER_VOCAB", "VOCAB", "build_eval_task", "evaluate_run", "load_eval_data", "read_assets",
           "write_assets"]
