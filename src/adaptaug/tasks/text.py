"""Sentence / document classification (IMDB, SST-2) with the seed's BiLSTM and the EDA op space.

Inputs are ``(ids (B, T), lengths (B,))``; the model returns one logit per sample, trained with BCE-with-logits.
Token tensors live on the training device and batches are gathered by index, as for images. Augmentation runs
through :func:`adaptaug.augment.apply_token_plan` over the text ops (Wei & Zou 2019, plus ``<unk>`` masking) and
``Identity``, so AugNet can also choose to leave a sample clean.

Policies: ``standard`` is EDA at rate 0.1 (:class:`~adaptaug.policies.eda.EDAPolicy`); ``randaugment``,
``trivialaugment`` and ``augnet`` run over the op space *alone* (``stack_base = False``): EDA is itself a
random-op policy, and stacking it underneath would double the noise and keep AugNet from ever picking a clean
sample.
"""
from __future__ import annotations

import logging
import os
import warnings
from typing import Any

import torch
import torch.nn.functional as F
from sklearn.metrics import f1_score
from torch import nn

from adaptaug.augment import AugPlan, apply_token_plan
from adaptaug.data.text import SYNONYM_SOURCES, TextSplits, load_text_task
from adaptaug.errors import ConfigError
from adaptaug.models.lstm import BiLSTMClassifier
from adaptaug.ops.space import OpSpace
from adaptaug.ops.text import TEXT_OPS, TextOpContext
from adaptaug.policies.eda import EDAPolicy
from adaptaug.tasks.base import Batch, Inputs, Task

log = logging.getLogger(__name__)

SYNONYMS_ENV = "ADAPTAUG_SYNONYMS"  # cooc (default) | wordnet | none, for the command line
EDA_RATE = 0.1  # the EDA paper's recommended alpha


class TextClassificationTask(Task):
    stacks_batches = True  # ids share the split's padded width, and the token ops treat samples independently
    stack_base = False  # build_policy: RandAugment / TrivialAugment / AugNet without EDA underneath
    modality = "text"

    def __init__(self, splits: TextSplits) -> None:
        self.data = splits
        self.name = splits.name
        self.num_classes = splits.num_classes  # 2: AugNet's loss scale is log 2, BCE at chance
        ops = [op for op in TEXT_OPS if splits.synonyms is not None or op != "SynonymReplacement"]
        if splits.synonyms is None:
            warnings.warn(f"{splits.name}: no synonym source (synonyms='none'): SynonymReplacement is left out of "
                          "the op space and RandomInsertion repeats a word of the text instead of a synonym",
                          RuntimeWarning, stacklevel=2)
        self.op_space = OpSpace.of(["Identity", *ops])
        self.context = TextOpContext(len(splits.vocab), splits.vocab.pad_id, splits.vocab.unk_id, splits.synonyms)
        self.device = torch.device("cpu")
        self._tensors = {s: (getattr(splits, s).ids, getattr(splits, s).lengths, getattr(splits, s).labels)
                         for s in self.splits}

    def to(self, device: torch.device) -> "TextClassificationTask":
        self.device = torch.device(device)
        self._tensors = {s: tuple(t.to(self.device) for t in ts) for s, ts in self._tensors.items()}
        self.context = self.context.to(self.device)
        return self

    def build_model(self) -> nn.Module:
        return BiLSTMClassifier(len(self.data.vocab), padding_idx=self.data.vocab.pad_id)

    def base_policy(self, generator: torch.Generator) -> EDAPolicy:
        return EDAPolicy(self.op_space, rate=EDA_RATE, generator=generator)

    def size(self, split: str) -> int:
        return self._tensors[split][2].shape[0]

    def gather(self, split: str, index: torch.Tensor) -> Batch:
        ids, lengths, labels = self._tensors[split]
        index = index.to(self.device)
        return (ids[index], lengths[index]), labels[index]

    def augment(self, inputs: Inputs, plan: AugPlan) -> Inputs:
        return apply_token_plan(inputs[0], inputs[1], plan, self.context)

    def loss_fn(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype), reduction="none")  # (B,)

    def accuracy_fn(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return ((logits > 0).long() == targets).float()

    def metrics(self, logits: list[torch.Tensor], targets: list[torch.Tensor]) -> dict[str, float]:
        pred = (torch.cat(logits) > 0).long().cpu().numpy()
        true = torch.cat(targets).cpu().numpy()
        return {"accuracy": float((pred == true).mean()),
                "f1": float(f1_score(true, pred, average="macro", labels=[0, 1], zero_division=0))}

    def save_assets(self, run_dir) -> None:
        from adaptaug.evaluate_run import write_assets
        write_assets(run_dir, {"kind": "text", "name": self.name, "classes": list(self.data.classes),
                               "max_len": self.data.max_len}, vocab=self.data.vocab)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "vocab_size": len(self.data.vocab), "max_len": self.data.max_len,
                "synonyms": self.data.synonym_source, "source": self.data.source}


def build_text_task(name: str, data: str | os.PathLike | None = None, *, val_size: float | int = 0.1,
                    seed: int = 0, limit: int | None = None, synonyms: str | None = None,
                    val_whole_texts: bool = False) -> TextClassificationTask:
    """``imdb`` or ``sst2``; ``synonyms`` defaults to ``$ADAPTAUG_SYNONYMS``, else ``"cooc"``; ``val_whole_texts``:
    :func:`~adaptaug.data.text.make_text_splits`."""
    synonyms = synonyms or os.environ.get(SYNONYMS_ENV, "").strip() or "cooc"
    if synonyms not in SYNONYM_SOURCES:
        raise ConfigError(f"unknown synonym source {synonyms!r} (from {SYNONYMS_ENV} or synonyms=); "
                          f"known: {', '.join(SYNONYM_SOURCES)}")
    splits = load_text_task(name, data, val_size=val_size, seed=seed, limit=limit, synonyms=synonyms,
                            val_whole_texts=val_whole_texts)
    log.info("%r", splits)
    return TextClassificationTask(splits)


__all__ = ["EDA_RATE", "SYNONYMS_ENV", "TextClassificationTask", "build_text_task"]
