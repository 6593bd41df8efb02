"""Continuously rotated digits, the input of the report's uncertainty experiments (section 3)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def rotate_images(images: torch.Tensor, angles_deg) -> torch.Tensor:
    """Rotate each image of a ``(N, C, H, W)`` batch about its centre, counter-clockwise, by degrees.

    ``angles_deg`` is a scalar (one angle for all) or one angle per image. Bilinear interpolation,
    zeros outside, so a black background stays black.
    """
    if images.dim() != 4:
        raise ValueError(f"images must be a (N, C, H, W) batch, got shape {tuple(images.shape)}")
    angles = torch.as_tensor(angles_deg, dtype=images.dtype, device=images.device).reshape(-1)
    if angles.numel() == 1:
        angles = angles.expand(images.shape[0])
    if angles.numel() != images.shape[0]:
        raise ValueError(f"got {angles.numel()} angles for {images.shape[0]} images")
    radians = torch.deg2rad(angles)
    cos, sin = torch.cos(radians), torch.sin(radians)
    zero = torch.zeros_like(cos)
    # affine_grid maps output to input coordinates, so the inverse rotation appears here.
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def rotation_series(image: torch.Tensor, max_angle: float = 180.0, steps: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    """One image rotated in ``steps`` equal increments from 0 to ``max_angle`` degrees (inclusive).

    Returns the ``(steps, C, H, W)`` batch and the angles used, as in the report's Fig. 18–21.
    """
    if image.dim() == 4 and image.shape[0] == 1:
        image = image[0]
    if image.dim() != 3:
        raise ValueError(f"image must be (C, H, W) or (1, C, H, W), got shape {tuple(image.shape)}")
    angles = torch.linspace(0.0, max_angle, steps, dtype=image.dtype)
    return rotate_images(image.unsqueeze(0).expand(steps, -1, -1, -1), angles), angles
