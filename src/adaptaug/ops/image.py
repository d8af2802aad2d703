"""Batched image ops, registered at import time (modality ``"image"``).

The vocabulary and magnitude ranges follow AutoAugment (Cubuk et al., CVPR 2019), RandAugment
(Cubuk et al., NeurIPS-W 2020; ``range`` = torchvision's ``RandAugment`` space) and TrivialAugment
(Müller & Hutter, ICCV 2021; ``wide_range`` = torchvision's ``TrivialAugmentWide`` space). Photometric
ops follow PIL / torchvision semantics; Cutout is DeVries & Taylor (2017).

Every kernel is ``fn(images (B, C, H, W) float in [0, 1], magnitude (B,) signed op units, generator)``
and returns a tensor of the same shape, dtype and device, clamped to [0, 1], never modifying its input (``_kernel``
clamps the body's result in place unless it shares the input's memory). Each sample uses its own
magnitude; nothing loops over the batch. The only randomness besides the magnitude (Cutout centre,
CropPad offset) is drawn from ``generator``.

Choices that differ from torchvision's RandAugment / TrivialAugmentWide:
- Shear is about the image centre (torchvision shears about the top-left corner, as PIL does), so a
  sheared image does not drift sideways; rotation and shear use bilinear sampling (torchvision's default
  there is nearest).
- TranslateX/Y's wide range is half the image (TrivialAugmentWide's 32 px is the whole of a CIFAR image).
- Solarize inverts pixels strictly above the threshold, so magnitude 0 (threshold 1) is the identity.
- Posterize and Equalize quantise to 8 bits by rounding, not truncating, float pixels.
- Equalize also equalises images under ~256 pixels (8x8 digits), which PIL leaves unchanged.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from adaptaug.errors import DataError
from adaptaug.ops.space import OpFamily, OpSpec, SlotFusion, register_family, register_fusion, register_op

# The 14 ops of torchvision's RandAugment, in its order.
RANDAUGMENT_OPS: tuple[str, ...] = (
    "Identity", "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Brightness", "Color",
    "Contrast", "Sharpness", "Posterize", "Solarize", "AutoContrast", "Equalize",
)
# Ops that mirror the image; tasks whose classes are not mirror-symmetric (digits) exclude them.
GEOMETRIC_FLIP_OPS: tuple[str, ...] = ("FlipLR",)

# ITU-R 601-2 luma, the weights PIL's convert("L") and torchvision's rgb_to_grayscale use.
_LUMA = (0.2989, 0.587, 0.114)

ImageKernel = Callable[[Tensor, Tensor, torch.Generator], Tensor]


def _check(images: Tensor, magnitude: Tensor) -> None:
    if images.dim() != 4:
        raise DataError(f"images must be (B, C, H, W), got shape {tuple(images.shape)}")
    if not images.is_floating_point():
        raise DataError(f"images must be float in [0, 1], got dtype {images.dtype}")
    if magnitude.shape != (images.shape[0],):
        raise DataError(f"magnitude must be ({images.shape[0]},), one per sample, got {tuple(magnitude.shape)}")


def _kernel(body: Callable[[Tensor, Tensor, torch.Generator], Tensor] | None = None, *,
            in_range: bool = False) -> ImageKernel | Callable[[Callable], ImageKernel]:
    """Validate, run ``body`` in float32 for half inputs (bilinear warps and 8-bit LUTs need the
    precision), clamp to [0, 1] and hand back the input's dtype. ``in_range=True`` marks kernels whose
    output is exactly within [0, 1] by construction (moves, flips, LUTs): the clamp, a full pass over the
    batch, is skipped for them."""
    if body is None:
        return lambda f: _kernel(f, in_range=in_range)

    def fn(images: Tensor, magnitude: Tensor, generator: torch.Generator, *extra: Tensor) -> Tensor:
        _check(images, magnitude)
        work = images.float() if images.dtype in (torch.float16, torch.bfloat16) else images
        mag = magnitude.to(device=work.device, dtype=work.dtype)
        out = body(work, mag, generator, *extra)
        if not in_range:
            # in place on the body's own result (one allocation fewer: on the CPU fresh pages cost more than the
            # pass); never on the input, and not where autograd records it (magnitudes being learnt)
            out = out.clamp_(0.0, 1.0) if _owned(out, work) else out.clamp(0.0, 1.0)
        return out.to(images.dtype)

    fn.__name__ = body.__name__
    fn.__doc__ = body.__doc__
    return fn


def _owned(result: Tensor, images: Tensor) -> bool:
    """Whether a kernel may overwrite ``result`` in place: memory of its own (not the input ``images`` or a view
    of it), outside autograd."""
    shares_input = result.untyped_storage().data_ptr() == images.untyped_storage().data_ptr()
    return not shares_input and not (torch.is_grad_enabled() and result.requires_grad)


def _per_sample(v: Tensor) -> Tensor:
    return v.view(-1, 1, 1, 1)  # (B,) -> (B, 1, 1, 1), broadcasts over C, H, W


def _grayscale(images: Tensor) -> Tensor:
    if images.shape[1] == 1:
        return images
    if images.shape[1] != 3:
        raise DataError(f"colour ops need 1 or 3 channels, got {images.shape[1]}")
    r, g, b = images.unbind(1)
    return (_LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b).unsqueeze(1)  # (B, 1, H, W)


def _select(mask: Tensor, chosen: Tensor | float, other: Tensor) -> Tensor:
    """``torch.where(mask, chosen, other)`` for finite values, as a lerp whose weight is 0 or 1 (exact at both).
    On the CPU (torch 2.13) ``torch.where`` with a broadcast mask is 2x (a per-sample mask) to 10x (a per-pixel
    mask against a scalar) slower than one lerp pass; on a GPU both are one kernel."""
    if not isinstance(chosen, Tensor):
        chosen = torch.full((), chosen, dtype=other.dtype, device=other.device)
    return torch.lerp(other, chosen, mask.to(other.dtype))


def _select_(mask: Tensor, chosen: Tensor, other: Tensor) -> Tensor:
    """``_select`` written into ``other``, a tensor the kernel made itself (one allocation fewer)."""
    return other.lerp_(chosen, mask.to(other.dtype))


def _blend(images: Tensor, degenerate: Tensor, factor: Tensor) -> Tensor:
    # PIL ImageEnhance / torchvision _blend: f x + (1 - f) d, factor 0 gives the degenerate image, 1 the input.
    # As one lerp (one pass instead of three; lerp is exact at weight 1, so factor 1 returns the input bit for
    # bit). Extrapolating factors (> 1) are fine for lerp.
    return torch.lerp(degenerate, images, _per_sample(factor))


# ----------------------------------------------------------------------------------------------------
# Geometry


def _unit_coords(n: int, like: Tensor) -> Tensor:
    """Pixel centres of one axis in [-1, 1] (align_corners=True); a one-pixel axis sits at 0, as in affine_grid."""
    if n == 1:
        return torch.zeros(1, device=like.device, dtype=like.dtype)
    return torch.linspace(-1, 1, n, device=like.device, dtype=like.dtype)


def _warp(images: Tensor, linear: Tensor, changed: Tensor) -> Tensor:
    """Warp by per-sample linear maps about the image centre, ``linear`` (B, 2, 2) taking source to
    destination pixel offsets (x, y); bilinear, zero fill. Samples whose ``changed`` is False come back
    bit-exact (the identity warp is only exact up to rounding).

    The same result as kornia's ``warp_affine`` with ``align_corners=True``, without its per-call cost (a
    batched matrix inverse and normalisation matrices: ~1 ms a call on a GPU, most of a batch-64 step):
    grid_sample wants destination -> source in coordinates where -1 and 1 are the border pixels' centres,
    so the image centre is 0, a map about the centre has no translation, and with S = diag(2/(W-1), 2/(H-1))
    the sampling matrix is S L^-1 S^-1, written out below for 2x2 matrices.
    """
    n, _, h, w = images.shape
    a, b, c, d = (v.view(-1, 1, 1) for v in (linear[:, 0, 0], linear[:, 0, 1], linear[:, 1, 0], linear[:, 1, 1]))
    det = a * d - b * c
    aspect = (h - 1) / (w - 1) if w > 1 and h > 1 else 1.0  # sx / sy
    # The sampling grid by broadcasting, as affine_grid(align_corners=True) makes it but 3x cheaper on the CPU
    # than its batched matmul over an expanded base grid. The per-sample factors (B, 1, 1) take the 1/det and
    # the per-row / per-column terms stay (B, H, 1) / (B, 1, W), so each grid channel is one (B, H, W) pass
    # written in place: a third of the grid's former cost (stack + divisions), a quarter of the warp's.
    xs = _unit_coords(w, images).view(1, 1, w)
    ys = _unit_coords(h, images).view(1, h, 1)
    x_terms = ((d / det) * xs, (b * aspect / det) * ys)  # (B, 1, W), (B, H, 1)
    y_terms = ((a / det) * ys, (c / aspect / det) * xs)
    if torch.is_grad_enabled() and linear.requires_grad:  # out= records no autograd (magnitudes being learnt)
        grid = torch.stack([x_terms[0] - x_terms[1], y_terms[0] - y_terms[1]], dim=-1)
    else:
        grid = torch.empty(n, h, w, 2, dtype=images.dtype, device=images.device)
        torch.sub(*x_terms, out=grid[..., 0])
        torch.sub(*y_terms, out=grid[..., 1])
    warped = torch.nn.functional.grid_sample(images, grid, mode="bilinear", padding_mode="zeros",
                                             align_corners=True)
    select = _select_ if _owned(warped, images) else _select  # unchanged samples get the input bit for bit
    return select(_per_sample(~changed), images, warped)


def _shear_linear(mag: Tensor, axis: int) -> Tensor:
    # Forward map x' = x - m * y (ShearX), as PIL's AFFINE data (1, m, 0, 0, 1, 0) and torchvision's
    # shear=atan(m) give, but about the centre.
    linear = torch.eye(2, dtype=mag.dtype, device=mag.device).repeat(mag.shape[0], 1, 1)  # (B, 2, 2)
    linear[:, axis, 1 - axis] = -mag
    return linear


def _rotate_linear(mag: Tensor) -> Tensor:
    rad = torch.deg2rad(mag)
    cos, sin = torch.cos(rad), torch.sin(rad)
    # Counter-clockwise on screen with y pointing down: (1, 0) -> (cos, -sin).
    return torch.stack([torch.stack([cos, sin], -1), torch.stack([-sin, cos], -1)], -2)  # (B, 2, 2)


@_kernel
def shear_x(images: Tensor, mag: Tensor, generator: torch.Generator) -> Tensor:
    """Shear along x by factor ``mag`` (x' = x - mag * (y - cy))."""
    return _warp(images, _shear_linear(mag, axis=0), mag != 0)


@_kernel
def shear_y(images: Tensor, mag: Tensor, generator: torch.Generator) -> Tensor:
    """Shear along y by factor ``mag`` (y' = y - mag * (x - cx))."""
    return _warp(images, _shear_linear(mag, axis=1), mag != 0)


@_kernel
def rotate(images: Tensor, mag: Tensor, generator: torch.Generator) -> Tensor:
    """Rotate by ``mag`` degrees about the centre, counter-clockwise for positive (torchvision)."""
    return _warp(images, _rotate_linear(mag), mag != 0)


WARP_FAMILY = ("ShearX", "ShearY", "Rotate")


@_kernel
def warp_family(images: Tensor, mag: Tensor, generator: torch.Generator, member: Tensor) -> Tensor:
    """ShearX, ShearY and Rotate (``member`` 0, 1, 2 per sample) as one warp."""
    linear = torch.where((member == 2).view(-1, 1, 1), _rotate_linear(mag),
                         torch.where((member == 1).view(-1, 1, 1), _shear_linear(mag, axis=1),
                                     _shear_linear(mag, axis=0)))
    return _warp(images, linear, mag != 0)


def _reflect(index: Tensor, size: int) -> Tensor:
    """Mirror out-of-range indices back into [0, size) (numpy/torch 'reflect': edge not repeated);
    periodic, so shifts larger than the image still land inside."""
    if size == 1:
        return torch.zeros_like(index)
    period = 2 * (size - 1)
    r = index.remainder(period)
    return torch.where(r > size - 1, period - r, r)


def _shift(images: Tensor, dy: Tensor, dx: Tensor, reflect: bool, mirror: Tensor | None = None) -> Tensor:
    """Move content by integer (dy, dx) pixels per sample (B,) each: down/right for positive; then mirror
    left-right the samples whose ``mirror`` (B,) is nonzero.

    One gather through a per-sample map of flat source pixels, so it is exact (no resampling) and loop-free
    (a gather per axis is 3x slower on the CPU). Outside the image is filled with 0, or mirrored when
    ``reflect``.
    """
    b, c, h, w = images.shape
    rows = torch.arange(h, device=images.device).unsqueeze(0) - dy.unsqueeze(1)  # (B, H) source row
    out_cols = torch.arange(w, device=images.device).unsqueeze(0)  # (1, W)
    if mirror is not None:  # output column j shows the shifted image's column w - 1 - j
        out_cols = torch.where(mirror.unsqueeze(1) != 0, w - 1 - out_cols, out_cols)
    cols = out_cols - dx.unsqueeze(1)  # (B, W) source column
    if reflect:
        rows_in, cols_in = _reflect(rows, h), _reflect(cols, w)
    else:
        rows_in, cols_in = rows.clamp(0, h - 1), cols.clamp(0, w - 1)
    source = (rows_in.unsqueeze(2) * w + cols_in.unsqueeze(1)).view(b, 1, h * w)  # (B, 1, H*W) flat pixel
    out = images.reshape(b, c, h * w).gather(2, source.expand(b, c, h * w)).view(b, c, h, w)
    if not reflect:
        # zero fill as a product with a 0/1 mask (exact: the pixels are finite), 10x torch.where on the CPU
        rows_inside = ((rows >= 0) & (rows < h)).to(out.dtype).view(b, 1, h, 1)
        cols_inside = ((cols >= 0) & (cols < w)).to(out.dtype).view(b, 1, 1, w)
        out = out * (rows_inside * cols_inside)
    return out


@_kernel(in_range=True)
def translate_x(images: Tensor, mag: Tensor, generator: torch.Generator) -> Tensor:
    """Move content right by ``mag`` x width pixels (truncated to whole pixels, as torchvision's int())."""
    dx = torch.trunc(mag * images.shape[3]).long()
    return _shift(images, torch.zeros_like(dx), dx, reflect=False)


@_kernel(in_range=True)
def translate_y(images: Tensor, mag: Tensor, generator: torch.Generator) -> Tensor:
    """Move content down by ``mag`` x height pixels (truncated to whole pixels)."""
    dy = torch.trunc(mag * images.shape[2]).long()
    return _shift(images, dy, torch.zeros_like(dy), reflect=False)


@_kernel(in_range=True)
def crop_pad(images: Tensor, mag: Tensor, generator: torch.Generator, mirror: Tensor | None = None) -> Tensor:
    """Reflect-pad by p = round(mag) pixels, crop back at a random offset: a shift in [-p, p]^2. With
    ``mirror`` (B,): then FlipLR where it is nonzero, in the same gather (the CropPad + FlipLR fusion)."""
    p = mag.round().clamp(min=0)  # (B,)
    # Always two draws per sample, whatever p is, so the generator stream does not depend on magnitudes.
    u = torch.rand((images.shape[0], 2), generator=generator, device=images.device, dtype=torch.float32)
    span = (2 * p + 1).unsqueeze(1).float()  # (B, 1) number of offsets per axis
    offset = torch.minimum(torch.floor(u * span), span - 1)  # (B, 2) uniform in {0, ..., 2p}
    d = (offset - p.unsqueeze(1).float()).long()  # (B, 2) shift in [-p, p]
    return _shift(images, d[:, 0], d[:, 1], reflect=True, mirror=mirror)


@_kernel(in_range=True)
def flip_lr(images: Tensor, mag: Tensor, generator: torch.Generator) -> Tensor:
    """Mirror left-right."""
    return images.flip(-1)


@_kernel(in_range=True)
def cutout(images: Tensor, mag: Tensor, generator: torch.Generator) -> Tensor:
    """Fill a square of side round(mag x min(H, W)) with 0.5 grey; centre uniform, clipped at borders."""
    b, _, h, w = images.shape
    side = torch.round(mag.clamp(min=0) * min(h, w)).long()  # (B,) pixels
    u = torch.rand((b, 2), generator=generator, device=images.device, dtype=torch.float32)
    cy = torch.floor(u[:, 0] * h).long().clamp(max=h - 1)
    cx = torch.floor(u[:, 1] * w).long().clamp(max=w - 1)
    # Same box as DeVries & Taylor's reference: [c - side // 2, c - side // 2 + side).
    y0, x0 = (cy - side // 2).unsqueeze(1), (cx - side // 2).unsqueeze(1)  # (B, 1)
    ys = torch.arange(h, device=images.device).unsqueeze(0)  # (1, H)
    xs = torch.arange(w, device=images.device).unsqueeze(0)
    in_rows = (ys >= y0) & (ys < y0 + side.unsqueeze(1))  # (B, H)
    in_cols = (xs >= x0) & (xs < x0 + side.unsqueeze(1))  # (B, W)
    box = in_rows.view(b, 1, h, 1) & in_cols.view(b, 1, 1, w)  # (B, 1, H, W)
    return _select(box, 0.5, images)


# ----------------------------------------------------------------------------------------------------
# Colour


@_kernel
def brightness(images: Tensor, mag: Tensor, generator: torch.Generator) -> Tensor:
    """PIL Brightness: blend with black, i.e. images x (1 + mag). (kornia's adjust_brightness adds.)"""
    return _blend(images, images.new_zeros(()), 1 + mag)  # the blend family's arithmetic, bit for bit


@_kernel
def color(images: Tensor, mag: Tensor, generator: torch.Generator) -> Tensor:
    """PIL Color: blend with the grayscale image, factor 1 + mag; identity on 1-channel images.
    (kornia's adjust_saturation scales HSV saturation, which is not the same.)"""
    if images.shape[1] == 1:
        return images
    return _blend(images, _grayscale(images), 1 + mag)


@_kernel
def contrast(images: Tensor, mag: Tensor, generator: torch.Generator) -> Tensor:
    """PIL Contrast: blend with the mean of the grayscale image, factor 1 + mag.
    (kornia's adjust_contrast multiplies by the factor instead.)"""
    mean = _grayscale(images).mean(dim=(1, 2, 3), keepdim=True)  # (B, 1, 1, 1)
    return _blend(images, mean, 1 + mag)


BLEND_FAMILY = ("Brightness", "Color", "Contrast")


@_kernel
def blend_family(images: Tensor, mag: Tensor, generator: torch.Generator, member: Tensor) -> Tensor:
    """Brightness, Color and Contrast (``member`` 0, 1, 2 per sample) as one blend, each with its own
    degenerate image (black, grayscale, grayscale mean); the same arithmetic as the three kernels above."""
    gray = _grayscale(images)  # (B, 1, H, W)
    mean_or_black = gray.mean(dim=(1, 2, 3), keepdim=True) * _per_sample(member == 2)  # (B, 1, 1, 1): 0 for Brightness
    degenerate = _select(_per_sample(member == 1), gray, mean_or_black)  # one (B, 1, H, W) pass
    out = _blend(images, degenerate, 1 + mag)
    if images.shape[1] == 1:  # Color is the identity on one channel
        out = _select(_per_sample(member == 1), images, out)
    return out


@_kernel(in_range=True)  # clamped in place below
def sharpness(images: Tensor, mag: Tensor, generator: torch.Generator) -> Tensor:
    """PIL Sharpness: blend with the 3x3 SMOOTH-filtered image (weights 1, centre 5, over 13; borders kept),
    factor 1 + mag. The 3x3 sum is two separable passes of slice additions (torchvision and Kornia run a
    depthwise conv2d; this is 2-3x faster on the CPU and equal to them within float rounding)."""
    if images.shape[2] < 3 or images.shape[3] < 3:
        return images  # every pixel is a border pixel, which PIL leaves unchanged
    # in-place sums: the same additions in the same order, a third of the allocations
    rows = images[..., :, :-2] + images[..., :, 1:-1]
    rows += images[..., :, 2:]  # (B, C, H, W-2) horizontal sums
    box = rows[..., :-2, :] + rows[..., 1:-1, :]
    box += rows[..., 2:, :]  # (B, C, H-2, W-2) 3x3 sums
    inner = images[..., 1:-1, 1:-1]
    smooth = box.add_(inner, alpha=4).div_(13)  # 4 * inner is exact, so this is (box + 4 * inner) / 13
    out = images.clone()  # the border stays the input, as PIL's
    # lerp(smooth, x, f) = f x + (1 - f) smooth, exact at f = 1 (mag 0 is the identity)
    out[..., 1:-1, 1:-1] = torch.lerp(smooth, inner, _per_sample(1 + mag))
    return out.clamp_(0.0, 1.0)


def _to_levels(images: Tensor) -> Tensor:
    return images.clamp(0.0, 1.0).mul_(255).round_()  # exact integers 0..255 as floats


@_kernel(in_range=True)
def posterize(images: Tensor, mag: Tensor, generator: torch.Generator) -> Tensor:
    """Drop the low round(mag) bits of each 8-bit level."""
    removed = mag.round().clamp(0, 8)
    step = _per_sample(torch.exp2(removed))  # (B, 1, 1, 1) = 2 ** bits removed
    posterized = _to_levels(images).div_(step).floor_().mul_(step).div_(255)  # in place on a new tensor
    # 0 bits removed returns the input itself, not its 8-bit rounding, so level 0 is a true identity.
    return _select_(_per_sample(removed == 0), images, posterized)


@_kernel(in_range=True)
def solarize(images: Tensor, mag: Tensor, generator: torch.Generator) -> Tensor:
    """Invert pixels above threshold 1 - mag. Strictly above, so mag 0 is the identity; torchvision and
    kornia invert at >= threshold, which differs only for pixels exactly at the threshold."""
    threshold = _per_sample(1 - mag)
    return _select_(images <= threshold, images, 1 - images)


@_kernel
def auto_contrast(images: Tensor, mag: Tensor, generator: torch.Generator) -> Tensor:
    """Stretch each channel of each sample to [0, 1]; constant channels are left as they are."""
    low = images.amin(dim=(2, 3), keepdim=True)  # (B, C, 1, 1)
    high = images.amax(dim=(2, 3), keepdim=True)
    flat = high <= low
    scale = torch.where(flat, torch.ones_like(high), 1 / (high - low).clamp(min=1e-12))
    return (images - torch.where(flat, torch.zeros_like(low), low)) * scale


@_kernel(in_range=True)
def equalize(images: Tensor, mag: Tensor, generator: torch.Generator) -> Tensor:
    """PIL ImageOps.equalize per sample and channel on the rounded 8-bit levels, batched.

    PIL's LUT is lut[i] = (step // 2 + #pixels below level i) // step with the integer
    step = (#pixels - #pixels at the top level) // 255, and it leaves a channel unchanged when step is 0,
    i.e. on any image under ~256 pixels (every 8x8 digit). There we use the exact fractional step instead,
    so tiny images are equalised too; wherever PIL's step is >= 1 the result is PIL's.
    (kornia 0.9's equalize is batched and PIL-exact, but keeps PIL's no-op on small images and truncates
    x * 255 instead of rounding.)
    """
    b, c, h, w = images.shape
    flat = images.flatten(0, 1).flatten(1)  # (B*C, H*W)
    index = _to_levels(flat).long()  # (B*C, H*W) 8-bit levels
    count_dtype = torch.float64 if images.dtype == torch.float64 else torch.float32  # counts exact to 2**24
    hist = torch.zeros(b * c, 256, dtype=count_dtype, device=images.device)
    # (B*C, 256); a tensor of ones (a broadcast 1 made scatter_add_ 1.6x slower on the CPU)
    hist.scatter_add_(1, index, torch.ones(index.shape, dtype=count_dtype, device=images.device))
    top = torch.where(hist > 0, torch.arange(256, device=images.device), 0).amax(1, keepdim=True)
    below_top = hist.sum(1, keepdim=True) - hist.gather(1, top)  # (B*C, 1) pixels under the top level
    step = torch.floor(below_top / 255)
    step = torch.where(step >= 1, step, below_top / 255)  # fractional step where PIL's would be 0
    below = hist.cumsum(1) - hist  # (B*C, 256) pixels strictly below each level
    half = torch.where(step >= 1, torch.floor(step / 2), step / 2)  # PIL's n = step // 2
    lut = torch.floor((half + below) / step.clamp(min=1e-12)).clamp(max=255)  # (B*C, 256)
    out = lut.to(images.dtype).div_(255).gather(1, index)  # scaled on the 256-entry table, not on every pixel
    # One level only (below_top == 0): unchanged, as PIL.
    return _select_(below_top == 0, flat, out).view(b, c, h, w)


@_kernel(in_range=True)
def identity(images: Tensor, mag: Tensor, generator: torch.Generator) -> Tensor:
    """Return the input (as a new tensor)."""
    return images.clone()


# ----------------------------------------------------------------------------------------------------
# Registry: range = torchvision RandAugment (num_bins 31 -> level 1), wide_range = TrivialAugmentWide.

_ENHANCE = dict(range=(0.0, 0.9), wide_range=(0.0, 0.99), signed=True)

for _spec in (
    OpSpec("Identity", "image", identity, has_magnitude=False, doc="no change"),
    OpSpec("ShearX", "image", shear_x, range=(0.0, 0.3), wide_range=(0.0, 0.99), signed=True,
           doc="shear factor along x, about the centre"),
    OpSpec("ShearY", "image", shear_y, range=(0.0, 0.3), wide_range=(0.0, 0.99), signed=True,
           doc="shear factor along y, about the centre"),
    # torchvision: 150/331 of the size; TrivialAugmentWide's 32 px would be the whole CIFAR image, so
    # the wide space stops at half of it.
    OpSpec("TranslateX", "image", translate_x, range=(0.0, 0.45), wide_range=(0.0, 0.5), signed=True,
           doc="shift right by a fraction of the width"),
    OpSpec("TranslateY", "image", translate_y, range=(0.0, 0.45), wide_range=(0.0, 0.5), signed=True,
           doc="shift down by a fraction of the height"),
    OpSpec("Rotate", "image", rotate, range=(0.0, 30.0), wide_range=(0.0, 135.0), signed=True,
           doc="degrees, counter-clockwise for positive"),
    OpSpec("Brightness", "image", brightness, **_ENHANCE, doc="factor 1 + m, blend with black"),
    OpSpec("Color", "image", color, **_ENHANCE, doc="factor 1 + m, blend with grayscale"),
    OpSpec("Contrast", "image", contrast, **_ENHANCE, doc="factor 1 + m, blend with the grayscale mean"),
    OpSpec("Sharpness", "image", sharpness, **_ENHANCE, doc="factor 1 + m, blend with the smoothed image"),
    OpSpec("Posterize", "image", posterize, range=(0.0, 4.0), wide_range=(0.0, 6.0),
           doc="bits removed from 8-bit levels"),
    OpSpec("Solarize", "image", solarize, range=(0.0, 1.0), wide_range=(0.0, 1.0),
           doc="1 - threshold; pixels above the threshold are inverted"),
    OpSpec("AutoContrast", "image", auto_contrast, has_magnitude=False, identity_at_zero=False,
           doc="per-channel min-max stretch"),
    OpSpec("Equalize", "image", equalize, has_magnitude=False, identity_at_zero=False,
           doc="per-channel histogram equalisation (PIL)"),
    OpSpec("Cutout", "image", cutout, range=(0.0, 0.5), wide_range=(0.0, 0.5),
           doc="grey square, side as a fraction of min(H, W)"),
    OpSpec("FlipLR", "image", flip_lr, has_magnitude=False, identity_at_zero=False, doc="mirror left-right"),
    OpSpec("CropPad", "image", crop_pad, range=(0.0, 4.0), wide_range=(0.0, 4.0),
           doc="reflect-pad by m pixels, random crop back"),
):
    register_op(_spec)
del _spec
register_family(OpFamily("warp", WARP_FAMILY, warp_family))
register_family(OpFamily("blend", BLEND_FAMILY, blend_family))
register_fusion(SlotFusion("CropPad", "FlipLR", crop_pad))  # the crop+flip recipe in one gather
