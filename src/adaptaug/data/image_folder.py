"""Image-folder trees (torchvision ``ImageFolder`` / HF ``imagefolder`` layout), e.g. CIFAR-10 as JPEGs.

Layout::

    <root>/train/<class>/*.jpg|*.jpeg|*.png
    <root>/test/<class>/...

Classes are the sorted folder names under ``train`` (for CIFAR-10: airplane ... truck = the official ids
0..9); test classes must be a subset. Samples are ordered by class, then file name. All images must share one
size and channel count (mode ``L`` -> 1 channel, ``RGB`` -> 3; palette / RGBA / CMYK are converted to RGB).

Decoding is the slow part (60,000 JPEGs), so it runs in a process pool in chunks and its result is cached
(see :mod:`adaptaug.data.images`); a second load only re-hashes the files (~55 MB for CIFAR-10).
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import sys
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

import numpy as np

from adaptaug.data.images import RawImages, cache_path, hash_named_bytes, load_cache, new_cache_hasher, save_cache
from adaptaug.errors import DataError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
# Modes converted on load: grey-ish ones to L, colour ones (palette, alpha, CMYK...) to RGB.
_TO_L = {"1", "L", "LA", "La"}
_TO_RGB = {"RGB", "RGBA", "RGBa", "RGBX", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV"}
# Below this many images a pool costs more (process start-up) than it saves.
POOL_MIN_IMAGES = 2048


def worker_count() -> int:
    """CPUs this process may use (affinity-aware where the OS tells, else os.cpu_count())."""
    if hasattr(os, "process_cpu_count"):  # Python 3.13+
        n = os.process_cpu_count()
    elif hasattr(os, "sched_getaffinity"):
        n = len(os.sched_getaffinity(0))
    else:
        n = os.cpu_count()
    return max(1, n or 1)


# --------------------------------------------------------------------------------------------- listing


def _scan(folder: Path, want_dirs: bool) -> list[str]:
    """Sorted names of the visible sub-folders (or image files) of ``folder``.

    os.scandir reads the entry type from the directory listing itself: no stat per file, which matters
    for 60,000 files (pathlib's per-path overhead alone costs seconds).
    """
    names = []
    with os.scandir(folder) as it:
        for entry in it:
            if entry.name.startswith("."):
                continue
            if want_dirs:
                if entry.is_dir():
                    names.append(entry.name)
            elif entry.is_file() and os.path.splitext(entry.name)[1].lower() in IMAGE_EXTENSIONS:
                names.append(entry.name)
    return sorted(names)


def list_image_folder(root: Path) -> tuple[tuple[str, ...], list[tuple[str, int]], list[tuple[str, int]]]:
    """Classes and (relative path, label) lists for train and test, checked for layout (not yet content).

    Relative paths use "/" and are relative to ``root``, e.g. ``"train/cat/0001.jpg"``.
    """
    class_names = {}
    for split in ("train", "test"):
        d = root / split
        if not d.is_dir():
            raise DataError(f"{root} has no {split}/ folder; expected {root}/train/<class>/*.jpg and "
                            f"{root}/test/<class>/*.jpg (image-folder layout)")
        names = _scan(d, want_dirs=True)
        if not names:
            raise DataError(f"{d} has no class folders; expected {d}/<class>/*.jpg")
        class_names[split] = names
    classes = tuple(class_names["train"])
    index = {name: i for i, name in enumerate(classes)}
    listed: dict[str, list[tuple[str, int]]] = {}
    for split, names in class_names.items():
        items: list[tuple[str, int]] = []
        for name in names:
            if name not in index:
                raise DataError(f"test class folder {root / split / name} is not a training class; "
                                f"training classes are {', '.join(classes)}")
            files = _scan(root / split / name, want_dirs=False)
            if not files:
                raise DataError(f"class folder {root / split / name} contains no images "
                                f"({', '.join(IMAGE_EXTENSIONS)})")
            label = index[name]
            items.extend((f"{split}/{name}/{f}", label) for f in files)
        listed[split] = items
    return classes, listed["train"], listed["test"]


def hash_image_folder(root: Path, relpaths: list[str]) -> str:
    """sha256 over the sorted relative paths and bytes of the files (plus the cache format version)."""
    h = new_cache_hasher("image-folder")
    base = str(root)
    for rel in sorted(relpaths):
        full = os.path.join(base, rel)
        try:
            with open(full, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise DataError(f"cannot read {full}: {exc.strerror or exc}") from exc
        hash_named_bytes(h, rel, data)
    return h.hexdigest()


# --------------------------------------------------------------------------------------------- decoding


def _describe(shape: tuple[int, ...]) -> str:
    c, h, w = shape
    return f"{w}x{h} (WxH) with {c} channel{'s' if c > 1 else ''}"


def decode_image(path: str) -> np.ndarray:
    """One image file as a (C, H, W) uint8 array; raises DataError naming the file when it cannot be used."""
    from PIL import Image  # imported here so that importing adaptaug does not need Pillow loaded

    try:
        with Image.open(path) as im:
            im.load()  # decode now: a truncated or corrupt file fails here, not later
            mode = im.mode
            if mode in _TO_L:
                im = im.convert("L") if mode != "L" else im
            elif mode in _TO_RGB:
                im = im.convert("RGB") if mode != "RGB" else im
            else:
                raise DataError(f"{path}: unsupported image mode {mode!r} (use 8-bit grey, RGB or palette images)")
            arr = np.asarray(im, dtype=np.uint8)
    except DataError:
        raise
    except Exception as exc:  # PIL raises many types (OSError, SyntaxError, ValueError...) for bad files
        raise DataError(f"{path}: cannot decode image ({type(exc).__name__}: {exc})") from exc
    if arr.ndim == 2:
        arr = arr[None]  # (1, H, W)
    else:
        arr = arr.transpose(2, 0, 1)  # (H, W, C) -> (C, H, W)
    return np.ascontiguousarray(arr)


def _decode_chunk(paths: list[str], expected: tuple[int, int, int], reference: str
                  ) -> tuple[np.ndarray | None, str | None]:
    """Decode a chunk in a worker: (stacked (n, C, H, W) array, None) or (None, error message).

    Every image must have shape ``expected``, the shape of the first image (``reference``) of the whole set.
    Errors travel back as strings (always picklable); the parent raises the DataError.
    """
    out = np.empty((len(paths),) + expected, dtype=np.uint8)
    for i, p in enumerate(paths):
        try:
            arr = decode_image(p)
        except DataError as exc:
            return None, str(exc)
        if arr.shape != expected:
            return None, (f"{p}: image is {_describe(arr.shape)}, but {reference} is {_describe(expected)}; "
                          "all images must share one size and channel count")
        out[i] = arr
    return out, None


def _pool_context() -> multiprocessing.context.BaseContext | None:
    # fork starts workers instantly without re-importing torch (as torch's DataLoader does on Linux);
    # workers only use PIL and numpy, never torch or OpenMP, so forking a process with torch threads is
    # safe here. macOS and Windows lack a safe fork and keep their default (spawn).
    if sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return None


def decode_files(paths: list[str], workers: int | None = None) -> np.ndarray:
    """Decode ``paths`` into one (N, C, H, W) uint8 array, in a process pool for large lists.

    Raises DataError naming the first file that cannot be decoded or whose size / channels differ
    from the first image's.
    """
    names = [str(p) for p in paths]
    if not names:
        raise DataError("no image files to decode")
    workers = worker_count() if workers is None else max(1, workers)
    # The first image fixes the size and channel count every other image must have.
    expected: tuple[int, int, int] = decode_image(names[0]).shape  # type: ignore[assignment]
    out = np.empty((len(names),) + expected, dtype=np.uint8)
    # ~8 chunks per worker: small enough to balance load, large enough to keep pickling overhead low
    size = max(64, min(2048, -(-len(names) // (workers * 8))))
    starts = range(0, len(names), size)

    def take(start: int, result: tuple[np.ndarray | None, str | None]) -> None:
        arr, error = result
        if error is not None:
            raise DataError(error)
        out[start:start + arr.shape[0]] = arr

    if workers == 1 or len(names) < POOL_MIN_IMAGES:
        for start in starts:
            take(start, _decode_chunk(names[start:start + size], expected, names[0]))
    else:
        log.info("decoding %d images with %d worker processes", len(names), workers)
        with ProcessPoolExecutor(max_workers=workers, mp_context=_pool_context()) as pool:
            futures: list[Future] = [pool.submit(_decode_chunk, names[start:start + size], expected, names[0])
                                     for start in starts]
            try:
                for start, future in zip(starts, futures):
                    take(start, future.result())  # in order, so the first bad file is the one reported
            except BaseException:
                for f in futures:
                    f.cancel()  # do not decode the rest after a failure (or Ctrl-C)
                raise
    return out


# --------------------------------------------------------------------------------------------- entry point


def load_image_folder_raw(root: Path) -> RawImages:
    """Train and test arrays of the image-folder tree at ``root``, decoded once and then cached."""
    classes, train, test = list_image_folder(root)
    relpaths = [f for f, _ in train] + [f for f, _ in test]
    key = hash_image_folder(root, relpaths)
    path = cache_path("image-folder", key)
    source = str(root.resolve())
    cached = load_cache(path, source)
    if (cached is not None and cached.classes == classes and cached.train_images.shape[0] == len(train)
            and cached.test_images.shape[0] == len(test)):
        return cached
    images = decode_files([os.path.join(str(root), f) for f in relpaths])
    n = len(train)
    raw = RawImages(
        train_images=images[:n],
        train_labels=np.array([y for _, y in train], dtype=np.int64),
        test_images=images[n:].copy(),  # a copy, so the train split can later free the full array
        test_labels=np.array([y for _, y in test], dtype=np.int64),
        classes=classes,
        source=source,
    )
    save_cache(path, raw)
    return raw
