"""Image data: the in-memory container, the seeded stratified splits, the decode cache, ``load_image_task``.

Every image task ends up as an :class:`ImageSplits`: uint8 tensors ``(N, C, H, W)`` (never a float copy of
the whole set; models convert per batch), int64 labels, a validation split carved out of the official
training set (the test set is never touched by it) and per-channel mean/std of the remaining training part.

Loaders (``digits``, ``mnist``, ``image_folder``, ``hub``) only produce a :class:`RawImages` of numpy arrays;
splitting, limiting and statistics happen here once, so every source behaves the same way.

Decoded arrays of file sources are cached as ``.npz`` files in ``$ADAPTAUG_CACHE_DIR`` (else
``$XDG_CACHE_HOME/adaptaug``, else ``~/.cache/adaptaug``) under a key that hashes the source's bytes, so
a changed file gives a new key and a stale cache can never be served. Data folders are never written to.
"""
from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from adaptaug.errors import ConfigError, DataError

log = logging.getLogger(__name__)

IMAGE_TASKS: tuple[str, ...] = ("digits", "mnist", "cifar10", "imagefolder")

# Bump when the decoded arrays for the same source bytes would change (decode rules, layout, keys):
# old cache files then simply stop matching.
CACHE_FORMAT_VERSION = "adaptaug-image-cache-v1"


@dataclass
class ImageDataset:
    """Images with their labels, all in memory.

    ``images`` is (N, C, H, W) uint8, contiguous; ``labels`` is (N,) int64 in ``[0, len(classes))``.
    """

    images: torch.Tensor  # (N, C, H, W) uint8
    labels: torch.Tensor  # (N,) int64
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        self.classes = tuple(self.classes)
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise DataError(f"images must be a (N, C, H, W) uint8 tensor, got {self.images.dtype} "
                            f"with shape {tuple(self.images.shape)}")
        if self.labels.dtype != torch.int64 or self.labels.dim() != 1:
            raise DataError(f"labels must be a (N,) int64 tensor, got {self.labels.dtype} "
                            f"with shape {tuple(self.labels.shape)}")
        if self.images.shape[0] != self.labels.shape[0]:
            raise DataError(f"{self.images.shape[0]} images but {self.labels.shape[0]} labels")
        if self.labels.numel() and (int(self.labels.min()) < 0 or int(self.labels.max()) >= len(self.classes)):
            raise DataError(f"labels must be in [0, {len(self.classes)}), got "
                            f"[{int(self.labels.min())}, {int(self.labels.max())}]")
        self.images = self.images.contiguous()  # no-op when already contiguous

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def subset(self, index: torch.Tensor) -> "ImageDataset":
        """The samples at ``index`` (int indices or a bool mask), as a new dataset with copied tensors."""
        index = torch.as_tensor(index)
        if index.dtype != torch.bool:
            index = index.long()
        return ImageDataset(self.images[index].contiguous(), self.labels[index], self.classes)

    def __repr__(self) -> str:
        return f"ImageDataset(n={len(self)}, shape={tuple(self.images.shape[1:])}, classes={len(self.classes)})"


@dataclass
class ImageSplits:
    """One image task ready for training: train (minus validation), validation, test and normalisation stats."""

    name: str  # "digits" | "mnist" | "cifar10" | folder name
    train: ImageDataset  # training part AFTER the validation split was removed
    val: ImageDataset  # stratified, seeded split of the original training set
    test: ImageDataset
    mean: tuple[float, ...]  # per-channel mean of train images in [0, 1] units
    std: tuple[float, ...]
    source: str  # where it came from (path or hub id), for config.json

    @property
    def classes(self) -> tuple[str, ...]:
        return self.train.classes

    @property
    def num_classes(self) -> int:
        return len(self.train.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train.images.shape[1:])  # type: ignore[return-value]

    def __repr__(self) -> str:
        mean = ", ".join(f"{m:.4f}" for m in self.mean)
        std = ", ".join(f"{s:.4f}" for s in self.std)
        return (f"ImageSplits(name={self.name!r}, train={len(self.train)}, val={len(self.val)}, "
                f"test={len(self.test)}, shape={self.image_shape}, classes={self.num_classes}, "
                f"mean=({mean}), std=({std}), source={self.source!r})")


