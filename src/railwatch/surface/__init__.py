"""Rail running-surface defect segmentation (paper 002): the modified VGG19 FCN and its baselines."""
