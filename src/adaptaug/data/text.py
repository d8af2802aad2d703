"""Text classification data (IMDB, SST-2): JSON Lines files or the HF hub -> token-id tensors and a vocabulary.

Sources: ``--data DIR`` holding ``train.jsonl`` and ``test.jsonl`` (each optionally gzip'd), one
``{"text": str, "label": 0 | 1}`` per line; without a path, the Hugging Face hub (``stanfordnlp/imdb``,
``stanfordnlp/sst2``), failing at once with :class:`~adaptaug.errors.OfflineError` when offline.

Pipeline, run once per source and cached:
1. :func:`tokenize`: lower-case word tokens from a simple regex (IMDB's ``<br />`` removed, ``!`` and ``?`` kept
   as tokens since they carry sentiment). Each file becomes a flat array of word indices + offsets, cached under
   :func:`~adaptaug.data.images.cache_dir` keyed by the sha256 of the source bytes (a changed file gives a new
   key; a corrupt cache file is rebuilt).
2. Per run (cheap numpy): a seeded, stratified ``limit`` subset and validation split (as the image loader does),
   or, with ``val_whole_texts``, a validation split of whole texts (:mod:`adaptaug.data.whole_texts`),
   the :class:`~adaptaug.data.vocab.Vocab` from the *training part only* (min frequency 2, at most 30,000 tokens;
   validation and test words it never saw are ``<unk>``), and ids truncated to a fixed length (256 IMDB, 64 SST-2).
3. Synonym candidates for the text ops (:func:`build_synonyms`), cached too. Default ``"cooc"``: nearest
   neighbours in a PPMI-SVD word embedding of the training part (Levy, Goldberg & Dagan 2015), keeping only
   neighbours whose label log-odds agree with the word's (so ``good`` does not become ``bad``, the classic
   failure of distributional "synonyms"). It needs no system package and works offline on any machine.
   ``"wordnet"``: WordNet 3.0 synsets, as EDA (Wei & Zou 2019) uses, read from the database files of Debian's
   ``wordnet-base`` (``/usr/share/wordnet`` or ``$WNHOME``/``$ADAPTAUG_WORDNET_DIR``). ``"none"``: no synonyms;
   SynonymReplacement then leaves the op space and the task says so.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

from adaptaug.data.images import (_check_limit, _val_count, cache_dir, hash_named_bytes, new_cache_hasher,
                                  drop_corrupt_cache, resolve_data_path, save_npz_cache,
                                  stratified_choice)
from adaptaug.data.vocab import PAD, UNK, Vocab
from adaptaug.data.whole_texts import inside, whole_texts
from adaptaug.errors import ConfigError, DataError, OfflineError
from adaptaug.host_threads import one_thread
from adaptaug.io import text_lines

log = logging.getLogger(__name__)

# Bump when tokenisation or the cached layout changes: old cache files then stop matching.
TEXT_CACHE_VERSION = "adaptaug-text-cache-v1"
SYNONYM_CACHE_VERSION = "adaptaug-synonyms-v2"  # v2: the co-occurrence table built on one thread


# --------------------------------------------------------------------------------------------- tokeniser

_BREAK_RE = re.compile(r"<br\s*/?>", re.IGNORECASE)  # IMDB's line breaks: "<br /><br />"
# word characters (unicode letters and digits) with inner apostrophes ("don't", "n't"), plus ! and ?
_TOKEN_RE = re.compile(r"[^\W_]+(?:'[^\W_]+)*|[!?]")


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens: ``"Great<br />film, isn't it?!"`` -> ``['great', 'film', "isn't", 'it', '?', '!']``."""
    return _TOKEN_RE.findall(_BREAK_RE.sub(" ", text).lower())


