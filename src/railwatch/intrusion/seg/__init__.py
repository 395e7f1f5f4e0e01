"""Track segmentation with BiSeNetV2 (paper 003, section 2.1), after anomalib's per-model split.

- :mod:`.model`: the networks (BiSeNetV2, a plain FCN baseline), pure torch.
- :mod:`.loss`: OHEM cross-entropy over the main and auxiliary heads.
- :mod:`.data`: scene images and semantic masks from ``railwatch data synth scenes``.
- :mod:`.lightning`: the LightningModule (steps, optimiser, schedule, IoU).
- :mod:`.train`: ``train-seg``, best-on-validation checkpoints.
- :mod:`.infer`: load a checkpoint, predict class maps, fit rails on them.
- :mod:`.evaluate`: per-class IoU and lateral-offset errors.
"""
