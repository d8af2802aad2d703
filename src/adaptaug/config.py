"""Run configuration: every knob with its unit and why it has its default."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from adaptaug.errors import ConfigError
from adaptaug.policies.augnet import AugNetConfig

if TYPE_CHECKING:
    import torch

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")  # torch.compile's
CUDA_GRAPH_MODES = ("reduce-overhead", "max-autotune")  # the modes that capture CUDA graphs


@dataclass
class TrainConfig:
    task: str = "digits"  # embedded scikit-learn digits: runs anywhere with no download
    data: str | None = None  # local copy (IDX folder, image-folder tree); None = embedded / HF hub
    policy: str = "augnet"
    epochs: int = 50  # upper bound; early stopping usually ends sooner (the seed's value)
    batch_size: int = 64  # the seed's value
    lr: float = 5e-4  # Adam; the tuned value from the seed experiment (1e-3 untuned)
    seed: int = 0
    device: str = "auto"  # auto = cuda when available, else cpu
    out: str | None = None  # run directory; None = a new folder under runs/
    patience: int = 3  # early stopping on validation loss, best weights restored (the seed's value)
    val_size: float | int = 0.1  # share (or count, if >= 1) of the training set held out for validation
    limit: int | None = None  # keep a stratified subset of this many training images (quick runs)
    # text tasks: validation from whole texts, training texts inside them dropped (SST-2 trains on phrases but tests
    # on sentences; per run, a random split of its phrases correlated 0.26 with test, whole sentences 0.63:
    # reports/sst2-whole-val/)
    val_whole_texts: bool = False
    robustness: bool = True  # eval_robust_* keys (attacks, corruptions) after the test evaluation
    # Speed knobs, off by default until measured to help (BENCHMARKS.md); evaluation always runs in float32.
    compile: bool = False  # torch.compile the training step's model
    # torch.compile's mode: "reduce-overhead" also captures the step's forward and backward as CUDA graphs (on CUDA;
    # the bare step's graph measured 0.52 ms against 2.6 ms eager on an H200, BENCHMARKS.md), the others don't
    compile_mode: str = "default"
    amp: str = "off"  # "bf16": autocast the training forward in bfloat16 (costs accuracy on CIFAR-10: reports/)
    # NHWC weights and inputs for image models; None = on for the CPU, where it measured 1.2x (the step) to 2.5x
    # (AugNet's probe) faster, off on CUDA, where it did not help (an H200 epoch: 2.07 s against 2.03)
    channels_last: bool | None = None
    # batches augmented per call of the kernels (plans are still drawn per batch, in order; AugNet caps it at the
    # rest of its round; large images cap it at ImageTask's pixel budget); None = 16. At batch 64 the kernels are
    # launch-bound: 16 took TrivialAugment's step on an H200 from 3.2x to 1.12x the bare step (BENCHMARKS.md)
    augment_ahead: int | None = None
    augnet: AugNetConfig = field(default_factory=AugNetConfig)

    def __post_init__(self) -> None:
        if isinstance(self.augnet, dict):
            self.augnet = AugNetConfig(**self.augnet)
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if not self.lr > 0 or self.lr != self.lr:
            raise ConfigError(f"learning rate must be > 0, got {self.lr!r}")
        if self.patience < 1:
            raise ConfigError(f"patience must be >= 1, got {self.patience!r}")
        if not self.val_size > 0:
            raise ConfigError(f"val_size must be > 0, got {self.val_size!r}")
        if self.compile_mode not in COMPILE_MODES:
            raise ConfigError(f"compile_mode must be one of {', '.join(COMPILE_MODES)}, got {self.compile_mode!r}")
        if self.compile_mode != "default" and not self.compile:
            raise ConfigError(f"compile_mode {self.compile_mode!r} needs compile=True (it is torch.compile's mode)")
        if self.amp not in ("off", "bf16"):
            raise ConfigError(f"amp must be 'off' or 'bf16', got {self.amp!r}")
        if self.channels_last not in (None, True, False):
            raise ConfigError(f"channels_last must be true, false or null (auto), got {self.channels_last!r}")
        if self.augment_ahead is not None and (not isinstance(self.augment_ahead, int) or self.augment_ahead < 1):
            raise ConfigError(f"augment_ahead must be a positive integer or null (auto), got {self.augment_ahead!r}")
        if not isinstance(self.val_whole_texts, bool):
            raise ConfigError(f"val_whole_texts must be true or false, got {self.val_whole_texts!r}")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"limit must be a positive integer, got {self.limit!r}")

    def channels_last_on(self, device: "torch.device") -> bool:
        """Whether runs on ``device`` use channels_last (``channels_last=None``: on the CPU only)."""
        return self.channels_last if self.channels_last is not None else device.type == "cpu"

    def cuda_graphs_on(self, device: "torch.device") -> bool:
        """Whether the training step on ``device`` is replayed from CUDA graphs (a compile mode that captures them,
        on CUDA)."""
        return self.compile and device.type == "cuda" and self.compile_mode in CUDA_GRAPH_MODES

    @property
    def resolved_augment_ahead(self) -> int:
        """Batches augmented per kernel call (``augment_ahead=None``: 16, faster on the CPU and the GPU alike)."""
        return self.augment_ahead if self.augment_ahead is not None else 16

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown config keys: {', '.join(sorted(unknown))}")
        data = dict(data)
        if isinstance(data.get("augnet"), dict):
            augnet = dict(data["augnet"])
            if "hidden" in augnet:
                augnet["hidden"] = tuple(augnet["hidden"])
            data["augnet"] = AugNetConfig(**augnet)
        return cls(**data)