# --------------------------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class TextSettings:
    max_len: int  # tokens kept per text (truncation at the end)
    min_freq: int = 2  # training-part count a token needs to enter the vocabulary
    max_vocab: int = 30_000  # vocabulary cap, <pad> and <unk> included

    def __post_init__(self) -> None:
        for name in ("max_len", "min_freq", "max_vocab"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.max_vocab < 3:
            raise ConfigError(f"max_vocab must leave room for <pad>, <unk> and one word, got {self.max_vocab}")


# IMDB reviews average ~270 tokens (256 keeps most of most reviews); SST-2 phrases are at most ~55 tokens.
TEXT_TASKS: dict[str, TextSettings] = {"imdb": TextSettings(max_len=256), "sst2": TextSettings(max_len=64)}
HUB_TEXT_IDS = {"imdb": "stanfordnlp/imdb", "sst2": "stanfordnlp/sst2"}
SYNONYM_SOURCES = ("cooc", "wordnet", "none")
CLASSES = ("negative", "positive")  # label 0, label 1


# --------------------------------------------------------------------------------------------- containers


@dataclass
class TextDataset:
    """Right-padded token ids with their true lengths and binary labels."""

    ids: torch.Tensor  # (N, T) int64, 0 = <pad> after the length
    lengths: torch.Tensor  # (N,) int64 in [1, T]
    labels: torch.Tensor  # (N,) int64 in {0, 1}

    def __post_init__(self) -> None:
        n = self.labels.shape[0]
        if self.ids.dim() != 2 or self.ids.shape[0] != n or self.lengths.shape != (n,):
            raise DataError(f"ids {tuple(self.ids.shape)}, lengths {tuple(self.lengths.shape)} and labels "
                            f"{tuple(self.labels.shape)} do not describe one set of (N, T) sequences")

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __repr__(self) -> str:
        return f"TextDataset(n={len(self)}, max_len={self.ids.shape[1]})"


@dataclass
class TextSplits:
    """One text classification task ready for training: train (minus validation), val, test, vocabulary."""

    name: str  # "imdb" | "sst2"
    train: TextDataset  # training part AFTER the validation split was removed
    val: TextDataset  # stratified, seeded split of the original training set
    test: TextDataset
    vocab: Vocab  # built from ``train`` only
    max_len: int
    source: str  # path or hub id, for config.json
    synonyms: torch.Tensor | None = None  # (V, K) int64 candidate ids per vocabulary id, -1 padded
    synonym_source: str = "none"  # "cooc" | "wordnet" | "none"
    classes: tuple[str, ...] = field(default=CLASSES)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __repr__(self) -> str:
        return (f"TextSplits(name={self.name!r}, train={len(self.train)}, val={len(self.val)}, "
                f"test={len(self.test)}, vocab={len(self.vocab)}, max_len={self.max_len}, "
                f"synonyms={self.synonym_source!r}, source={self.source!r})")


# --------------------------------------------------------------------------------------------- JSON Lines


def read_jsonl(path: str | os.PathLike) -> tuple[list[str], np.ndarray]:
    """Texts and int64 labels from a JSON Lines file (gzip'd or not), one ``{"text", "label"}`` per line.

    Blank lines are skipped; anything else wrong raises DataError naming the file and the line.
    """
    path = Path(path)
    texts: list[str] = []
    labels: list[int] = []
    for lineno, line in text_lines(path):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}, line {lineno}: invalid JSON ({err.msg})") from None
        if not isinstance(record, dict):
            raise DataError(f"{path}, line {lineno}: expected an object {{\"text\": ..., \"label\": ...}}, "
                            f"got {type(record).__name__}")
        missing = [k for k in ("text", "label") if k not in record]
        if missing:
            raise DataError(f"{path}, line {lineno}: missing key(s) {', '.join(map(repr, missing))}")
        text, label = record["text"], record["label"]
        if not isinstance(text, str):
            raise DataError(f"{path}, line {lineno}: 'text' must be a string, got {type(text).__name__}")
        if not text.strip():
            raise DataError(f"{path}, line {lineno}: empty text")
        if isinstance(label, bool) or not isinstance(label, int) or label not in (0, 1):
            raise DataError(f"{path}, line {lineno}: label must be 0 or 1, got {label!r}")
        texts.append(text)
        labels.append(label)
    if not texts:
        raise DataError(f"{path} holds no records")
    return texts, np.asarray(labels, dtype=np.int64)


def find_split_file(folder: Path, split: str) -> Path:
    """``folder/{split}.jsonl`` or ``folder/{split}.jsonl.gz``; a DataError when neither or both exist."""
    found = [folder / f"{split}.jsonl{ext}" for ext in ("", ".gz") if (folder / f"{split}.jsonl{ext}").is_file()]
    if not found:
        present = ", ".join(sorted(p.name for p in folder.iterdir())[:10]) or "nothing"
        raise DataError(f"{folder} has no {split}.jsonl or {split}.jsonl.gz (found: {present}); expected JSON Lines "
                        f'files train.jsonl[.gz] and test.jsonl[.gz] with one {{"text": str, "label": 0|1}} per line')
    if len(found) > 1:
        raise DataError(f"{folder} has both {found[0].name} and {found[1].name}; keep one")
    return found[0]


