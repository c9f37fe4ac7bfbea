"""Image-quality metrics of predicted frames as pure functions (one value per frame).

Frames are float tensors ``(B, C, H, W)`` on a scale from 0 to ``data_range`` (255 for uint8
frames converted to float, 2 for frames in [-1, 1]). Every function returns a float tensor
``(B,)``; averaging over frames is the caller's choice.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: Cap used when averaging PSNR/sharpness over frames: identical frames have infinite PSNR, and
#: 100 dB is above any pair of distinct uint8 frames (one pixel off by one in a 64x64 RGB frame
#: is 88.9 dB), so capping there changes no finite value of 8-bit frames.
PSNR_CAP_DB = 100.0


def _check_pair(predicted: torch.Tensor, target: torch.Tensor) -> None:
    if predicted.shape != target.shape or predicted.dim() != 4:
        raise ValueError(f"expected two (B, C, H, W) tensors of the same shape, got "
                         f"{tuple(predicted.shape)} and {tuple(target.shape)}")


def psnr(predicted: torch.Tensor, target: torch.Tensor, data_range: float = 255.0,
         cap: float | None = None) -> torch.Tensor:
    """Peak signal-to-noise ratio ``10 log10(data_range^2 / MSE)`` in dB per frame.

    Identical frames (MSE 0) give ``inf``, or ``cap`` when a cap is given (every value is then
    clipped to at most ``cap``).
    """
    _check_pair(predicted, target)
    mse = (predicted.double() - target.double()).pow(2).flatten(1).mean(dim=1)
    value = 10.0 * torch.log10(data_range**2 / mse)  # inf where mse == 0
    if cap is not None:
        value = value.clamp(max=cap)
    return value.float()


def _gaussian_kernel(size: int, sigma: float, dtype: torch.dtype,
                     device: torch.device) -> torch.Tensor:
    """1-D Gaussian of ``size`` taps summing to 1."""
    coords = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    kernel = torch.exp(-coords.pow(2) / (2 * sigma**2))
    return kernel / kernel.sum()


def ssim(predicted: torch.Tensor, target: torch.Tensor, data_range: float = 255.0,
         window: int = 11, sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004) with a Gaussian window, per frame (at most 1).

    Local means, variances and covariance come from a ``window`` x ``window`` Gaussian
    (``sigma`` pixels, applied as two 1-D passes) over each channel, without padding (only full
    windows count; the window shrinks to the frame for frames smaller than it). The SSIM map is
    averaged over positions and channels. Identical frames give 1.
    """
    _check_pair(predicted, target)
    batch, channels, height, width = predicted.shape
    # Work on [0, 1] in float32, one channel per image: fast and precise enough.
    x = (predicted.float() / data_range).reshape(batch * channels, 1, height, width)
    y = (target.float() / data_range).reshape(batch * channels, 1, height, width)
    kernel = _gaussian_kernel(min(window, height, width), sigma, x.dtype, x.device)

    def blur(t: torch.Tensor) -> torch.Tensor:
        t = F.conv2d(t, kernel.view(1, 1, -1, 1))
        return F.conv2d(t, kernel.view(1, 1, 1, -1))

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x.pow(2)
    var_y = blur(y * y) - mu_y.pow(2)
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = k1**2, k2**2
    value = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)
             / ((mu_x.pow(2) + mu_y.pow(2) + c1) * (var_x + var_y + c2)))
    return value.reshape(batch, -1).mean(dim=1)


def gradient_magnitude(frames: torch.Tensor) -> torch.Tensor:
    """``|dx| + |dy|`` per pixel (differences to the left and upper neighbour; 0 on the first
    row/column), ``(B, C, H, W)``."""
    dx = F.pad((frames[..., :, 1:] - frames[..., :, :-1]).abs(), (1, 0, 0, 0))
    dy = F.pad((frames[..., 1:, :] - frames[..., :-1, :]).abs(), (0, 0, 1, 0))
    return dx + dy


def sharpness(predicted: torch.Tensor, target: torch.Tensor, data_range: float = 255.0,
              cap: float | None = None) -> torch.Tensor:
    """Sharpness difference (Mathieu et al. 2016) in dB per frame; higher is sharper.

    ``10 log10(data_range^2 / mean |G(T) - G(P)|)`` where ``G`` is :func:`gradient_magnitude`:
    a blurred prediction loses the true frame's edges and scores lower. Identical gradient
    maps give ``inf`` (or ``cap``).
    """
    _check_pair(predicted, target)
    diff = (gradient_magnitude(target.double()) - gradient_magnitude(predicted.double()))
    mean = diff.abs().flatten(1).mean(dim=1)
    value = 10.0 * torch.log10(data_range**2 / mean)
    if cap is not None:
        value = value.clamp(max=cap)
    return value.float()

