"""Building blocks shared by railwatch's networks."""

from railwatch.nn.attention import CoordinateChannelAttention, MultiScaleDilatedAttention, SqueezeExcite
from railwatch.nn.blocks import ConvBN, ConvBNReLU, DWConvBN

__all__ = ["CoordinateChannelAttention", "ConvBN", "ConvBNReLU", "DWConvBN", "MultiScaleDilatedAttention", "SqueezeExcite"]
