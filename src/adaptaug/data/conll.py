"""CoNLL-2003 named-entity recognition (Tjong Kim Sang & De Meulder 2003): column files or the HF hub.

Local copy (``--data DIR``): ``train.txt``, ``valid.txt`` and ``test.txt``, each optionally gzip'd
(``.txt.gz``), one token per line as ``token POS chunk NER`` (a two-column ``token NER`` file is accepted
too; the NER tag is always the last column, and every line of a file has the same number of columns), a
blank line between sentences, ``-DOCSTART-`` lines skipped. Tags are IOB2: ``O``, ``B-X`` or ``I-X``, and an
``I-X`` must continue a ``B-X``/``I-X`` of the same type. An ``I-X`` after ``O`` is legal IOB1 but is an
error here: these files are IOB2, and silently repairing it would hide a wrong file. Every problem is a
:class:`~adaptaug.errors.DataError` naming the file and the line.

Splits: the official ``valid`` file is the validation split (early stopping and AugNet's probe); unlike the
image tasks nothing is carved out of ``train``. Counts of the standard release: train 14,041 / valid 3,250 /
test 3,453 sentences.

Encoding: tokens keep their case. ``words`` maps every training token (case kept) to an id, and an unseen
token to one of a few ``<unk:shape>`` ids so its casing survives (capitalisation is the strongest single
cue for an unseen name). The tagger embeds ``lower[id]`` (lower-cased, digits -> 0, vocabulary of training
forms seen at least ``min_freq`` times) plus ``shape[id]`` (a small casing class); both tables come with
the data. Keeping every training token in ``words`` lets the NER ops swap any training token or mention in
and stay in-vocabulary. Tag ids: ``"O"`` first, then the training tags sorted; a tag of ``valid``/``test``
never seen in ``train`` is a DataError.

Encoded arrays are cached in :func:`~adaptaug.data.images.cache_dir` under a sha256 of the source bytes and
the encoding settings (``np.savez``, read back with ``allow_pickle=False``; vocabularies and tags as a JSON
string inside the same file, so one atomic write keeps them together).
"""
from __future__ import annotations

import json
import logging
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Collection, Sequence

import numpy as np
import torch

from adaptaug.data.images import (cache_path, drop_corrupt_cache, hash_named_bytes, new_cache_hasher,
                                  resolve_data_path, save_npz_cache)
from adaptaug.data.vocab import PAD, UNK, Vocab
from adaptaug.errors import ConfigError, DataError, OfflineError
from adaptaug.io import text_lines

log = logging.getLogger(__name__)

HUB_ID = "eriktks/conll2003"
SPLITS = ("train", "val", "test")
# file stems tried per split, in order; the official release names its validation file "valid" (testa)
FILE_STEMS = {"train": ("train",), "val": ("valid", "dev", "validation"), "test": ("test",)}
EXPECTED_COUNTS = {"train": 14041, "val": 3250, "test": 3453}  # sentences of the standard release
PAD_TAG = -100  # tag id at padded positions: F.cross_entropy's default ignore_index
CACHE_KIND = "conll2003"
CACHE_FORMAT = "adaptaug-conll-cache-v1"  # bump when the encoding of the same bytes would change
DOCSTART = "-DOCSTART-"
_TAG_RE = re.compile(r"^(O|[BI]-\S+)$")

# Casing classes (Reimers & Gurevych 2017's casing feature, simplified). 0 is padding.
SHAPES = ("<pad>", "other", "numeric", "lower", "upper", "title", "mixed")


def word_shape(token: str) -> int:
    """Casing class of ``token``: an index into :data:`SHAPES`."""
    if any(ch.isdigit() for ch in token):
        return SHAPES.index("numeric")
    letters = [ch for ch in token if ch.isalpha()]
    if not letters:
        return SHAPES.index("other")
    if all(ch.islower() for ch in letters):
        return SHAPES.index("lower")
    if all(ch.isupper() for ch in letters):
        return SHAPES.index("upper" if len(letters) > 1 else "title")  # "A", "U.S." -> title / upper
    if letters[0].isupper() and all(ch.islower() for ch in letters[1:]):
        return SHAPES.index("title")
    return SHAPES.index("mixed")


def normalise(token: str) -> str:
    """The form the tagger embeds: lower-cased, every digit -> 0 (dates and scores share embeddings)."""
    return re.sub(r"\d", "0", token.lower())


UNK_SHAPE_TOKENS = tuple(f"<unk:{s}>" for s in SHAPES[1:])  # unseen token -> its casing class survives


# ------------------------------------------------------------------------------------------ reading


Sentence = tuple[list[str], list[str]]  # (tokens, tags)


