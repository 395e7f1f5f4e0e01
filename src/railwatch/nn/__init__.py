"""Building blocks shared by railwatch's networks."""

from railwatch.nn.attention import CoordinateChannelAttention, MultiScaleDilatedAttention, SqueezeExcite
from railwatch.nn.blocks import ConvBN, ConvBNReLU, DWConvBN
from railwatch.nn.device import module_device

__all__ = ["CoordinateChannelAttention", "ConvBN", "ConvBNReLU", "DWConvBN", "MultiScaleDilatedAttention", "SqueezeExcite", "module_device"]
