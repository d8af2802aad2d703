"""Datasets: local files first (IDX, image folders), the Hugging Face hub when no path is given.

Image tasks (``digits``, ``mnist``, ``cifar10``, ``imagefolder``) load through :func:`load_image_task` into
:class:`ImageSplits` of uint8 tensors; see :mod:`adaptaug.data.images`.
"""
from adaptaug.data.images import IMAGE_TASKS, ImageDataset, ImageSplits, cache_dir, load_image_task

__all__ = ["IMAGE_TASKS", "ImageDataset", "ImageSplits", "cache_dir", "load_image_task"]