def check_tags(tags: Sequence[str], where: Sequence[str]) -> None:
    """Raise DataError unless ``tags`` is a valid IOB2 sequence; ``where[i]`` names tag i ("file:line")."""
    prev = "O"
    for tag, at in zip(tags, where):
        if not _TAG_RE.match(tag):
            raise DataError(f"{at}: invalid NER tag {tag!r}; expected O, B-TYPE or I-TYPE")
        if tag.startswith("I-") and prev[2:] != tag[2:]:
            raise DataError(f"{at}: tag {tag!r} after {prev!r} does not continue an entity; this reader expects "
                            f"IOB2 (every entity starts with B-), as the CoNLL-2003 release used here is")
        prev = tag


def read_conll(path: str | os.PathLike, known_tags: Collection[str] | None = None) -> list[Sentence]:
    """Sentences of one CoNLL column file (see the module docstring), validated; with ``known_tags`` (the
    training tag set) a tag outside it is an error too."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"CoNLL file {path} does not exist")
    sentences: list[Sentence] = []
    tokens: list[str] = []
    tags: list[str] = []
    where: list[str] = []
    ncols: int | None = None

    def close() -> None:
        if tokens:
            check_tags(tags, where)
            sentences.append((list(tokens), list(tags)))
            tokens.clear(), tags.clear(), where.clear()

    for lineno, line in text_lines(path):
        parts = line.split()
        if not parts:
            close()
            continue
        if parts[0] == DOCSTART:
            close()  # a document boundary is a sentence boundary even without the blank line
            continue
        if ncols is None:
            if len(parts) not in (2, 4):
                raise DataError(f"{path}:{lineno}: expected 4 columns (token POS chunk NER) or 2 (token NER), "
                                f"got {len(parts)}: {line!r}")
            ncols = len(parts)
        elif len(parts) != ncols:
            raise DataError(f"{path}:{lineno}: expected {ncols} columns like the rest of the file, "
                            f"got {len(parts)}: {line!r}")
        if known_tags is not None and parts[-1] not in known_tags and _TAG_RE.match(parts[-1]):
            raise DataError(f"{path}:{lineno}: tag {parts[-1]!r} never occurs in the training split "
                            f"(training tags: {', '.join(sorted(known_tags))})")
        tokens.append(parts[0])
        tags.append(parts[-1])
        where.append(f"{path}:{lineno}")
    close()
    if not sentences:
        raise DataError(f"CoNLL file {path} has no sentences")
    return sentences


def find_split_files(folder: Path) -> dict[str, Path]:
    """``{split: file}`` for train / val / test in ``folder`` (``.txt`` or ``.txt.gz``), or DataError."""
    files: dict[str, Path] = {}
    for split, stems in FILE_STEMS.items():
        names = [f"{stem}{ext}" for stem in stems for ext in (".txt", ".txt.gz")]
        found = [folder / n for n in names if (folder / n).is_file()]
        if not found:
            raise DataError(f"CoNLL-2003 folder {folder} has no {split} file; expected one of {', '.join(names)}")
        files[split] = found[0]
    return files


# ------------------------------------------------------------------------------------------ encoding


@dataclass
class TaggedSplit:
    """Right-padded sentences of one split: word ids (pad 0), tag ids (pad :data:`PAD_TAG`), lengths."""

    ids: torch.Tensor  # (N, T) int64
    tags: torch.Tensor  # (N, T) int64
    lengths: torch.Tensor  # (N,) int64

    def __len__(self) -> int:
        return self.lengths.shape[0]

    def subset(self, index: torch.Tensor) -> "TaggedSplit":
        lengths = self.lengths[index]
        width = int(lengths.max()) if lengths.numel() else 1
        return TaggedSplit(self.ids[index, :width], self.tags[index, :width], lengths)


@dataclass
class ConllData:
    """The three splits with their vocabularies: ``words`` (cased ids the data and the ops use), ``lower``
    (what the tagger embeds), ``lower_of``/``shape_of`` (word id -> lower id / casing class) and ``tags``."""

    train: TaggedSplit
    val: TaggedSplit
    test: TaggedSplit
    words: Vocab
    lower: Vocab
    tags: tuple[str, ...]
    lower_of: torch.Tensor  # (len(words),) int64
    shape_of: torch.Tensor  # (len(words),) int64
    source: str
    name: str = "conll2003"

    def split(self, name: str) -> TaggedSplit:
        if name not in SPLITS:
            raise ConfigError(f"unknown split {name!r}; splits: {', '.join(SPLITS)}")
        return getattr(self, name)


def build_vocabularies(train: Sequence[Sentence], min_freq: int) -> tuple[Vocab, Vocab, tuple[str, ...]]:
    """(words, lower, tags) from the training sentences only."""
    words = Vocab.build((toks for toks, _ in train), min_freq=1)  # every training token: the ops reuse them
    words = Vocab([PAD, UNK, *UNK_SHAPE_TOKENS, *(t for t in words.itos[2:] if t not in UNK_SHAPE_TOKENS)])
    lower = Vocab.build(([normalise(t) for t in toks] for toks, _ in train), min_freq=min_freq)
    seen = {tag for _, tags in train for tag in tags}
    tags = ("O", *sorted(seen - {"O"}))
    return words, lower, tags


def lookup_tables(words: Vocab, lower: Vocab) -> tuple[torch.Tensor, torch.Tensor]:
    """word id -> lower id and word id -> casing class, (len(words),) int64 each."""
    lower_of = torch.tensor([lower.stoi.get(normalise(t), lower.unk_id) for t in words.itos], dtype=torch.long)
    shape_of = torch.tensor([word_shape(t) for t in words.itos], dtype=torch.long)
    lower_of[words.pad_id], shape_of[words.pad_id] = lower.pad_id, 0
    for i, tok in enumerate((UNK, *UNK_SHAPE_TOKENS)):  # the unknowns embed as <unk> plus their casing class
        j = words.stoi[tok]
        lower_of[j] = lower.unk_id
        shape_of[j] = SHAPES.index(tok[5:-1]) if i else SHAPES.index("other")
    return lower_of, shape_of


def encode_sentences(sentences: Sequence[Sentence], words: Vocab, tags: Sequence[str],
                     split: str) -> TaggedSplit:
    """Pad to the split's longest sentence; an unseen token gets the ``<unk:shape>`` id of its casing."""
    tag_id = {t: i for i, t in enumerate(tags)}
    width = max(len(toks) for toks, _ in sentences)
    ids = np.zeros((len(sentences), width), dtype=np.int64)
    tag_ids = np.full((len(sentences), width), PAD_TAG, dtype=np.int64)
    lengths = np.array([len(toks) for toks, _ in sentences], dtype=np.int64)
    unk_of_shape = [words.stoi[t] for t in UNK_SHAPE_TOKENS]
    for row, (toks, tgs) in enumerate(sentences):
        ids[row, : len(toks)] = [words.stoi.get(t) or unk_of_shape[word_shape(t) - 1] for t in toks]
        try:
            tag_ids[row, : len(tgs)] = [tag_id[t] for t in tgs]
        except KeyError as exc:
            raise DataError(f"{split} sentence {row + 1} has tag {exc.args[0]!r}, never seen in the training "
                            f"split (training tags: {', '.join(tags)})") from None
    return TaggedSplit(torch.from_numpy(ids), torch.from_numpy(tag_ids), torch.from_numpy(lengths))


