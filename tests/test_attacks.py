"""FGSM / PGD soundness on a trained digits model, the corruption and token-noise suites, robustness keys."""
import math

import pytest
import torch
import torch.nn.functional as F

from adaptaug.attacks import fgsm, input_gradient, pgd
from adaptaug.config import TrainConfig
from adaptaug.robustness import CORRUPTIONS, ImageSuite, TextSuite, corrupt, robustness, unk_noise, word_drop
from adaptaug.tasks import build_task
from adaptaug.tasks.base import Task
from adaptaug.train import train


@pytest.fixture(scope="module")
def trained():
    torch.set_num_threads(2)
    result = train(TrainConfig(task="digits", policy="none", epochs=5), write=False, progress=False)
    task = build_task("digits", seed=0)  # the run's split (seed 0); the digits test split is fixed anyway
    (images,), labels = task.gather("test", torch.arange(task.size("test")))
    return result, task, result.model.eval(), images, labels


def _accuracy(model, images, labels) -> float:
    with torch.no_grad():
        return float((model(images).argmax(-1) == labels).float().mean())


def _attacks(model, task, images, labels, eps):
    adv_f = fgsm(model, task.loss_fn, images, labels, eps)
    adv_p = pgd(model, task.loss_fn, images, labels, eps, generator=torch.Generator().manual_seed(0))
    return _accuracy(model, adv_f, labels), _accuracy(model, adv_p, labels), adv_f, adv_p


def test_train_reports_robustness_keys(trained):
    result, *_ = trained
    metrics = result.metrics
    for key in ImageSuite().keys():
        assert 0.0 <= metrics[key] <= 1.0, key
    assert metrics["robustness_runtime"] > 0
    assert metrics["eval_robust_pgd_eps8_accuracy"] < metrics["eval_accuracy"]


def test_eps_zero_is_clean_accuracy(trained):
    result, task, model, images, labels = trained
    clean = _accuracy(model, images, labels)
    assert clean == pytest.approx(result.metrics["eval_accuracy"], abs=1e-6)  # float32 mean vs float64
    acc_f, acc_p, adv_f, adv_p = _attacks(model, task, images, labels, 0.0)
    assert torch.equal(adv_f, images) and torch.equal(adv_p, images)
    assert acc_f == acc_p == clean
    suite = ImageSuite(eps_255=(0,), corruptions=())(model, task)
    assert suite["eval_robust_fgsm_eps0_accuracy"] == pytest.approx(clean, abs=1e-6)
    assert suite["eval_robust_pgd_eps0_accuracy"] == pytest.approx(clean, abs=1e-6)


@pytest.mark.parametrize("eps_255", [2, 8])
def test_pgd_is_no_weaker_than_fgsm_and_stays_in_the_ball(trained, eps_255):
    _, task, model, images, labels = trained
    eps = eps_255 / 255
    clean = _accuracy(model, images, labels)
    acc_f, acc_p, adv_f, adv_p = _attacks(model, task, images, labels, eps)
    assert acc_p <= acc_f <= clean
    for adv in (adv_f, adv_p):
        assert (adv - images).abs().max() <= eps + 1e-6
        assert adv.min() >= 0 and adv.max() <= 1


def test_accuracy_falls_as_eps_grows(trained):
    _, task, model, images, labels = trained
    gen = torch.Generator().manual_seed(0)
    accs = [_accuracy(model, pgd(model, task.loss_fn, images, labels, e / 255, generator=gen), labels)
            for e in (0, 2, 8, 32)]
    assert all(a > b for a, b in zip(accs, accs[1:])), accs
    assert accs[-1] < 0.6 * accs[0], accs  # a real attack, not a nudge


