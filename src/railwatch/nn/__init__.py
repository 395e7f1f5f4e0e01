"""Building blocks shared by railwatch's networks."""

from railwatch.nn.attention import CoordinateChannelAttention, MultiScaleDilatedAttention, SqueezeExcite
from railwatch.nn.blocks import ConvBN, ConvBNReLU, DWConvBN
from railwatch.nn.device import module_device
from railwatch.nn.inference import fold_batch_norms, prepare_for_inference

__all__ = ["CoordinateChannelAttention", "ConvBN", "ConvBNReLU", "DWConvBN", "MultiScaleDilatedAttention", "SqueezeExcite", "fold_batch_norms", "module_device",
           "prepare_for_inference"]