def encode(raw: dict[str, list[Sentence]], source: str, min_freq: int = 2) -> ConllData:
    """Vocabularies from ``raw["train"]``, then every split encoded."""
    words, lower, tags = build_vocabularies(raw["train"], min_freq)
    lower_of, shape_of = lookup_tables(words, lower)
    splits = {s: encode_sentences(raw[s], words, tags, s) for s in SPLITS}
    return ConllData(**splits, words=words, lower=lower, tags=tags, lower_of=lower_of, shape_of=shape_of,
                     source=source)


# ------------------------------------------------------------------------------------------ cache


def _save(path: Path, data: ConllData) -> None:
    """Atomic write (temp file + os.replace); a cache that cannot be written only costs speed: warn."""
    arrays: dict[str, np.ndarray] = {}
    for s in SPLITS:
        sp = data.split(s)
        arrays.update({f"{s}_ids": sp.ids.numpy(), f"{s}_tags": sp.tags.numpy(), f"{s}_lengths": sp.lengths.numpy()})
    meta = {"format": CACHE_FORMAT, "words": data.words.itos, "lower": data.lower.itos, "tags": list(data.tags),
            "source": data.source}
    save_npz_cache(path, {"meta": np.array(json.dumps(meta, ensure_ascii=False)), **arrays})


