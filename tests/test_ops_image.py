"""Image op kernels: the registry contract for every op, then semantics against torch and PIL."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageEnhance, ImageOps

from adaptaug.augment import NO_OP, AugPlan, apply_plan
from adaptaug.ops.image import GEOMETRIC_FLIP_OPS, RANDAUGMENT_OPS
from adaptaug.ops.space import get_op, list_ops

IMAGE_OPS = list_ops("image")
POSITIONAL = {"Cutout", "CropPad"}  # ops that draw positions from the generator
DETERMINISTIC = [n for n in IMAGE_OPS if n not in POSITIONAL]


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _images(b: int = 4, c: int = 3, h: int = 16, w: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(b, c, h, w, generator=_gen(seed))


def _mags(name: str, b: int, wide: bool = True) -> torch.Tensor:
    """Distinct, mostly large magnitudes with alternating signs, so per-sample effects differ."""
    spec = get_op(name)
    level = torch.linspace(1.0, 0.4, b)
    sign = torch.tensor([1.0, -1.0]).repeat((b + 1) // 2)[:b]
    return spec.magnitude(level, sign, wide=wide)


def _run(name: str, x: torch.Tensor, mag: torch.Tensor, seed: int = 0) -> torch.Tensor:
    return get_op(name).fn(x, mag, _gen(seed))


def test_registry_names() -> None:
    assert set(IMAGE_OPS) == set(RANDAUGMENT_OPS) | {"Cutout", "FlipLR", "CropPad"}
    assert len(RANDAUGMENT_OPS) == 14 and GEOMETRIC_FLIP_OPS == ("FlipLR",)
    assert all(get_op(n).modality == "image" for n in IMAGE_OPS)


# ------------------------------------------------------------------------------------------------
# The contract, for every registered op


@pytest.mark.parametrize("name", IMAGE_OPS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shape_dtype_device_range(name: str, dtype: torch.dtype) -> None:
    x = _images().to(dtype)
    for wide in (False, True):
        y = _run(name, x, _mags(name, 4, wide).to(dtype))
        assert y.shape == x.shape and y.dtype == dtype and y.device == x.device
        assert torch.isfinite(y).all() and y.min() >= 0 and y.max() <= 1


@pytest.mark.parametrize("name", IMAGE_OPS)
@pytest.mark.parametrize("channels,dtype", [(3, torch.float32), (1, torch.float32), (3, torch.float16)])
def test_kernel_leaves_its_input_alone(name: str, channels: int, dtype: torch.dtype) -> None:
    # kernels clamp and blend in place on tensors they made; never on the caller's (values outside [0, 1]
    # here, so an in-place clamp of the input would show; Color on one channel returns its input whole)
    x = (_images(c=channels) * 1.2 - 0.1).to(dtype)
    before = x.clone()
    mag = _mags(name, 4).to(dtype)
    mag[0] = 0
    _run(name, x, mag)
    assert torch.equal(x, before)


def test_kernel_wrapper_never_clamps_a_view_of_the_input_in_place() -> None:
    # _kernel clamps a body's result in place only when it owns its memory: a body handing back a view of its input
    # (here a transpose) must still leave the caller's tensor alone
    from adaptaug.ops.image import _kernel

    transpose = _kernel(lambda images, mag, generator: images.transpose(2, 3))
    x = _images() * 1.2 - 0.1
    before = x.clone()
    y = transpose(x, torch.zeros(4), _gen())
    assert torch.equal(x, before)
    assert torch.equal(y, before.transpose(2, 3).clamp(0, 1))


@pytest.mark.parametrize("name", IMAGE_OPS)
def test_identity_at_zero(name: str) -> None:
    spec = get_op(name)
    x = _images()
    y = spec.fn(x, torch.zeros(4), _gen())
    if spec.identity_at_zero:
        assert torch.equal(y, x)
    else:  # the flag must not be stricter than needed: these ops do change a random image
        assert not torch.equal(y, x)


@pytest.mark.parametrize("name", DETERMINISTIC)
def test_per_sample_magnitudes(name: str) -> None:
    x = _images()
    mag = _mags(name, 4)
    y = _run(name, x, mag)
    for i in range(4):
        torch.testing.assert_close(y[i : i + 1], _run(name, x[i : i + 1], mag[i : i + 1]), atol=1e-6, rtol=0)
    if get_op(name).has_magnitude:  # the same image with different magnitudes comes out different
        same = x[:1].expand(4, -1, -1, -1)
        outs = _run(name, same, mag)
        assert all(not torch.equal(outs[i], outs[j]) for i in range(4) for j in range(i + 1, 4))


@pytest.mark.parametrize("name", IMAGE_OPS)
def test_same_seed_same_output(name: str) -> None:
    x, mag = _images(), _mags(name, 4)
    assert torch.equal(_run(name, x, mag, seed=3), _run(name, x, mag, seed=3))


@pytest.mark.parametrize("name", sorted(POSITIONAL))
def test_positions_come_from_generator(name: str) -> None:
    x, mag = _images(b=8), _mags(name, 8)
    torch.manual_seed(0)
    a = _run(name, x, mag, seed=1)
    torch.manual_seed(1)  # the global RNG must not matter
    assert torch.equal(a, _run(name, x, mag, seed=1))
    assert not torch.equal(a, _run(name, x, mag, seed=2))


@pytest.mark.parametrize("name", IMAGE_OPS)
def test_single_sample_single_channel_tiny(name: str) -> None:
    x = _images(b=1, c=1, h=8, w=8)  # the size of sklearn's digits
    y = _run(name, x, _mags(name, 1))
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1
    if name == "Color":
        assert torch.equal(y, x)


def test_apply_plan_matches_per_sample_application() -> None:
    b, slots = 12, 3
    ops = tuple(DETERMINISTIC)
    g = _gen(5)
    op_ids = torch.randint(-1, len(ops), (b, slots), generator=g)  # -1 is NO_OP
    levels = torch.rand(b, slots, generator=g)
    signs = torch.where(torch.rand(b, slots, generator=g) < 0.5, -1.0, 1.0)
    mags = torch.zeros(b, slots)
    for s in range(slots):
        for i in range(b):
            if op_ids[i, s] != NO_OP:
                mags[i, s] = get_op(ops[op_ids[i, s]]).magnitude(levels[i, s : s + 1], signs[i, s : s + 1])[0]
    x = _images(b=b)
    out = apply_plan(x, AugPlan(ops=ops, op_ids=op_ids, magnitudes=mags, seed=0))
    expected = x.clone()
    for i in range(b):
        for s in range(slots):
            k = int(op_ids[i, s])
            if k != NO_OP:
                expected[i : i + 1] = _run(ops[k], expected[i : i + 1], mags[i, s : s + 1])
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)
    assert torch.equal(x, _images(b=b))  # the input is not modified


def test_apply_plan_equals_op_by_op_gather_and_scatter_with_positional_ops() -> None:
    # apply_plan reorders the batch so each group's samples are contiguous rows; every kernel must still see its
    # samples in ascending order, so the positional ops draw the same positions as the plain reference below:
    # per slot, each op in id order on the samples that chose it, one generator for the whole plan
    from adaptaug.ops.space import OpSpace
    from adaptaug.policies import RandAugment, StandardAugment

    space = OpSpace.of(RANDAUGMENT_OPS + ("Cutout",))
    g = _gen(11)
    policy = RandAugment(space, n=3, m=9, generator=g, base=StandardAugment(generator=g))
    for b in (1, 5, 64):
        x = _images(b=b, seed=b)
        plan = policy.sample(b)
        out = apply_plan(x, plan)
        expected, gen = x.clone(), _gen(plan.seed)
        for s in range(plan.op_ids.shape[1]):
            chosen = plan.op_ids[:, s]
            for k in torch.unique(chosen).tolist():
                if k == NO_OP or plan.ops[k] == "Identity":
                    continue
                idx = (chosen == k).nonzero().squeeze(1)
                expected[idx] = get_op(plan.ops[k]).fn(expected[idx], plan.magnitudes[idx, s], gen)
        assert torch.equal(out, expected), b
        assert torch.equal(x, _images(b=b, seed=b))  # the input is not modified


# ------------------------------------------------------------------------------------------------
# Semantics


def test_rotate_90_matches_rot90_counter_clockwise() -> None:
    x = _images(b=2, h=9, w=9)
    y = _run("Rotate", x, torch.tensor([90.0, -90.0]))
    torch.testing.assert_close(y[0], torch.rot90(x[0], 1, dims=(-2, -1)), atol=1e-5, rtol=0)
    torch.testing.assert_close(y[1], torch.rot90(x[1], -1, dims=(-2, -1)), atol=1e-5, rtol=0)


def test_translate_moves_content_right_and_down() -> None:
    x = _images(b=2, c=1, h=10, w=10)
    y = _run("TranslateX", x, torch.tensor([0.3, -0.2]))  # 3 px right, 2 px left
    assert torch.equal(y[0, :, :, 3:], x[0, :, :, :-3]) and (y[0, :, :, :3] == 0).all()
    assert torch.equal(y[1, :, :, :-2], x[1, :, :, 2:]) and (y[1, :, :, -2:] == 0).all()
    y = _run("TranslateY", x, torch.tensor([0.3, 0.0]))
    assert torch.equal(y[0, :, 3:], x[0, :, :-3]) and (y[0, :, :3] == 0).all()
    assert torch.equal(y[1], x[1])


def test_flip_lr() -> None:
    x = _images()
    assert torch.equal(_run("FlipLR", x, torch.zeros(4)), x.flip(-1))


def test_brightness_scales() -> None:
    x = _images()
    torch.testing.assert_close(_run("Brightness", x, torch.full((4,), 0.5)), (x * 1.5).clamp(0, 1))


def test_posterize_known_values() -> None:
    levels = torch.tensor([0, 15, 16, 100, 200, 255], dtype=torch.float32)
    x = (levels / 255).view(1, 1, 1, -1)
    y = _run("Posterize", x, torch.tensor([4.0]))
    expected = torch.tensor([0, 0, 16, 96, 192, 240], dtype=torch.float32) / 255
    torch.testing.assert_close(y.flatten(), expected)


def test_solarize_known_values() -> None:
    x = torch.tensor([0.0, 0.2, 0.5, 0.6, 1.0]).view(1, 1, 1, -1)
    y = _run("Solarize", x, torch.tensor([0.5]))  # threshold 0.5: strictly above is inverted
    torch.testing.assert_close(y.flatten(), torch.tensor([0.0, 0.2, 0.5, 0.4, 0.0]))
    assert torch.equal(_run("Solarize", x, torch.tensor([0.0])), x)  # threshold 1: nothing inverted


def test_autocontrast_stretches_and_keeps_constant_channels() -> None:
    x = _images(b=2) * 0.5 + 0.2
    x[1, 2] = 0.3  # a constant channel
    y = _run("AutoContrast", x, torch.zeros(2))
    assert torch.allclose(y[0].amin(dim=(1, 2)), torch.zeros(3))
    assert torch.allclose(y[0].amax(dim=(1, 2)), torch.ones(3))
    assert torch.equal(y[1, 2], x[1, 2])


def test_equalize_widens_low_contrast_digits() -> None:
    # 8x8 digits: PIL's equalize would leave these unchanged (under 256 pixels); ours equalises them.
    from sklearn.datasets import load_digits

    digits = torch.from_numpy(load_digits().images[:16]).float().div(16).unsqueeze(1)  # (16, 1, 8, 8)
    low = torch.round((0.4 + 0.2 * digits) * 255) / 255  # squeezed into [0.4, 0.6]
    y = _run("Equalize", low, torch.zeros(16))
    spread_in = low.amax(dim=(1, 2, 3)) - low.amin(dim=(1, 2, 3))
    spread_out = y.amax(dim=(1, 2, 3)) - y.amin(dim=(1, 2, 3))
    assert (spread_out > spread_in + 0.3).all()


def test_cutout_covers_a_quarter_away_from_borders() -> None:
    x = _images(b=64, h=32, w=32) * 0.4  # no pixel is 0.5 before
    y = _run("Cutout", x, torch.full((64,), 0.5))
    grey = (y == 0.5).all(dim=1)  # (B, H, W)
    assert torch.equal(y[~grey.unsqueeze(1).expand_as(y)], x[~grey.unsqueeze(1).expand_as(x)])
    interior = 0
    for i in range(64):
        rows = grey[i].any(1).nonzero().flatten()
        cols = grey[i].any(0).nonzero().flatten()
        n = int(grey[i].sum())
        assert 0 < n <= 256 and n == len(rows) * len(cols)  # one clipped square
        if rows.min() > 0 and cols.min() > 0 and rows.max() < 31 and cols.max() < 31:
            assert n == 256  # 16 x 16: a quarter of the image
            interior += 1
    assert interior > 5


def test_croppad_is_a_reflect_padded_crop() -> None:
    p = 3
    x = _images(b=16, h=12, w=12)
    y = _run("CropPad", x, torch.full((16,), float(p)))
    padded = F.pad(x, (p, p, p, p), mode="reflect")
    crops = torch.stack(
        [padded[:, :, i : i + 12, j : j + 12] for i in range(2 * p + 1) for j in range(2 * p + 1)], 1
    )  # (B, 49, C, H, W) every possible crop
    match = (crops == y.unsqueeze(1)).flatten(2).all(-1)  # (B, 49)
    assert match.any(1).all()
    assert len(set(match.float().argmax(1).tolist())) > 3  # offsets vary across samples


# ------------------------------------------------------------------------------------------------
# Against PIL on 8-bit images (PIL is what AutoAugment / RandAugment were defined with)


def _pil_image(h: int = 24, w: int = 24) -> tuple[Image.Image, torch.Tensor]:
    rng = np.random.default_rng(0)
    coarse = rng.integers(40, 200, (h // 4, w // 4, 3))
    arr = (np.kron(coarse, np.ones((4, 4, 1))) + rng.integers(0, 50, (h, w, 3))).astype(np.uint8)
    return Image.fromarray(arr), torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div(255).unsqueeze(0)


def _to_tensor(img: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float().unsqueeze(0)


PIL_CASES = [
    ("Brightness", 0.6, lambda im: ImageEnhance.Brightness(im).enhance(1.6)),
    ("Color", -0.5, lambda im: ImageEnhance.Color(im).enhance(0.5)),
    ("Contrast", 0.9, lambda im: ImageEnhance.Contrast(im).enhance(1.9)),
    ("Sharpness", 0.8, lambda im: ImageEnhance.Sharpness(im).enhance(1.8)),
    ("Posterize", 3.0, lambda im: ImageOps.posterize(im, 5)),
    ("AutoContrast", 0.0, ImageOps.autocontrast),
    ("Equalize", 0.0, ImageOps.equalize),
]


@pytest.mark.parametrize("name,mag,pil_fn", PIL_CASES, ids=[c[0] for c in PIL_CASES])
def test_photometric_matches_pil(name: str, mag: float, pil_fn) -> None:
    img, x = _pil_image()
    y = _run(name, x, torch.tensor([mag])) * 255
    # PIL rounds or truncates every intermediate to uint8 (Sharpness: the smoothed image too).
    assert (y - _to_tensor(pil_fn(img))).abs().max() <= 1.5


@pytest.mark.parametrize(
    "name,mag,data",
    [("Rotate", 25.0, None), ("ShearX", 0.3, (1, 0.3, -0.3 * 12, 0, 1, 0)),
     ("ShearY", -0.2, (1, 0, 0, -0.2, 1, 0.2 * 12))],
)
def test_geometric_matches_pil_inside(name: str, mag: float, data) -> None:
    img, x = _pil_image()
    if data is None:
        ref = img.rotate(mag, resample=Image.BILINEAR)  # PIL: counter-clockwise about the centre
    else:  # PIL AFFINE data maps output -> input; the constant puts the shear about the centre (12, 12)
        ref = img.transform(img.size, Image.AFFINE, data, resample=Image.BILINEAR)
    y = _run(name, x, torch.tensor([mag])) * 255
    assert (y - _to_tensor(ref))[..., 6:18, 6:18].abs().max() <= 1.01  # borders: PIL does not blend with 0


@pytest.mark.parametrize("shape", [(6, 3, 32, 32), (5, 1, 28, 20), (4, 3, 8, 13)])
def test_warp_equals_kornia_warp_affine(shape) -> None:
    # _warp builds grid_sample's matrix itself (kornia's per-call inverse costs ~1 ms on a GPU); non-square
    # images check the aspect terms, which square ones cannot
    import kornia

    from adaptaug.ops.image import _warp

    g = _gen(11)
    x = torch.rand(shape, generator=g)
    linear = torch.eye(2).repeat(shape[0], 1, 1) + 0.4 * torch.randn(shape[0], 2, 2, generator=g)
    h, w = shape[2:]
    centre = torch.tensor([(w - 1) / 2, (h - 1) / 2])
    forward = torch.cat([linear, (centre - linear @ centre).unsqueeze(-1)], dim=-1)  # about the centre
    expected = kornia.geometry.transform.warp_affine(x, forward, dsize=(h, w), mode="bilinear",
                                                     padding_mode="zeros", align_corners=True)
    changed = torch.ones(shape[0], dtype=torch.bool)
    torch.testing.assert_close(_warp(x, linear, changed), expected, atol=2e-5, rtol=0)


@pytest.mark.parametrize("shape", [(6, 3, 32, 32), (4, 1, 28, 28), (3, 3, 3, 5)])
def test_sharpness_equals_kornia(shape) -> None:
    # our separable 3x3 sums against Kornia's depthwise conv (torchvision's algorithm), per-sample factors
    # on both sides of 1; factor 1 (mag 0) must return the input bit for bit
    import kornia

    x = torch.rand(shape, generator=_gen(5))
    mag = torch.tensor([0.0, -0.9, 0.99, 0.5, -0.3, 0.2])[: shape[0]]
    out = _run("Sharpness", x, mag)
    torch.testing.assert_close(out, kornia.enhance.sharpness(x, 1 + mag), atol=1e-6, rtol=0)
    assert torch.equal(out[0], x[0])


@pytest.mark.parametrize("channels", [3, 1])
@pytest.mark.parametrize("family_name", ["warp", "blend"])
def test_op_family_kernel_equals_its_members_kernels(family_name, channels) -> None:
    # apply_plan runs a family's ops in one kernel; each sample must get exactly what its own op gives
    from adaptaug.ops.space import FAMILIES

    family = FAMILIES[family_name]
    g = _gen(3)
    x = _images(b=24, c=channels)
    member = torch.arange(24) % len(family.members)
    mags = torch.stack([_mags(family.members[int(m)], 1)[0] for m in member])
    mags[::5] = 0  # level 0 inside the family too
    out = family.fn(x, mags, g, member)
    for i, m in enumerate(member.tolist()):
        own = get_op(family.members[m]).fn(x[i:i + 1], mags[i:i + 1], g)
        assert torch.equal(out[i:i + 1], own), (family.members[m], i)


def test_apply_plan_runs_a_family_as_one_kernel_call(monkeypatch) -> None:
    from adaptaug.ops import space

    calls = []
    family = space.FAMILIES["warp"]
    counted = space.OpFamily(family.name, family.members, lambda *a: calls.append(1) or family.fn(*a))
    monkeypatch.setattr(space, "_FAMILY_OF", {**space._FAMILY_OF, **dict.fromkeys(family.members, counted)})
    ops = ("ShearX", "ShearY", "Rotate", "Brightness")
    op_ids = torch.tensor([[0], [1], [2], [3], [0], [2]])
    plan = AugPlan(ops=ops, op_ids=op_ids, magnitudes=torch.tensor([[0.2], [0.1], [20.0], [0.3], [-0.2], [5.0]]),
                   seed=0)
    x = _images(b=6)
    out = apply_plan(x, plan)
    assert len(calls) == 1  # three geometric ops, one warp
    for i in range(6):
        own = get_op(ops[int(op_ids[i, 0])]).fn(x[i:i + 1], plan.magnitudes[i], _gen())
        assert torch.equal(out[i:i + 1], own)


def _crop_then_flip(x: torch.Tensor, plan: AugPlan) -> torch.Tensor:
    """The crop+flip plan slot by slot through the ops' own kernels: the reference for the fused kernel."""
    g = torch.Generator().manual_seed(plan.seed)
    cropped = get_op("CropPad").fn(x, plan.magnitudes[:, 0], g)
    flip = (plan.op_ids[:, 1] == plan.ops.index("FlipLR")).view(-1, 1, 1, 1)
    return torch.where(flip, get_op("FlipLR").fn(cropped, plan.magnitudes[:, 1], g), cropped)


