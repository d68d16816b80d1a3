"""Batched, device-following augmentation: geometric warps that move images AND points, and photometric jitter.

Random parameters are drawn on the CPU from an optional ``torch.Generator`` (so a seed gives the same
augmentation on any device) and moved to the images' device; the pixel work runs there. Images are float
(B, C, H, W) in [0, 1]; points are (B, K, 2) pixel (x, y) with pixel centres at integers (NaN stays NaN).

A :class:`Warp` maps each *output* location to the *source* location it samples (normalised [-1, 1]
coordinates, ``align_corners=False``): an affine part (rotation, scale, translation) plus a thin-plate spline
through a grid of randomly displaced control points. Points are moved by inverting that map numerically.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .errors import InvalidImageError, InvalidOptionError

Size = tuple[int, int]
SOURCE_GRID = 128  # Warp.images evaluates the source map on at most this many points per side, then interpolates
_PCA_EIGVAL = torch.tensor([0.2175, 0.0188, 0.0045])
_PCA_EIGVEC = torch.tensor([[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140], [-0.5836, -0.6948, 0.4203]])


def _uniform(shape: tuple[int, ...], lo: float, hi: float, generator: torch.Generator | None) -> torch.Tensor:
    return torch.rand(shape, generator=generator) * (hi - lo) + lo


def _tps_kernel(r2: torch.Tensor) -> torch.Tensor:
    """U(r) = r^2 log r^2, with U(0) = 0."""
    return r2 * torch.log(r2.clamp_min(1e-12))


def _control_grid(n: int) -> torch.Tensor:
    lin = torch.linspace(-1.0, 1.0, n)
    gy, gx = torch.meshgrid(lin, lin, indexing="ij")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)  # (n*n, 2)


def _tps_coefficients(ctrl: torch.Tensor, disp: torch.Tensor) -> torch.Tensor:
    """Solve the TPS system for control points (n, 2) and displacements (B, n, 2) → (B, n + 3, 2)."""
    n = ctrl.shape[0]
    k = _tps_kernel(torch.cdist(ctrl, ctrl).pow(2))
    p = torch.cat([torch.ones(n, 1), ctrl], dim=1)
    lhs = torch.zeros(n + 3, n + 3)
    lhs[:n, :n], lhs[:n, n:], lhs[n:, :n] = k, p, p.T
    rhs = torch.cat([disp, torch.zeros(disp.shape[0], 3, 2)], dim=1)
    return torch.linalg.solve(lhs, rhs)


@dataclass(frozen=True)
class Warp:
    """A batch of geometric transforms, output → source, in normalised coordinates."""

    size: Size
    affine: torch.Tensor  # (B, 2, 3): src = A @ [x, y] + t
    ctrl: torch.Tensor  # (n, 2) TPS control points
    coef: torch.Tensor  # (B, n + 3, 2) TPS coefficients (zeros for no TPS)

    @property
    def batch(self) -> int:
        return int(self.affine.shape[0])

    def to(self, device: torch.device | str) -> Warp:
        return Warp(self.size, self.affine.to(device), self.ctrl.to(device), self.coef.to(device))

    def source(self, xy: torch.Tensor) -> torch.Tensor:
        """Source location of output locations ``xy`` (B, N, 2), normalised."""
        a = self.affine.to(xy)
        out = torch.einsum("bij,bnj->bni", a[:, :, :2], xy) + a[:, :, 2].unsqueeze(1)
        ctrl, coef = self.ctrl.to(xy), self.coef.to(xy)
        n = ctrl.shape[0]
        u = _tps_kernel(((xy.unsqueeze(2) - ctrl) ** 2).sum(-1))  # (B, N, n)
        tps = u @ coef[:, :n] + coef[:, n].unsqueeze(1) + xy[..., :1] * coef[:, n + 1].unsqueeze(1) \
            + xy[..., 1:] * coef[:, n + 2].unsqueeze(1)
        return out + tps

    def images(self, images: torch.Tensor, *, padding: str = "border") -> torch.Tensor:
        """Resample images (B, C, H, W) through the warp (bilinear)."""
        b, _, h, w = images.shape
        if (h, w) != tuple(self.size) or b != self.batch:
            raise InvalidImageError(f"Warp made for {self.batch} images of {self.size}; got images "
                                    f"{tuple(images.shape)}. Expected ({self.batch}, C, *{tuple(self.size)}): "
                                    "make the warp with random_warp(n, size) for these images.")
        # the source map at every pixel centre; on large images it is evaluated on a SOURCE_GRID lattice spanning
        # the same corner pixel centres and interpolated bilinearly: exact for the affine part, within 0.06 px for
        # the smooth TPS part (tests/test_augment.py), and ~15x cheaper on a 500 px image
        gh, gw = min(h, SOURCE_GRID), min(w, SOURCE_GRID)
        ys = torch.linspace(1 / h - 1, 1 - 1 / h, gh, device=images.device, dtype=images.dtype)
        xs = torch.linspace(1 / w - 1, 1 - 1 / w, gw, device=images.device, dtype=images.dtype)
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        grid = torch.stack([gx, gy], dim=-1).reshape(1, -1, 2).expand(b, -1, -1)
        src = self.source(grid).reshape(b, gh, gw, 2)
        if (gh, gw) != (h, w):
            src = F.interpolate(src.permute(0, 3, 1, 2), size=(h, w), mode="bilinear",
                                align_corners=True).permute(0, 2, 3, 1)
        return F.grid_sample(images, src, mode="bilinear", padding_mode=padding, align_corners=False)

    def points(self, points: torch.Tensor, *, iterations: int = 30) -> torch.Tensor:
        """Move pixel points (B, K, 2) of the source images to where the warp puts them in the output."""
        h, w = self.size
        scale = torch.tensor([w, h], dtype=points.dtype, device=points.device)
        target = (2 * points + 1) / scale - 1
        a = self.affine.to(target)
        a_inv = torch.linalg.inv(a[:, :, :2])
        # Fixed-point iteration with the affine part's inverse as the Jacobian estimate.
        x = torch.einsum("bij,bnj->bni", a_inv, target - a[:, :, 2].unsqueeze(1))
        x = torch.nan_to_num(x)
        for _ in range(iterations):
            x = x - torch.einsum("bij,bnj->bni", a_inv, self.source(x) - torch.nan_to_num(target))
        x = torch.where(torch.isnan(target), target, x)
        return ((x + 1) * scale - 1) / 2


def random_warp(
    n: int,
    *,
    size: Size,
    tps: float = 0.05,
    rotation: float = 0.0,
    scale: tuple[float, float] = (1.0, 1.0),
    translate: float = 0.0,
    grid: int = 4,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Warp:
    """``n`` random warps: rotation ~ U(±rotation) degrees, zoom ~ U(scale), shift ~ U(±translate) (fraction of
    the half-side), TPS control-point displacements ~ U(±tps) (fraction of the half-side) on a grid×grid lattice."""
    if n < 1 or grid < 2 or tps < 0 or rotation < 0 or translate < 0 or not 0 < scale[0] <= scale[1]:
        raise InvalidOptionError(f"random_warp: invalid options n={n}, grid={grid}, tps={tps}, rotation={rotation}, "
                                 f"scale={scale}, translate={translate}. Expected n >= 1, grid >= 2, tps, rotation "
                                 "and translate >= 0, and 0 < scale[0] <= scale[1].")
    theta = _uniform((n,), -rotation, rotation, generator) * math.pi / 180
    zoom = _uniform((n,), scale[0], scale[1], generator)
    shift = _uniform((n, 2), -translate, translate, generator)
    cos, sin = torch.cos(theta) / zoom, torch.sin(theta) / zoom
    affine = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    ctrl = _control_grid(grid)
    disp = _uniform((n, ctrl.shape[0], 2), -tps, tps, generator)
    warp = Warp(tuple(size), affine, ctrl, _tps_coefficients(ctrl, disp))  # type: ignore[arg-type]
    return warp.to(device) if device is not None else warp


def warp(
    images: torch.Tensor,
    points: torch.Tensor | None = None,
    *,
    tps: float = 0.05,
    rotation: float = 0.0,
    scale: tuple[float, float] = (1.0, 1.0),
    translate: float = 0.0,
    grid: int = 4,
    padding: str = "border",
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Warp a batch of images and (optionally) their points with one random transform per image."""
    w = random_warp(images.shape[0], size=(images.shape[-2], images.shape[-1]), tps=tps, rotation=rotation,
                    scale=scale, translate=translate, grid=grid, generator=generator, device=images.device)
    return w.images(images, padding=padding), (None if points is None else w.points(points))


