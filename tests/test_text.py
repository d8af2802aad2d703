"""Text classification: tokeniser, JSON Lines loader and cache, text ops (property-based), token plans, the
BiLSTM, the task under every policy, and a short SST-2 run that must learn."""
from __future__ import annotations

import dataclasses
import gzip
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from adaptaug.augment import NO_OP, AugPlan, apply_token_plan
from adaptaug.data.text import (TEXT_TASKS, TextSettings, cooccurrence_synonyms, load_text_task, read_jsonl,
                                tokenize)
from adaptaug.errors import ConfigError, DataError, OfflineError
from adaptaug.models import BiLSTMClassifier
from adaptaug.ops.space import get_op, list_ops
from adaptaug.ops.text import EDA_OPS, TEXT_OPS, TextOpContext, touched
from adaptaug.policies import build_policy
from adaptaug.policies.eda import EDAPolicy
from conftest import shared

V = 40  # toy vocabulary: 0 pad, 1 unk, 2.. words
PAD, UNK = 0, 1


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _toy_context(with_synonyms: bool = True) -> TextOpContext:
    """Word w >= 2 has synonyms w+1 and w+2 (when < V); every third word has none."""
    table = torch.full((V, 3), -1, dtype=torch.long)
    for w in range(2, V):
        if w % 3:
            cands = [c for c in (w + 1, w + 2) if c < V]
            table[w, : len(cands)] = torch.tensor(cands)
    return TextOpContext(V, PAD, UNK, table if with_synonyms else None)


