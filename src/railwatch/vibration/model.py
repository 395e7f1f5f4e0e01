"""The CNN+Transformer FFI regressor of paper 001 (Fig. 2, section "Model implementation").

"The CNN consists of three one-dimensional convolutional layers with kernel size 3 and filter
sizes of 256, 128, and 64 ... LeakyReLU activation followed by batch normalization ... A max
pooling layer is applied after the CNN ... three stacked [transformer] blocks, each containing a
four-head multihead self-attention mechanism with a model dimension of 64 ... a flattening layer,
followed by two dense layers with 128 and 32 units ... LeakyReLU activation and dropout ...
a sigmoid-activated output layer predicts the FFI value" (as FFI/3, DESIGN.md).

The encoder's output tokens keep their frequency order and the head flattens them, so the head
knows which band each token came from; the paper adds no positional encoding and neither does this.
"""

from __future__ import annotations

import torch
from torch import nn

from railwatch.config import VibrationModelConfig

MAX_FFI = 3


class SpectrumEncoder(nn.Module):
    """Spectra ``(B, channels, bins)`` to tokens ``(B, bins // 2, width)``: 3 conv blocks, max-pool, transformer."""

    def __init__(self, in_channels: int, cfg: VibrationModelConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for width in cfg.conv_channels:
            layers += [nn.Conv1d(in_channels, width, cfg.kernel_size, padding=cfg.kernel_size // 2), nn.LeakyReLU(0.01), nn.BatchNorm1d(width)]
            in_channels = width
        layers.append(nn.MaxPool1d(2))
        self.cnn = nn.Sequential(*layers)
        block = nn.TransformerEncoderLayer(
            d_model=in_channels, nhead=cfg.heads, dim_feedforward=cfg.feedforward, dropout=cfg.dropout, batch_first=True
        )
        self.transformer = nn.TransformerEncoder(block, cfg.transformer_blocks, enable_nested_tensor=False)

    def forward(self, spectra: torch.Tensor) -> torch.Tensor:
        return self.transformer(self.local(spectra))

    def local(self, spectra: torch.Tensor) -> torch.Tensor:
        """The CNN stage's tokens ``(B, bins // 2, width)``: each sees only a few neighbouring bins."""
        return self.cnn(spectra).transpose(1, 2)


class FFIHead(nn.Module):
    """Tokens to FFI/3 in (0, 1): flatten, dense 128 and 32 with LeakyReLU and dropout, sigmoid."""

    def __init__(self, tokens: int, width: int, cfg: VibrationModelConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        features = tokens * width
        for units in cfg.dense:
            layers += [nn.Linear(features, units), nn.LeakyReLU(0.01), nn.Dropout(cfg.dropout)]
            features = units
        layers += [nn.Linear(features, 1), nn.Sigmoid()]
        self.mlp = nn.Sequential(*layers)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.mlp(tokens).squeeze(-1)


class FFIRegressor(nn.Module):
    """Encoder and head: ``(B, channels, bins)`` spectra to ``(B,)`` FFI/3."""

    def __init__(self, in_channels: int, bins: int, cfg: VibrationModelConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or VibrationModelConfig()
        self.in_channels, self.bins = in_channels, bins
        self.encoder = SpectrumEncoder(in_channels, cfg)
        self.head = FFIHead(bins // 2, cfg.conv_channels[-1], cfg)

    def forward(self, spectra: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(spectra))


class CrossModalModel(nn.Module):
    """Two encoders, accelerometer E_a and DAS E_d, sharing one head H (DESIGN.md "Cross-modal transfer").

    After pre-training, :meth:`das_regressor` is the DAS model that is fine-tuned and deployed.
    """

    def __init__(
        self, accel_channels: int, das_channels: int, bins: int, cfg: VibrationModelConfig | None = None, align: str = "encoder"
    ) -> None:
        super().__init__()
        if align not in ("encoder", "cnn"):
            raise ValueError(f"align must be encoder or cnn, got {align!r}")
        cfg = cfg or VibrationModelConfig()
        self.accel_encoder = SpectrumEncoder(accel_channels, cfg)
        self.das = FFIRegressor(das_channels, bins, cfg)
        self.align = align

    def forward(self, accel: torch.Tensor, das: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """FFI/3 from each modality, and the two feature maps the discrepancy loss compares.

        ``align="encoder"`` compares the encoders' outputs; ``"cnn"`` their CNN stages, whose
        tokens are local in frequency, so a DAS token must carry what the accelerometer shows
        at the same frequencies.
        """
        local_a, local_d = self.accel_encoder.local(accel), self.das.encoder.local(das)
        tokens_a, tokens_d = self.accel_encoder.transformer(local_a), self.das.encoder.transformer(local_d)
        if self.align == "cnn":
            return self.das.head(tokens_a), self.das.head(tokens_d), local_a, local_d
        return self.das.head(tokens_a), self.das.head(tokens_d), tokens_a, tokens_d

    def das_regressor(self) -> FFIRegressor:
        return self.das


def encoder_discrepancy(tokens_a: torch.Tensor, tokens_d: torch.Tensor) -> torch.Tensor:
    """ED = mean over events of ||E_a(x_a) - E_d(x_d)||^2, divided by the feature count (DESIGN.md).

    Dividing by the number of features keeps lambda independent of the spectrum length. Which
    features are compared is ``vibration.train.ed_features``: ``cnn`` (default) compares the
    frequency-local CNN tokens. Compared after the transformer (``encoder``), whose tokens mix
    all frequencies, the DAS encoder matched the accelerometer's with the training site's coupling
    cue and the transfer model did no better than DAS-only at another site (README, Measured).
    """
    return (tokens_a - tokens_d).pow(2).flatten(1).mean(dim=1).mean()


def pretrain_loss(
    pred_a: torch.Tensor, pred_d: torch.Tensor, tokens_a: torch.Tensor, tokens_d: torch.Tensor, target: torch.Tensor, ed_weight: float
) -> dict[str, torch.Tensor]:
    """L = MSE(H(E_a(x_a)), y) + MSE(H(E_d(x_d)), y) + lambda * ED, with each term for logging."""
    mse_a = nn.functional.mse_loss(pred_a, target)
    mse_d = nn.functional.mse_loss(pred_d, target)
    ed = encoder_discrepancy(tokens_a, tokens_d)
    return {"loss": mse_a + mse_d + ed_weight * ed, "mse_accel": mse_a, "mse_das": mse_d, "ed": ed}