# --------------------------------------------------------------------------------------------- tokenised cache


@dataclass
class TokenizedText:
    """A tokenised split: word indices into ``words`` (a per-source list, not the vocabulary), flat + offsets."""

    tokens: np.ndarray  # (total,) int32 index into the source's words, -1 = not a training-file word
    offsets: np.ndarray  # (N + 1,) int64; text i is tokens[offsets[i]:offsets[i + 1]]
    labels: np.ndarray  # (N,) int64


@dataclass
class TokenizedSource:
    words: list[str]  # every distinct token of the training file, in order of first appearance
    train: TokenizedText
    test: TokenizedText
    key: str  # the cache key: sha256 of the source and the tokeniser version
    source: str


def _index_texts(texts: Sequence[str], labels: np.ndarray, index: dict[str, int], words: list[str],
                 grow: bool) -> TokenizedText:
    flat: list[int] = []
    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    for i, text in enumerate(texts):
        tokens = tokenize(text)
        if grow:
            for t in tokens:
                if t not in index:
                    index[t] = len(words)
                    words.append(t)
            flat.extend(index[t] for t in tokens)
        else:
            flat.extend(index.get(t, -1) for t in tokens)
        offsets[i + 1] = len(flat)
    return TokenizedText(np.asarray(flat, dtype=np.int32), offsets, labels.astype(np.int64))


def tokenize_source(train: tuple[list[str], np.ndarray], test: tuple[list[str], np.ndarray], key: str,
                    source: str) -> TokenizedSource:
    index: dict[str, int] = {}
    words: list[str] = []
    tr = _index_texts(train[0], train[1], index, words, grow=True)
    te = _index_texts(test[0], test[1], index, words, grow=False)
    return TokenizedSource(words, tr, te, key, source)


def _text_cache_path(key: str) -> Path:
    return cache_dir() / f"text-{key}.npz"


