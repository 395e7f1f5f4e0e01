"""Training loss of BiSeNetV2: online hard-example-mined cross-entropy on the main and auxiliary heads.

BiSeNetV2 trains every head with the same pixel loss and sums them, the auxiliary heads
weighted by ``aux_weight`` (paper 003, section 2.1: "an auxiliary loss function during training
to guide parameter updates in intermediate layers of the Semantic Branch"). Hard-example mining
keeps the pixels whose loss exceeds ``-log(keep_prob)`` and at least ``min_fraction`` of all
pixels, so the few rail pixels are not drowned by easy sky and ballast.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

IGNORE_INDEX = 255


class OhemCrossEntropy(nn.Module):
    """Cross-entropy averaged over the hardest pixels only.

    Args:
        keep_prob: Pixels whose true-class probability is below this are hard (0.7 in BiSeNetV2).
        min_fraction: Always keep at least this fraction of the labelled pixels (1/16).
        ignore_index: Label value that carries no loss.
    """

    def __init__(self, keep_prob: float = 0.7, min_fraction: float = 1 / 16, ignore_index: int = IGNORE_INDEX) -> None:
        super().__init__()
        self.threshold = -math.log(keep_prob)
        self.min_fraction = min_fraction
        self.ignore_index = ignore_index

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        loss = F.cross_entropy(logits, target, ignore_index=self.ignore_index, reduction="none").flatten()
        labelled = loss[target.flatten() != self.ignore_index]
        if labelled.numel() == 0:
            return logits.sum() * 0.0
        n_min = max(1, int(labelled.numel() * self.min_fraction))
        hard = labelled[labelled > self.threshold]
        if hard.numel() < n_min:
            hard = torch.topk(labelled, n_min).values
        return hard.mean()


def soft_dice_loss(logits: Tensor, target: Tensor, ignore_index: int = IGNORE_INDEX, eps: float = 1.0) -> Tensor:
    """``1 - mean Dice`` of the soft predictions over the foreground classes (all but class 0).

    Dice is an overlap score like IoU, so a thin class such as the rails weighs as much as the
    track bed however few pixels it has; cross-entropy alone spends most of its effort on the
    large, easy classes.
    """
    probs = logits.softmax(1)
    valid = (target != ignore_index).unsqueeze(1)
    onehot = F.one_hot(target.clamp(0, logits.shape[1] - 1), logits.shape[1]).permute(0, 3, 1, 2)
    probs, onehot = probs * valid, onehot * valid
    inter = (probs * onehot).sum(dim=(0, 2, 3))[1:]
    total = (probs + onehot).sum(dim=(0, 2, 3))[1:]
    return 1 - ((2 * inter + eps) / (total + eps)).mean()


class SegmentationLoss(nn.Module):
    """Main-head loss plus ``aux_weight`` times each auxiliary head's loss.

    Each head's loss is OHEM cross-entropy (BiSeNetV2's); ``dice_weight`` adds a soft Dice term on
    the main head for the thin classes.
    """

    def __init__(self, aux_weight: float = 1.0, keep_prob: float = 0.7, dice_weight: float = 0.0) -> None:
        super().__init__()
        self.pixel_loss = OhemCrossEntropy(keep_prob)
        self.aux_weight = aux_weight
        self.dice_weight = dice_weight

    def forward(self, outputs: Tensor | Sequence[Tensor], target: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Return the total loss and its parts (``main``, ``aux``, ``dice``) for logging."""
        if isinstance(outputs, Tensor):
            outputs = (outputs,)
        main = self.pixel_loss(outputs[0], target)
        aux = sum((self.pixel_loss(o, target) for o in outputs[1:]), torch.zeros((), device=target.device))
        dice = soft_dice_loss(outputs[0], target) if self.dice_weight else torch.zeros((), device=target.device)
        total = main + self.aux_weight * aux + self.dice_weight * dice
        return total, {"main": main.detach(), "aux": aux.detach(), "dice": dice.detach()}
