"""MNIST and CIFAR-10 from the Hugging Face hub (``ylecun/mnist``, ``uoft-cs/cifar10``), used when no
``--data`` path is given.

``datasets`` is an optional dependency (``pip install 'adaptaug[hf]'``). When it is missing, or the machine
is offline, this fails at once with :class:`~adaptaug.errors.OfflineError` saying how to use a local copy
instead: it checks the offline environment variables first and probes the hub with a short timeout, rather
than letting ``huggingface_hub`` retry for ~20 s. There is deliberately no fallback to synthetic data.
"""
from __future__ import annotations

import os
import urllib.error
import urllib.request

import numpy as np

from adaptaug.data.images import RawImages
from adaptaug.errors import ConfigError, DataError, OfflineError

HUB_IDS = {"mnist": "ylecun/mnist", "cifar10": "uoft-cs/cifar10"}
_MODES = {"mnist": "L", "cifar10": "RGB"}
LOCAL_COPY_HINTS = {
    "mnist": "`--data /path/to/mnist` with the four IDX files (train-images-idx3-ubyte, train-labels-idx1-ubyte, "
             "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte; .gz or not)",
    "cifar10": "`--data /path/to/cifar10` with an image-folder tree (train/<class>/*.jpg and test/<class>/*.jpg)",
}
OFFLINE_ENV_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
PROBE_TIMEOUT_S = 3.0  # long enough for a real connection, short enough not to stall an offline run


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def offline_reason() -> str | None:
    """Why the hub cannot be used right now by configuration, or None."""
    for var in OFFLINE_ENV_VARS:
        if _env_true(var):
            return f"{var} is set"
    return None


def probe_hub(timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """None when the hub endpoint answers within ``timeout`` seconds, else why it did not."""
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    try:
        urllib.request.urlopen(urllib.request.Request(endpoint + "/api/datasets", method="HEAD"), timeout=timeout)
    except urllib.error.HTTPError:
        return None  # any HTTP answer means the network works; the real request will say more
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"cannot reach {endpoint} ({reason})"
    return None


def _offline_error(task: str, why: str) -> OfflineError:
    return OfflineError(f"cannot load {task} from the Hugging Face hub ({HUB_IDS[task]}): {why}. "
                        f"Point at a local copy instead: {LOCAL_COPY_HINTS[task]}")


def _to_arrays(split, task: str) -> tuple[np.ndarray, np.ndarray]:
    """A ``datasets`` split -> ((N, C, H, W) uint8, (N,) int64), decoding its PIL images in batches."""
    image_cols = [name for name, feat in split.features.items() if type(feat).__name__ == "Image"]
    if len(image_cols) != 1 or "label" not in split.features:
        raise DataError(f"{HUB_IDS[task]}: expected one image column and a 'label' column, "
                        f"got {list(split.features)}")
    col, mode = image_cols[0], _MODES[task]
    labels = np.asarray(list(split["label"]), dtype=np.int64)  # list(): a list or a lazy Column (datasets 4)
    out: np.ndarray | None = None
    for start in range(0, len(split), 1000):
        for i, im in enumerate(split[start:start + 1000][col]):
            arr = np.asarray(im.convert(mode) if im.mode != mode else im, dtype=np.uint8)
            arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)  # (C, H, W)
            if out is None:
                out = np.empty((len(split),) + arr.shape, dtype=np.uint8)
            elif arr.shape != out.shape[1:]:
                raise DataError(f"{HUB_IDS[task]}: image {start + i} is {arr.shape}, expected {out.shape[1:]}")
            out[start + i] = arr
    if out is None:
        raise DataError(f"{HUB_IDS[task]}: empty split")
    return out, labels


def load_hub_raw(task: str, *, timeout: float = PROBE_TIMEOUT_S) -> RawImages:
    """Train and test arrays of ``task`` ("mnist" | "cifar10") from the hub, or OfflineError at once."""
    if task not in HUB_IDS:
        raise ConfigError(f"no hub copy for task {task!r}; hub tasks: {', '.join(HUB_IDS)}")
    why = offline_reason()
    if why:
        raise _offline_error(task, why)
    try:
        import datasets  # optional dependency
    except ImportError:
        raise _offline_error(task, "the optional package `datasets` is not installed "
                                   "(pip install 'adaptaug[hf]')") from None
    why = probe_hub(timeout)
    if why:
        raise _offline_error(task, why)
    hub_id = HUB_IDS[task]
    try:
        dd = datasets.load_dataset(hub_id)
    except OSError as exc:  # ConnectionError, HTTP/timeouts and hub "offline mode" errors are all OSErrors
        raise _offline_error(task, f"download failed ({exc})") from exc
    if "train" not in dd or "test" not in dd:
        raise DataError(f"{hub_id}: expected train and test splits, got {list(dd)}")
    names = dd["train"].features["label"].names
    train_x, train_y = _to_arrays(dd["train"], task)
    test_x, test_y = _to_arrays(dd["test"], task)
    return RawImages(train_x, train_y, test_x, test_y, tuple(str(n) for n in names), f"hf://datasets/{hub_id}")
