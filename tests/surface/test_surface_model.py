"""The modified FCN of paper 002: exact parameter counts of Table 1, shapes, VGG19 weights, ONNX parity."""

from __future__ import annotations

import pytest
import torch
from torchvision.models import vgg19

from railwatch.export import export_onnx, onnx_max_abs_diff
from railwatch.surface.model import KERNELS, SurfaceFCN, fit_to
from railwatch.surface.models import build_surface_model


@pytest.mark.parametrize("rail_type, params", [("type1", 12_163_110), ("type2", 12_163_042)])
def test_parameter_counts_equal_table_1(rail_type, params):
    assert sum(p.numel() for p in SurfaceFCN(rail_type).parameters()) == params


@pytest.mark.parametrize("rail_type, size", [("type1", (100, 160)), ("type2", (100, 55)), ("type2", (64, 37))])
def test_output_has_the_input_size(rail_type, size):
    net = SurfaceFCN(rail_type).eval()
    with torch.no_grad():
        assert net(torch.rand(2, 3, *size)).shape == (2, 2, *size)


@pytest.mark.parametrize("rail_type, size", [("type1", (100, 160)), ("type2", (100, 55)), ("type2", (64, 37))])
def test_every_output_pixel_is_scored_by_the_network(rail_type, size):
    """No pixel is left to fit_to's zero padding, where both classes would tie and no defect could be found."""
    torch.manual_seed(0)
    net = SurfaceFCN(rail_type).eval()
    for conv in (net.classifier[-1], net.score_pool3, net.score_pool2):  # zero at the start; give them a say
        torch.nn.init.normal_(conv.weight, std=0.1)
        torch.nn.init.normal_(conv.bias, std=0.1)
    with torch.no_grad():
        scores = net(torch.randn(2, 3, *size))
    assert (scores[:, 1] != scores[:, 0]).all()


@pytest.mark.parametrize("rail_type, size", [("type1", (100, 160)), ("type2", (100, 55))])
def test_table_1_kernels_land_exactly_on_each_map_of_the_papers_tiles(rail_type, size):
    """Each of Table 1's kernels, read as rows x columns, is the one whose transposed convolution reaches
    the next map's size on the paper's tile: the 4x4 ones less their "same" crop (2n), the 3- and
    2-tap ones uncropped ((n - 1) * 2 + k). Read the other way round, Type 2's 2x3 would give 51 rows
    from pool2's 25, and Type 1's 3x2 24 rows for pool2's 25."""
    net = SurfaceFCN(rail_type).eval()
    x = torch.zeros(1, 3, *size)
    pool2 = net.block12(x)
    pool3 = net.block3(pool2)
    sizes = [net.block4(pool3).shape[2:], pool3.shape[2:], pool2.shape[2:], (size[0] // 2, size[1] // 2), size]
    for up, (n, target) in zip(net.up, zip(sizes, sizes[1:])):
        full = up(torch.zeros(1, 2, *n)).shape[2:]
        cropped = tuple(f - (k - 2 if k == 4 else 0) for f, k in zip(full, up.kernel_size))
        assert cropped == tuple(target), (up.kernel_size, tuple(n), tuple(target))


@pytest.mark.parametrize("name", ["fcn-type1", "fcn-type2", "fcn-8s"])
def test_upsampling_starts_as_interpolation(name):
    # every transposed convolution (4x4, 3x2, 2x3, FCN-8s' 16x16 at stride 8) starts by keeping a
    # constant map constant away from its borders; a 2-tap kernel at stride 2 once started at half gain
    ups = [m for m in build_surface_model(name).modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert ups
    for up in ups:
        kh, kw = up.kernel_size
        y = up(torch.ones(1, up.in_channels, 8, 8))
        assert torch.allclose(y[:, :, kh:-kh, kw:-kw], torch.ones(())), (up.kernel_size, up.stride)


@pytest.mark.parametrize("rail_type, size", [("type1", (100, 160)), ("type2", (100, 55)), ("type2", (64, 37)), ("type1", (52, 104))])
@pytest.mark.parametrize("axis", [0, 1])
def test_upsampling_keeps_an_edge_where_it_was(rail_type, size, axis):
    """An edge between coarse pixels i-1 and i lands, through two stride-2 upsamplings, at finer pixel 4i.

    Only Table 1's 3-tap kernels, which cannot be centred, may put it a pixel late. A centred crop
    once put it two coarse pixels late where a pool has an odd size (52x104 tiles: pool3 is 13x26).
    """
    net = SurfaceFCN(rail_type).eval()
    h, w = size
    pool2, half = (h // 4, w // 4), (h // 2, w // 2)
    pool3 = (pool2[0] // 2, pool2[1] // 2)
    pool4 = (pool3[0] // 2, pool3[1] // 2)
    paths = {  # coarse size, the two upsampling stages that bring it up four-fold, and how they run
        "pool2 to the input": (pool2, (2, 3), lambda x: net.upsample(3, net.upsample(2, x, *half), h, w)),
        "pool4 to pool2": (pool4, (0, 1), lambda x: net.upsample(1, net.upsample(0, x, *pool3), *pool2)),
    }
    for path, (coarse, stages, upsample) in paths.items():
        late = sum(KERNELS[rail_type][stage][axis] == 3 for stage in stages)
        for i in range(1, coarse[axis] - 1):
            step = torch.zeros(1, 2, *coarse)
            step[0, 0].narrow(axis, i, coarse[axis] - i).fill_(1)
            with torch.no_grad():
                fine = upsample(step)[0, 0]
            profile = fine.select(1 - axis, fine.shape[1 - axis] // 2)
            assert 0 <= int((profile >= 0.5).nonzero()[0]) - 4 * i <= late, (path, i)


def test_fit_to_crops_and_pads_centred():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    assert torch.equal(fit_to(x, 2, 2), x[:, :, 1:3, 1:3])
    padded = fit_to(x, 6, 5)
    assert padded.shape == (1, 1, 6, 5) and torch.equal(padded[:, :, 1:5, 0:4], x) and padded[:, :, 0].abs().sum() == 0
    at_the_end = fit_to(x, 2, 6, centred=False)
    assert torch.equal(at_the_end[:, :, :, :4], x[:, :, :2]) and at_the_end[:, :, :, 4:].abs().sum() == 0


def test_vgg19_weights_map_onto_the_backbone():
    torch.manual_seed(0)
    reference = vgg19(weights=None).state_dict()
    net = SurfaceFCN("type1")
    mapping = net.backbone_state_keys()
    assert len(mapping) == 24  # 12 convolutions, weight and bias each
    missing, unexpected = net.load_state_dict({mapping[k]: reference[k] for k in mapping}, strict=False)
    assert not unexpected and all(not k.startswith("block") for k in missing)
    assert torch.equal(net.block4[0].weight, reference["features.19.weight"])


def test_onnx_runtime_agrees_with_torch(tmp_path):
    torch.manual_seed(0)
    net = SurfaceFCN("type2").eval()
    x = torch.rand(2, 3, 100, 55)
    path = export_onnx(net, x[:1], tmp_path / "fcn.onnx")
    assert onnx_max_abs_diff(net, path, x) < 1e-4
