"""White-box gradient attacks: FGSM (Goodfellow et al. 2015) and PGD (Madry et al. 2018).

Generic over what is perturbed: ``forward`` maps the perturbed tensor to logits and ``loss_fn`` gives a
per-sample loss ``(B,)``. For images the tensor is the float image in [0, 1] (normalisation lives inside the
model, so ``eps`` is in pixel units and means the same for every run) and results are clipped to
``bounds=(0, 1)``; for text it is the embedded tokens (``model.forward_embedded(emb, lengths)``) with
``bounds=None``.

Soundness, checked in ``tests/test_attacks.py``: eps 0 returns the input, gradients reach the input (no
``torch.no_grad`` on this path: ``torch.enable_grad`` is forced so a caller's no-grad context cannot mask
them), and the random start draws only from an explicit ``torch.Generator``. Put the model in eval mode
first (``robustness.py`` does): in train mode dropout would randomise the gradient (a form of masking).
Written here because torchattacks needs torchvision, which cannot be installed beside the CPU torch.
"""
from __future__ import annotations

from typing import Callable

import torch

Forward = Callable[[torch.Tensor], torch.Tensor]  # perturbed input -> logits
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (logits, targets) -> (B,) per-sample loss
Bounds = tuple[float, float] | None

NORMS = ("linf", "l2")


def _check(eps: float, norm: str) -> None:
    if not eps >= 0 or eps == float("inf"):
        raise ValueError(f"eps must be a finite number >= 0, got {eps!r}")
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")


def input_gradient(forward: Forward, loss_fn: LossFn, inputs: torch.Tensor,
                   targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(per-sample loss (B,), d sum(loss) / d inputs); each sample's gradient is its own loss's."""
    with torch.enable_grad():
        x = inputs.detach().clone().requires_grad_(True)
        loss = loss_fn(forward(x), targets)  # (B,)
        # autograd.grad on the input only: the model's .grad buffers are never touched
        (grad,) = torch.autograd.grad(loss.sum(), x)
    return loss.detach(), grad


def _per_sample_norm(v: torch.Tensor) -> torch.Tensor:
    """L2 norm over everything but the batch dim, shaped to broadcast against ``v``."""
    return v.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (v.dim() - 1)))


def _step(grad: torch.Tensor, size: float, norm: str) -> torch.Tensor:
    if norm == "linf":
        return size * grad.sign()
    return size * grad / _per_sample_norm(grad)


def _project(delta: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    if norm == "linf":
        return delta.clamp(-eps, eps)
    return delta * (eps / _per_sample_norm(delta)).clamp(max=1.0)


def _clip(x: torch.Tensor, bounds: Bounds) -> torch.Tensor:
    return x if bounds is None else x.clamp(*bounds)


def fgsm(forward: Forward, loss_fn: LossFn, inputs: torch.Tensor, targets: torch.Tensor, eps: float, *,
         norm: str = "linf", bounds: Bounds = (0.0, 1.0)) -> torch.Tensor:
    """One signed-gradient step of size ``eps`` (Goodfellow et al. 2015); eps 0 returns ``inputs``."""
    _check(eps, norm)
    if eps == 0:
        return inputs.detach().clone()
    _, grad = input_gradient(forward, loss_fn, inputs, targets)
    return _clip(inputs.detach() + _step(grad, eps, norm), bounds).detach()


def pgd(forward: Forward, loss_fn: LossFn, inputs: torch.Tensor, targets: torch.Tensor, eps: float, *,
        steps: int = 10, step_size: float | None = None, random_start: bool = True,
        generator: torch.Generator | None = None, norm: str = "linf",
        bounds: Bounds = (0.0, 1.0)) -> torch.Tensor:
    """Projected gradient ascent on the loss inside the ``eps`` ball (Madry et al. 2018).

    ``steps`` steps of ``step_size`` (default eps/4, so the ball's far side is reachable in a few steps),
    from a uniform random point of the ball when ``random_start``. Per sample it returns the iterate with
    the highest loss seen, not just the last one, so more steps can only make the attack stronger.
    """
    _check(eps, norm)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    x0 = inputs.detach()
    if eps == 0:
        return x0.clone()
    step_size = eps / 4 if step_size is None else step_size
    delta = torch.zeros_like(x0)
    if random_start:
        # drawn on the CPU from the caller's generator (reproducible on any device), then moved
        u = torch.rand(x0.shape, generator=generator, dtype=x0.dtype).to(x0.device)
        if norm == "linf":
            delta = (2 * u - 1) * eps
        else:
            delta = _project((2 * u - 1) * eps, eps, norm)
    x = _clip(x0 + delta, bounds)
    best_x, best_loss = x.clone(), torch.full(x0.shape[:1], -float("inf"), device=x0.device)
    for _ in range(steps):
        loss, grad = input_gradient(forward, loss_fn, x, targets)
        better = loss > best_loss  # the point just evaluated beats the best so far
        best_x[better], best_loss = x[better], torch.where(better, loss, best_loss)
        x = _clip(x0 + _project(x + _step(grad, step_size, norm) - x0, eps, norm), bounds)
    loss = loss_fn(forward(x), targets).detach()  # score the last iterate too
    better = loss > best_loss
    best_x[better] = x[better]
    return best_x.detach()


__all__ = ["fgsm", "pgd", "input_gradient", "NORMS"]
