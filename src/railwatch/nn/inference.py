"""A trained network made ready for inference: batch norms folded into their convolutions, channels-last.

Loading a model to predict (track segmenter, detector, surface segmenter) ends here. Both steps
leave the outputs unchanged (to float rounding) and only make them cheaper on a CPU:

- In eval mode a batch norm is a per-channel affine map, so a ``Conv2d -> BatchNorm2d`` pair is
  one convolution with rescaled weights and a bias (``torch.nn.utils.fusion.fuse_conv_bn_eval``);
  the activation-sized pass of the norm disappears.
- With channels-last weights oneDNN runs its blocked convolution kernels without reordering
  the activations around every call, and pooling and nearest upsampling take their vectorised
  channels-last paths (the plain NCHW kernels of max-pooling and upsampling are several times
  slower on CPU).

``benchmarks/inference.py`` times both forms in turns; on the 2-core machine of the README the
packaged BiSeNetV2 runs 1.7x faster at 512x1024, both detectors 1.27x at 320x640 and the surface
FCN 1.16-1.25x on a batch of 16 tiles.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


def fold_batch_norms(net: nn.Module) -> int:
    """Fold each ``Conv2d`` directly followed by a ``BatchNorm2d`` inside an ``nn.Sequential``, in place.

    The folded convolution takes the pair's first slot and ``nn.Identity`` its second, so the
    indices (and names) of the other layers stay. ``net`` must be in eval mode: the fold uses
    the running statistics. Returns the number of pairs folded.
    """
    if net.training:
        raise ValueError("fold_batch_norms needs a network in eval mode (it folds the running statistics)")
    folded = 0
    for module in net.modules():
        if not isinstance(module, nn.Sequential):
            continue
        for i in range(len(module) - 1):
            conv, norm = module[i], module[i + 1]
            if type(conv) is nn.Conv2d and type(norm) is nn.BatchNorm2d and norm.track_running_stats:
                module[i], module[i + 1] = fuse_conv_bn_eval(conv, norm), nn.Identity()
                folded += 1
    return folded


def prepare_for_inference(net: nn.Module) -> nn.Module:
    """``net`` in eval mode, without gradients, batch norms folded and weights channels-last (in place)."""
    net.eval().requires_grad_(False)
    fold_batch_norms(net)
    return net.to(memory_format=torch.channels_last)