def _load_npz(path: Path, names: Iterable[str]) -> dict[str, np.ndarray] | None:
    """The named arrays, or None when the file is missing; a corrupt file raises ValueError for the caller."""
    if not path.is_file():
        return None
    try:
        with open(path, "rb") as fh:  # allow_pickle=False: a cache file must never run code
            npz = np.load(fh, allow_pickle=False)
            if not isinstance(npz, np.lib.npyio.NpzFile):
                raise ValueError("not an .npz archive")
            with npz:
                return {k: npz[k] for k in names}  # reading to the end makes zipfile check each CRC
    except (OSError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(str(exc) or type(exc).__name__) from None



_SPLIT_ARRAYS = ("tokens", "offsets", "labels")


def save_tokenized(path: Path, src: TokenizedSource) -> None:
    words = np.frombuffer("\n".join(src.words).encode("utf-8"), dtype=np.uint8)  # tokens hold no whitespace
    arrays = {"words": words, "num_words": np.asarray(len(src.words), dtype=np.int64)}
    for split in ("train", "test"):
        part = getattr(src, split)
        arrays.update({f"{split}_{k}": getattr(part, k) for k in _SPLIT_ARRAYS})
    save_npz_cache(path, arrays)


def load_tokenized(path: Path, key: str, source: str) -> TokenizedSource | None:
    names = ["words", "num_words"] + [f"{s}_{k}" for s in ("train", "test") for k in _SPLIT_ARRAYS]
    try:
        arrays = _load_npz(path, names)
        if arrays is None:
            return None
        words = bytes(arrays["words"]).decode("utf-8").split("\n") if arrays["words"].size else []
        if arrays["words"].dtype != np.uint8 or len(words) != int(arrays["num_words"]):
            raise ValueError("word list does not match its count")
        parts = {}
        for split in ("train", "test"):
            tokens, offsets, labels = (arrays[f"{split}_{k}"] for k in _SPLIT_ARRAYS)
            if tokens.dtype != np.int32 or offsets.dtype != np.int64 or labels.dtype != np.int64:
                raise ValueError(f"bad dtypes in {split}")
            if offsets.ndim != 1 or offsets.shape[0] != labels.shape[0] + 1 or offsets[0] != 0 \
                    or offsets[-1] != tokens.shape[0] or (np.diff(offsets) < 0).any():
                raise ValueError(f"bad offsets in {split}")
            if tokens.size and (tokens.max() >= len(words) or tokens.min() < -1):
                raise ValueError(f"token index out of range in {split}")
            if labels.size == 0 or labels.min() < 0 or labels.max() > 1:
                raise ValueError(f"bad labels in {split}")
            parts[split] = TokenizedText(tokens, offsets, labels)
    except (ValueError, UnicodeDecodeError) as exc:
        drop_corrupt_cache(path, exc)
        return None
    log.info("loaded tokenised text from cache %s", path)
    return TokenizedSource(words, parts["train"], parts["test"], key, source)


def _source_key(kind: str, files: Sequence[tuple[str, bytes]]) -> str:
    h = new_cache_hasher(f"{TEXT_CACHE_VERSION}\0{kind}")
    for name, data in files:
        hash_named_bytes(h, name, data)
    return h.hexdigest()[:32]


def load_local_source(folder: Path) -> TokenizedSource:
    """Tokenise ``folder``'s train/test JSON Lines files, or read the cached result for the same bytes."""
    paths = {split: find_split_file(folder, split) for split in ("train", "test")}
    key = _source_key("jsonl", [(split, p.read_bytes()) for split, p in paths.items()])
    path = _text_cache_path(key)
    cached = load_tokenized(path, key, str(folder))
    if cached is not None:
        return cached
    src = tokenize_source(read_jsonl(paths["train"]), read_jsonl(paths["test"]), key, str(folder))
    save_tokenized(path, src)
    return src


# --------------------------------------------------------------------------------------------- HF hub


LOCAL_TEXT_HINT = ("`--data DIR` with train.jsonl[.gz] and test.jsonl[.gz], one {\"text\": str, \"label\": 0|1} "
                   "per line (e.g. --data ../shared/datasets/{task})")


def _text_offline_error(task: str, why: str) -> OfflineError:
    return OfflineError(f"cannot load {task} from the Hugging Face hub ({HUB_TEXT_IDS[task]}): {why}. "
                        f"Point at a local copy instead: {LOCAL_TEXT_HINT.replace('{task}', task)}")


def load_hub_text(task: str, timeout: float | None = None) -> TokenizedSource:
    """IMDB (train/test) or SST-2 (train/validation: GLUE's test has no labels) from the hub, tokenised."""
    from adaptaug.data.hub import PROBE_TIMEOUT_S, offline_reason, probe_hub

    if task not in HUB_TEXT_IDS:
        raise ConfigError(f"no hub copy for task {task!r}; hub text tasks: {', '.join(HUB_TEXT_IDS)}")
    why = offline_reason()
    if why:
        raise _text_offline_error(task, why)
    try:
        import datasets  # optional dependency
    except ImportError:
        raise _text_offline_error(task, "the optional package `datasets` is not installed "
                                        "(pip install 'adaptaug[hf]')") from None
    why = probe_hub(PROBE_TIMEOUT_S if timeout is None else timeout)
    if why:
        raise _text_offline_error(task, why)
    hub_id = HUB_TEXT_IDS[task]
    try:
        dd = datasets.load_dataset(hub_id)
    except OSError as exc:
        raise _text_offline_error(task, f"download failed ({exc})") from exc
    test_split = "test" if task == "imdb" else "validation"
    parts = []
    for split in ("train", test_split):
        if split not in dd:
            raise DataError(f"{hub_id}: expected a {split!r} split, got {list(dd)}")
        column = "text" if "text" in dd[split].features else "sentence"
        texts = [str(t) for t in dd[split][column]]
        labels = np.asarray(list(dd[split]["label"]), dtype=np.int64)
        if labels.size == 0 or labels.min() < 0 or labels.max() > 1:
            raise DataError(f"{hub_id} {split}: labels must be 0 or 1")
        parts.append((texts, labels))
    key = _source_key(f"hub:{hub_id}", [(f"{s}-{i}", "\n".join(p[0]).encode() + p[1].tobytes())
                                       for i, (s, p) in enumerate(zip(("train", "test"), parts))])
    path = _text_cache_path(key)
    cached = load_tokenized(path, key, f"hf://datasets/{hub_id}")
    if cached is not None:
        return cached
    src = tokenize_source(parts[0], parts[1], key, f"hf://datasets/{hub_id}")
    save_tokenized(path, src)
    return src


# --------------------------------------------------------------------------------------------- vocabulary + ids


def _rows(part: TokenizedText, rows: np.ndarray) -> TokenizedText:
    """The texts at ``rows`` (sorted int indices) as a new flat + offsets."""
    starts, ends = part.offsets[rows], part.offsets[rows + 1]
    lengths = ends - starts
    offsets = np.zeros(rows.shape[0] + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    # index of every kept token: start of its text + position inside it, without a loop over texts
    within = np.arange(offsets[-1], dtype=np.int64) - np.repeat(offsets[:-1], lengths)
    tokens = part.tokens[np.repeat(starts, lengths) + within]
    return TokenizedText(tokens, offsets, part.labels[rows])


def build_vocab(words: Sequence[str], train: TokenizedText, settings: TextSettings) -> tuple[Vocab, np.ndarray]:
    """The vocabulary of the training texts (frequency order, ties by first sight) and the lookup
    source-word index -> vocabulary id (``<unk>`` for the rest)."""
    counts = np.bincount(train.tokens[train.tokens >= 0], minlength=len(words))
    first_seen = np.full(len(words), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first_seen, train.tokens[train.tokens >= 0], np.arange(train.tokens.shape[0])[train.tokens >= 0])
    eligible = np.nonzero(counts >= settings.min_freq)[0]
    order = eligible[np.lexsort((first_seen[eligible], -counts[eligible]))][: settings.max_vocab - 2]
    vocab = Vocab([PAD, UNK, *(words[i] for i in order.tolist())])
    lookup = np.full(len(words) + 1, vocab.unk_id, dtype=np.int64)  # last entry: index -1 (unseen word)
    lookup[order] = np.arange(2, order.shape[0] + 2)
    return vocab, lookup


def encode(part: TokenizedText, lookup: np.ndarray, max_len: int, unk_id: int = 1) -> TextDataset:
    """Right-padded ids (N, max_len), truncated at the end; a text with no tokens becomes one ``<unk>``."""
    raw_len = np.diff(part.offsets)
    lengths = np.minimum(raw_len, max_len)
    pos = np.arange(max_len)
    inside = pos[None, :] < lengths[:, None]  # (N, T)
    flat_index = np.where(inside, part.offsets[:-1, None] + pos[None, :], 0)
    ids = np.where(inside, lookup[part.tokens[flat_index] if part.tokens.size else np.zeros_like(flat_index)], 0)
    empty = lengths == 0
    ids[empty, 0], lengths = unk_id, np.maximum(lengths, 1)  # the model needs >= 1 step per sequence
    return TextDataset(torch.from_numpy(ids.astype(np.int64)), torch.from_numpy(lengths.astype(np.int64)),
                       torch.from_numpy(part.labels.astype(np.int64)))


# --------------------------------------------------------------------------------------------- synonyms


def wordnet_dir() -> Path | None:
    """Folder with WordNet's data.noun/data.verb/data.adj/data.adv, or None (Debian: apt-get install wordnet-base)."""
    for candidate in (os.environ.get("ADAPTAUG_WORDNET_DIR"),
                      os.path.join(os.environ["WNHOME"], "dict") if os.environ.get("WNHOME") else None,
                      os.environ.get("WNHOME"), "/usr/share/wordnet"):
        if candidate and all(Path(candidate, f"data.{p}").is_file() for p in ("noun", "verb", "adj", "adv")):
            return Path(candidate)
    return None


_WN_MARKER = re.compile(r"\([a-z]+\)$")  # adjective markers: "galore(ip)"


def wordnet_synonyms(vocab: Vocab, k: int = 8, folder: Path | None = None) -> np.ndarray:
    """(V, k) candidate ids from WordNet 3.0 synsets (wndb(5) data files), -1 padded; single-word lemmas in
    the vocabulary only, most frequent vocabulary words first. EDA (Wei & Zou 2019) draws from the same sets."""
    folder = folder or wordnet_dir()
    if folder is None:
        raise DataError("synonym source 'wordnet' needs the WordNet 3.0 database files (data.noun, ...): "
                        "install Debian's wordnet-base (apt-get install wordnet-base) or set ADAPTAUG_WORDNET_DIR; "
                        "or use the default synonym source 'cooc', which needs nothing installed")
    neighbours: dict[int, set[int]] = {}
    for pos in ("noun", "verb", "adj", "adv"):
        with open(folder / f"data.{pos}", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith(" "):  # the licence header lines start with two spaces
                    continue
                fields = line.split()
                count = int(fields[3], 16)  # w_cnt is two hex digits
                lemmas = {_WN_MARKER.sub("", w).lower() for w in fields[4:4 + 2 * count:2]}
                ids = {vocab.stoi[w] for w in lemmas if "_" not in w and w in vocab.stoi}
                ids.discard(vocab.unk_id)
                for i in ids:
                    neighbours.setdefault(i, set()).update(ids - {i})
    table = np.full((len(vocab), k), -1, dtype=np.int64)
    for i, cands in neighbours.items():
        best = sorted(cands)[:k]  # vocabulary ids are frequency ranks: keep the commonest synonyms
        table[i, : len(best)] = best
    return table


def cooccurrence_synonyms(ids: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor | None, vocab_size: int,
                          k: int = 8, window: int = 2, dim: int = 64, top_words: int = 10_000,
                          min_similarity: float = 0.5, polarity_tolerance: float = 0.5,
                          seed: int = 0) -> np.ndarray:
    """(V, k) candidate ids, -1 padded: nearest neighbours of each of the ``top_words`` commonest words in a
    PPMI-SVD embedding (Levy, Goldberg & Dagan 2015: window ``window``, context smoothing 0.75, symmetric
    sqrt(S) weighting) of the given training texts, cosine >= ``min_similarity``.

    With ``labels`` (0/1 per text), a neighbour is kept only when its label log-odds are within
    ``polarity_tolerance`` of the word's: distributional neighbours put antonyms side by side ("good", "bad"),
    and replacing one with the other flips a sentiment label.
    """
    import scipy.sparse as sp
    from sklearn.utils.extmath import randomized_svd  # loads BLAS first: threadpoolctl limits only loaded ones
    from threadpoolctl import threadpool_limits  # scikit-learn's own dependency

    # one thread for BLAS and torch: near ties among the similarities flip with a multi-threaded summation
    # order, and a reordered candidate list changes every draw after it (8 of 6,013 rows of an SST-2 table
    # reordered between one and two BLAS threads), so the table, the runs and their cache must not depend on the host
    with threadpool_limits(limits=1), one_thread():
        n = min(vocab_size, top_words)
        x = ids.numpy() if isinstance(ids, torch.Tensor) else np.asarray(ids)
        lens = lengths.numpy() if isinstance(lengths, torch.Tensor) else np.asarray(lengths)
        valid = np.arange(x.shape[1])[None, :] < lens[:, None]
        x = np.where(valid & (x >= 2) & (x < n), x, -1)  # pad, unk and rare words are no one's context
        rows, cols = [], []
        for d in range(1, window + 1):  # a loop over offsets, not over texts
            a, b = x[:, :-d].ravel(), x[:, d:].ravel()
            keep = (a >= 0) & (b >= 0)
            rows += [a[keep], b[keep]]
            cols += [b[keep], a[keep]]  # symmetric window
        table = np.full((vocab_size, k), -1, dtype=np.int64)
        if not rows or sum(r.size for r in rows) == 0:
            return table
        r, c = np.concatenate(rows).astype(np.int32), np.concatenate(cols).astype(np.int32)
        counts = sp.coo_matrix((np.ones(r.shape[0], dtype=np.float32), (r, c)), shape=(n, n)).tocsr()
        counts.sum_duplicates()
        row_sum = np.asarray(counts.sum(1)).ravel()
        ctx = np.asarray(counts.sum(0)).ravel() ** 0.75
        coo = counts.tocoo()
        pmi = np.log(coo.data * ctx.sum() / (row_sum[coo.row] * ctx[coo.col]))
        keep = pmi > 0
        ppmi = sp.csr_matrix((pmi[keep].astype(np.float32), (coo.row[keep], coo.col[keep])), shape=(n, n))
        u, s, _ = randomized_svd(ppmi, n_components=min(dim, n - 1), random_state=seed)
        emb = torch.from_numpy((u * np.sqrt(s)).astype(np.float32))
        emb = emb / emb.norm(dim=1, keepdim=True).clamp_min(1e-8)  # (n, dim) unit rows
        seen = torch.from_numpy(row_sum > 0)
        polarity = None
        if labels is not None:
            y = labels.numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
            yy = np.broadcast_to(y[:, None], x.shape)
            in_top = x >= 0
            pos = np.bincount(x[in_top & (yy == 1)], minlength=n).astype(np.float64)
            neg = np.bincount(x[in_top & (yy == 0)], minlength=n).astype(np.float64)
            prior = np.log((pos.sum() + 1) / (neg.sum() + 1))
            polarity = torch.from_numpy(np.log((pos + 1) / (neg + 1)) - prior).float()  # (n,) add-one log-odds
        out = torch.full((n, k), -1, dtype=torch.long)
        for start in range(0, n, 1024):  # chunks of rows bound the (chunk, n) similarity matrix
            sim = emb[start:start + 1024] @ emb.T  # (c, n) cosine
            rows_idx = torch.arange(start, min(start + 1024, n))
            sim[torch.arange(sim.shape[0]), rows_idx] = -2.0  # never yourself
            sim[:, ~seen] = -2.0
            sim[:, :2] = -2.0  # never <pad> or <unk>
            if polarity is not None:
                sim[(polarity[rows_idx, None] - polarity[None, :]).abs() > polarity_tolerance] = -2.0
            best, idx = sim.topk(min(k, n), dim=1)
            out[start:start + sim.shape[0], : idx.shape[1]] = torch.where(best >= min_similarity, idx, -1)
        out[:2] = -1
        table[:n] = out.numpy()
        # candidates first, -1 after: topk is sorted, and a -1 can only follow a lower similarity
        return table


def build_synonyms(source: str, vocab: Vocab, train: TextDataset, key: str, seed: int = 0,
                   k: int = 8) -> np.ndarray | None:
    """The synonym table for ``source`` (see the module docstring), cached under the data key + vocabulary."""
    if source not in SYNONYM_SOURCES:
        raise ConfigError(f"unknown synonym source {source!r}; known: {', '.join(SYNONYM_SOURCES)}")
    if source == "none":
        return None
    h = hashlib.sha256(f"{SYNONYM_CACHE_VERSION}\0{source}\0{key}\0{k}\0{seed}\0".encode())
    h.update("\n".join(vocab.itos).encode("utf-8"))
    if source == "cooc":  # depends on which texts are training texts (seed, val_size, limit)
        h.update(train.ids.numpy().tobytes())
        h.update(train.labels.numpy().tobytes())
    else:
        folder = wordnet_dir()
        h.update(str(folder).encode())
    path = cache_dir() / f"synonyms-{h.hexdigest()[:32]}.npz"
    try:
        arrays = _load_npz(path, ["table"])
        if arrays is not None:
            table = arrays["table"]
            if table.dtype != np.int64 or table.shape != (len(vocab), k) or table.max() >= len(vocab) \
                    or table.min() < -1:
                raise ValueError("bad synonym table")
            return table
    except ValueError as exc:
        drop_corrupt_cache(path, exc)
    if source == "wordnet":
        table = wordnet_synonyms(vocab, k)
    else:
        table = cooccurrence_synonyms(train.ids, train.lengths, train.labels, len(vocab), k=k, seed=seed)
    save_npz_cache(path, {"table": table})
    return table


# --------------------------------------------------------------------------------------------- entry point


def _random_val_split(train: TokenizedText, val_size: float | int, seed: int,
                      limit: int | None) -> tuple[TokenizedText, TokenizedText]:
    # Independent streams for the two draws (as make_splits): `limit` does not reshuffle the val draw
    if limit is not None and limit < train.labels.shape[0]:
        train = _rows(train, stratified_choice(train.labels, int(limit), np.random.default_rng([seed, 1])))
    n = train.labels.shape[0]
    is_val = np.zeros(n, dtype=bool)
    is_val[stratified_choice(train.labels, _val_count(val_size, n), np.random.default_rng([seed, 2]))] = True
    return _rows(train, np.nonzero(~is_val)[0]), _rows(train, np.nonzero(is_val)[0])


def _whole_text_val_split(train: TokenizedText, val_size: float | int, seed: int,
                          limit: int | None) -> tuple[TokenizedText, TokenizedText]:
    """Validation from whole texts only, training texts inside them dropped (:mod:`adaptaug.data.whole_texts`).

    ``val_size`` counts (or is a share of) the texts a run uses, ``limit`` or the whole file, as in the random split;
    ``limit`` then takes the training texts from those left, so ``limit - val count`` of them.
    """
    n = train.labels.shape[0]
    used = min(int(limit), n) if limit is not None else n
    k = _val_count(val_size, used)
    whole_rows = np.nonzero(whole_texts(train))[0]
    if k > whole_rows.shape[0]:
        raise DataError(f"val_size asks for {k} whole validation texts but the training file has "
                        f"{whole_rows.shape[0]} texts that lie inside no longer one")
    val_rows = whole_rows[stratified_choice(train.labels[whole_rows], k, np.random.default_rng([seed, 2]))]
    val = _rows(train, val_rows)
    keep = ~inside(train, val, longer_only=False)  # a validation text lies inside itself: it goes too
    rows = np.nonzero(keep)[0]
    if rows.shape[0] == 0:
        raise DataError(f"every training text lies inside one of the {k} whole validation texts")
    if limit is not None and used - k < rows.shape[0]:
        rows = rows[stratified_choice(train.labels[rows], used - k, np.random.default_rng([seed, 1]))]
    log.info("whole-text validation: %d of %d whole texts; %d training texts inside them dropped; %d training texts",
             k, whole_rows.shape[0], int((~keep).sum()) - k, rows.shape[0])
    return _rows(train, rows), val


def make_text_splits(name: str, src: TokenizedSource, settings: TextSettings, *, val_size: float | int = 0.1,
                     seed: int = 0, limit: int | None = None, synonyms: str = "cooc",
                     val_whole_texts: bool = False) -> TextSplits:
    """Limit, validation split, vocabulary (training part only), ids and synonyms, as the image loader does.

    ``val_whole_texts``: validation from texts that lie inside no longer training text, and the training texts inside
    a validation text dropped (SST-2: sentences, as its test set; see :mod:`adaptaug.data.whole_texts`).
    """
    _check_limit(limit)
    if synonyms not in SYNONYM_SOURCES:
        raise ConfigError(f"unknown synonym source {synonyms!r}; known: {', '.join(SYNONYM_SOURCES)}")
    split = _whole_text_val_split if val_whole_texts else _random_val_split
    train_part, val_part = split(src.train, val_size, seed, limit)
    vocab, lookup = build_vocab(src.words, train_part, settings)
    datasets = {s: encode(p, lookup, settings.max_len, vocab.unk_id)
                for s, p in (("train", train_part), ("val", val_part), ("test", src.test))}
    table = build_synonyms(synonyms, vocab, datasets["train"], src.key, seed=seed)
    return TextSplits(name=name, vocab=vocab, max_len=settings.max_len, source=src.source,
                      synonyms=None if table is None else torch.from_numpy(table), synonym_source=synonyms,
                      **datasets)


def load_text_task(task: str, data: str | os.PathLike | None = None, *, val_size: float | int = 0.1, seed: int = 0,
                   limit: int | None = None, synonyms: str = "cooc", settings: TextSettings | None = None,
                   val_whole_texts: bool = False) -> TextSplits:
    """Load ``"imdb"`` or ``"sst2"`` as train / val / test token ids with a training-part vocabulary.

    data: a folder with ``train.jsonl[.gz]`` and ``test.jsonl[.gz]``; None = the HF hub (OfflineError offline).
    val_size, seed, limit: as :func:`~adaptaug.data.images.load_image_task` (stratified by label).
    synonyms: ``"cooc"`` (default; from the training part), ``"wordnet"`` (WordNet 3.0 files) or ``"none"``.
    settings: maximum length, minimum frequency and vocabulary cap (default: ``TEXT_TASKS[task]``).
    val_whole_texts: validation from whole texts only (:func:`make_text_splits`); SST-2's test set is sentences.
    """
    if not isinstance(task, str) or task not in TEXT_TASKS:
        raise ConfigError(f"unknown text task {task!r}; known text tasks: {', '.join(TEXT_TASKS)}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    _check_limit(limit)
    _val_count(val_size, 10**9)  # type and range check before any file is read
    src = load_hub_text(task) if data is None else load_local_source(resolve_data_path(data))
    return make_text_splits(task, src, settings or TEXT_TASKS[task], val_size=val_size, seed=int(seed), limit=limit,
                            synonyms=synonyms, val_whole_texts=val_whole_texts)


__all__ = ["CLASSES", "HUB_TEXT_IDS", "SYNONYM_SOURCES", "TEXT_TASKS", "TextDataset", "TextSettings", "TextSplits",
           "build_synonyms", "build_vocab", "cooccurrence_synonyms", "encode", "find_split_file", "load_text_task",
           "read_jsonl", "tokenize", "wordnet_dir", "wordnet_synonyms"]
