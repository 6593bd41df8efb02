"""DeepDream: amplify what a layer (or one channel) detects in an image by gradient ascent (section 2.1.2)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from ..core.progress import progress as progress_bar

from ..core.base import check_inputs
from ..core.hooks import borrowed
from ..core.layers import find_layer


class _Reached(Exception):
    """Raised by the layer's hook: nothing after the objective layer needs to run."""


def _stop_at(captured: dict):
    def hook(module, args, output):
        captured["output"] = output
        raise _Reached

    return hook


class DeepDream:
    """DeepDream (Mordvintsev, Olah & Tyka 2015; the report's section 2.1.2, Fig. 4–5).

    Gradient ascent on the input image maximises the mean activation of ``layer`` (Fig. 4) or of one
    of its channels (Fig. 5). As in the report, the image is processed over an octave pyramid (small
    to large, the detail gained at one scale carried to the next), randomly rolled at every step
    (transformation robustness), and regularised by an L2 penalty and Gaussian noise added at every
    octave (frequency penalisation). Gradients are normalised by their mean magnitude, and may be
    computed tile by tile so that memory does not grow with the image size.

    Parameters
    ----------
    model : nn.Module
        Any network; left unchanged.
    layer : nn.Module or str
        The layer whose output is the objective, as a module or a dotted name (``"features.4"``).
    channel : int, optional
        Maximise only this channel of the layer's output; ``None`` maximises the whole layer.
    """

    def __init__(self, model: nn.Module, layer, channel: int | None = None):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.model = model
        self.layer_name, self.layer = find_layer(model, layer)
        if channel is not None and (isinstance(channel, bool) or not isinstance(channel, int) or channel < 0):
            raise ValueError(f"channel must be a non-negative int or None, got {channel!r}")
        self.channel = channel

    def _objective_gradient(self, x: torch.Tensor, captured: dict, total: int | None = None):
        """Gradient of the summed objective activation over ``x``, divided by ``total`` elements."""
        x = x.detach().requires_grad_(True)
        self._run_to_layer(x)
        activation = captured.pop("output")
        if self.channel is not None:
            if activation.dim() < 2 or self.channel >= activation.shape[1]:
                raise ValueError(
                    f"channel {self.channel} is out of range for layer {self.layer_name!r} with output shape "
                    f"{tuple(activation.shape)}"
                )
            activation = activation[:, self.channel]
        total = total or activation[0].numel()
        (gradient,) = torch.autograd.grad(activation.sum() / total, x)
        return gradient, activation

    def _run_to_layer(self, x: torch.Tensor) -> None:
        try:
            self.model(x)
        except _Reached:
            return
        raise ValueError(f"the forward pass never reached layer {self.layer_name!r}")

    def objective(self, image: torch.Tensor) -> torch.Tensor:
        """The mean activation of the layer (or channel) for each image of a batch, shape ``(N,)``."""
        image = check_inputs(image, min_dim=4)
        captured = {}
        with borrowed(self.model), torch.no_grad():
            self.layer.register_forward_hook(_stop_at(captured))
            self._run_to_layer(image)
            activation = captured["output"]
            if self.channel is not None:
                activation = activation[:, self.channel]
        return activation.flatten(1).mean(1)

    def _gradient(self, x: torch.Tensor, captured: dict, tile_size: int | None) -> torch.Tensor:
        if tile_size is None or (x.shape[-1] <= tile_size and x.shape[-2] <= tile_size):
            return self._objective_gradient(x, captured)[0]
        # Each tile goes through the model alone; dividing every tile's summed activation by the whole
        # image's number of output elements makes the stitched gradient that of the image's mean when the
        # layer is local (a tile's output elements then cover its share of the image's).
        height, width = x.shape[-2:]
        _, activation = self._objective_gradient(x[..., :tile_size, :tile_size], captured)
        elements_per_pixel = activation[0].numel() / min(tile_size, height) / min(tile_size, width)
        total = round(elements_per_pixel * height * width)
        gradient = torch.zeros_like(x)
        for top in range(0, height, tile_size):
            for left in range(0, width, tile_size):
                tile = x[..., top : top + tile_size, left : left + tile_size]
                gradient[..., top : top + tile_size, left : left + tile_size] = self._objective_gradient(tile, captured, total)[0]
        return gradient

    def dream(
        self,
        image: torch.Tensor,
        octaves: int = 4,
        octave_scale: float = 1.4,
        steps: int = 10,
        lr: float = 0.02,
        jitter: int = 16,
        l2: float = 0.0,
        noise: float = 0.0,
        tile_size: int | None = None,
        bounds: tuple | None = None,
        show_progress: bool | None = None,
        seed: int = 0,
    ) -> torch.Tensor:
        """Return the dreamed image, with the shape of ``image`` (a batch ``(N, C, H, W)``).

        Parameters
        ----------
        image : Tensor
            The starting image(s), preprocessed as the model expects (e.g. ``nni.data.preprocess``).
        octaves : int
            Scales of the pyramid; the smallest is ``octave_scale ** (octaves - 1)`` times smaller.
        octave_scale : float
            Size ratio between neighbouring octaves.
        steps : int
            Gradient-ascent steps per octave.
        lr : float
            Step size, in units of the normalised gradient (the gradient divided by its mean magnitude).
        jitter : int
            Largest random roll in pixels, in each direction, at every step.
        l2 : float
            Weight ``λ`` of the penalty ``λ‖x‖²`` subtracted from the objective.
        noise : float
            Standard deviation of the Gaussian noise added to the image at the start of every octave.
        tile_size : int, optional
            Compute the gradient in tiles of at most ``tile_size × tile_size`` pixels.
        bounds : (low, high), optional
            Clamp the image into this range after every step (numbers or tensors broadcastable to the
            image, e.g. ``nni.data.input_bounds()``).
        show_progress : bool, optional
            A progress bar over the steps; ``None`` shows it in a terminal or notebook only.
        seed : int
            Seed of the rolls and the noise; equal calls give equal dreams.
        """
        image = check_inputs(image, min_dim=4)
        if octaves < 1 or steps < 1 or octave_scale <= 1:
            raise ValueError(f"need octaves >= 1, steps >= 1 and octave_scale > 1, got {octaves}, {steps}, {octave_scale}")
        if tile_size is not None and tile_size < 8:
            raise ValueError(f"tile_size must be at least 8 pixels, got {tile_size}")
        generator = torch.Generator(device="cpu").manual_seed(seed)
        height, width = image.shape[-2:]
        sizes = [
            (max(1, round(height / octave_scale**k)), max(1, round(width / octave_scale**k))) for k in reversed(range(octaves))
        ]
        captured: dict = {}
        detail = torch.zeros_like(image[..., : sizes[0][0], : sizes[0][1]])
        with borrowed(self.model):
            self.layer.register_forward_hook(_stop_at(captured))
            progress = progress_bar(None, "deep dream", show_progress, total=octaves * steps)
            for size in sizes:
                base = F.interpolate(image, size=size, mode="bilinear", align_corners=False) if size != (height, width) else image
                detail = F.interpolate(detail, size=size, mode="bilinear", align_corners=False)
                x = base + detail
                if noise > 0:
                    x = x + noise * torch.randn(x.shape, generator=generator).to(x)
                for _ in range(steps):
                    dy, dx = (torch.randint(-jitter, jitter + 1, (2,), generator=generator) if jitter else torch.zeros(2)).tolist()
                    rolled = torch.roll(x, shifts=(int(dy), int(dx)), dims=(-2, -1))
                    gradient = torch.roll(self._gradient(rolled, captured, tile_size), shifts=(-int(dy), -int(dx)), dims=(-2, -1))
                    gradient = gradient / (gradient.abs().flatten(1).mean(1).view(-1, 1, 1, 1) + 1e-8)
                    x = x + lr * (gradient - 2 * l2 * x)
                    if bounds is not None:
                        low, high = (torch.as_tensor(b, dtype=x.dtype, device=x.device) for b in bounds)
                        x = torch.maximum(torch.minimum(x, high), low)
                    progress.update()
                detail = x - base
            progress.close()
        return x.detach()

    def __repr__(self) -> str:
        return f"DeepDream({type(self.model).__name__}, layer={self.layer_name!r}, channel={self.channel})"