def test_gradients_reach_the_input(trained):
    _, task, model, images, labels = trained
    x, y = images[:64], labels[:64]
    assert not model.training
    loss, grad = input_gradient(model, task.loss_fn, x, y)
    assert torch.isfinite(grad).all() and torch.isfinite(loss).all()
    assert (grad.flatten(1).abs().sum(1) > 0).float().mean() > 0.9  # almost every sample has a gradient
    # the gradient is the true one: a central difference along a random direction agrees with it
    d = torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    h = 1e-3
    with torch.no_grad():
        numeric = (task.loss_fn(model(x + h * d), y).sum() - task.loss_fn(model(x - h * d), y).sum()) / (2 * h)
    analytic = (grad * d).sum()
    assert float(analytic) == pytest.approx(float(numeric), rel=0.05)
    # a caller's no_grad context cannot mask the attack, and the model's parameter grads stay untouched
    before = [None if p.grad is None else p.grad.clone() for p in model.parameters()]
    with torch.no_grad():
        adv = fgsm(model, task.loss_fn, x, y, 8 / 255)
    assert not torch.equal(adv, x)
    assert all((a is None and p.grad is None) or torch.equal(a, p.grad) for a, p in zip(before, model.parameters()))
    # the same call twice gives the same gradient: eval mode, no dropout noise in the attack
    assert torch.equal(input_gradient(model, task.loss_fn, x, y)[1], grad)


def test_robustness_puts_the_model_in_eval_mode_and_restores_it(trained, monkeypatch):
    from adaptaug import robustness as robustness_mod

    _, task, model, *_ = trained
    small = ImageSuite(eps_255=(2,), pgd_steps=2, corruptions=("contrast",), severities=(1,))  # cheap is enough
    monkeypatch.setitem(robustness_mod.SUITES, "image", small)
    seen = []
    hook = model.register_forward_pre_hook(lambda m, args: seen.append(m.training))
    model.train()
    try:
        keys = robustness(model, task).keys()
        restored = model.training
    finally:
        hook.remove()
        model.eval()
    assert seen and not any(seen)
    assert restored  # the caller's train mode comes back
    assert set(keys) == set(small.keys())


def test_random_start_is_seeded(trained):
    _, task, model, images, labels = trained
    x, y = images[:32], labels[:32]

    def run(seed: int) -> torch.Tensor:
        return pgd(model, task.loss_fn, x, y, 8 / 255, generator=torch.Generator().manual_seed(seed))

    assert torch.equal(run(1), run(1))
    assert not torch.equal(run(1), run(2))


def test_attack_arguments_are_checked():
    model = torch.nn.Flatten()
    x, y = torch.rand(2, 4), torch.zeros(2, dtype=torch.long)
    with pytest.raises(ValueError, match="eps must be"):
        fgsm(model, lambda lg, t: F.cross_entropy(lg, t, reduction="none"), x, y, -0.1)
    with pytest.raises(ValueError, match="norm must be"):
        pgd(model, lambda lg, t: F.cross_entropy(lg, t, reduction="none"), x, y, 0.1, norm="l1")


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_corruptions_keep_shape_and_range_and_grow_with_severity(name):
    images = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    changes = []
    for severity in (1, 3, 5):
        out = corrupt(images, name, severity, torch.Generator().manual_seed(0))
        assert out.shape == images.shape and out.min() >= 0 and out.max() <= 1
        changes.append(float((out - images).abs().mean()))
    assert changes[0] > 0 and changes[0] <= changes[-1], changes
    grey = corrupt(torch.rand(2, 1, 8, 8), name, 5)  # 8x8 grey digits: blur kernel fits, noise is seeded
    assert grey.shape == (2, 1, 8, 8)


def test_token_noise_keeps_sentences_and_tags_aligned():
    g = torch.Generator().manual_seed(0)
    ids = torch.tensor([[5, 6, 7, 8, 0], [9, 10, 0, 0, 0]])
    lengths = torch.tensor([4, 2])
    tags = ids * 10  # a tag that names its token
    tags[ids == 0] = -100
    noisy = unk_noise(ids, lengths, 0.5, unk_id=1, generator=g)
    assert ((noisy == ids) | (noisy == 1)).all() and (noisy[ids == 0] == 0).all()
    d_ids, d_lengths, d_tags = word_drop(ids, lengths, tags, 0.9, pad_id=0, generator=g)
    assert (d_lengths >= 1).all() and (d_lengths <= lengths).all()
    for row in range(2):
        n = int(d_lengths[row])
        kept = d_ids[row, :n].tolist()
        assert kept == [t for t in ids[row, :int(lengths[row])].tolist() if t in kept]  # order kept
        assert (d_tags[row, :n] == d_ids[row, :n] * 10).all() and (d_tags[row, n:] == -100).all()
        assert (d_ids[row, n:] == 0).all()