@pytest.mark.parametrize("shape", [(64, 3, 32, 32), (16, 1, 8, 8), (8, 3, 9, 13)])
def test_crop_then_flip_runs_fused_and_equals_the_two_slots(monkeypatch, shape) -> None:
    from adaptaug.ops import space
    from adaptaug.policies import StandardAugment

    calls = []
    fusion = space.FUSIONS[("CropPad", "FlipLR")]
    counted = space.SlotFusion(fusion.first, fusion.then, lambda *a: calls.append(a[-1]) or fusion.fn(*a))
    monkeypatch.setitem(space.FUSIONS, ("CropPad", "FlipLR"), counted)
    x = torch.rand(shape, generator=_gen(4))
    plan = StandardAugment(pad=max(1, shape[-1] // 8), generator=_gen(2)).sample(shape[0])
    out = apply_plan(x, plan)
    assert len(calls) == 1  # one kernel for both slots
    assert torch.equal(calls[0].cpu(), (plan.op_ids[:, 1] >= 0).long())
    assert torch.equal(out, _crop_then_flip(x, plan))
    assert 0 < int(calls[0].sum()) < shape[0]  # some flipped, some not: both paths were checked


def test_crop_flip_plans_that_do_not_fit_the_fusion_run_slot_by_slot(monkeypatch) -> None:
    # a crop slot with a NO_OP in it, or a second slot with another op besides FlipLR, runs unfused
    from adaptaug.ops import space

    def refuse(*a):
        raise AssertionError("fused where it should not be")

    monkeypatch.setitem(space.FUSIONS, ("CropPad", "FlipLR"), space.SlotFusion("CropPad", "FlipLR", refuse))
    x = _images(b=6)
    ops = ("CropPad", "FlipLR", "Brightness")
    mags = torch.tensor([[2.0, 0.0]] * 6)
    partial_crop = AugPlan(ops, torch.tensor([[0, 1], [NO_OP, 1], [0, NO_OP], [0, 1], [0, NO_OP], [0, 1]]), mags, 5)
    mixed_next = AugPlan(ops, torch.tensor([[0, 1], [0, 2], [0, NO_OP], [0, 1], [0, 2], [0, 1]]),
                         torch.tensor([[2.0, 0.0], [2.0, 0.3]] * 3), 5)
    for plan in (partial_crop, mixed_next):
        g = torch.Generator().manual_seed(plan.seed)
        expected = x.clone()
        for slot in range(2):
            for k, name in enumerate(ops):
                rows = (plan.op_ids[:, slot] == k).nonzero().squeeze(1)
                if len(rows):
                    expected[rows] = get_op(name).fn(expected[rows], plan.magnitudes[rows, slot], g)
        assert torch.equal(apply_plan(x, plan), expected)


@pytest.mark.parametrize("mask_shape", [(6, 1, 1, 1), (6, 1, 5, 7), (6, 3, 5, 7)])
def test_select_is_torch_where_bit_for_bit(mask_shape) -> None:
    # the kernels' lerp-based select (faster than torch.where on the CPU) must pick exactly, never blend
    from adaptaug.ops.image import _select

    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(6, 3, 5, 7, generator=g), torch.rand(6, 3, 5, 7, generator=g)
    mask = torch.rand(mask_shape, generator=g) > 0.5
    assert torch.equal(_select(mask, a, b), torch.where(mask, a, b))
    assert torch.equal(_select(mask, 0.5, b), torch.where(mask, torch.tensor(0.5), b))
    assert torch.equal(_select(mask, a.double(), b.double()), torch.where(mask, a.double(), b.double()))


@pytest.mark.parametrize("name", ["Rotate", "ShearX", "Brightness", "Contrast", "Sharpness"])
def test_magnitudes_get_gradients_through_the_kernels(name) -> None:
    # the kernels stay differentiable in their magnitudes (relaxed ops, Kornia-style), and the fast path without
    # autograd gives the same images
    x = _images(b=4)
    mag = (_mags(name, 4) * 0.5).requires_grad_(True)
    out = get_op(name).fn(x, mag, _gen())
    (grad,) = torch.autograd.grad(out.sum(), mag)
    assert torch.isfinite(grad).all() and (grad != 0).any()
    with torch.no_grad():
        assert torch.equal(get_op(name).fn(x, mag, _gen()), out.detach())
