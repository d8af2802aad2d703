"""Whole-text validation (``val_whole_texts``): which texts are whole, which lie inside others, and SST-2's split."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from adaptaug.data.text import TokenizedText, load_text_task
from adaptaug.data.whole_texts import inside, whole_texts
from adaptaug.errors import ConfigError, DataError
from conftest import shared


def _texts(*texts: list[int]) -> TokenizedText:
    offsets = np.cumsum([0, *map(len, texts)]).astype(np.int64)
    tokens = np.array([t for text in texts for t in text], dtype=np.int32)
    return TokenizedText(tokens, offsets, np.zeros(len(texts), dtype=np.int64))


def _inside_by_brute_force(queries: list[list[int]], holders: list[list[int]], longer_only: bool) -> list[bool]:
    def runs(h: list[int]) -> set[tuple[int, ...]]:
        return {tuple(h[a:b]) for a in range(len(h)) for b in range(a + 1, len(h) + 1)}

    return [bool(q) and any((len(h) > len(q) if longer_only else len(h) >= len(q)) and tuple(q) in runs(h)
                            for h in holders) for q in queries]


def test_whole_texts_of_a_small_phrase_set() -> None:
    texts = [[2, 3, 4, 5], [3, 4], [4, 5, 6], [7], [3, 4], [], [1, 11], [11]]
    # [3, 4] twice lies inside [2, 3, 4, 5]; [11] inside [1, 11]; token 1 is not "1" of "11" (one character a token)
    assert whole_texts(_texts(*texts)).tolist() == [True, False, True, True, False, False, True, False]
    # not longer_only: a text lies inside its own copy; the empty text inside nothing
    assert inside(_texts([3, 4], [1], [], [9]), _texts([3, 4], [11, 2]), longer_only=False).tolist() == [
        True, False, False, False]
    # -1 (a word the training file lacks) matches -1 only
    assert inside(_texts([-1, 3], [-1]), _texts([5, 3], [-1, 4]), longer_only=True).tolist() == [False, True]


@pytest.mark.parametrize("seed", range(4))
def test_inside_agrees_with_brute_force_on_random_texts(seed: int) -> None:
    rng = np.random.default_rng(seed)
    texts = [rng.integers(-1, 5, size=int(rng.integers(0, 7))).tolist() for _ in range(60)]
    texts += [t[a:a + 2] for t in texts[:20] for a in range(0, max(len(t) - 1, 1), 2)]  # plenty of true sub-runs
    queries, holders = texts[::2], texts[1::2]
    for longer_only in (True, False):
        got = inside(_texts(*queries), _texts(*holders), longer_only=longer_only).tolist()
        assert got == _inside_by_brute_force(queries, holders, longer_only)
    assert whole_texts(_texts(*texts)).tolist() == [
        bool(t) and not found for t, found in zip(texts, _inside_by_brute_force(texts, texts, True))]


def _words(ids, lengths, itos) -> list[str]:
    return [" ".join(itos[i] for i in row[:n]) for row, n in zip(ids.tolist(), lengths.tolist())]


def test_sst2_whole_text_validation_is_sentences_with_no_piece_in_training() -> None:
    kw = dict(limit=3000, val_size=500, seed=1, synonyms="none")
    s = load_text_task("sst2", shared("sst2"), val_whole_texts=True, **kw)
    assert (len(s.train), len(s.val)) == (2500, 500)
    assert np.bincount(s.val.labels.numpy()).tolist() in ([235, 265], [236, 264])  # as the 4,084 : 4,593 whole texts
    # validation looks like the test set (sentences), not like the training phrases
    median = {p: float(getattr(s, p).lengths.float().median()) for p in ("train", "val", "test")}
    assert abs(median["val"] - median["test"]) <= 2 and median["train"] <= median["val"] / 2
    # no training text lies inside a validation text (checked on the words; texts with <unk> can't be told apart)
    itos = s.vocab.itos
    val = [f" {t} " for t in _words(s.val.ids, s.val.lengths, itos)]
    train = [f" {t} " for t in _words(s.train.ids, s.train.lengths, itos) if "<unk>" not in t]
    assert len(train) > 1000 and not any(t in v for t in train for v in val)
    # the random split (the default) leaks: many of its validation phrases lie inside its training texts
    r = load_text_task("sst2", shared("sst2"), **kw)
    r_train = " | ".join(f" {t} " for t in _words(r.train.ids, r.train.lengths, r.vocab.itos))
    r_val = [f" {t} " for t in _words(r.val.ids, r.val.lengths, r.vocab.itos) if "<unk>" not in t]
    assert sum(v in r_train for v in r_val) > len(r_val) // 10
    # seeded: the same seed gives the same split, another seed another
    again = load_text_task("sst2", shared("sst2"), val_whole_texts=True, **kw)
    assert again.val.ids.equal(s.val.ids) and again.train.ids.equal(s.train.ids)
    other = load_text_task("sst2", shared("sst2"), val_whole_texts=True, **{**kw, "seed": 2})
    assert not other.val.ids[:50].equal(s.val.ids[:50])


def test_whole_text_validation_asks_for_no_more_than_there_is(tmp_path: Path) -> None:
    phrases = ["a fine film", "fine film", "a fine", "dull", "so dull today", "today"]
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "train.jsonl").write_text("".join(json.dumps({"text": t, "label": i % 2}) + "\n"
                                                for i, t in enumerate(phrases)))
    (folder / "test.jsonl").write_text(json.dumps({"text": "fine", "label": 1}) + "\n")
    s = load_text_task("sst2", folder, val_size=1, seed=0, synonyms="none", val_whole_texts=True)
    assert len(s.val) == 1 and len(s.train) in (2, 3)  # "a fine film" takes 3 texts with it, "so dull today" 2
    with pytest.raises(DataError, match="asks for 3 whole validation texts but the training file has 2"):
        load_text_task("sst2", folder, val_size=3, synonyms="none", val_whole_texts=True)
    with pytest.raises(DataError, match="every training text lies inside one of the 2 whole validation texts"):
        load_text_task("sst2", folder, val_size=2, synonyms="none", val_whole_texts=True)


def test_whole_text_validation_is_a_text_task_option_through_train_and_compare(tmp_path: Path) -> None:
    from adaptaug.cli import _compare_train_options, build_parser, train_config
    from adaptaug.compare import GridConfig, run_specs
    from adaptaug.config import TrainConfig
    from adaptaug.tasks import build_task

    with pytest.raises(ConfigError, match="val_whole_texts applies to the text classification tasks"):
        build_task("digits", val_whole_texts=True)
    with pytest.raises(ConfigError, match="val_whole_texts must be true or false"):
        TrainConfig(val_whole_texts="yes")
    parser = build_parser()
    assert train_config(parser.parse_args(["train", "--task", "sst2", "--val-whole-texts"])).val_whole_texts
    assert not train_config(parser.parse_args(["train", "--task", "sst2"])).val_whole_texts
    options = _compare_train_options(parser.parse_args(["compare", "--task", "sst2", "--val-whole-texts",
                                                        "--out", str(tmp_path)]))
    grid = GridConfig(task="sst2", out=str(tmp_path), policies=("none",), seeds=1, train=options)
    assert options == {"val_whole_texts": True} and "--val-whole-texts" in grid.command()
    (spec,) = run_specs(grid)
    assert spec.config.val_whole_texts
