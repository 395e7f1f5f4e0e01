"""The fastener detectors by name: KD-GAN, its ablations (paper 000, Table 7) and the baselines of Tables 5-6, with their sizes."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from railwatch.config import FastenerTrainConfig
from railwatch.errors import InputError
from railwatch.fasteners.scoring import build_detector, raw_scores

VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "kd-gan": ("proposed: baseline + MSAC (with CASE) + E-JPU", {"model": "kd-gan"}),
    "kd-gan-baseline": ("Table 7 baseline: no MSAC, no E-JPU", {"model": "kd-gan", "arch": {"msac": False, "ejpu": False}}),
    "kd-gan-msac": ("Table 7 Method1: baseline + MSAC", {"model": "kd-gan", "arch": {"ejpu": False}}),
    "kd-gan-ejpu": ("Table 7 Method2: baseline + E-JPU", {"model": "kd-gan", "arch": {"msac": False}}),
    "kd-gan-no-case": ("proposed without CASE inside MSAC", {"model": "kd-gan", "arch": {"case": False}}),
    "squid": (
        "SQUID (Xiang et al. 2023) of Tables 5-6: baseline + SQUID's in-painting block, loss weights and teacher stop-gradient",
        {
            "model": "kd-gan",
            "arch": {"msac": False, "ejpu": False, "inpainting": "squid", "teacher_trains_encoder": False},
            # SQUID's DigitAnatomy weights (configs/digit_best.py): t_w, recon_w, dist_w, g_w, d_w
            "loss": {"teacher": 0.01, "student": 1.0, "distill": 0.001, "adversarial": 0.005, "discriminator": 0.005},
        },
    ),
    "ganomaly": ("GANomaly (Akcay et al. 2018), the paper's baseline", {"model": "ganomaly"}),
    "memae": ("MemAE (Gong et al. 2019), memory-augmented autoencoder of Tables 5-6", {"model": "memae"}),
    "f-anogan": ("f-AnoGAN (Schlegl et al. 2019), WGAN-GP + izi_f encoder of Tables 5-6", {"model": "f-anogan"}),
}
"""Each name's description and the training settings it changes."""


def variant_config(name: str, base: FastenerTrainConfig | None = None) -> FastenerTrainConfig:
    """``base`` (or the defaults) with the model and switches of variant ``name``.

    Raises:
        InputError: unknown name.
    """
    if name not in VARIANTS:
        raise InputError(f"unknown fastener model {name!r}; known: {', '.join(VARIANTS)}")
    data = (base or FastenerTrainConfig()).model_dump()
    changes = VARIANTS[name][1]
    data["model"] = changes["model"]
    data["arch"] = {**data["arch"], **changes.get("arch", {})}
    data["loss"] = {**data["loss"], **changes.get("loss", {})}
    return FastenerTrainConfig.model_validate(data)


@dataclass(frozen=True)
class FastenerModelInfo:
    """One detector: name, description, parameters (all parts) and GFLOPs of scoring one crop."""

    name: str
    description: str
    params: int
    score_gflops: float

    def to_dict(self) -> dict:
        return asdict(self)


def list_fastener_models() -> list[FastenerModelInfo]:
    """Every variant with its size; FLOPs are counted on one 128 x 128 crop through the scoring path."""
    infos = []
    for name, (description, _) in VARIANTS.items():
        cfg = variant_config(name)
        net = build_detector(cfg).eval()
        x = torch.zeros(1, 1, cfg.arch.image_size, cfg.arch.image_size)
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            raw_scores(net, x, cfg.score)
        params = sum(p.numel() for p in net.parameters())
        infos.append(FastenerModelInfo(name, description, params, counter.get_total_flops() / 1e9))
    return infos
