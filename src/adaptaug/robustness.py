"""Robustness suites: accuracy on the test split under attack and under common corruptions.

Images: FGSM (Goodfellow et al. 2015) and PGD (Madry et al. 2018; L-infinity, 10 steps of eps/4, random
start) at eps 2/255 and 8/255 in pixel space, and four common corruptions of Hendrycks & Dietterich (2019)
— Gaussian noise, Gaussian blur, contrast, brightness — at severities 1, 3 and 5 with the parameters of
their CIFAR-10-C generator (``make_cifar_c.py``). ``robustness(model, task)`` returns ``eval_robust_*`` keys:

- ``eval_robust_{fgsm,pgd}_eps{E}_accuracy``: accuracy under the attack at eps = E/255;
- ``eval_robust_{corruption}_s{S}_accuracy``: accuracy under one corruption at severity S;
- ``eval_robust_{corruption}_accuracy``: its mean over the severities;
- ``eval_robust_corruption_accuracy``: the mean over every corruption and severity.

Token tasks (text classification, NER) get :class:`TextSuite`: PGD in embedding space through
``model.forward_embedded(emb, lengths)`` and accuracy/F1 (entity F1 for NER) under random token noise
(``<unk>`` replacement standing in for typos, word drops) at fixed rates; see its docstring for the keys.

Other tasks plug in two ways: a task may define ``robustness_suite(model, *, seed, batch_size) -> dict`` (it
wins), or a suite is registered for its modality with ``register_suite``. A task with neither gets no
``eval_robust_*`` keys (an empty dict), never an error.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from adaptaug.attacks import fgsm, pgd
from adaptaug.errors import ConfigError
from adaptaug.tasks.base import Task

# severity 1..5 parameters of the CIFAR-10-C generator (Hendrycks & Dietterich 2019, make_cifar_c.py)
CORRUPTION_PARAMS: dict[str, tuple[float, ...]] = {
    "gaussian_noise": (0.04, 0.06, 0.08, 0.09, 0.10),  # std of additive noise, pixels in [0, 1]
    "gaussian_blur": (0.4, 0.6, 0.7, 0.8, 1.0),  # kernel sigma in pixels
    "contrast": (0.75, 0.5, 0.4, 0.3, 0.15),  # factor towards the image mean
    "brightness": (0.05, 0.1, 0.15, 0.2, 0.3),  # added to HSV value (grey: to the pixel)
}
CORRUPTIONS = tuple(CORRUPTION_PARAMS)


def gaussian_noise(images: torch.Tensor, std: float, generator: torch.Generator) -> torch.Tensor:
    # drawn on the CPU from the caller's generator: the same noise on any device
    noise = torch.randn(images.shape, generator=generator).to(images.device, images.dtype)
    return (images + std * noise).clamp(0, 1)


def gaussian_blur(images: torch.Tensor, sigma: float, generator: torch.Generator | None = None) -> torch.Tensor:
    from kornia.filters import gaussian_blur2d

    # kernel covers +-3 sigma, capped so reflect padding stays smaller than the image (8x8 digits)
    size = min(2 * math.ceil(3 * sigma) + 1, 2 * ((min(images.shape[-2:]) - 1) // 2) + 1)
    return gaussian_blur2d(images, (size, size), (sigma, sigma), border_type="reflect").clamp(0, 1)


def contrast(images: torch.Tensor, factor: float, generator: torch.Generator | None = None) -> torch.Tensor:
    mean = images.mean(dim=(1, 2, 3), keepdim=True)  # per image, over channels and pixels, as the reference
    return ((images - mean) * factor + mean).clamp(0, 1)


def brightness(images: torch.Tensor, shift: float, generator: torch.Generator | None = None) -> torch.Tensor:
    if images.shape[1] != 3:  # grey: the HSV value is the pixel itself
        return (images + shift).clamp(0, 1)
    from kornia.color import hsv_to_rgb, rgb_to_hsv

    hsv = rgb_to_hsv(images)
    hsv = torch.cat([hsv[:, :2], (hsv[:, 2:] + shift).clamp(0, 1)], dim=1)
    return hsv_to_rgb(hsv).clamp(0, 1)


CORRUPTION_FNS: dict[str, Callable[..., torch.Tensor]] = {
    "gaussian_noise": gaussian_noise, "gaussian_blur": gaussian_blur, "contrast": contrast, "brightness": brightness,
}


def corrupt(images: torch.Tensor, name: str, severity: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``images`` (B, C, H, W) in [0, 1] under corruption ``name`` at ``severity`` 1..5."""
    if name not in CORRUPTION_FNS:
        raise ConfigError(f"unknown corruption {name!r}; known: {', '.join(CORRUPTIONS)}")
    if severity not in range(1, 6):
        raise ConfigError(f"severity must be 1..5, got {severity!r}")
    if generator is None:
        generator = torch.Generator().manual_seed(0)
    return CORRUPTION_FNS[name](images, CORRUPTION_PARAMS[name][severity - 1], generator)


