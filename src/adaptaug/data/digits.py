"""scikit-learn's handwritten digits (UCI optdigits test part): 1,797 grey 8x8 images, 10 classes.

Embedded in scikit-learn, so it needs no download and suits smoke tests and CPU-only runs.
Pixels are counts 0..16 (Alpaydin & Kaynak, 1998); they are scaled to 0..255 uint8 like the other tasks.

It has no official test set, so a stratified 20% hold-out is drawn with a FIXED seed
(:data:`DIGITS_TEST_SEED`, independent of the run's ``seed``): every run, whatever its seed, is scored on the
same 359 images, as MNIST and CIFAR-10 runs are on their official test sets.
"""
from __future__ import annotations

import numpy as np

from adaptaug.data.images import RawImages, stratified_choice

DIGITS_TEST_FRACTION = 0.2
DIGITS_TEST_SEED = 0
DIGITS_SOURCE = "sklearn.datasets.load_digits"


def load_digits_raw() -> RawImages:
    """The digits as train (80%) and test (20%) uint8 arrays of shape (N, 1, 8, 8)."""
    from sklearn.datasets import load_digits  # sklearn is heavy to import; only pay for it here

    bunch = load_digits()
    values = np.asarray(bunch.images, dtype=np.float64)  # (1797, 8, 8) in 0..16
    images = np.rint(values * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)[:, None]  # (N, 1, 8, 8)
    labels = np.asarray(bunch.target, dtype=np.int64)
    n = labels.shape[0]
    test_idx = stratified_choice(labels, int(round(DIGITS_TEST_FRACTION * n)),
                                 np.random.default_rng(DIGITS_TEST_SEED))
    is_test = np.zeros(n, dtype=bool)
    is_test[test_idx] = True
    classes = tuple(str(c) for c in bunch.target_names.tolist())  # "0".."9"
    return RawImages(
        train_images=np.ascontiguousarray(images[~is_test]),
        train_labels=labels[~is_test],
        test_images=np.ascontiguousarray(images[is_test]),
        test_labels=labels[is_test],
        classes=classes,
        source=DIGITS_SOURCE,
    )