def _batch(lengths: list[int], width: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.randint(2, V, (len(lengths), width), generator=_gen(seed))
    lengths_t = torch.tensor(lengths, dtype=torch.long)
    ids[torch.arange(width)[None, :] >= lengths_t[:, None]] = PAD
    return ids, lengths_t


def _run(name: str, ids, lengths, mag, seed: int = 0, context: TextOpContext | None = None):
    return get_op(name).fn(ids, lengths, mag, _gen(seed), context or _toy_context())


def _is_subsequence(short: list[int], long: list[int]) -> bool:
    it = iter(long)
    return all(any(x == y for y in it) for x in short)


def _check_row(name: str, before: list[int], after: list[int], width: int, n: int, ctx: TextOpContext) -> None:
    """The contract of op ``name`` for one row: ``before``/``after`` are the tokens inside the lengths."""
    syn = {w: set(ctx.synonyms[w][ctx.synonyms[w] >= 0].tolist()) for w in range(V)} if ctx.synonyms is not None \
        else {w: set() for w in range(V)}
    length = len(before)
    assert 1 <= len(after) <= width and PAD not in after
    if name == "RandomDeletion":
        assert len(after) == length - min(n, length - 1)
        assert _is_subsequence(after, before)
    elif name == "RandomSwap":
        assert sorted(after) == sorted(before)
        assert sum(a != b for a, b in zip(after, before)) <= 2 * min(n, length // 2)
    elif name == "RandomInsertion":
        assert len(after) == min(length + n, width)
        assert _is_subsequence(before[: max(0, len(after) - n)], after)
        allowed = set(before).union(*(syn[w] for w in before))
        assert set(after) <= allowed
    elif name == "SynonymReplacement":
        assert len(after) == length
        changed = [(b, a) for b, a in zip(before, after) if a != b]
        assert len(changed) <= n and all(a in syn[b] for b, a in changed)
        eligible = sum(bool(syn[b]) for b in before)
        assert len(changed) == min(n, eligible)  # the toy table never maps a word to itself
    elif name == "UnkMask":
        assert len(after) == length
        changed = [a for b, a in zip(before, after) if a != b]
        assert all(a == UNK for a in changed)
        assert len(changed) == min(n, sum(b != UNK for b in before))
    else:  # pragma: no cover - a new op needs its contract here
        raise AssertionError(f"no contract for {name}")


# ------------------------------------------------------------------------------------------------ tokeniser, vocab


def test_tokenize_rules() -> None:
    assert tokenize("Great<br /><br />film, isn't it?! ÉLAN") == ["great", "film", "isn't", "it", "?", "!", "élan"]
    assert tokenize("does n't work") == ["does", "n't", "work"]  # SST-2's own tokenisation survives
    assert tokenize("... --- ...") == []


def test_tokenizer_and_vocab_on_real_reviews() -> None:
    path = shared("imdb") / "train.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        reviews = [json.loads(next(fh))["text"] for _ in range(300)]
    with_breaks = [r for r in reviews if "<br />" in r]
    assert with_breaks, "IMDB reviews carry <br /> tags"
    for review in with_breaks:
        tokens = tokenize(review)
        assert "br" not in tokens and not any("<" in t or ">" in t for t in tokens)
        assert all(t == t.lower() for t in tokens)

    splits = load_text_task("sst2", shared("sst2"), limit=3000, synonyms="none")
    vocab = splits.vocab
    train_counts = np.bincount(splits.train.ids[splits.train.ids > 1].numpy(), minlength=len(vocab))
    assert train_counts[2:].min() >= 2  # min_freq 2, counted on the training part only
    assert (np.diff(train_counts[2:]) <= 0).all()  # ids in frequency order (no text is truncated at 64)
    assert vocab.itos[:2] == ["<pad>", "<unk>"] and len(vocab) <= 30_000
    assert "the" in vocab and vocab.stoi["the"] < 10
    # a word that occurs once in the training part is <unk>; test-only words are <unk> too
    assert (splits.test.ids == vocab.unk_id).any() and (splits.train.ids == vocab.unk_id).any()
    assert splits.train.ids.shape[1] == TEXT_TASKS["sst2"].max_len == 64
    first = splits.train.ids[0, : splits.train.lengths[0]].tolist()
    assert PAD not in first and (splits.train.ids[0, splits.train.lengths[0]:] == PAD).all()


def test_truncation_and_vocab_cap() -> None:
    s = load_text_task("sst2", shared("sst2"), limit=2000, synonyms="none",
                       settings=TextSettings(max_len=5, min_freq=1, max_vocab=50))
    assert len(s.vocab) == 50 and s.train.ids.shape[1] == 5 and int(s.train.lengths.max()) == 5


# ------------------------------------------------------------------------------------------------ loaders


def test_sst2_counts_and_split() -> None:
    s = load_text_task("sst2", shared("sst2"), synonyms="none")
    assert len(s.train) + len(s.val) == 67_349 and len(s.test) == 872
    assert len(s.val) == round(0.1 * 67_349)
    # stratified: the validation split keeps the training label balance (37,569 / 29,780)
    assert abs(float(s.val.labels.float().mean()) - 37_569 / 67_349) < 0.001
    assert int(s.test.labels.sum()) == 444


def test_imdb_counts() -> None:
    for split in ("train", "test"):
        texts, labels = read_jsonl(shared("imdb") / f"{split}.jsonl.gz")
        assert len(texts) == 25_000 and int(labels.sum()) == 12_500


@pytest.mark.slow
def test_imdb_full_load() -> None:
    s = load_text_task("imdb", shared("imdb"))
    assert (len(s.train), len(s.val), len(s.test)) == (22_500, 2_500, 25_000)
    assert len(s.vocab) == 30_000 and s.train.ids.shape[1] == 256 and s.synonyms is not None


def test_limit_is_stratified_and_seeded() -> None:
    a = load_text_task("sst2", shared("sst2"), limit=1000, seed=3, synonyms="none")
    b = load_text_task("sst2", shared("sst2"), limit=1000, seed=3, synonyms="none")
    assert len(a.train) + len(a.val) == 1000 and len(a.test) == 872
    assert torch.equal(a.train.ids, b.train.ids) and torch.equal(a.val.labels, b.val.labels)


def _write(folder: Path, train: str | bytes, test: str | bytes = '{"text": "ok film", "label": 1}\n',
           gz: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in (("train", train), ("test", test)):
        data = content.encode() if isinstance(content, str) else content
        if gz:
            (folder / f"{name}.jsonl.gz").write_bytes(gzip.compress(data))
        else:
            (folder / f"{name}.jsonl").write_bytes(data)
    return folder


GOOD = "".join(json.dumps({"text": f"a good film number {i}", "label": i % 2}) + "\n" for i in range(40))


@pytest.mark.parametrize("train, message", [
    (GOOD + "{not json\n", "line 41: invalid JSON"),
    (GOOD + '{"text": "x"}\n', "line 41: missing key(s) 'label'"),
    (GOOD + '{"text": "   ", "label": 1}\n', "line 41: empty text"),
    (GOOD + '{"text": "fine", "label": 2}\n', "line 41: label must be 0 or 1, got 2"),
    (GOOD + '{"text": "fine", "label": "1"}\n', "label must be 0 or 1, got '1'"),
    (GOOD + '{"text": "fine", "label": true}\n', "label must be 0 or 1, got True"),
    (GOOD + '{"text": 5, "label": 1}\n', "'text' must be a string"),
    (GOOD + '[1, 2]\n', "expected an object"),
    ("\n\n", "holds no records"),
])
def test_bad_records_name_file_and_line(tmp_path: Path, train: str, message: str) -> None:
    folder = _write(tmp_path / "d", train)
    with pytest.raises(DataError) as err:
        load_text_task("sst2", folder)
    assert message in str(err.value) and "train.jsonl" in str(err.value)


def test_gzip_files_load_and_corrupt_gzip_is_a_data_error(tmp_path: Path) -> None:
    s = load_text_task("sst2", _write(tmp_path / "ok", GOOD, gz=True), synonyms="none")
    assert len(s.train) + len(s.val) == 40 and len(s.test) == 1
    bad = _write(tmp_path / "bad", GOOD, gz=True)
    blob = (bad / "train.jsonl.gz").read_bytes()
    (bad / "train.jsonl.gz").write_bytes(blob[: len(blob) // 2])  # truncated stream
    with pytest.raises(DataError, match="train.jsonl.gz: corrupt gzip"):
        load_text_task("sst2", bad)
    (bad / "train.jsonl.gz").write_bytes(b"\x1f\x8b" + b"\x00" * 40)  # gzip magic, garbage after
    with pytest.raises(DataError, match="corrupt gzip"):
        load_text_task("sst2", bad)
    (bad / "train.jsonl.gz").write_bytes(GOOD.encode())
    with pytest.raises(DataError, match="named .gz but is not a gzip file"):
        load_text_task("sst2", bad)


def test_missing_and_ambiguous_files(tmp_path: Path) -> None:
    folder = _write(tmp_path / "d", GOOD)
    (folder / "test.jsonl").unlink()
    with pytest.raises(DataError, match="no test.jsonl or test.jsonl.gz"):
        load_text_task("sst2", folder)
    _write(folder, GOOD)
    (folder / "train.jsonl.gz").write_bytes(gzip.compress(GOOD.encode()))
    with pytest.raises(DataError, match="both train.jsonl and train.jsonl.gz"):
        load_text_task("sst2", folder)
    with pytest.raises(DataError, match="does not exist"):
        load_text_task("sst2", tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="unknown text task"):
        load_text_task("yelp", folder)
    with pytest.raises(ConfigError, match="unknown synonym source"):
        load_text_task("sst2", _write(tmp_path / "e", GOOD), synonyms="thesaurus")


def test_text_without_tokens_becomes_one_unk(tmp_path: Path) -> None:
    s = load_text_task("sst2", _write(tmp_path / "d", GOOD, test='{"text": "...", "label": 0}\n'), synonyms="none")
    assert s.test.lengths.tolist() == [1] and s.test.ids[0, 0] == s.vocab.unk_id


def test_cache_is_reused_and_corrupt_cache_rebuilt(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ADAPTAUG_CACHE_DIR", str(tmp_path / "cache"))
    folder = _write(tmp_path / "d", GOOD)
    first = load_text_task("sst2", folder, synonyms="cooc")
    files = sorted((tmp_path / "cache").glob("*.npz"))
    assert [f.name.split("-")[0] for f in files] == ["synonyms", "text"]
    import adaptaug.data.text as text_mod
    monkeypatch.setattr(text_mod, "tokenize_source", lambda *a, **k: pytest.fail("the cache was not used"))
    again = load_text_task("sst2", folder, synonyms="cooc")
    assert torch.equal(first.train.ids, again.train.ids) and torch.equal(first.synonyms, again.synonyms)
    monkeypatch.undo()
    monkeypatch.setenv("ADAPTAUG_CACHE_DIR", str(tmp_path / "cache"))
    for f in files:
        f.write_bytes(b"PK\x03\x04 garbage")
    with pytest.warns(RuntimeWarning, match="corrupt cache"):
        rebuilt = load_text_task("sst2", folder, synonyms="cooc")
    assert torch.equal(first.train.ids, rebuilt.train.ids) and torch.equal(first.synonyms, rebuilt.synonyms)
    assert not list((tmp_path / "d").glob("*.npz"))  # never beside the data


def test_offline_hub_fails_fast_with_a_hint(monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for task in ("imdb", "sst2"):
        start = time.perf_counter()
        with pytest.raises(OfflineError, match="--data"):
            load_text_task(task, None)
        assert time.perf_counter() - start < 2.0


# ------------------------------------------------------------------------------------------------ synonyms


def test_cooccurrence_synonyms_shape_and_labels(tmp_path: Path) -> None:
    s = load_text_task("sst2", shared("sst2"), limit=6000, synonyms="cooc")
    table = s.synonyms
    assert table.shape == (len(s.vocab), 8) and table.dtype == torch.long
    assert (table[:2] == -1).all()  # never for <pad> / <unk>, never pointing at them
    valid = table[table >= 0]
    assert valid.numel() > 0 and int(valid.min()) >= 2
    rows = torch.arange(len(s.vocab))[:, None].expand_as(table)
    assert not (table == rows).any()  # a word is not its own synonym
    # -1 only after the candidates, as the kernels assume
    assert not ((table[:, 1:] >= 0) & (table[:, :-1] < 0)).any()


_BUILD_TABLE = """
import sys, numpy as np, torch
from adaptaug.data.text import cooccurrence_synonyms
d = torch.load(sys.argv[1], weights_only=True)
np.save(sys.argv[2], cooccurrence_synonyms(d["ids"], d["lengths"], d["labels"], int(d["vocab"]), seed=16))
"""


def test_cooccurrence_synonyms_do_not_depend_on_the_thread_count(tmp_path: Path) -> None:
    # a fresh process per thread count: BLAS reads its count when first loaded. At two threads the SVD's
    # summation order flipped near ties and reordered 8 rows of this table (seed 16 of the SST-2 grids)
    s = load_text_task("sst2", shared("sst2"), val_size=3000, seed=16, limit=12000, synonyms="none",
                       val_whole_texts=True)
    data = tmp_path / "train.pt"
    torch.save({"ids": s.train.ids, "lengths": s.train.lengths, "labels": s.train.labels,
                "vocab": torch.tensor(len(s.vocab))}, data)
    tables = []
    for threads in ("1", "2"):
        env = {**os.environ, "OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads,
               "MKL_NUM_THREADS": threads}
        out = tmp_path / f"table{threads}.npy"
        subprocess.run([sys.executable, "-c", _BUILD_TABLE, str(data), str(out)], env=env, check=True, timeout=300)
        tables.append(np.load(out))
    assert (tables[0] >= 0).sum() > 10_000  # a real table, not an empty one
    np.testing.assert_array_equal(tables[0], tables[1])


def _wndb(path: Path, *synsets: list[str]) -> None:
    """A WordNet 3.0 data file (wndb(5)): licence lines start with two spaces; a synset line is offset, lexicographer
    file, type, w_cnt (two hex digits), word/lex_id pairs, then pointers and a gloss."""
    lines = ["  1 This software and database is being provided to you, the LICENSEE, by", "  2 Princeton University"]
    for i, words in enumerate(synsets):
        pairs = " ".join(f"{w} 0" for w in words)
        lines.append(f"{i:08d} 00 n {len(words):02x} {pairs} 000 | a gloss with words like good and dog")
    path.write_text("\n".join(lines) + "\n")


def test_wordnet_reader_on_database_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from adaptaug.data.text import wordnet_dir, wordnet_synonyms
    from adaptaug.data.vocab import Vocab

    vocab = Vocab(["<pad>", "<unk>", "good", "dog", "fine", "hound", "plenty", "galore", "big"])
    _wndb(tmp_path / "data.noun", ["dog", "domestic_dog", "hound"], ["Dog", "canis_familiaris"])
    _wndb(tmp_path / "data.adj", ["good", "fine", "galore(ip)", "plenty"],
          [f"w{i}" for i in range(9)] + ["big", "good"])  # 11 words: w_cnt "0b", hex
    _wndb(tmp_path / "data.verb")
    _wndb(tmp_path / "data.adv")
    monkeypatch.setenv("ADAPTAUG_WORDNET_DIR", str(tmp_path))
    assert wordnet_dir() == tmp_path
    table = wordnet_synonyms(vocab, k=3)
    got = {vocab.itos[i]: [vocab.itos[j] for j in row if j >= 0] for i, row in enumerate(table.tolist())}
    assert got["dog"] == ["hound"] and got["hound"] == ["dog"]  # multi-word lemmas and case folded in, no self
    assert got["good"] == ["fine", "plenty", "galore"]  # the adjective marker stripped; commonest ids first, k=3
    assert got["galore"] == ["good", "fine", "plenty"] and got["big"] == ["good"]  # the 11-word synset read whole
    assert got["<pad>"] == got["<unk>"] == []
    (tmp_path / "data.adv").unlink()
    assert wordnet_dir() != tmp_path  # an incomplete folder is not WordNet (None, or the system's)


def test_polarity_filter_keeps_neighbours_with_the_same_label_odds() -> None:
    # words 2 and 3 share contexts, 2 only in positive texts, 3 only in negative ones; 4 and 5 are neutral twins
    texts = [[2, 6, 7], [3, 6, 7], [4, 6, 7], [5, 6, 7], [6, 2, 7], [6, 3, 7], [6, 4, 7], [6, 5, 7]] * 20
    labels = torch.tensor([1, 0, 1, 0, 1, 0, 0, 1] * 20)
    ids = torch.tensor(texts)
    lengths = torch.full((len(texts),), 3)
    free = cooccurrence_synonyms(ids, lengths, None, 8, k=4, dim=4, min_similarity=0.3)
    filtered = cooccurrence_synonyms(ids, lengths, labels, 8, k=4, dim=4, min_similarity=0.3,
                                     polarity_tolerance=0.5)
    assert 3 in free[2].tolist()
    assert 3 not in filtered[2].tolist()


# ------------------------------------------------------------------------------------------------ ops


def test_text_registry() -> None:
    assert list_ops("text") == list(TEXT_OPS)
    assert set(EDA_OPS) <= set(TEXT_OPS)
    for name in TEXT_OPS:
        spec = get_op(name)
        assert spec.range == (0.0, 0.5) and not spec.signed and spec.identity_at_zero


@pytest.mark.parametrize("name", TEXT_OPS)
def test_identity_at_zero_and_input_untouched(name: str) -> None:
    ids, lengths = _batch([7, 1, 12, 3], 12)
    ids0, lengths0 = ids.clone(), lengths.clone()
    out, out_len = _run(name, ids, lengths, torch.zeros(4))
    assert torch.equal(out, ids) and torch.equal(out_len, lengths)
    _run(name, ids, lengths, torch.full((4,), 0.5))
    assert torch.equal(ids, ids0) and torch.equal(lengths, lengths0)  # kernels never write their input


@pytest.mark.parametrize("name", TEXT_OPS)
def test_same_seed_same_output_and_seed_matters(name: str) -> None:
    ids, lengths = _batch([20] * 16, 24)
    mag = torch.full((16,), 0.3)
    a, la = _run(name, ids, lengths, mag, seed=1)
    b, lb = _run(name, ids, lengths, mag, seed=1)
    c, _ = _run(name, ids, lengths, mag, seed=2)
    assert torch.equal(a, b) and torch.equal(la, lb)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("name", TEXT_OPS)
def test_per_sample_magnitudes(name: str) -> None:
    ids, lengths = _batch([20, 20, 20, 20], 24)
    mag = torch.tensor([0.0, 0.5, 0.0, 0.1])
    out, out_len = _run(name, ids, lengths, mag)
    assert torch.equal(out[0], ids[0]) and torch.equal(out[2], ids[2])
    changes = [(out[i] != ids[i]).sum().item() + abs(int(out_len[i]) - int(lengths[i])) for i in range(4)]
    assert changes[1] > changes[3] > 0


@pytest.mark.parametrize("name", TEXT_OPS)
def test_single_token_texts(name: str) -> None:
    ids, lengths = _batch([1, 1], 1)
    out, out_len = _run(name, ids, lengths, torch.tensor([0.5, 0.5]))
    assert out.shape == (2, 1) and out_len.tolist() == [1, 1] and (out != PAD).all()


@settings(max_examples=60, deadline=None)
@given(data=st.data(), name=st.sampled_from(TEXT_OPS), with_synonyms=st.booleans())
def test_op_contract_property(data, name: str, with_synonyms: bool) -> None:
    width = data.draw(st.integers(1, 16), label="T")
    lengths = data.draw(st.lists(st.integers(1, width), min_size=1, max_size=6), label="lengths")
    mags = data.draw(st.lists(st.floats(0.0, 0.5), min_size=len(lengths), max_size=len(lengths)), label="mags")
    seed = data.draw(st.integers(0, 2**31 - 1), label="seed")
    ids, lengths_t = _batch(lengths, width, seed=seed)
    ids[torch.rand(ids.shape, generator=_gen(seed)) < 0.1] = UNK
    ids[torch.arange(width)[None, :] >= lengths_t[:, None]] = PAD
    ctx = _toy_context(with_synonyms)
    mag = torch.tensor(mags)
    if name == "SynonymReplacement" and not with_synonyms:
        with pytest.raises(ConfigError, match="synonym"):
            _run(name, ids, lengths_t, mag, seed=seed, context=ctx)
        return
    out, out_len = _run(name, ids, lengths_t, mag, seed=seed, context=ctx)
    assert out.shape == ids.shape and out.dtype == torch.long and out_len.dtype == torch.long
    pad_region = torch.arange(width)[None, :] >= out_len[:, None]
    assert (out[pad_region] == PAD).all()  # padding stays padding, after the new lengths
    n = touched(mag, lengths_t)
    for i in range(len(lengths)):
        _check_row(name, ids[i, : lengths[i]].tolist(), out[i, : out_len[i]].tolist(), width, int(n[i]), ctx)


def test_touched_counts() -> None:
    counts = touched(torch.tensor([0.0, 0.1, 0.1, 0.05, 0.5]), torch.tensor([10, 10, 11, 3, 7]))
    assert counts.tolist() == [0, 1, 2, 1, 4]  # ceil, so 0.1 x 10 is 1 (not 2) and any m > 0 touches one


# ------------------------------------------------------------------------------------------------ token plans


def _plan(op_ids: torch.Tensor, mags: torch.Tensor, seed: int = 0, ops: tuple[str, ...] = ("Identity", *TEXT_OPS)):
    return AugPlan(ops=ops, op_ids=op_ids, magnitudes=mags, seed=seed)


def test_apply_token_plan_matches_per_sample_contracts() -> None:
    b, width = 30, 14
    g = _gen(5)
    lengths = torch.randint(1, width + 1, (b,), generator=g).tolist()
    ids, lengths_t = _batch(lengths, width, seed=5)
    ops = ("Identity", *TEXT_OPS)
    op_ids = torch.randint(-1, len(ops), (b, 1), generator=g)  # -1 is NO_OP
    mags = torch.rand(b, 1, generator=g) * 0.5
    ctx = _toy_context()
    out, out_len = apply_token_plan(ids, lengths_t, _plan(op_ids, mags), ctx)
    n = touched(mags[:, 0], lengths_t)
    for i in range(b):
        k = int(op_ids[i, 0])
        before, after = ids[i, : lengths[i]].tolist(), out[i, : out_len[i]].tolist()
        if k == NO_OP or ops[k] == "Identity":
            assert after == before and torch.equal(out[i], ids[i])
        else:
            _check_row(ops[k], before, after, width, int(n[i]), ctx)
    again = apply_token_plan(ids, lengths_t, _plan(op_ids, mags), ctx)
    assert torch.equal(again[0], out) and torch.equal(again[1], out_len)  # same plan, same tokens
    assert torch.equal(ids, _batch(lengths, width, seed=5)[0])  # the input is not modified


def test_single_op_plan_equals_the_kernel_with_the_plan_seed() -> None:
    ids, lengths = _batch([9, 4, 12, 1, 7], 12)
    mags = torch.tensor([0.1, 0.5, 0.3, 0.2, 0.4])
    for k, name in enumerate(TEXT_OPS, start=1):
        plan = _plan(torch.full((5, 1), k), mags[:, None], seed=11)
        out = apply_token_plan(ids, lengths, plan, _toy_context())
        ref = _run(name, ids, lengths, mags, seed=11)
        assert torch.equal(out[0], ref[0]) and torch.equal(out[1], ref[1]), name


def test_two_slots_chain_and_lengths_follow() -> None:
    ids, lengths = _batch([10, 10], 12)
    plan = _plan(torch.tensor([[1, 3], [3, 1]]), torch.full((2, 2), 0.5))  # delete then insert, and back
    out, out_len = apply_token_plan(ids, lengths, plan, _toy_context())
    # row 0: 10 - ceil(5) = 5, then 5 + ceil(2.5) = 8; row 1: 10 + 5 truncated to 12, then 12 - ceil(6) = 6
    assert out_len.tolist() == [8, 6]
    assert (out[0, 8:] == PAD).all() and (out[1, 6:] == PAD).all()


def test_token_plan_errors() -> None:
    ids, lengths = _batch([3, 3], 4)
    with pytest.raises(ConfigError, match="op 'Rotate' has modality 'image'"):
        apply_token_plan(ids, lengths, _plan(torch.zeros(2, 1, dtype=torch.long), torch.ones(2, 1),
                                             ops=("Rotate",)), _toy_context())
    with pytest.raises(ConfigError, match="plan is for 3 samples"):
        apply_token_plan(ids, lengths, _plan(torch.ones(3, 1, dtype=torch.long), torch.ones(3, 1)), _toy_context())
    with pytest.raises(ConfigError, match=r"\(B, T\)"):
        apply_token_plan(ids[0], lengths, _plan(torch.ones(2, 1, dtype=torch.long), torch.ones(2, 1)), _toy_context())


# ------------------------------------------------------------------------------------------------ model


def test_bilstm_classifier_shapes_padding_and_embedding_path() -> None:
    torch.manual_seed(0)
    model = BiLSTMClassifier(V).eval()
    assert isinstance(model.classifier, torch.nn.Linear) and model.classifier.in_features == 128
    assert model.classifier.out_features == 1 and model.embedding.padding_idx == 0
    ids, lengths = _batch([5, 2, 9], 9)
    logits = model(ids, lengths)
    assert logits.shape == (3,)
    wider = torch.cat([ids, torch.zeros(3, 7, dtype=torch.long)], 1)  # more padding changes nothing
    torch.testing.assert_close(model(wider, lengths), logits)
    torch.testing.assert_close(model.forward_embedded(model.embedding(ids), lengths), logits)
    alone = model(ids[1:2, :2], lengths[1:2])  # batch order and neighbours change nothing either
    torch.testing.assert_close(alone, logits[1:2])


# ------------------------------------------------------------------------------------------------ task, policies


@pytest.fixture(scope="module")
def small_task(tmp_path_factory):
    from adaptaug.tasks.text import build_text_task
    with pytest.MonkeyPatch.context() as mp:  # module scope runs before conftest's per-test cache isolation
        mp.setenv("ADAPTAUG_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
        return build_text_task("sst2", shared("sst2"), limit=1500, seed=0)


@pytest.mark.parametrize("policy", ["none", "standard", "randaugment", "trivialaugment", "augnet"])
def test_every_policy_runs_on_the_text_op_space(small_task, policy: str) -> None:
    task = small_task
    assert task.op_space.names == ("Identity", *TEXT_OPS) and task.stack_base is False
    pol = build_policy(policy, task, 100, _gen(0))
    assert pol.base is None  # text policies are not stacked on EDA
    if policy == "augnet":  # nothing under it, so no gate: not augmenting would mean no augmentation at all
        assert pol.config.gate is False and pol.net.gate_head is None
    (ids, lengths), targets = next(task.batches("train", 32, _gen(1)))
    plan = pol.sample(32)
    out, out_len = task.augment((ids, lengths), plan)
    assert out.shape == ids.shape and (out_len >= 1).all()
    if policy == "standard":
        assert isinstance(pol, EDAPolicy) and set(plan.ops) == set(EDA_OPS)
        assert torch.all(plan.magnitudes == 0.1) and plan.op_ids.shape == (32, 1)
    model = task.build_model()
    if pol.learns:
        probe_inputs, probe_targets = task.probe(64, _gen(3))
        pol.attach(model, task.loss_fn, probe_inputs, probe_targets, accuracy_fn=task.accuracy_fn)
    logits = model(out, out_len)
    loss = task.loss_fn(logits, targets)
    assert loss.shape == (32,) and torch.isfinite(loss).all()
    pol.observe(logits=logits, targets=targets, clean_inputs=(ids, lengths))


def test_metrics_and_describe(small_task) -> None:
    task = small_task
    logits = [torch.tensor([2.0, -1.0, 0.5]), torch.tensor([-3.0])]
    targets = [torch.tensor([1, 0, 0]), torch.tensor([0])]
    m = task.metrics(logits, targets)
    assert m["accuracy"] == pytest.approx(0.75) and m["f1"] == pytest.approx((0.8 + 2 / 3) / 2)
    assert task.loss_fn(torch.zeros(2), torch.tensor([0, 1])).tolist() == pytest.approx([np.log(2)] * 2)
    info = task.describe()
    assert info["synonyms"] == "cooc" and info["max_len"] == 64 and info["num_test"] == 872


def test_no_synonym_source_is_said_and_the_op_left_out() -> None:
    from adaptaug.tasks.text import build_text_task
    with pytest.warns(RuntimeWarning, match="no synonym source"):
        task = build_text_task("sst2", shared("sst2"), limit=500, synonyms="none")
    assert "SynonymReplacement" not in task.op_space.names and task.describe()["synonyms"] == "none"
    assert "SynonymReplacement" not in EDAPolicy(task.op_space).ops


# ------------------------------------------------------------------------------------------------ learning


def test_short_sst2_augnet_run_learns(tmp_path: Path) -> None:
    """The CI-sized version of the issue's acceptance run (full SST-2, 1 epoch, lr 5e-4: >= 0.75, measured 0.78):
    16,000 sentences, 1 epoch at lr 3e-3 (225 steps) gave 0.734 and 0.741 test accuracy for seeds 0 and 1."""
    from adaptaug.config import TrainConfig
    from adaptaug.train import train

    torch.set_num_threads(1)  # a 64-unit LSTM gains nothing from a second thread, and loses a lot on a busy CPU
    extra = {"robustness": False} if "robustness" in TrainConfig.__dataclass_fields__ else {}
    config = TrainConfig(task="sst2", data=str(shared("sst2")), policy="augnet", epochs=1, limit=16_000, lr=3e-3,
                         out=str(tmp_path / "run"), **extra)
    result = train(config, progress=False)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["eval_accuracy"] > 0.70, metrics
    assert {"eval_loss", "eval_f1", "augnet_runtime"} <= set(metrics)
    assert result.trace and {"p_Identity", "p_SynonymReplacement"} <= set(result.trace[-1])


def test_text_batches_are_augmented_together(small_task, monkeypatch) -> None:
    # ids share the split's padded width, so augment_batches runs several batches' plans in one apply_token_plan
    task = small_task
    pol = build_policy("randaugment", task, 100, _gen(0))
    batches = list(itertools.islice(task.batches("train", 32, _gen(1)), 3))
    plans = [pol.sample(targets.shape[0]) for _, targets in batches]
    plans[1] = dataclasses.replace(plans[1], op_ids=torch.full_like(plans[1].op_ids, -1))  # the middle one: no op
    calls: list[int] = []
    augment = task.augment
    monkeypatch.setattr(task, "augment", lambda inputs, plan: calls.append(len(inputs[0])) or augment(inputs, plan))
    out = task.augment_batches(batches, plans)
    assert calls == [96]  # one call for the three batches
    for ((ids, lengths), targets), ((out_ids, out_len), out_targets) in zip(batches, out):
        assert out_ids.shape == ids.shape and out_len.shape == lengths.shape and torch.equal(out_targets, targets)
        assert (out_len >= 1).all() and (out_ids[torch.arange(out_ids.shape[1]) >= out_len[:, None]] == 0).all()
    assert torch.equal(out[1][0][0], batches[1][0][0]) and torch.equal(out[1][0][1], batches[1][0][1])
    assert not torch.equal(torch.cat([o[0][0] for o in out]), torch.cat([b[0][0] for b in batches]))  # it did work
