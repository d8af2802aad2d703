"""MNIST from the four standard IDX files (LeCun, Cortes & Burges), gzipped or not.

IDX format: a big-endian magic number ``0x00 0x00 <dtype> <ndim>`` (``0x803``: uint8 with 3 dims for
images, ``0x801``: uint8 with 1 dim for labels), then ``ndim`` big-endian uint32 sizes, then the raw data.
Everything is checked against the header before use, and parsed with ``numpy.frombuffer`` (no pickle).
"""
from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from adaptaug.data.images import (RawImages, cache_path, hash_named_bytes, load_cache, new_cache_hasher,
                                  save_cache)
from adaptaug.errors import DataError

IDX_IMAGES_MAGIC = 0x00000803
IDX_LABELS_MAGIC = 0x00000801
MNIST_CLASSES = tuple(str(d) for d in range(10))

# role -> accepted base names (the official ones, and the dotted spelling some mirrors use)
_FILES = {
    "train_images": ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    "train_labels": ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    "test_images": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    "test_labels": ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}


def find_idx_files(folder: Path) -> dict[str, Path]:
    """The four IDX files in ``folder`` (or in torchvision's ``MNIST/raw`` below it), by role."""
    candidates = [folder, folder / "MNIST" / "raw", folder / "raw"]
    for base in candidates:
        found: dict[str, Path] = {}
        for role, names in _FILES.items():
            for name in names:
                for suffix in ("", ".gz"):
                    p = base / (name + suffix)
                    if p.is_file() and role not in found:
                        found[role] = p
        if len(found) == len(_FILES):
            return found
        if found and base == folder:
            missing = [_FILES[r][0] for r in _FILES if r not in found]
            raise DataError(f"MNIST folder {folder} lacks {', '.join(missing)} (plain or .gz)")
    expected = ", ".join(names[0] for names in _FILES.values())
    raise DataError(f"no MNIST IDX files in {folder}: expected {expected} (plain or .gz)")


def read_file_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from exc


def decompress(path: Path, data: bytes) -> bytes:
    """File content, gunzipped when it starts with the gzip magic (whatever its name says)."""
    if data[:2] != b"\x1f\x8b":
        return data
    try:
        return gzip.decompress(data)
    except (EOFError, OSError, zlib.error) as exc:  # truncated stream, bad CRC, not really gzip
        raise DataError(f"{path} is not a valid gzip file (truncated or corrupt): {exc}") from exc


def parse_idx(path: Path, data: bytes, expected_magic: int) -> np.ndarray:
    """Parse uint8 IDX bytes into an array shaped as the header says, checking magic and byte count."""
    expected_ndim = expected_magic & 0xFF
    if len(data) < 4:
        raise DataError(f"{path} is truncated: {len(data)} bytes, not even an IDX header")
    (magic,) = struct.unpack(">I", data[:4])
    if magic != expected_magic:
        raise DataError(f"{path} has wrong magic number 0x{magic:08x}, expected 0x{expected_magic:08x} "
                        f"(IDX uint8 with {expected_ndim} dim{'s' if expected_ndim > 1 else ''})")
    header = 4 + 4 * expected_ndim
    if len(data) < header:
        raise DataError(f"{path} is truncated: {len(data)} bytes, the IDX header needs {header}")
    dims = struct.unpack(">" + "I" * expected_ndim, data[4:header])
    if expected_ndim > 1 and any(d == 0 for d in dims[1:]):
        raise DataError(f"{path} declares images of size {' x '.join(map(str, dims[1:]))}")
    need = int(np.prod(dims, dtype=np.int64))
    have = len(data) - header
    if have != need:
        what = "truncated" if have < need else "longer than its header says"
        raise DataError(f"{path} is {what}: header says {' x '.join(map(str, dims))} = {need} bytes of data, "
                        f"the file has {have}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _parse_all(files: dict[str, Path], contents: dict[str, bytes]) -> RawImages:
    """Decompress, parse and cross-check the four files."""
    arrays = {}
    for role, path in files.items():
        magic = IDX_IMAGES_MAGIC if role.endswith("images") else IDX_LABELS_MAGIC
        arrays[role] = parse_idx(path, decompress(path, contents[role]), magic)
    for part in ("train", "test"):
        images, labels = arrays[f"{part}_images"], arrays[f"{part}_labels"]
        if images.shape[0] != labels.shape[0]:
            raise DataError(f"{files[f'{part}_labels']} has {labels.shape[0]} labels but "
                            f"{files[f'{part}_images']} has {images.shape[0]} images")
        if images.shape[0] == 0:
            raise DataError(f"{files[f'{part}_images']} holds no images")
        bad = np.flatnonzero(labels > 9)
        if bad.size:
            raise DataError(f"{files[f'{part}_labels']} has label {int(labels[bad[0]])} at index {int(bad[0])}; "
                            "MNIST labels must be 0..9")
    if arrays["train_images"].shape[1:] != arrays["test_images"].shape[1:]:
        raise DataError(f"train images are {arrays['train_images'].shape[1:]} but test images are "
                        f"{arrays['test_images'].shape[1:]}")
    return RawImages(
        # (N, H, W) -> (N, 1, H, W); copy so the tensors own writable memory (frombuffer views are read-only)
        train_images=arrays["train_images"][:, None].copy(),
        train_labels=arrays["train_labels"].astype(np.int64),
        test_images=arrays["test_images"][:, None].copy(),
        test_labels=arrays["test_labels"].astype(np.int64),
        classes=MNIST_CLASSES,
        source="",
    )


def load_mnist_raw(folder: Path) -> RawImages:
    """MNIST train and test arrays from ``folder``, through the decode cache (key = the files' bytes)."""
    files = find_idx_files(folder)
    contents = {role: read_file_bytes(path) for role, path in files.items()}
    h = new_cache_hasher("idx")
    for role in _FILES:  # fixed role order, so the key does not depend on the file names or gz/plain choice
        hash_named_bytes(h, role, contents[role])
    path = cache_path("mnist-idx", h.hexdigest())
    source = str(folder.resolve())
    cached = load_cache(path, source)
    if cached is not None and cached.classes == MNIST_CLASSES:
        return cached
    raw = _parse_all(files, contents)
    raw.source = source
    save_cache(path, raw)
    return raw