def _factors(b: int, amount: float, generator: torch.Generator | None, like: torch.Tensor) -> torch.Tensor:
    return _uniform((b,), max(0.0, 1 - amount), 1 + amount, generator).to(like).view(b, 1, 1, 1)


def _grey(images: torch.Tensor) -> torch.Tensor:
    r, g, b = images[:, 0:1], images[:, 1:2], images[:, 2:3]
    return 0.299 * r + 0.587 * g + 0.114 * b


def color_jitter(
    images: torch.Tensor,
    *,
    brightness: float = 0.4,
    contrast: float = 0.4,
    saturation: float = 0.4,
    hue: float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Brightness, contrast and saturation factors ~ U(1 ± amount) per image; hue shift ~ U(±hue) turns
    (rotation of the chroma plane in YIQ). Result clamped to [0, 1]."""
    b = images.shape[0]
    x = images * _factors(b, brightness, generator, images)
    x = x.clamp(0, 1)
    mean = _grey(x).mean(dim=(1, 2, 3), keepdim=True)
    x = ((x - mean) * _factors(b, contrast, generator, images) + mean).clamp(0, 1)
    grey = _grey(x)
    x = ((x - grey) * _factors(b, saturation, generator, images) + grey).clamp(0, 1)
    if hue > 0:
        to_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]]).to(x)
        ang = _uniform((b,), -hue, hue, generator).to(x) * 2 * math.pi
        c, s = torch.cos(ang), torch.sin(ang)
        rot = torch.zeros(b, 3, 3, dtype=x.dtype, device=x.device)
        rot[:, 0, 0] = 1
        rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = c, -s, s, c
        m = torch.linalg.inv(to_yiq) @ rot @ to_yiq
        x = torch.einsum("bij,bjhw->bihw", m, x).clamp(0, 1)
    return x


def pca_lighting(images: torch.Tensor, *, std: float = 0.1, generator: torch.Generator | None = None) -> torch.Tensor:
    """AlexNet-style lighting noise along the ImageNet RGB principal components."""
    alpha = torch.randn((images.shape[0], 3), generator=generator) * std
    rgb = (alpha * _PCA_EIGVAL) @ _PCA_EIGVEC.T
    return (images + rgb.to(images).view(-1, 3, 1, 1)).clamp(0, 1)


def gaussian_blur(
    images: torch.Tensor,
    *,
    sigma: tuple[float, float] = (0.1, 2.0),
    p: float = 0.5,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Blur each image with probability ``p`` by a Gaussian of sigma ~ U(sigma) pixels (separable, batched)."""
    b, c, h, w = images.shape
    sig = _uniform((b,), sigma[0], sigma[1], generator)
    apply = torch.rand((b,), generator=generator) < p
    if not bool(apply.any()):
        return images
    radius = max(1, min(math.ceil(3 * sigma[1]), (min(h, w) - 1) // 2))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-(t.view(1, -1) ** 2) / (2 * sig.view(-1, 1) ** 2))
    k = k / k.sum(dim=1, keepdim=True)
    k = torch.where(apply.view(-1, 1), k, (t == 0).float().view(1, -1))  # identity kernel when not applied
    k = k.to(images).repeat_interleave(c, dim=0)  # (B*C, taps)
    x = images.reshape(1, b * c, h, w)
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), k.view(b * c, 1, 1, -1), groups=b * c)
    x = F.conv2d(F.pad(x, (0, 0, radius, radius), mode="reflect"), k.view(b * c, 1, -1, 1), groups=b * c)
    return x.reshape(b, c, h, w)


def random_resized_crop(
    images: torch.Tensor,
    *,
    size: Size | int,
    scale: tuple[float, float] = (0.2, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    generator: torch.Generator | None = None,
    return_warp: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, Warp]:
    """Crop a random box of area fraction ~ U(scale) and aspect ~ log-U(ratio) from each image and resize it
    to ``size`` (bilinear), like torchvision's RandomResizedCrop but batched through one affine grid.

    ``return_warp=True`` also returns the crop as a :class:`Warp` (output → source, no TPS), so that
    ``warp.source`` maps any output location to the input location it shows."""
    out = (size, size) if isinstance(size, int) else tuple(size)
    b = images.shape[0]
    area = _uniform((b,), scale[0], scale[1], generator)
    logr = _uniform((b,), math.log(ratio[0]), math.log(ratio[1]), generator)
    ar = torch.exp(logr)
    bw = torch.sqrt(area * ar).clamp(max=1.0)  # fraction of the width
    bh = torch.sqrt(area / ar).clamp(max=1.0)
    cx = (torch.rand((b,), generator=generator) * 2 - 1) * (1 - bw)
    cy = (torch.rand((b,), generator=generator) * 2 - 1) * (1 - bh)
    zero = torch.zeros(b)
    theta = torch.stack([torch.stack([bw, zero, cx], 1), torch.stack([zero, bh, cy], 1)], 1)
    grid = F.affine_grid(theta.to(images), [b, images.shape[1], *out], align_corners=False)
    result = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if not return_warp:
        return result
    ctrl = _control_grid(2)
    crop = Warp(out, theta, ctrl, torch.zeros(b, ctrl.shape[0] + 3, 2))  # type: ignore[arg-type]
    return result, crop.to(images.device)


def pixel_grid(size: Size, grid: Size, *, offset: float = 0.0, frame: int | None = None,
               device: torch.device | str | None = None) -> torch.Tensor:
    """Centres of a ``grid`` (h, w) of cells tiling an image of ``size`` (H, W) pixels, shifted by ``offset``
    pixels and expressed in the normalised coordinates ([-1, 1], align_corners=False) of a ``frame`` × ``frame``
    image (default: the image itself): (h, w, 2) (x, y)."""
    (hh, ww), (gh, gw) = size, grid
    ys = (torch.arange(gh, dtype=torch.float32, device=device) + 0.5) * hh / gh - 0.5 + offset
    xs = (torch.arange(gw, dtype=torch.float32, device=device) + 0.5) * ww / gw - 0.5 + offset
    fy, fx = (frame, frame) if frame is not None else (hh, ww)
    gy, gx = torch.meshgrid((2 * ys + 1) / fy - 1, (2 * xs + 1) / fx - 1, indexing="ij")
    return torch.stack([gx, gy], dim=-1)


__all__ = ["Warp", "color_jitter", "gaussian_blur", "pca_lighting", "pixel_grid", "random_resized_crop", "random_warp",
           "warp"]
