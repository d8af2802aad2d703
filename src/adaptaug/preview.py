"""``adaptaug preview``: what a policy does to training samples, as a PNG grid.

The first row holds the original images; every further row is one fresh draw of the policy's plan for the
same images, each tile captioned with the ops and magnitudes that made it (the plan is data, so the caption
is exactly what ran). AugNet is shown untrained, i.e. TrivialAugment-wide on top of crop+flip (its heads
start at zero); what it learns during a run is in that run's trace.csv and the report's plots.
Token tasks (IMDB, SST-2, CoNLL-2003) get a before/after listing instead (NER tags shown as ``word/TAG``).
"""
from __future__ import annotations

import io
import math
import os
from pathlib import Path

import torch

from adaptaug.augment import NO_OP, AugPlan
from adaptaug.errors import ConfigError
from adaptaug.io import write_atomic

MAX_COLUMNS = 8
MAX_TOKENS = 40  # a listing shows the start of long reviews only


def plan_captions(plan: AugPlan) -> list[str]:
    """Per sample, the ops its plan applies ("Rotate -12", "CropPad 0.1"), Identity and empty slots left out."""
    captions = []
    for ids, mags in zip(plan.op_ids.tolist(), plan.magnitudes.tolist()):
        parts = []
        for op_id, mag in zip(ids, mags):
            if op_id == NO_OP or plan.ops[op_id] == "Identity":
                continue
            parts.append(f"{plan.ops[op_id]} {mag:.3g}" if mag else plan.ops[op_id])
        captions.append("\n".join(parts) or "(unchanged)")
    return captions


def preview(task: str, policy: str, out: str | os.PathLike | None = None, *, data: str | None = None,
            n: int | None = None, seed: int = 0) -> Path | str:
    """Image tasks: a grid of ``n`` (default 32) augmented training samples plus a first row of originals,
    written to ``out`` (PNG, default preview.png). Token tasks: a before/after listing of ``n`` (default 8)
    samples, written to ``out`` (a text file) or returned as a string when ``out`` is None."""
    from adaptaug.policies import build_policy
    from adaptaug.robustness import task_modality
    from adaptaug.tasks import build_task

    if n is not None and n < 1:
        raise ConfigError(f"n must be a positive integer, got {n!r}")
    image_like = out is not None and Path(out).suffix.lower() == ".png"
    the_task = build_task(task, data, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    the_policy = build_policy(policy, the_task, 1, generator)
    if task_modality(the_task) != "image":
        if image_like:
            raise ConfigError(f"{task} is a text task: preview writes a listing; give --out a .txt path or leave "
                              "it out to print it")
        listing = preview_text(the_task, the_policy, n or 8, seed)
        if out is None:
            return listing
        write_atomic(out, listing)
        return Path(out)
    if out is not None and not image_like:
        raise ConfigError(f"--out must name a .png file for image tasks, got {str(out)!r}")
    n = n or 32
    out = Path(out) if out is not None else Path("preview.png")
    cols = min(MAX_COLUMNS, n)
    rows = math.ceil(n / cols)  # augmented draws of the same images
    index = torch.randperm(the_task.size("train"), generator=torch.Generator().manual_seed(seed))[:cols]
    (images,), labels = the_task.gather("train", index)
    draws, captions = [], []
    for _ in range(rows):
        plan = the_policy.sample(images.shape[0])
        draws.append(the_task.augment((images,), plan)[0].cpu())
        captions.append(plan_captions(plan))
    classes = getattr(getattr(getattr(the_task, "data", None), "train", None), "classes", None)
    names = [str(classes[int(y)]) if classes else str(int(y)) for y in labels.tolist()]
    untrained = " (untrained AugNet = TrivialAugment-wide + crop/flip)" if policy == "augnet" else ""
    title = f"{task}: {policy}{untrained}"
    try:
        png = _grid_matplotlib(images.cpu(), draws, captions, names, title)
    except ImportError:
        png = _grid_pillow(images.cpu(), draws)
    write_atomic(out, png)
    return out


def preview_text(task, policy, n: int, seed: int) -> str:
    """Before/after listing of ``n`` seeded training samples under one draw of ``policy``'s plan."""
    data = getattr(task, "data", None)
    vocab = getattr(data, "vocab", None) or getattr(data, "words", None)
    tag_names = getattr(task, "tags", None)
    index = torch.randperm(task.size("train"), generator=torch.Generator().manual_seed(seed))[:n]
    inputs, targets = task.gather("train", index)
    plan = policy.sample(len(index))
    new_inputs, new_targets = task.augment_batch(inputs, targets, plan)

    def show(ids: torch.Tensor, length: torch.Tensor, tags: torch.Tensor) -> str:
        ids = ids[: int(length)].tolist()
        words = vocab.decode(ids) if vocab is not None else [str(i) for i in ids]
        if tag_names is not None and tags.dim() == 1:  # NER: name the entity tags in place
            words = [w if t < 0 or tag_names[t] == "O" else f"{w}/{tag_names[t]}"
                     for w, t in zip(words, tags[: len(words)].tolist())]
        cut = " ..." if len(words) > MAX_TOKENS else ""
        return " ".join(words[:MAX_TOKENS]) + cut

    lines = [f"# {task.name}: {policy!r}", ""]
    for i, caption in enumerate(plan_captions(plan)):
        lines += [f"[{i}] {caption.replace(chr(10), ', ')}",
                  f"  before: {show(inputs[0][i], inputs[1][i], targets[i])}",
                  f"  after:  {show(new_inputs[0][i], new_inputs[1][i], new_targets[i])}", ""]
    return "\n".join(lines)


def _to_hwc(image: torch.Tensor) -> torch.Tensor:
    return image.clamp(0, 1).permute(1, 2, 0).squeeze(-1)  # (H, W) grey or (H, W, 3)


def _grid_matplotlib(originals: torch.Tensor, draws: list[torch.Tensor], captions: list[list[str]],
                     names: list[str], title: str) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows, cols = len(draws) + 1, originals.shape[0]
    fig = Figure(figsize=(1.6 * cols, 1.9 * rows))
    FigureCanvasAgg(fig)
    grey = originals.shape[1] == 1
    for r, (batch, caps) in enumerate([(originals, [f"original: {c}" for c in names])] + list(zip(draws, captions))):
        for c in range(cols):
            ax = fig.add_subplot(rows, cols, r * cols + c + 1)
            ax.imshow(_to_hwc(batch[c]).numpy(), cmap="gray" if grey else None, vmin=0, vmax=1,
                      interpolation="nearest")
            ax.set_title(caps[c], fontsize=6)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def _grid_pillow(originals: torch.Tensor, draws: list[torch.Tensor]) -> bytes:
    """Captionless fallback when matplotlib is missing: tiles upscaled to at least 64 px, 2 px gaps."""
    from PIL import Image

    tiles = torch.stack([originals, *draws])  # (R, C, ch, H, W)
    rows, cols, ch, h, w = tiles.shape
    scale = max(1, math.ceil(64 / max(h, w)))
    tiles = tiles.repeat_interleave(scale, -2).repeat_interleave(scale, -1)
    h, w, gap = h * scale, w * scale, 2
    canvas = torch.ones(ch, rows * (h + gap), cols * (w + gap))
    for r in range(rows):
        for c in range(cols):
            canvas[:, r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = tiles[r, c]
    array = (canvas.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).squeeze(-1).numpy()
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


__all__ = ["plan_captions", "preview", "preview_text"]