@dataclass(frozen=True)
class ImageSuite:
    eps_255: tuple[int, ...] = (2, 8)  # L-inf radii in 1/255 pixel units, the common CIFAR values
    pgd_steps: int = 10  # Madry et al. use 7-20; step size eps/4
    corruptions: tuple[str, ...] = CORRUPTIONS
    severities: tuple[int, ...] = (1, 3, 5)  # mild, middle, worst of the five
    # attacks cost ~2 + 2 x pgd_steps passes per eps: scored on a fixed subset (the same for every run and
    # seed) so a CPU evaluation of CIFAR-10 takes a minute, not half an hour; None = the whole test split
    attack_samples: int | None = 2000

    def keys(self) -> list[str]:
        keys = [f"eval_robust_{a}_eps{e}_accuracy" for e in self.eps_255 for a in ("fgsm", "pgd")]
        for c in self.corruptions:
            keys += [f"eval_robust_{c}_s{s}_accuracy" for s in self.severities] + [f"eval_robust_{c}_accuracy"]
        return keys + ["eval_robust_corruption_accuracy"]

    def __call__(self, model: nn.Module, task: Task, *, seed: int = 0, batch_size: int = 256) -> dict[str, float]:
        attack_gen = torch.Generator().manual_seed(seed)  # PGD random starts
        noise_gen = torch.Generator().manual_seed(seed + 1)  # corruption noise, apart so either can change alone
        correct: dict[str, float] = defaultdict(float)

        def score(key: str, images: torch.Tensor, targets: torch.Tensor) -> None:
            with torch.no_grad():  # scoring only; the attacks above took their gradients already
                correct[key] += float(task.accuracy_fn(model(images), targets).sum())

        n = max(task.size("test"), 1)
        attack_index = torch.arange(n)
        if self.attack_samples is not None and n > self.attack_samples:
            subset = torch.randperm(n, generator=torch.Generator().manual_seed(0))[:self.attack_samples]
            attack_index = subset.sort().values
        for start in range(0, len(attack_index), batch_size):
            (images,), targets = task.gather("test", attack_index[start:start + batch_size])
            for e in self.eps_255:
                eps = e / 255
                score(f"fgsm_eps{e}", fgsm(model, task.loss_fn, images, targets, eps), targets)
                score(f"pgd_eps{e}", pgd(model, task.loss_fn, images, targets, eps, steps=self.pgd_steps,
                                         generator=attack_gen), targets)
        for inputs, targets in task.batches("test", batch_size):
            (images,) = inputs
            for c in self.corruptions:
                for s in self.severities:
                    score(f"{c}_s{s}", corrupt(images, c, s, noise_gen), targets)
        n_attack = max(len(attack_index), 1)
        out = {f"eval_robust_{a}_eps{e}_accuracy": correct[f"{a}_eps{e}"] / n_attack
               for e in self.eps_255 for a in ("fgsm", "pgd")}
        for c in self.corruptions:
            per = [correct[f"{c}_s{s}"] / n for s in self.severities]
            out.update({f"eval_robust_{c}_s{s}_accuracy": v for s, v in zip(self.severities, per)})
            out[f"eval_robust_{c}_accuracy"] = sum(per) / len(per)
        every = [correct[f"{c}_s{s}"] / n for c in self.corruptions for s in self.severities]
        out["eval_robust_corruption_accuracy"] = sum(every) / len(every) if every else float("nan")
        return out


def _special_ids(task: Task) -> tuple[int, int]:
    """(pad id, unk id) of a token task's vocabulary (text: ``data.vocab``, NER: ``data.words``)."""
    data = getattr(task, "data", None)
    for attr in ("vocab", "words"):
        vocab = getattr(data, attr, None)
        if vocab is not None and hasattr(vocab, "unk_id"):
            return int(vocab.pad_id), int(vocab.unk_id)
    return 0, 1