@dataclass
class RawImages:
    """What a loader hands back: official train and test parts as numpy arrays, before any split."""

    train_images: np.ndarray  # (N, C, H, W) uint8
    train_labels: np.ndarray  # (N,) int64
    test_images: np.ndarray  # (M, C, H, W) uint8
    test_labels: np.ndarray  # (M,) int64
    classes: tuple[str, ...]
    source: str


# --------------------------------------------------------------------------------------------- splitting


def stratified_choice(labels: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of ``k`` samples whose class counts are proportional to ``labels``' own.

    Per-class quotas use the largest-remainder rule (exact integer arithmetic), so every class gets
    ``floor(n_c * k / n)`` or one more; leftover seats go to the largest remainders, ties broken by ``rng``.
    Unlike sklearn's ``train_test_split(stratify=...)`` this also works when ``k`` is smaller than the
    number of classes or a class has a single member.
    """
    n = labels.shape[0]
    if not 0 <= k <= n:
        raise ConfigError(f"cannot pick {k} samples out of {n}")
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(labels, kind="stable")  # indices grouped by class
    _, counts = np.unique(labels, return_counts=True)
    quota = counts * k // n
    remainder = counts * k % n
    short = k - int(quota.sum())
    if short > 0:
        # largest remainder first; the random key makes ties fair instead of favouring low class ids
        seats = np.lexsort((rng.random(len(counts)), -remainder))[:short]
        quota[seats] += 1
    picked = []
    start = 0
    for count, q in zip(counts.tolist(), quota.tolist()):
        members = order[start:start + count]
        picked.append(rng.permutation(members)[:q])
        start += count
    return np.sort(np.concatenate(picked)).astype(np.int64)


def _val_count(val_size: float | int, n: int) -> int:
    """Number of validation samples for a fraction in [0, 1) or a count in [0, n)."""
    if isinstance(val_size, (bool, np.bool_)) or not isinstance(val_size, (int, float, np.integer, np.floating)):
        raise ConfigError(f"val_size must be a fraction in [0, 1) or a count, got {val_size!r}")
    if isinstance(val_size, (float, np.floating)):
        if not 0.0 <= float(val_size) < 1.0:
            raise ConfigError(f"val_size as a fraction must be in [0, 1), got {val_size}")
        k = int(round(float(val_size) * n))
    else:
        k = int(val_size)
        if k < 0:
            raise ConfigError(f"val_size as a count must be >= 0, got {k}")
    if k >= n:
        raise ConfigError(f"val_size {val_size} leaves no training images (training set has {n})")
    return k


def _check_limit(limit: int | None) -> None:
    if limit is None:
        return
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1:
        raise ConfigError(f"limit must be a positive integer or None, got {limit!r}")


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) std of uint8 images in [0, 1] units.

    Exact and cheap: a 256-bin histogram per channel instead of a float copy of the whole set.
    """
    if images.shape[0] == 0:
        raise DataError("cannot compute mean/std of an empty training set")
    levels = torch.arange(256, dtype=torch.float64) / 255.0
    means, stds = [], []
    for c in range(images.shape[1]):
        hist = torch.bincount(images[:, c].reshape(-1), minlength=256).to(torch.float64)
        p = hist / hist.sum()
        mean = float((p * levels).sum())
        var = float((p * (levels - mean) ** 2).sum())
        means.append(mean)
        stds.append(var ** 0.5)
    return tuple(means), tuple(stds)


def make_splits(name: str, raw: RawImages, *, val_size: float | int = 0.1, seed: int = 0,
                limit: int | None = None) -> ImageSplits:
    """Turn a loader's raw arrays into :class:`ImageSplits` (limit, then validation split, then stats)."""
    _check_limit(limit)
    train_x, train_y = raw.train_images, raw.train_labels
    # Independent streams for the two draws, so changing `limit` does not reshuffle how val is drawn
    # from an unchanged pool, and vice versa.
    if limit is not None and limit < train_y.shape[0]:
        keep = stratified_choice(train_y, int(limit), np.random.default_rng([seed, 1]))
        train_x, train_y = train_x[keep], train_y[keep]
    n = train_y.shape[0]
    k = _val_count(val_size, n)
    val_idx = stratified_choice(train_y, k, np.random.default_rng([seed, 2]))
    is_val = np.zeros(n, dtype=bool)
    is_val[val_idx] = True
    classes = tuple(raw.classes)
    # Boolean-mask indexing copies, so the full training array can be freed afterwards.
    train = ImageDataset(torch.from_numpy(np.ascontiguousarray(train_x[~is_val])),
                         torch.from_numpy(train_y[~is_val].astype(np.int64)), classes)
    val = ImageDataset(torch.from_numpy(np.ascontiguousarray(train_x[is_val])),
                       torch.from_numpy(train_y[is_val].astype(np.int64)), classes)
    test = ImageDataset(torch.from_numpy(np.ascontiguousarray(raw.test_images)),
                        torch.from_numpy(raw.test_labels.astype(np.int64)), classes)
    if test.images.shape[1:] != train.images.shape[1:]:
        raise DataError(f"test images are {tuple(test.images.shape[1:])} but train images are "
                        f"{tuple(train.images.shape[1:])} (C, H, W)")
    mean, std = channel_stats(train.images)
    return ImageSplits(name=name, train=train, val=val, test=test, mean=mean, std=std, source=raw.source)


# --------------------------------------------------------------------------------------------- cache


def cache_dir() -> Path:
    """Where decoded arrays are cached: ``$ADAPTAUG_CACHE_DIR``, else ``$XDG_CACHE_HOME/adaptaug``,
    else ``~/.cache/adaptaug``. Never beside the data, which may be read-only."""
    explicit = os.environ.get("ADAPTAUG_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "adaptaug"


def new_cache_hasher(kind: str) -> "hashlib._Hash":
    """A sha256 already fed with the cache format version and the source kind."""
    h = hashlib.sha256()
    h.update(f"{CACHE_FORMAT_VERSION}\0{kind}\0".encode())
    return h


def hash_named_bytes(h: "hashlib._Hash", name: str, data: bytes) -> None:
    """Feed one file into ``h``: name and length first, so the concatenation is unambiguous."""
    encoded = name.encode("utf-8", "surrogateescape")
    h.update(len(encoded).to_bytes(8, "little"))
    h.update(encoded)
    h.update(len(data).to_bytes(8, "little"))
    h.update(data)


def cache_path(kind: str, key: str) -> Path:
    return cache_dir() / f"{kind}-{key}.npz"


_CACHE_ARRAYS = ("train_images", "train_labels", "test_images", "test_labels", "classes")


def _validate_cached(arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """Raise ValueError unless the arrays look exactly like what :func:`save_cache` writes."""
    tx, ty, vx, vy, classes = (arrays[k] for k in _CACHE_ARRAYS)
    if classes.ndim != 1 or classes.dtype.kind != "U" or classes.size == 0:
        raise ValueError("bad classes array")
    for x, y in ((tx, ty), (vx, vy)):
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"bad image array {x.dtype} {x.shape}")
        if y.dtype != np.int64 or y.shape != (x.shape[0],):
            raise ValueError(f"bad label array {y.dtype} {y.shape}")
        if y.size and (y.min() < 0 or y.max() >= classes.size):
            raise ValueError("label out of range")
    if tx.shape[1:] != vx.shape[1:] or tx.shape[0] == 0:
        raise ValueError("train/test shapes disagree")
    return tx, ty, vx, vy, classes


def load_cache(path: Path, source: str) -> RawImages | None:
    """The cached arrays at ``path``, or None when missing or unusable (a bad file is removed, to be rebuilt)."""
    if not path.is_file():
        return None
    try:
        # allow_pickle=False: a cache file must never be able to run code. Reading every member to the end
        # also makes zipfile check its CRC, so flipped bytes are caught, not only truncation.
        with open(path, "rb") as fh:  # our own handle: closed even when numpy fails half-way
            npz = np.load(fh, allow_pickle=False)
            if not isinstance(npz, np.lib.npyio.NpzFile):
                raise ValueError("not an .npz archive")
            with npz:
                arrays = {k: npz[k] for k in _CACHE_ARRAYS}
        tx, ty, vx, vy, classes = _validate_cached(arrays)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        drop_corrupt_cache(path, exc)
        return None
    log.info("loaded decoded images from cache %s", path)
    return RawImages(tx, ty, vx, vy, tuple(str(c) for c in classes.tolist()), source)


def drop_corrupt_cache(path: Path, exc: Exception) -> None:
    """A cache file that fails to load or validate is deleted (and rebuilt by the caller), never trusted."""
    warnings.warn(f"ignoring corrupt cache file {path} ({exc}); rebuilding it", RuntimeWarning, stacklevel=4)
    try:
        path.unlink()
    except OSError:
        pass


def save_npz_cache(path: Path, arrays: dict[str, np.ndarray]) -> bool:
    """Write ``arrays`` to ``path`` atomically (temp file in the same folder + os.replace); read back with
    ``np.load(..., allow_pickle=False)``. A cache that cannot be written (read-only home, full disk) only costs
    speed, so it warns instead of failing; returns whether it was written."""
    tmp_name = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=path.stem + ".", suffix=".tmp",
                                         delete=False) as f:
            tmp_name = f.name
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
        tmp_name = None
        return True
    except OSError as exc:
        warnings.warn(f"could not write cache file {path} ({exc}); continuing without cache",
                      RuntimeWarning, stacklevel=3)
        return False
    finally:
        if tmp_name is not None:
            try:
                os.unlink(tmp_name)
            except OSError:
                pass


def save_cache(path: Path, raw: RawImages) -> None:
    """Write decoded images to the cache (see ``save_npz_cache``)."""
    if save_npz_cache(path, {"train_images": raw.train_images, "train_labels": raw.train_labels.astype(np.int64),
                             "test_images": raw.test_images, "test_labels": raw.test_labels.astype(np.int64),
                             "classes": np.array(raw.classes, dtype=str)}):
        log.info("cached decoded images in %s", path)


# --------------------------------------------------------------------------------------------- entry point


def resolve_data_path(data: str | os.PathLike) -> Path:
    """``data`` as an existing, non-empty folder, or a DataError that says what is wrong."""
    path = Path(data).expanduser()
    if not path.exists():
        raise DataError(f"data path {path} does not exist")
    if not path.is_dir():
        raise DataError(f"data path {path} is a file; expected a folder")
    if not any(path.iterdir()):
        raise DataError(f"data folder {path} is empty")
    return path


def load_image_task(task: str, data: str | os.PathLike | None = None, *, val_size: float | int = 0.1,
                    seed: int = 0, limit: int | None = None) -> ImageSplits:
    """Load an image task as train / val / test uint8 tensors with normalisation stats.

    task: ``"digits"`` (sklearn's embedded 8x8 digits; ``data`` must be None), ``"mnist"`` (a folder with the
        four IDX files, gzipped or not), ``"cifar10"`` / ``"imagefolder"`` (a ``train/<class>/*.jpg|png`` and
        ``test/<class>/...`` tree). With ``data=None``, mnist and cifar10 come from the Hugging Face hub
        (optional ``datasets`` package; OfflineError when offline).
    val_size: fraction (float in [0, 1)) or count (int) of the training set held out, stratified and seeded
        by ``seed``; the test set is never touched.
    limit: keep a stratified, seeded subset of this many training images before the validation split
        (quick runs); the test set is kept whole.
    """
    if not isinstance(task, str) or task not in IMAGE_TASKS:
        raise ConfigError(f"unknown image task {task!r}; known tasks: {', '.join(IMAGE_TASKS)}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    _check_limit(limit)
    if isinstance(val_size, (bool, np.bool_)) or not isinstance(val_size, (int, float, np.integer, np.floating)):
        raise ConfigError(f"val_size must be a fraction in [0, 1) or a count, got {val_size!r}")
    if isinstance(val_size, (float, np.floating)) and not 0.0 <= float(val_size) < 1.0:
        raise ConfigError(f"val_size as a fraction must be in [0, 1), got {val_size}")

    # Loaders are imported here: they import this module for RawImages and the cache helpers.
    if task == "digits":
        if data is not None:
            raise ConfigError("task 'digits' uses scikit-learn's embedded copy; do not pass a data path")
        from adaptaug.data.digits import load_digits_raw

        raw, name = load_digits_raw(), "digits"
    elif task == "mnist":
        if data is None:
            from adaptaug.data.hub import load_hub_raw

            raw = load_hub_raw("mnist")
        else:
            from adaptaug.data.mnist import load_mnist_raw

            raw = load_mnist_raw(resolve_data_path(data))
        name = "mnist"
    else:  # cifar10 | imagefolder: the same folder reader
        if data is None:
            if task == "imagefolder":
                raise ConfigError("task 'imagefolder' needs a data path: a folder with train/<class>/ "
                                  "and test/<class>/ image folders")
            from adaptaug.data.hub import load_hub_raw

            raw, name = load_hub_raw("cifar10"), "cifar10"
        else:
            from adaptaug.data.image_folder import load_image_folder_raw

            path = resolve_data_path(data)
            raw = load_image_folder_raw(path)
            name = "cifar10" if task == "cifar10" else path.resolve().name
    return make_splits(name, raw, val_size=val_size, seed=int(seed), limit=limit)

