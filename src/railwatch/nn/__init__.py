"""Building blocks shared by railwatch's networks."""

from railwatch.nn.attention import MultiScaleDilatedAttention, SqueezeExcite
from railwatch.nn.blocks import ConvBN, ConvBNReLU, DWConvBN

__all__ = ["ConvBN", "ConvBNReLU", "DWConvBN", "MultiScaleDilatedAttention", "SqueezeExcite"]
