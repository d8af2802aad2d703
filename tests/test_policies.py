"""Fixed policies: plans have the documented shape, levels and randomness."""
import pytest
import torch

from adaptaug.augment import NO_OP, AugPlan, apply_plan
from adaptaug.errors import ConfigError
from adaptaug.ops.image import RANDAUGMENT_OPS
from adaptaug.ops.space import OpSpace
from adaptaug.policies import NoAugment, RandAugment, StandardAugment, TrivialAugment
from adaptaug.policies.base import NUM_MAGNITUDE_BINS

SPACE = OpSpace.of(RANDAUGMENT_OPS)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_standard_is_crop_then_coin_flip():
    plan = StandardAugment(pad=4, generator=gen()).sample(2000)
    assert plan.ops == ("CropPad", "FlipLR") and plan.op_ids.shape == (2000, 2)
    assert (plan.op_ids[:, 0] == 0).all() and (plan.magnitudes[:, 0] == 4).all()
    flipped = (plan.op_ids[:, 1] == 1).float().mean()
    assert 0.45 < flipped < 0.55 and set(plan.op_ids[:, 1].tolist()) == {1, NO_OP}
    no_flip = StandardAugment(pad=1, flip=False, generator=gen()).sample(8)
    assert no_flip.ops == ("CropPad",)


def test_randaugment_draws_two_ops_per_sample_at_level_m_on_top_of_the_base():
    policy = RandAugment(SPACE, n=2, m=9, generator=gen(), base=StandardAugment(generator=gen(1)))
    plan = policy.sample(4000)
    assert plan.op_ids.shape == (4000, 4)
    ra_ids = plan.op_ids[:, 2:]
    counts = torch.bincount(ra_ids.flatten(), minlength=len(plan.ops))
    ra_counts = counts[[plan.ops.index(o) for o in RANDAUGMENT_OPS]]
    assert ra_counts.min() > 0.7 * ra_counts.float().mean()  # uniform over the 14 ops
    rotate = plan.ops.index("Rotate")
    mags = plan.magnitudes[:, 2:][ra_ids == rotate]
    assert torch.allclose(mags.abs(), torch.full_like(mags, 30 * 9 / 30))  # 9 degrees, both signs
    assert (mags > 0).any() and (mags < 0).any()
    assert repr(policy).startswith("RandAugment(n=2, m=9, ops=14")


def test_trivialaugment_levels_are_uniform_over_31_bins_in_the_wide_range():
    plan = TrivialAugment(SPACE, generator=gen()).sample(20000)
    rotate = SPACE.index("Rotate")
    mags = plan.magnitudes[plan.op_ids == rotate].abs()
    levels = torch.unique(torch.round(mags / 135 * (NUM_MAGNITUDE_BINS - 1)))
    assert len(levels) == NUM_MAGNITUDE_BINS and mags.max() <= 135


def test_same_generator_seed_same_plans_and_images():
    images = torch.rand(16, 3, 32, 32, generator=gen(5))
    a = RandAugment(SPACE, generator=gen(2), base=StandardAugment(generator=gen(3))).sample(16)
    b = RandAugment(SPACE, generator=gen(2), base=StandardAugment(generator=gen(3))).sample(16)
    assert torch.equal(apply_plan(images, a), apply_plan(images, b))
    c = RandAugment(SPACE, generator=gen(9), base=StandardAugment(generator=gen(3))).sample(16)
    assert not torch.equal(apply_plan(images, a), apply_plan(images, c))


def test_none_leaves_images_alone():
    images = torch.rand(4, 1, 8, 8, generator=gen())
    assert torch.equal(apply_plan(images, NoAugment(gen()).sample(4)), images)


def test_bad_settings_and_plans_are_clear_errors():
    with pytest.raises(ValueError, match="m must be in"):
        RandAugment(SPACE, m=31)
    with pytest.raises(ConfigError, match="unknown op 'Blur'"):
        OpSpace.of(["Identity", "Blur"])
    plan = TrivialAugment(SPACE, generator=gen()).sample(3)
    with pytest.raises(ConfigError, match="plan is for 3 samples but the batch has 4"):
        apply_plan(torch.rand(4, 3, 8, 8), plan)
    with pytest.raises(ConfigError, match="must both be"):
        AugPlan(("Identity",), torch.zeros(2, 1, dtype=torch.long), torch.zeros(2, 2), seed=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("wide", [False, True])
def test_make_plan_magnitudes_equal_each_ops_own_mapping(wide, dtype):
    # make_plan gathers from a per-op table; each magnitude must be exactly what OpSpec.magnitude gives
    from adaptaug.augment import NO_OP
    from adaptaug.ops import list_ops
    from adaptaug.ops.space import OpSpace
    from adaptaug.policies import make_plan

    space = OpSpace.of(list_ops("image"))
    g = torch.Generator().manual_seed(3)
    op_idx = torch.randint(-1, len(space), (500, 2), generator=g)  # -1: NO_OP
    levels = torch.rand(500, 2, generator=g, dtype=dtype)
    signs = torch.randint(0, 2, (500, 2), generator=g).to(dtype) * 2 - 1
    plan = make_plan(space, op_idx, levels, signs, seed=0, wide=wide)
    expected = torch.zeros(500, 2, dtype=dtype)
    for k, spec in enumerate(space.specs):
        expected = torch.where(op_idx == k, spec.magnitude(levels, signs, wide=wide), expected)
    assert (op_idx == NO_OP).any() and torch.equal(plan.magnitudes, expected.float())


def test_every_registered_task_says_whether_it_stacks_on_its_base_without_loading_data():
    from adaptaug.tasks import TASKS, build_task, stacks_base
    assert {name: stacks_base(name) for name in TASKS} == {"digits": True, "mnist": True, "cifar10": True,
                                                           "imagefolder": True, "conll2003": False, "imdb": False,
                                                           "sst2": False}
    assert stacks_base("custom") is None  # a task object given to train(): AugNetPolicy decides from its base
    assert build_task("digits").stack_base is stacks_base("digits")
