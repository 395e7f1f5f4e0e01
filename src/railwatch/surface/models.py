"""The surface module's networks by name, with their parameter counts (paper 002, Table 1 and section 4.2)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from torch import nn

from railwatch.checkpoint import read_torch_file
from railwatch.errors import InputError
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


BACKBONES: dict[str, str] = {"fcn-type1": "vgg19", "fcn-type2": "vgg19", "fcn-8s": "vgg16", "segnet": "vgg16_bn"}
"""The torchvision network whose ImageNet weights fit each model's encoder."""


def load_backbone_weights(net: nn.Module, name: str, path: str | Path) -> int:
    """Copy the encoder weights of a local torchvision VGG state-dict file into ``net``; returns tensors copied.

    Only the ``features.*`` convolutions (and batch norms) that the network shares with
    :data:`BACKBONES` ``[name]`` are used; the classifier is ignored. Nothing is downloaded.

    Raises:
        InputError: the file is missing or unreadable, or it is not a state dict of that VGG.
    """
    state = read_torch_file(path, "backbone weights")
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    mapping = net.backbone_state_keys()
    own = net.state_dict()
    missing = [k for k in mapping if not isinstance(state, dict) or k not in state]
    wrong = [k for k in mapping if k not in missing and tuple(state[k].shape) != tuple(own[mapping[k]].shape)]
    if missing or wrong:
        what = f"lacks {missing[0]}" if missing else f"has {wrong[0]} of shape {tuple(state[wrong[0]].shape)}"
        raise InputError(f"{path}: not a torchvision {BACKBONES[name]} state dict ({what})")
    net.load_state_dict({mapping[k]: state[k] for k in mapping}, strict=False)
    return len(mapping)
