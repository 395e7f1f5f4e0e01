"""The surface module's networks by name, with their parameter counts (paper 002, Table 1 and section 4.2)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

from torch import nn

from railwatch.surface.baselines import FCN8s, SegNet
from railwatch.surface.model import SurfaceFCN

BUILDERS: dict[str, tuple[str, Callable[[], nn.Module]]] = {
    "fcn-type1": ("modified VGG19 FCN for express rail (Table 1, Type 1)", lambda: SurfaceFCN("type1")),
    "fcn-type2": ("modified VGG19 FCN for common/heavy rail (Table 1, Type 2)", lambda: SurfaceFCN("type2")),
    "fcn-8s": ("FCN-8s on VGG16, the paper's baseline", FCN8s),
    "segnet": ("SegNet, VGG16-BN encoder with index unpooling, the paper's baseline", SegNet),
}


@dataclass(frozen=True)
class SurfaceModelInfo:
    """One network: its name, what it is, and its parameter count."""

    name: str
    description: str
    params: int

    def to_dict(self) -> dict:
        return asdict(self)


def build_surface_model(name: str) -> nn.Module:
    """The network called ``name`` (see :data:`BUILDERS`), randomly initialised.

    Raises:
        ValueError: unknown name.
    """
    if name not in BUILDERS:
        raise ValueError(f"unknown surface model {name!r}; known: {', '.join(BUILDERS)}")
    return BUILDERS[name][1]()


def list_surface_models() -> list[SurfaceModelInfo]:
    """Every surface network with its parameter count."""
    return [
        SurfaceModelInfo(name, description, sum(p.numel() for p in build_surface_model(name).parameters()))
        for name, (description, _) in BUILDERS.items()
    ]