class _TinyTextTask(Task):
    """Just enough of a text task for the text suite: random sentences, a small BiLSTM, binary labels."""

    name, num_classes, modality = "tiny-text", 2, "text"

    def __init__(self) -> None:
        from types import SimpleNamespace

        g = torch.Generator().manual_seed(0)
        self.data = SimpleNamespace(vocab=SimpleNamespace(pad_id=0, unk_id=1))
        self.lengths = torch.randint(2, 9, (40,), generator=g)
        self.ids = torch.randint(2, 30, (40, 8), generator=g) * (torch.arange(8) < self.lengths[:, None])
        self.labels = (self.ids[:, 0] % 2).long()

    def build_model(self):
        from adaptaug.models.lstm import BiLSTMClassifier
        torch.manual_seed(0)
        return BiLSTMClassifier(30, embed_dim=8, hidden=8, fc=8)

    def base_policy(self, generator): raise NotImplementedError  # noqa: E704
    def augment(self, inputs, plan): raise NotImplementedError  # noqa: E704
    def size(self, split): return 40  # noqa: E704

    def gather(self, split, index):
        return (self.ids[index], self.lengths[index]), self.labels[index]

    def batches(self, split, batch_size, generator=None):
        for start in range(0, 40, batch_size):
            yield self.gather(split, torch.arange(start, min(start + batch_size, 40)))

    def loss_fn(self, logits, targets):
        return F.binary_cross_entropy_with_logits(logits, targets.float(), reduction="none")

    def accuracy_fn(self, logits, targets):
        return ((logits > 0).long() == targets).float()

    def metrics(self, logits, targets):
        pred, true = (torch.cat(logits) > 0).long(), torch.cat(targets)
        return {"accuracy": float((pred == true).float().mean()), "f1": float((pred == true).float().mean())}


def test_text_suite_runs_and_eps_zero_is_clean():
    task = _TinyTextTask()
    model = task.build_model().eval()
    with torch.no_grad():
        clean = float((model(task.ids, task.lengths) > 0).long().eq(task.labels).float().mean())
    out = TextSuite(eps_percent=(0, 50), rates_percent=(10,))(model, task, batch_size=16)
    assert out["eval_robust_embpgd_eps0_accuracy"] == pytest.approx(clean)
    assert out["eval_robust_embpgd_eps50_accuracy"] <= clean
    for key in ("eval_robust_unk_r10_f1", "eval_robust_drop_r10_accuracy", "eval_robust_corruption_accuracy"):
        assert 0.0 <= out[key] <= 1.0 and not math.isnan(out[key]), key
    assert robustness(model, task).keys() >= {"eval_robust_embpgd_eps10_accuracy", "eval_robust_unk_f1"}


@pytest.mark.slow
def test_text_robustness_and_preview_on_real_sst2(tmp_path):
    from conftest import shared

    from adaptaug.preview import preview

    data = str(shared("sst2"))
    result = train(TrainConfig(task="sst2", data=data, policy="none", epochs=1, limit=2000), write=False,
                   progress=False)
    m = result.metrics
    assert m["eval_robust_embpgd_eps50_accuracy"] <= m["eval_robust_embpgd_eps10_accuracy"] <= m["eval_accuracy"] + 0.05
    assert 0 <= m["eval_robust_corruption_f1"] <= 1 and m["robustness_runtime"] > 0
    listing = preview("sst2", "standard", data=data, n=3)
    assert listing.count("before:") == 3 and listing.count("after:") == 3