def _load(path: Path) -> ConllData | None:
    """The cached data, or None when missing or unusable (a bad file is removed, to be rebuilt)."""
    if not path.is_file():
        return None
    try:
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as npz:  # a cache must never run code
            meta = json.loads(str(npz["meta"]))
            if meta.get("format") != CACHE_FORMAT:
                raise ValueError(f"format {meta.get('format')!r}")
            splits = {}
            for s in SPLITS:
                ids, tags, lengths = (torch.from_numpy(npz[f"{s}_{k}"].astype(np.int64))
                                      for k in ("ids", "tags", "lengths"))
                if ids.dim() != 2 or ids.shape != tags.shape or lengths.shape != (ids.shape[0],):
                    raise ValueError(f"bad {s} arrays")
                splits[s] = TaggedSplit(ids, tags, lengths)
        words, lower = Vocab(meta["words"]), Vocab(meta["lower"])
        tags = tuple(meta["tags"])
        for sp in splits.values():
            if int(sp.ids.max()) >= len(words) or int(sp.tags.max()) >= len(tags):
                raise ValueError("ids out of range")
    except (OSError, ValueError, KeyError, TypeError, EOFError, DataError, zipfile.BadZipFile) as exc:
        drop_corrupt_cache(path, exc)
        return None
    lower_of, shape_of = lookup_tables(words, lower)
    log.info("loaded encoded CoNLL-2003 from cache %s", path)
    return ConllData(**splits, words=words, lower=lower, tags=tags, lower_of=lower_of, shape_of=shape_of,
                     source=str(meta["source"]))


# ------------------------------------------------------------------------------------------ hub


def _offline_error(why: str) -> OfflineError:
    return OfflineError(f"cannot load conll2003 from the Hugging Face hub ({HUB_ID}): {why}. Point at a local "
                        "copy instead: `--data /path/to/conll2003` with train.txt, valid.txt and test.txt "
                        "(optionally .gz), CoNLL columns `token POS chunk NER`")


def load_hub_sentences() -> dict[str, list[Sentence]]:
    """The three splits from ``eriktks/conll2003``, or OfflineError at once (no retries) when offline."""
    from adaptaug.data.hub import offline_reason, probe_hub

    why = offline_reason()  # the environment says offline: no network call at all
    if why:
        raise _offline_error(why)
    try:
        import datasets  # optional dependency
    except ImportError:
        raise _offline_error("the optional package `datasets` is not installed (pip install 'adaptaug[hf]')") from None
    why = probe_hub()
    if why:
        raise _offline_error(why)
    try:
        dd = datasets.load_dataset(HUB_ID)
    except OSError as exc:
        raise _offline_error(f"download failed ({exc})") from exc
    out: dict[str, list[Sentence]] = {}
    for split, hub_split in zip(SPLITS, ("train", "validation", "test")):
        if hub_split not in dd:
            raise DataError(f"{HUB_ID}: no {hub_split!r} split (has {list(dd)})")
        names = dd[hub_split].features["ner_tags"].feature.names
        sentences = []
        for i, row in enumerate(dd[hub_split]):
            toks, tags = list(row["tokens"]), [names[t] for t in row["ner_tags"]]
            if not toks or toks[0] == DOCSTART:
                continue
            check_tags(tags, [f"{HUB_ID}/{hub_split} row {i} token {j}" for j in range(len(tags))])
            sentences.append((toks, tags))
        out[split] = sentences
    return out


# ------------------------------------------------------------------------------------------ entry point


def load_conll(data: str | os.PathLike | None = None, *, min_freq: int = 2) -> ConllData:
    """CoNLL-2003 from a local folder (see the module docstring) or, with ``data=None``, the HF hub.

    ``min_freq``: training frequency a lower-cased form needs for its own embedding (rarer forms embed as
    ``<unk>`` plus casing, which also trains ``<unk>`` for the unseen words of valid/test).
    """
    if min_freq < 1:
        raise ConfigError(f"min_freq must be >= 1, got {min_freq}")
    if data is None:
        raw = load_hub_sentences()
        return encode(raw, f"hf://datasets/{HUB_ID}", min_freq)
    folder = resolve_data_path(data)
    files = find_split_files(folder)
    h = new_cache_hasher(CACHE_KIND)
    h.update(f"{CACHE_FORMAT}\0min_freq={min_freq}\0".encode())
    for split, f in files.items():
        try:
            hash_named_bytes(h, split, f.read_bytes())
        except OSError as exc:
            raise DataError(f"cannot read {f}: {exc}") from None
    path = cache_path(CACHE_KIND, h.hexdigest()[:32])
    cached = _load(path)
    if cached is not None:
        return cached
    raw = {"train": read_conll(files["train"])}
    train_tags = {t for _, tags in raw["train"] for t in tags}
    raw.update({s: read_conll(files[s], known_tags=train_tags) for s in ("val", "test")})
    data_ = encode(raw, str(folder), min_freq)
    _save(path, data_)
    return data_


__all__ = ["ConllData", "EXPECTED_COUNTS", "HUB_ID", "PAD_TAG", "SHAPES", "TaggedSplit", "check_tags",
           "encode", "find_split_files", "load_conll", "normalise", "read_conll", "word_shape"]