def _real(ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    return torch.arange(ids.shape[1], device=ids.device) < lengths.to(ids.device)[:, None]  # (B, T) real tokens


def unk_noise(ids: torch.Tensor, lengths: torch.Tensor, rate: float, unk_id: int,
              generator: torch.Generator) -> torch.Tensor:
    """Each real token becomes ``<unk>`` with probability ``rate``: the id-level trace of a typo (a word with
    swapped characters is out of vocabulary), which keeps NER tags aligned."""
    hit = (torch.rand(ids.shape, generator=generator) < rate).to(ids.device) & _real(ids, lengths)
    return torch.where(hit, torch.full_like(ids, unk_id), ids)


def word_drop(ids: torch.Tensor, lengths: torch.Tensor, targets: torch.Tensor, rate: float, pad_id: int,
              generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each real token is dropped with probability ``rate`` (at least one kept); the rest close up, and
    per-token targets (NER tags, same shape as ``ids``) are dropped with their tokens."""
    real = _real(ids, lengths)
    drop = (torch.rand(ids.shape, generator=generator) < rate).to(ids.device) & real
    emptied = (real & ~drop).sum(1) == 0
    drop[:, 0] &= ~emptied  # a sentence never vanishes: its first token stays
    keep = real & ~drop
    order = torch.sort((~keep).to(torch.int8), dim=1, stable=True).indices  # kept tokens first, in order
    new_lengths = keep.sum(1).to(lengths.dtype)
    inside = torch.arange(ids.shape[1], device=ids.device) < new_lengths.to(ids.device)[:, None]
    new_ids = torch.where(inside, ids.gather(1, order), torch.full_like(ids, pad_id))
    if targets.shape == ids.shape:  # per-token tags travel with their tokens
        from adaptaug.ops.tagging import PAD_TAG

        targets = torch.where(inside, targets.gather(1, order), torch.full_like(targets, PAD_TAG))
    return new_ids, new_lengths, targets


@dataclass(frozen=True)
class TextSuite:
    """Token tasks (IMDB, SST-2, CoNLL-2003): PGD in embedding space and random token noise.

    PGD (Madry et al. 2018) perturbs the embedded tokens under an L2 bound scaled per sentence so that
    ``eps`` is the root-mean-square perturbation per token as a share of the sentence's mean embedding norm
    (``eps_percent`` 10 = 10%): one eps means the same for every vocabulary and embedding scale. Token noise:
    ``<unk>`` replacement (typos) and word drops at fixed rates. Keys, accuracy and the task's F1 (entity F1
    for NER): ``eval_robust_embpgd_eps{P}_*``, ``eval_robust_{unk,drop}_r{R}_*`` (R in %), their means over
    rates ``eval_robust_{unk,drop}_*`` and over all noise ``eval_robust_corruption_*``.

    Scored on a fixed random subset of ``max_samples`` test samples (the same for every run and seed): PGD
    through an LSTM costs about 20 forward-backward passes per sample, without cuDNN, and IMDB's test split
    has 25,000 long reviews. 1,000 samples put the standard error of an accuracy near 1.5 points.
    """

    eps_percent: tuple[int, ...] = (10, 50)
    pgd_steps: int = 10
    max_samples: int | None = 1000  # None = the whole test split
    rates_percent: tuple[int, ...] = (10, 20)
    noises: tuple[str, ...] = ("unk", "drop")

    def __call__(self, model: nn.Module, task: Task, *, seed: int = 0, batch_size: int = 256) -> dict[str, float]:
        pad_id, unk_id = _special_ids(task)
        attack_gen = torch.Generator().manual_seed(seed)
        noise_gen = torch.Generator().manual_seed(seed + 1)
        logits: dict[str, list[torch.Tensor]] = defaultdict(list)
        targets_of: dict[str, list[torch.Tensor]] = defaultdict(list)
        embed = model.embed if hasattr(model, "embed") else model.embedding

        def keep(key: str, out: torch.Tensor, targets: torch.Tensor) -> None:
            logits[key].append(out.detach())
            targets_of[key].append(targets)

        n = task.size("test")
        index = torch.arange(n)
        if self.max_samples is not None and n > self.max_samples:  # seeded apart from the run: same subset always
            index = torch.randperm(n, generator=torch.Generator().manual_seed(0))[:self.max_samples].sort().values
        for start in range(0, len(index), batch_size):
            (ids, lengths), targets = task.gather("test", index[start:start + batch_size])
            self._attack(model, task, embed, ids, lengths, targets, attack_gen, keep)
            with torch.no_grad():
                for r in self.rates_percent:
                    if "unk" in self.noises:
                        keep(f"unk_r{r}", model(unk_noise(ids, lengths, r / 100, unk_id, noise_gen), lengths), targets)
                    if "drop" in self.noises:
                        d_ids, d_lengths, d_targets = word_drop(ids, lengths, targets, r / 100, pad_id, noise_gen)
                        keep(f"drop_r{r}", model(d_ids, d_lengths), d_targets)
        out: dict[str, float] = {}
        for key in logits:  # attacks first, then noise, in the order they ran
            m = task.metrics(logits[key], targets_of[key])
            out.update({f"eval_robust_{key}_accuracy": m["accuracy"], f"eval_robust_{key}_f1": m["f1"]})
        for metric in ("accuracy", "f1"):
            every = []
            for noise in self.noises:
                per = [out[f"eval_robust_{noise}_r{r}_{metric}"] for r in self.rates_percent]
                out[f"eval_robust_{noise}_{metric}"] = sum(per) / len(per)
                every += per
            out[f"eval_robust_corruption_{metric}"] = sum(every) / len(every) if every else float("nan")
        return out

    def _attack(self, model: nn.Module, task: Task, embed: Callable[[torch.Tensor], torch.Tensor],
                ids: torch.Tensor, lengths: torch.Tensor, targets: torch.Tensor, generator: torch.Generator,
                keep: Callable[[str, torch.Tensor, torch.Tensor], None]) -> None:
        with torch.no_grad():
            emb = embed(ids)  # (B, T, E)
        real = _real(ids, lengths).unsqueeze(-1).to(emb.dtype)  # (B, T, 1)
        n_real = lengths.to(emb.device).clamp(min=1).to(emb.dtype)
        mean_norm = (emb.norm(dim=-1) * real.squeeze(-1)).sum(1) / n_real  # (B,) mean token norm
        scale = (mean_norm * n_real.sqrt()).clamp_min(1e-12).view(-1, 1, 1)  # L2 of a sentence at 100%

        def forward(z: torch.Tensor) -> torch.Tensor:  # z: embeddings in units of the sentence's scale
            return model.forward_embedded(z * scale * real, lengths)

        # cuDNN's RNN backward refuses eval mode; the attack needs eval mode (no dropout), so no cuDNN here
        with torch.backends.cudnn.flags(enabled=False):
            for p in self.eps_percent:
                z = pgd(forward, task.loss_fn, emb / scale, targets, p / 100, steps=self.pgd_steps, norm="l2",
                        bounds=None, generator=generator)
                keep(f"embpgd_eps{p}", forward(z), targets)


Suite = Callable[..., dict[str, float]]  # suite(model, task, *, seed, batch_size) -> eval_robust_* dict
SUITES: dict[str, Suite] = {"image": ImageSuite(), "text": TextSuite(), "tagging": TextSuite()}


def register_suite(modality: str, suite: Suite) -> None:
    """Make ``robustness`` run ``suite`` for every task of ``modality`` (e.g. "text", "tagging")."""
    SUITES[modality] = suite


def task_modality(task: Task) -> str:
    """``task.modality`` if the task says, else the most specific modality among its ops: "Identity" is
    registered as an image op but sits in every op space, so any text or tagging op decides."""
    modality = getattr(task, "modality", None)
    if modality:
        return str(modality)
    from adaptaug.ops.space import get_op

    found = {get_op(name).modality for name in getattr(task.op_space, "names", ())}
    for candidate in ("tagging", "text", "image"):
        if candidate in found:
            return candidate
    return "unknown"


def robustness(model: nn.Module, task: Task, *, seed: int = 0, batch_size: int = 256) -> dict[str, float]:
    """``eval_robust_*`` accuracies of ``model`` on ``task``'s test split; ``{}`` if no suite fits the task.

    The model is put in eval mode (no dropout: a stochastic forward would randomise the attack's gradient)
    and restored afterwards.
    """
    own = getattr(task, "robustness_suite", None)
    suite = None if callable(own) else SUITES.get(task_modality(task))
    if not callable(own) and suite is None:
        return {}
    was_training = model.training
    model.eval()
    try:
        if callable(own):
            return own(model, seed=seed, batch_size=batch_size)
        return suite(model, task, seed=seed, batch_size=batch_size)
    finally:
        model.train(was_training)


__all__ = ["CORRUPTIONS", "CORRUPTION_PARAMS", "ImageSuite", "SUITES", "TextSuite", "corrupt", "register_suite",
           "robustness", "task_modality", "unk_noise", "word_drop"]
