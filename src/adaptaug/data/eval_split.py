"""One evaluation split read on its own, encoded with a finished run's classes, vocabulary or tags.

Used by ``adaptaug evaluate`` (:mod:`adaptaug.evaluate_run`): the data may be a shifted or corrected copy of
the test set (CIFAR-10.1, corrupted images, CoNLL++, another review corpus), so nothing here is built from it;
everything maps onto what the run trained with, and whatever the run never saw is a
:class:`~adaptaug.errors.DataError`, never a silent mismatch.

- Images: ``PATH/<split>/<class>/*.png|jpg`` (an image-folder tree with only a ``test/`` part is enough) or a
  folder of class folders itself; class folders map **by name** onto the run's class ids. MNIST-style IDX
  files work too (``t10k-*`` for ``test``, ``train-*`` for ``train``). Decoded through the image-folder code
  and cached like it (``image-eval-<sha256>.npz``, keyed by the files' paths and bytes).
- Text: a JSON Lines file (``{"text", "label"}`` per line, gzip'd or not) or a folder with ``<split>.jsonl``;
  tokenised as in training, unseen words -> ``<unk>``, truncated at the run's ``max_len``.
- NER: a CoNLL file or a folder with ``<split>.txt`` (``val`` also finds ``valid``/``dev``/``validation``);
  unseen tokens get the ``<unk:shape>`` id of their casing, as in training; a tag outside the run's tag set
  is an error.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from adaptaug.data.images import ImageDataset, RawImages, cache_path, load_cache, save_cache
from adaptaug.data.vocab import Vocab
from adaptaug.errors import DataError

_IDX_STEMS = {"test": "t10k", "train": "train"}


def _existing(path: str | os.PathLike) -> Path:
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"data path {path} does not exist")
    return path


# --------------------------------------------------------------------------------------------- images


def _class_folders(folder: Path) -> list[str]:
    from adaptaug.data.image_folder import _scan

    return [c for c in _scan(folder, want_dirs=True) if _scan(folder / c, want_dirs=False)]


def _image_split_folder(path: Path, split: str) -> Path:
    if not path.is_dir():
        raise DataError(f"image data path {path} is a file; expected a folder with {split}/<class>/*.png|jpg")
    if (path / split).is_dir():
        return path / split
    if _class_folders(path):  # a folder of class folders itself
        return path
    raise DataError(f"{path} has no {split}/ folder and no class folders; expected {path}/{split}/<class>/*.png|jpg "
                    "(image-folder layout) or MNIST IDX files")


def _load_folder(folder: Path) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """(images, labels into the folder's own sorted class names, those names), through the decode cache."""
    from adaptaug.data.image_folder import _scan, decode_files, hash_image_folder

    names = _scan(folder, want_dirs=True)
    if not names:
        raise DataError(f"{folder} has no class folders; expected {folder}/<class>/*.png|jpg")
    items: list[tuple[str, int]] = []
    for label, name in enumerate(names):
        files = _scan(folder / name, want_dirs=False)
        if not files:
            raise DataError(f"class folder {folder / name} contains no images (.jpg, .jpeg, .png)")
        items.extend((f"{name}/{f}", label) for f in files)
    relpaths = [f for f, _ in items]
    key = hash_image_folder(folder, relpaths)
    path = cache_path("image-eval", key)
    cached = load_cache(path, str(folder.resolve()))
    if cached is not None and cached.classes == tuple(names) and cached.train_images.shape[0] == len(items):
        return cached.train_images, cached.train_labels, tuple(names)
    images = decode_files([os.path.join(str(folder), f) for f in relpaths])
    labels = np.array([y for _, y in items], dtype=np.int64)
    # the cache's RawImages holds the split as its "train" part and an empty "test" part
    save_cache(path, RawImages(images, labels, images[:0], labels[:0], tuple(names), str(folder.resolve())))
    return images, labels, tuple(names)


def _idx_pair(folder: Path, split: str) -> tuple[Path, Path] | None:
    stem = _IDX_STEMS.get(split)
    if stem is None:
        return None
    found = []
    for kind, ndim in (("images", 3), ("labels", 1)):
        hits = [folder / f"{stem}{sep}{kind}{sep2}idx{ndim}-ubyte{gz}" for sep, sep2 in (("-", "-"), ("-", "."))
                for gz in ("", ".gz")]
        hits = [h for h in hits if h.is_file()]
        if not hits:
            return None
        found.append(hits[0])
    return found[0], found[1]


def _load_idx(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    from adaptaug.data.mnist import IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, decompress, parse_idx, read_file_bytes

    images = parse_idx(images_path, decompress(images_path, read_file_bytes(images_path)), IDX_IMAGES_MAGIC)
    labels = parse_idx(labels_path, decompress(labels_path, read_file_bytes(labels_path)), IDX_LABELS_MAGIC)
    if images.shape[0] != labels.shape[0] or images.shape[0] == 0:
        raise DataError(f"{labels_path} has {labels.shape[0]} labels but {images_path} has {images.shape[0]} images")
    return images[:, None].copy(), labels.astype(np.int64)


def load_image_eval_split(path: str | os.PathLike, classes: Sequence[str], split: str = "test") -> ImageDataset:
    """The images of one split at ``path`` with labels as ids into ``classes`` (the run's class names).

    ``path``: an image-folder tree (``path/<split>/<class>/...``; a tree holding only ``test/`` is enough),
    a folder of class folders, or a folder with MNIST IDX files (digit classes ``"0"``..``"9"``).
    A class folder whose name is not one of ``classes`` is a DataError.
    """
    classes = tuple(classes)
    path = _existing(path)
    pair = _idx_pair(path, split) if path.is_dir() else None
    if pair is not None:
        images, labels = _load_idx(*pair)
        names = tuple(str(d) for d in range(10))
        where = pair[1]
    else:
        folder = _image_split_folder(path, split)
        images, labels, names = _load_folder(folder)
        where = folder
    unknown = [n for n in names if n not in classes]
    if unknown and pair is None:
        raise DataError(f"class folder {where / unknown[0]} is not a class the model was trained on; "
                        f"its classes are {', '.join(classes)}")
    present = sorted({names[i] for i in np.unique(labels).tolist()})
    if unknown and any(n not in classes for n in present):
        raise DataError(f"{where} has label {next(n for n in present if n not in classes)!r}, not a class the model "
                        f"was trained on ({', '.join(classes)})")
    remap = np.array([classes.index(n) if n in classes else -1 for n in names], dtype=np.int64)
    return ImageDataset(torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(remap[labels]), classes)


# --------------------------------------------------------------------------------------------- text


def load_text_eval_split(path: str | os.PathLike, vocab: Vocab, max_len: int, split: str = "test"):
    """A JSON Lines file (or ``path/<split>.jsonl[.gz]``) as a TextDataset under the run's vocabulary."""
    from adaptaug.data.text import TextDataset, find_split_file, read_jsonl, tokenize

    path = _existing(path)
    file = find_split_file(path, split) if path.is_dir() else path
    texts, labels = read_jsonl(file)  # labels outside {0, 1} are already a DataError there
    ids, lengths = vocab.encode_batch([tokenize(t) for t in texts], max_len)
    empty = lengths == 0  # as in training: a text without tokens is one <unk>
    ids[empty, 0] = vocab.unk_id
    lengths = lengths.clamp(min=1)
    return TextDataset(ids, lengths, torch.from_numpy(labels))


# --------------------------------------------------------------------------------------------- CoNLL


def conll_split_file(folder: Path, split: str) -> Path:
    from adaptaug.data.conll import FILE_STEMS

    stems = FILE_STEMS.get(split) or (FILE_STEMS["val"] if split in FILE_STEMS["val"] else (split,))
    names = [f"{stem}{ext}" for stem in stems for ext in (".txt", ".txt.gz")]
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise DataError(f"CoNLL folder {folder} has no {split} file; expected one of {', '.join(names)}")


def load_conll_eval_split(path: str | os.PathLike, words: Vocab, tags: Sequence[str], split: str = "test"):
    """A CoNLL file (or ``path/<split>.txt[.gz]``) as a TaggedSplit under the run's word ids and tag ids."""
    from adaptaug.data.conll import encode_sentences, read_conll

    path = _existing(path)
    file = conll_split_file(path, split) if path.is_dir() else path
    sentences = read_conll(file, known_tags=set(tags))  # a tag the run never saw is a DataError naming the line
    return encode_sentences(sentences, words, tuple(tags), str(file))


__all__ = ["conll_split_file", "load_conll_eval_split", "load_image_eval_split", "load_text_eval_split"]
