"""An exponential moving average of a network's weights, for validation and the saved model.

``ema = d * ema + (1 - d) * weights`` after every optimiser step, with ``d`` ramping up as
``decay * (1 - exp(-updates / ramp))`` so the first steps are not averaged with random weights
(YOLOv5/v8's ModelEMA). Buffers (batch-norm statistics) are averaged too.
``torch.optim.swa_utils.AveragedModel`` has no such ramp, so the few lines live here.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn


class WeightEMA:
    """A frozen copy of ``net`` that follows its weights slowly.

    Args:
        net: The network being trained.
        decay: Final decay per update.
        ramp: Updates over which the decay ramps up (e-folding count).
    """

    def __init__(self, net: nn.Module, decay: float = 0.9999, ramp: float = 2000.0) -> None:
        self.module = copy.deepcopy(net).eval().requires_grad_(False)
        self.decay, self.ramp = decay, ramp
        self.updates = 0

    @torch.no_grad()
    def update(self, net: nn.Module) -> None:
        """Move the average one step towards ``net``'s current weights and buffers."""
        self.updates += 1
        d = self.decay * (1 - math.exp(-self.updates / self.ramp))
        current = net.state_dict()
        for name, value in self.module.state_dict().items():
            if value.dtype.is_floating_point:
                value.mul_(d).add_(current[name].detach(), alpha=1 - d)
            else:
                value.copy_(current[name])
