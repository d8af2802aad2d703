"""Image data loading: digits, MNIST IDX files, image-folder trees (CIFAR-10), the decode cache, the hub guard.

Real data comes from ../shared/datasets (read-only); the tests skip with a reason where it is absent.
Every test gets its own cache folder (ADAPTAUG_CACHE_DIR) and HF_HUB_OFFLINE=1.
"""
from __future__ import annotations

import gzip
import os
import shutil
import struct
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from adaptaug.data import IMAGE_TASKS, ImageDataset, ImageSplits, cache_dir, load_image_task
from adaptaug.data import image_folder, mnist
from adaptaug.errors import ConfigError, DataError, OfflineError

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
MNIST_DIR = DATASETS / "mnist"
CIFAR_DIR = DATASETS / "cifar10"
CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

needs_mnist = pytest.mark.skipif(not (MNIST_DIR / "train-images-idx3-ubyte.gz").is_file(),
                                 reason=f"shared MNIST IDX files not found in {MNIST_DIR}")
needs_cifar = pytest.mark.skipif(not (CIFAR_DIR / "train" / "airplane").is_dir(),
                                 reason=f"shared CIFAR-10 image folder not found in {CIFAR_DIR}")


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """Own cache per test (never ~/.cache), hub offline."""
    monkeypatch.setenv("ADAPTAUG_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def assert_same_splits(a: ImageSplits, b: ImageSplits) -> None:
    for part in ("train", "val", "test"):
        assert torch.equal(getattr(a, part).images, getattr(b, part).images), part
        assert torch.equal(getattr(a, part).labels, getattr(b, part).labels), part
    assert a.classes == b.classes and a.mean == b.mean and a.std == b.std


def check_dataset(ds: ImageDataset, shape: tuple[int, int, int], num_classes: int) -> None:
    assert ds.images.dtype == torch.uint8 and ds.images.is_contiguous()
    assert tuple(ds.images.shape[1:]) == shape
    assert ds.labels.dtype == torch.int64 and ds.labels.shape == (len(ds),)
    assert int(ds.labels.min()) >= 0 and int(ds.labels.max()) < num_classes


# --------------------------------------------------------------------------------------------- digits


def test_digits_counts_shapes_labels():
    s = load_image_task("digits")
    assert s.name == "digits" and s.source == "sklearn.datasets.load_digits"
    assert s.classes == tuple(str(d) for d in range(10))
    assert len(s.test) == 359  # the fixed stratified 20% hold-out of 1,797
    assert len(s.train) + len(s.val) == 1797 - 359
    assert len(s.val) == round(0.1 * 1438)
    for ds in (s.train, s.val, s.test):
        check_dataset(ds, (1, 8, 8), 10)
    assert int(s.train.images.max()) == 255 and int(s.train.images.min()) == 0  # 0..16 scaled to 0..255
    assert len(s.mean) == len(s.std) == 1 and 0 < s.mean[0] < 1 and 0 < s.std[0] < 1
    x = s.train.images.double() / 255  # small set: a float copy is fine in a test
    assert s.mean[0] == pytest.approx(x.mean().item(), abs=1e-9)
    assert s.std[0] == pytest.approx(x.std(unbiased=False).item(), abs=1e-9)


def test_digits_validation_split_is_stratified():
    s = load_image_task("digits", val_size=0.25)
    p_train = torch.bincount(s.train.labels, minlength=10).double() / len(s.train)
    p_val = torch.bincount(s.val.labels, minlength=10).double() / len(s.val)
    assert (p_train - p_val).abs().max().item() < 0.01


def test_digits_seed_controls_the_validation_split_only():
    a, b, c = (load_image_task("digits", seed=seed) for seed in (3, 3, 4))
    assert_same_splits(a, b)
    assert not torch.equal(a.val.images, c.val.images)
    assert torch.equal(a.test.images, c.test.images)  # the test hold-out does not move with the seed
    # train and val are disjoint and together make up the same images for every seed
    assert len(a.train) + len(a.val) == len(c.train) + len(c.val)


def test_val_size_count_and_limit():
    s = load_image_task("digits", val_size=50, limit=500, seed=1)
    assert len(s.val) == 50 and len(s.train) == 450 and len(s.test) == 359
    counts = torch.bincount(torch.cat([s.train.labels, s.val.labels]), minlength=10)
    assert counts.min().item() >= 48 and counts.max().item() <= 52  # digits is near-balanced: ~50 each
    assert_same_splits(s, load_image_task("digits", val_size=50, limit=500, seed=1))
    s0 = load_image_task("digits", val_size=0)
    assert len(s0.val) == 0 and len(s0.train) == 1438


@pytest.mark.parametrize("kwargs", [dict(val_size=1.0), dict(val_size=-0.1), dict(val_size=-1),
                                    dict(val_size=1438), dict(val_size="0.1"), dict(limit=0),
                                    dict(limit=2.5), dict(seed=-1)])
def test_bad_settings_raise_config_error(kwargs):
    with pytest.raises(ConfigError):
        load_image_task("digits", **kwargs)


def test_unknown_task_and_misplaced_data_path(tmp_path):
    with pytest.raises(ConfigError, match="known tasks: digits, mnist, cifar10, imagefolder"):
        load_image_task("svhn")
    with pytest.raises(ConfigError, match="digits"):
        load_image_task("digits", tmp_path)
    with pytest.raises(ConfigError, match="needs a data path"):
        load_image_task("imagefolder")
    assert IMAGE_TASKS == ("digits", "mnist", "cifar10", "imagefolder")


def test_image_dataset_subset_and_validation():
    ds = ImageDataset(torch.arange(6 * 4, dtype=torch.uint8).view(6, 1, 2, 2), torch.tensor([0, 1, 2, 0, 1, 2]),
                      ("a", "b", "c"))
    sub = ds.subset(torch.tensor([4, 1]))
    assert len(sub) == 2 and sub.labels.tolist() == [1, 1] and torch.equal(sub.images[0], ds.images[4])
    assert sub.classes == ds.classes
    assert ds.subset(ds.labels == 2).labels.tolist() == [2, 2]
    assert "n=6" in repr(ds)
    with pytest.raises(DataError, match="uint8"):
        ImageDataset(torch.zeros(2, 1, 2, 2), torch.zeros(2, dtype=torch.long), ("a",))
    with pytest.raises(DataError, match="labels must be in"):
        ImageDataset(torch.zeros(2, 1, 2, 2, dtype=torch.uint8), torch.tensor([0, 3]), ("a", "b"))


# --------------------------------------------------------------------------------------------- MNIST


@pytest.fixture(scope="module")
def mnist_splits(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ADAPTAUG_CACHE_DIR", str(tmp_path_factory.mktemp("mnist-cache")))
        return load_image_task("mnist", MNIST_DIR)


@needs_mnist
def test_mnist_real_idx_files(mnist_splits):
    s = mnist_splits
    assert s.name == "mnist" and s.source == str(MNIST_DIR.resolve())
    assert s.classes == tuple(str(d) for d in range(10))
    assert len(s.train) + len(s.val) == 60_000 and len(s.val) == 6_000 and len(s.test) == 10_000
    for ds in (s.train, s.val, s.test):
        check_dataset(ds, (1, 28, 28), 10)
    # the test set keeps the official order (no split touches it); numbers from the datasets README
    assert s.test.labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert torch.bincount(s.test.labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    train_counts = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    merged = torch.bincount(torch.cat([s.train.labels, s.val.labels])).tolist()
    assert merged == train_counts
    assert s.mean[0] == pytest.approx(0.1307, abs=1e-3) and s.std[0] == pytest.approx(0.3081, abs=1e-3)


def write_idx(path: Path, arr: np.ndarray, *, magic: int | None = None, cut: int = 0, gz: bool = False) -> None:
    """Write ``arr`` (uint8) as an IDX file; ``cut`` drops that many bytes from the end."""
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    magic = 0x800 | arr.ndim if magic is None else magic
    data = struct.pack(">I", magic) + struct.pack(">" + "I" * arr.ndim, *arr.shape) + arr.tobytes()
    data = data[:len(data) - cut]
    if gz:
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)


def make_mnist(folder: Path, *, gz: bool = False, n_train: int = 40, n_test: int = 20, size: int = 28) -> Path:
    """A tiny IDX set (random pixels, labels cycling 0..9) for format and error tests."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, size, size)), gz=gz)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10, gz=gz)
    return folder


def test_mnist_plain_and_gzipped_idx_agree(tmp_path):
    plain = load_image_task("mnist", make_mnist(tmp_path / "plain"))
    gz = load_image_task("mnist", make_mnist(tmp_path / "gz", gz=True))
    assert_same_splits(plain, gz)
    assert len(plain.train) + len(plain.val) == 40 and len(plain.test) == 20
    assert plain.test.labels.tolist() == [i % 10 for i in range(20)]
    # torchvision's layout (<root>/MNIST/raw) is found too
    make_mnist(tmp_path / "tv" / "MNIST" / "raw")
    assert_same_splits(plain, load_image_task("mnist", tmp_path / "tv"))


def test_mnist_second_load_uses_the_cache(tmp_path, monkeypatch):
    folder = make_mnist(tmp_path / "m", gz=True)
    first = load_image_task("mnist", folder)
    assert list((tmp_path / "cache").glob("mnist-idx-*.npz"))

    def boom(*args, **kwargs):
        raise AssertionError("IDX files parsed again despite a valid cache")

    monkeypatch.setattr(mnist, "_parse_all", boom)
    assert_same_splits(first, load_image_task("mnist", folder))


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_truncated_file(tmp_path, gz):
    folder = make_mnist(tmp_path / "m", gz=gz)
    name = "train-images-idx3-ubyte" + (".gz" if gz else "")
    write_idx(folder / "train-images-idx3-ubyte", np.zeros((40, 28, 28)), cut=100, gz=gz)
    with pytest.raises(DataError, match=rf"{name} is truncated: header says 40 x 28 x 28 = 31360 bytes"):
        load_image_task("mnist", folder)


def test_mnist_truncated_gzip_stream(tmp_path):
    folder = make_mnist(tmp_path / "m", gz=True)
    f = folder / "t10k-labels-idx1-ubyte.gz"
    f.write_bytes(f.read_bytes()[:-12])
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz is not a valid gzip file"):
        load_image_task("mnist", folder)


def test_mnist_wrong_magic(tmp_path):
    folder = make_mnist(tmp_path / "m")
    write_idx(folder / "t10k-images-idx3-ubyte", np.zeros((20, 28, 28)), magic=0x0803 + 0x100)  # int8, not uint8
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte has wrong magic number 0x00000903, "
                                        r"expected 0x00000803"):
        load_image_task("mnist", folder)
    write_idx(folder / "t10k-images-idx3-ubyte", np.zeros((20, 28, 28)))
    write_idx(folder / "train-labels-idx1-ubyte", np.zeros((40, 28, 28)))  # an images file in the labels slot
    with pytest.raises(DataError, match="train-labels-idx1-ubyte has wrong magic number 0x00000803"):
        load_image_task("mnist", folder)


def test_mnist_label_out_of_range(tmp_path):
    folder = make_mnist(tmp_path / "m")
    labels = np.arange(40) % 10
    labels[7] = 10
    write_idx(folder / "train-labels-idx1-ubyte", labels)
    with pytest.raises(DataError, match="train-labels-idx1-ubyte has label 10 at index 7"):
        load_image_task("mnist", folder)


def test_mnist_count_mismatch_and_missing_file(tmp_path):
    folder = make_mnist(tmp_path / "m")
    write_idx(folder / "t10k-labels-idx1-ubyte", np.arange(19) % 10)
    with pytest.raises(DataError, match="has 19 labels but .*t10k-images-idx3-ubyte has 20 images"):
        load_image_task("mnist", folder)
    (folder / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="lacks t10k-labels-idx1-ubyte"):
        load_image_task("mnist", folder)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "readme.txt").write_text("x")
    with pytest.raises(DataError, match="no MNIST IDX files"):
        load_image_task("mnist", tmp_path / "other")


def test_missing_and_empty_paths(tmp_path):
    with pytest.raises(DataError, match=r"data path .*nope does not exist"):
        load_image_task("mnist", tmp_path / "nope")
    with pytest.raises(DataError, match=r"data path .*nope does not exist"):
        load_image_task("cifar10", tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="is empty"):
        load_image_task("imagefolder", tmp_path / "empty")


# --------------------------------------------------------------------------------------------- image folders


@pytest.fixture
def small_cifar(tmp_path) -> Path:
    """A 70-image copy of the shared CIFAR-10 tree: 5 train and 2 test images per class."""
    if not (CIFAR_DIR / "train" / "airplane").is_dir():
        pytest.skip(f"shared CIFAR-10 image folder not found in {CIFAR_DIR}")
    root = tmp_path / "cifar_small"
    for split, n in (("train", 5), ("test", 2)):
        for cls in CIFAR_CLASSES:
            src = CIFAR_DIR / split / cls
            dst = root / split / cls
            dst.mkdir(parents=True)
            for name in sorted(os.listdir(src))[:n]:  # os.listdir: 5,000 names, no Path objects
                shutil.copyfile(src / name, dst / name)
    return root


def pil_chw(path: Path, mode: str = "RGB") -> torch.Tensor:
    from PIL import Image

    with Image.open(path) as im:
        return torch.from_numpy(np.array(im.convert(mode))).permute(2, 0, 1)


def test_small_cifar_folder(small_cifar):
    s = load_image_task("cifar10", small_cifar, val_size=0)
    assert s.name == "cifar10" and s.source == str(small_cifar.resolve())
    assert s.classes == CIFAR_CLASSES
    assert len(s.train) == 50 and len(s.val) == 0 and len(s.test) == 20
    for ds in (s.train, s.test):
        check_dataset(ds, (3, 32, 32), 10)
    # order: by class, then file name
    assert s.train.labels.tolist() == [c for c in range(10) for _ in range(5)]
    assert s.test.labels.tolist() == [c for c in range(10) for _ in range(2)]
    first_bird = sorted((small_cifar / "train" / "bird").iterdir())[0]
    assert torch.equal(s.train.images[10], pil_chw(first_bird))
    assert len(s.mean) == 3 and all(0 < m < 1 for m in s.mean)
    # as "imagefolder" it is the same data named after the folder
    f = load_image_task("imagefolder", small_cifar, val_size=0)
    assert f.name == "cifar_small" and torch.equal(f.train.images, s.train.images)
    v = load_image_task("cifar10", small_cifar, val_size=10)
    assert len(v.val) == 10 and sorted(v.val.labels.tolist()) == list(range(10))  # one per class


def test_pool_decoding_matches_serial(small_cifar, monkeypatch):
    files = sorted(str(p) for p in (small_cifar / "train").rglob("*.jpg"))
    serial = image_folder.decode_files(files, workers=1)
    monkeypatch.setattr(image_folder, "POOL_MIN_IMAGES", 0)
    pooled = image_folder.decode_files(files, workers=2)
    assert pooled.shape == (50, 3, 32, 32) and np.array_equal(serial, pooled)
    Path(files[30]).write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match=rf"{Path(files[30]).name}: cannot decode image"):
        image_folder.decode_files(files, workers=2)


def test_folder_cache_hit_corruption_and_location(small_cifar, tmp_path, monkeypatch):
    before = sorted(p.relative_to(small_cifar) for p in small_cifar.rglob("*"))
    first = load_image_task("cifar10", small_cifar)
    cached = list((tmp_path / "cache").glob("image-folder-*.npz"))
    assert len(cached) == 1  # in ADAPTAUG_CACHE_DIR ...
    assert sorted(p.relative_to(small_cifar) for p in small_cifar.rglob("*")) == before  # ... not beside the data

    calls = []
    real_decode = image_folder.decode_files

    def counting_decode(paths, workers=None):
        calls.append(len(paths))
        return real_decode(paths, workers)

    def boom(paths, workers=None):
        raise AssertionError("images decoded again despite a valid cache")

    monkeypatch.setattr(image_folder, "decode_files", boom)
    assert_same_splits(first, load_image_task("cifar10", small_cifar))

    monkeypatch.setattr(image_folder, "decode_files", counting_decode)
    data = cached[0].read_bytes()
    cached[0].write_bytes(data[: len(data) // 2])  # truncated
    with pytest.warns(RuntimeWarning, match="corrupt cache file"):
        again = load_image_task("cifar10", small_cifar)
    assert calls == [70] and cached[0].is_file()
    assert_same_splits(first, again)

    flipped = bytearray(cached[0].read_bytes())
    flipped[len(flipped) // 3] ^= 0xFF  # one pixel byte: caught by the zip CRC, not by shapes
    cached[0].write_bytes(bytes(flipped))
    with pytest.warns(RuntimeWarning, match="corrupt cache file"):
        assert_same_splits(first, load_image_task("cifar10", small_cifar))
    assert calls == [70, 70]

    # a well-formed archive with impossible content (labels out of range) is rebuilt too
    np.savez(cached[0], train_images=np.zeros((50, 3, 32, 32), np.uint8), train_labels=np.full(50, 99),
             test_images=np.zeros((20, 3, 32, 32), np.uint8), test_labels=np.zeros(20, np.int64),
             classes=np.array(CIFAR_CLASSES))
    with pytest.warns(RuntimeWarning, match="label out of range"):
        assert_same_splits(first, load_image_task("cifar10", small_cifar))
    assert calls == [70, 70, 70]

    # changing one image changes the key: the old entry is not served
    shutil.copyfile(small_cifar / "train" / "cat" / "0001.jpg", small_cifar / "train" / "cat" / "0000.jpg")
    changed = load_image_task("cifar10", small_cifar)
    assert calls == [70, 70, 70, 70] and not torch.equal(changed.train.images, first.train.images)


def test_cache_dir_from_environment(monkeypatch, tmp_path):
    assert cache_dir() == tmp_path / "cache"
    monkeypatch.delenv("ADAPTAUG_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "adaptaug"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "adaptaug"


def test_corrupt_jpeg(small_cifar):
    bad = small_cifar / "train" / "dog" / "0001.jpg"
    bad.write_bytes(bad.read_bytes()[:200])  # truncated
    with pytest.raises(DataError, match=r"dog/0001\.jpg: cannot decode image"):
        load_image_task("cifar10", small_cifar)
    bad.write_bytes(b"\xff\xd8 this is not image data")
    with pytest.raises(DataError, match=r"dog/0001\.jpg: cannot decode image"):
        load_image_task("cifar10", small_cifar)


def test_image_of_a_different_size_or_channel_count(small_cifar):
    from PIL import Image

    odd = small_cifar / "test" / "ship" / "9999.png"
    Image.new("RGB", (28, 30)).save(odd)
    with pytest.raises(DataError, match=r"ship/9999\.png: image is 28x30 \(WxH\) with 3 channels, but "
                                        r".*airplane/\d+\.jpg is 32x32 \(WxH\) with 3 channels"):
        load_image_task("cifar10", small_cifar)
    Image.new("L", (32, 32)).save(odd)
    with pytest.raises(DataError, match=r"9999\.png: image is 32x32 \(WxH\) with 1 channel, but"):
        load_image_task("cifar10", small_cifar)
    # palette and RGBA images are converted to RGB and accepted
    Image.new("P", (32, 32)).save(odd)
    Image.new("RGBA", (32, 32), (10, 20, 30, 40)).save(small_cifar / "train" / "cat" / "9999.png")
    s = load_image_task("cifar10", small_cifar, val_size=0)
    assert len(s.train) == 51 and len(s.test) == 21
    cat_last = s.train.images[(s.train.labels == 3).nonzero()[-1]]
    assert cat_last[0, :, 0, 0].tolist() == [10, 20, 30]


def test_folder_layout_errors(small_cifar):
    for f in (small_cifar / "train" / "frog").iterdir():
        f.unlink()
    with pytest.raises(DataError, match=r"class folder .*train/frog contains no images"):
        load_image_task("cifar10", small_cifar)
    shutil.rmtree(small_cifar / "train" / "frog")
    with pytest.raises(DataError, match=r"test class folder .*test/frog is not a training class"):
        load_image_task("cifar10", small_cifar)
    shutil.rmtree(small_cifar / "test")
    with pytest.raises(DataError, match="has no test/ folder"):
        load_image_task("imagefolder", small_cifar)


# --------------------------------------------------------------------------------------------- hub


@pytest.mark.parametrize("task", ["mnist", "cifar10"])
@pytest.mark.parametrize("var", ["HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"])
def test_hub_offline_fails_fast_with_a_local_copy_hint(monkeypatch, task, var):
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(var, "1")
    start = time.perf_counter()
    with pytest.raises(OfflineError, match="--data") as info:
        load_image_task(task)
    assert time.perf_counter() - start < 2.0
    assert var in str(info.value)


def test_hub_without_datasets_package(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` fail
    start = time.perf_counter()
    with pytest.raises(OfflineError, match=r"`datasets` is not installed.*--data /path/to/mnist"):
        load_image_task("mnist")
    assert time.perf_counter() - start < 2.0


# --------------------------------------------------------------------------------------------- full CIFAR-10


@needs_cifar
@pytest.mark.slow
def test_full_cifar10_load_cold_then_cached(tmp_path, monkeypatch, capsys):
    start = time.perf_counter()
    s = load_image_task("cifar10", CIFAR_DIR)
    cold = time.perf_counter() - start

    def boom(paths, workers=None):
        raise AssertionError("JPEGs decoded again despite a valid cache")

    monkeypatch.setattr(image_folder, "decode_files", boom)
    start = time.perf_counter()
    again = load_image_task("cifar10", CIFAR_DIR)
    warm = time.perf_counter() - start
    with capsys.disabled():
        print(f"\nfull CIFAR-10 load: cold {cold:.1f} s, cached {warm:.1f} s")
    assert s.classes == CIFAR_CLASSES
    assert len(s.train) == 45_000 and len(s.val) == 5_000 and len(s.test) == 10_000
    assert torch.bincount(s.train.labels).tolist() == [4_500] * 10
    assert torch.bincount(s.val.labels).tolist() == [500] * 10
    assert torch.bincount(s.test.labels).tolist() == [1_000] * 10
    check_dataset(s.train, (3, 32, 32), 10)
    assert s.mean == pytest.approx((0.491, 0.482, 0.447), abs=0.01)
    assert_same_splits(s, again)
