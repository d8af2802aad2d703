"""Task registry: ``build_task(name, data=...)`` -> a Task the training loop runs."""
from __future__ import annotations

import os
from typing import Callable

from adaptaug.data.images import IMAGE_TASKS
from adaptaug.data.text import TEXT_TASKS
from adaptaug.errors import ConfigError
from adaptaug.tasks.base import Task


def _image_task(name: str) -> Callable[..., Task]:
    def build(data: str | os.PathLike | None, val_size: float | int, seed: int, limit: int | None) -> Task:
        from adaptaug.data import load_image_task
        from adaptaug.tasks.image import ImageTask
        return ImageTask(load_image_task(name, data, val_size=val_size, seed=seed, limit=limit))
    return build


TASKS: dict[str, Callable[..., Task]] = {name: _image_task(name) for name in IMAGE_TASKS}


def _conll2003(data: str | os.PathLike | None, val_size: float | int, seed: int, limit: int | None) -> Task:
    # the official `valid` file is the validation split: val_size does not apply (see adaptaug.data.conll)
    from adaptaug.data.conll import load_conll
    from adaptaug.tasks.tagging import TaggingTask
    return TaggingTask(load_conll(data), limit=limit, seed=seed)


TASKS["conll2003"] = _conll2003


def _text_task(name: str) -> Callable[..., Task]:
    def build(data: str | os.PathLike | None, val_size: float | int, seed: int, limit: int | None,
              val_whole_texts: bool = False) -> Task:
        from adaptaug.tasks.text import build_text_task
        return build_text_task(name, data, val_size=val_size, seed=seed, limit=limit, val_whole_texts=val_whole_texts)
    return build


TASKS.update({name: _text_task(name) for name in TEXT_TASKS})


# each registered task's class, imported only when asked: what a task is (e.g. whether its policies stack on its base
# augmentation) is known without loading its data
_TASK_CLASSES: dict[str, tuple[str, str]] = {
    **dict.fromkeys(IMAGE_TASKS, ("adaptaug.tasks.image", "ImageTask")),
    "conll2003": ("adaptaug.tasks.tagging", "TaggingTask"),
    **dict.fromkeys(TEXT_TASKS, ("adaptaug.tasks.text", "TextClassificationTask")),
}


def _task_class(name: str) -> type[Task] | None:
    if name not in _TASK_CLASSES:
        return None
    import importlib
    module, cls = _TASK_CLASSES[name]
    return getattr(importlib.import_module(module), cls)


def stacks_base(name: str) -> bool | None:
    """Whether the registered task ``name`` runs RandAugment, TrivialAugment and AugNet on top of its base
    augmentation (``Task.stack_base``); None for a name not registered (a task object passed to ``train``)."""
    task_class = _task_class(name)
    return None if task_class is None else bool(task_class.stack_base)


def op_modality(name: str) -> str | None:
    """The data the registered task ``name``'s ops run on (``Task.modality``: "image", "text", "tagging");
    None for a name not registered."""
    task_class = _task_class(name)
    return None if task_class is None else task_class.modality


def build_task(name: str, data: str | os.PathLike | None = None, *, val_size: float | int = 0.1, seed: int = 0,
               limit: int | None = None, val_whole_texts: bool = False) -> Task:
    """``val_whole_texts``: a validation split of whole texts (text classification tasks only; SST-2's phrases)."""
    if name not in TASKS:
        raise ConfigError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}")
    if not val_whole_texts:
        return TASKS[name](data, val_size, seed, limit)
    if name not in TEXT_TASKS:
        raise ConfigError(f"val_whole_texts applies to the text classification tasks ({', '.join(TEXT_TASKS)}), "
                          f"not to {name!r}")
    return TASKS[name](data, val_size, seed, limit, val_whole_texts=True)


def build_task_of(config) -> Task:
    """The registered task a :class:`~adaptaug.config.TrainConfig` names, split as it says (training and
    ``adaptaug evaluate`` rebuild a run's task alike)."""
    return build_task(config.task, config.data, val_size=config.val_size, seed=config.seed, limit=config.limit,
                      val_whole_texts=config.val_whole_texts)


__all__ = ["TASKS", "Task", "build_task", "build_task_of", "op_modality", "stacks_base"]
