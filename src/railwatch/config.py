"""Typed settings with the papers' values as defaults, loadable from YAML.

One tree of pydantic models, one section per module. A YAML file only needs the keys it changes::

    intrusion:
      risk:
        stationary_rule: paper     # f_speed = 0 for still objects, as in the paper
      camera:
        focal_px: 2000

Load it with :func:`load_config`; CLI flags then override single fields through
:func:`override`. Unknown keys and wrong types are errors that name the file and the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from railwatch.camera import Camera
from railwatch.errors import ConfigError
from railwatch.yamlfile import first_validation_error, read_yaml_mapping

OBJECT_TYPES: tuple[str, ...] = ("person", "car", "animal", "stone")
"""The four intrusion classes of paper 003 (Table 3), in class-id order."""


class Settings(BaseModel):
    """Base of every settings section: immutable, and unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class GaugeConfig(Settings):
    """Track geometry priors (paper 003, section 2.3.1 and Table 2).

    Args:
        gauge_mm: Track gauge ``d_m`` in mm, between the rails' inner faces (1435 mm standard).
        rail_head_width_mm: Width of a rail head in mm. Fitted rail lines follow the middle of
            the rail heads, which lie ``gauge_mm + rail_head_width_mm`` apart; set 0 to treat the
            fitted lines as the gauge faces, as paper 003 writes Eq. (10).
        clearance_mm: Width of the structure clearance in mm (GB 146.2); its half beyond each
            rail is the medium-risk zone (Table 2).
    """

    gauge_mm: float = Field(1435.0, gt=0)
    rail_head_width_mm: float = Field(72.0, ge=0)
    clearance_mm: float = Field(4880.0, gt=0)

    @property
    def half_gauge_mm(self) -> float:
        """Distance from the track centre to each rail's gauge face, in mm (717.5)."""
        return self.gauge_mm / 2

    @property
    def clearance_edge_mm(self) -> float:
        """Distance from the track centre to the edge of the medium-risk zone, in mm (3157.5)."""
        return self.gauge_mm / 2 + self.clearance_mm / 2

    @property
    def rail_line_spacing_mm(self) -> float:
        """Distance between the two fitted rail lines, in mm."""
        return self.gauge_mm + self.rail_head_width_mm


class RiskConfig(Settings):
    """Risk quantification (paper 003, Eq. 15-17, Tables 3-4).

    Args:
        type_weights: ``W_type`` per object class (Table 3).
        level_thresholds: Lower bounds of ``Z`` for levels I, II, III and IV (Table 4);
            anything below the last is level V.
        stationary_rule: ``"speed"`` uses ``f_speed = 1 + v/10`` for every object (1.0 when
            still), so a rock on the rail still counts; ``"paper"`` sets ``f_speed = 0`` for
            stationary objects, as the paper writes.
        stationary_below_mps: Speeds below this (m/s) count as stationary for the paper's rule.
    """

    type_weights: dict[str, float] = Field(
        default_factory=lambda: {"person": 1.1, "car": 1.2, "animal": 0.9, "stone": 0.7}
    )
    level_thresholds: tuple[float, float, float, float] = (1.2, 0.8, 0.5, 0.2)
    stationary_rule: Literal["speed", "paper"] = "speed"
    stationary_below_mps: float = Field(0.1, ge=0)

    @field_validator("level_thresholds")
    @classmethod
    def _descending(cls, value: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        if any(a <= b for a, b in zip(value, value[1:])):
            raise ValueError("level thresholds must be strictly descending (levels I, II, III, IV)")
        return value

    @field_validator("type_weights")
    @classmethod
    def _non_negative(cls, value: dict[str, float]) -> dict[str, float]:
        if not value:
            raise ValueError("at least one object type needs a weight")
        bad = [name for name, w in value.items() if not w >= 0]
        if bad:
            raise ValueError(f"type weights must be >= 0: {', '.join(bad)}")
        return value


class RailFitConfig(Settings):
    """Sliding-window rail fitting on a binary rail mask (paper 003, section 2.1, Eq. 1-4).

    Args:
        n_windows: Number of horizontal bands the mask is cut into, bottom to top.
        margin_px: Half-width of a search window in pixels; ``None`` for ``width / 64``.
        min_pixels: Fewest mask pixels a band must hold near a rail to count as a hit.
        merge_gap_px: Runs of rail pixels closer than this (px) in a band are one rail.
        max_missed_windows: Bands a rail may cross without pixels (gaps, occlusions) before it ends.
        min_windows: Fewest bands with hits for a rail to be kept (rejects noise).
        degree: Degree of the polynomial ``x = f(y)``; 3 in the paper.
        model: Curve used for geometry. ``"perspective"`` fits
            ``x = b0 + b1 s + b2 / s + b3 / s^2`` with ``s = y - horizon``, which is what a
            straight or circular rail on flat ground projects to; ``"cubic"`` uses the paper's
            cubic. The cubic's coefficients are reported either way.
        horizon_row_px: Image row of the horizon for the perspective model; ``None`` estimates
            it from the rails themselves.
        outlier_px: Points further than this (px) from the first fit are dropped before the
            second fit.
        ego_column_px: Image column the ego track straddles; ``None`` for the image centre.
        joint_ego: Fit the ego track's two rails together with the perspective curve: one curve
            shape, two gauge terms, so that a rail hidden over a stretch follows the other.
        row_tolerance_px: Rows this far (px) beyond a rail's fitted range still count as on it.
    """

    n_windows: int = Field(48, ge=4, le=512)
    margin_px: float | None = Field(None, gt=0)
    min_pixels: int = Field(3, ge=1)
    merge_gap_px: int = Field(2, ge=0)
    max_missed_windows: int = Field(10, ge=0)
    min_windows: int = Field(4, ge=2)
    degree: int = Field(3, ge=1, le=3)
    model: Literal["perspective", "cubic"] = "perspective"
    horizon_row_px: float | None = None
    outlier_px: float = Field(3.0, gt=0)
    ego_column_px: float | None = None
    joint_ego: bool = True
    row_tolerance_px: float = Field(8.0, ge=0)


SEG_CLASSES: tuple[str, ...] = ("background", "track", "rail")
"""Classes the track segmenter predicts: everything else, the track bed, the rail heads."""


class SegModelConfig(Settings):
    """Track segmentation network (paper 003, section 2.1, Table 1).

    Args:
        arch: ``"bisenetv2"`` (the paper's) or ``"fcn"`` (a plain FCN baseline).
        classes: Class names, in output-channel order.
        input_height: Rows the network sees; images are resized to it (multiple of 32).
        input_width: Columns the network sees (multiple of 32). Table 1 uses 512 x 1024.
        head_channels: Width of the segmentation head's 3x3 conv (1024 in the reference
            BiSeNetV2; 128 trains about 2.5x faster on a CPU).
        aux_head_channels: Width of each auxiliary head's 3x3 conv.
        upsample: ``"bilinear"`` interpolates the 1/8 class scores (BiSeNetV2's head);
            ``"shuffle"`` predicts each 8x8 block of sub-pixels (pixel shuffle), which keeps
            rails one or two pixels wide.
    """

    arch: Literal["bisenetv2", "fcn"] = "bisenetv2"
    classes: tuple[str, ...] = SEG_CLASSES
    input_height: int = Field(512, ge=32, multiple_of=32)
    input_width: int = Field(1024, ge=32, multiple_of=32)
    head_channels: int = Field(1024, ge=1)
    aux_head_channels: int = Field(128, ge=1)
    upsample: Literal["bilinear", "shuffle"] = "bilinear"


class TrainingRun(Settings):
    """What every training command shares: seed, hardware, when to stop and validate, where to start.

    Args:
        seed: Seed of weights, augmentation and data order; the same seed trains the same model.
        num_workers: Data-loading worker processes.
        accelerator: Lightning accelerator: ``auto``, ``cpu`` or ``gpu``.
        devices: The device to train on: a count of 1 (default), ``auto``, or one GPU's index as
            ``"2,"``. Training runs in one process: validation metrics and the best-model choice
            are not gathered across processes, so more than one device is refused.
        precision: Lightning precision, e.g. ``32-true`` or ``16-mixed`` (GPU).
        max_steps: Stop after this many steps (-1: run all epochs).
        val_every_steps: Validate every this many steps; ``None`` validates after each epoch.
        init_weights: A checkpoint of the same model to start from (fine-tuning, or training
            on); ``None`` starts from random weights.
        channels_last: Keep the network's 4-D weights and activations channels-last while
            training, the layout oneDNN's (CPU) and cuDNN's (mixed precision) convolutions run
            fastest in. The same seed still trains the same model, but not bit for bit the model
            of the other layout. On by default for the image CNNs where it was measured to help.
        resume: Go on from the ``last.ckpt`` an interrupted run left in the output folder, to
            the model the run would have trained uninterrupted; with no ``last.ckpt`` there,
            training starts from the beginning. The settings must be those of that run.
        resume_every_s: While training, rewrite ``last.ckpt`` at the first epoch end this many
            seconds after the last write (0: every epoch); it is removed when training ends.
    """

    seed: int = 0
    num_workers: int = Field(2, ge=0)
    accelerator: str = "auto"
    devices: str = "1"
    precision: str = "32-true"
    max_steps: int = -1
    val_every_steps: int | None = Field(None, ge=1)
    init_weights: str | None = None
    channels_last: bool = False
    resume: bool = False
    resume_every_s: float = Field(600.0, ge=0)


class SegTrainConfig(TrainingRun):
    """How ``railwatch intrusion train-seg`` trains the segmenter.

    Args:
        epochs: Passes over the training images.
        batch_size: Images per step.
        lr: Peak learning rate of AdamW (linear warm-up, then polynomial decay to zero).
        weight_decay: AdamW weight decay.
        warmup_steps: Steps of linear warm-up.
        crop_height: Rows of the random training crop (at input resolution); 0 for whole images.
        crop_width: Columns of the random training crop; 0 for whole images.
        aux_weight: Weight of each auxiliary head's loss.
        ohem_keep_prob: Pixels predicted with less confidence than this are hard examples.
        dice_weight: Weight of a soft Dice term on the main head (0: BiSeNetV2's loss alone);
            it makes the thin rail class count as much as the track bed.
        rail_crop_prob: Chance that a training crop is centred near a random rail pixel
            rather than placed uniformly (rails cover about 1% of an image).

    The seed, hardware and stopping fields are those of :class:`TrainingRun`; ``init_weights``
    is a segmenter checkpoint.
    """

    epochs: int = Field(40, ge=1)
    batch_size: int = Field(8, ge=1)
    lr: float = Field(2e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    warmup_steps: int = Field(50, ge=0)
    crop_height: int = Field(256, ge=0, multiple_of=32)
    crop_width: int = Field(512, ge=0, multiple_of=32)
    aux_weight: float = Field(0.4, ge=0)
    ohem_keep_prob: float = Field(0.7, gt=0, lt=1)
    dice_weight: float = Field(1.0, ge=0)
    rail_crop_prob: float = Field(0.5, ge=0, le=1)
    channels_last: bool = True  # BiSeNetV2's training step 1.29x faster on one CPU thread


DET_ARCHS: tuple[str, ...] = ("st-yolo", "yolov8s")
"""Detectors of paper 003: ST-YOLO (section 2.2) and its YOLOv8s baseline (Tables 8-9)."""


class DetModelConfig(Settings):
    """Object detector (paper 003, section 2.2, Figure 8).

    Args:
        arch: ``"st-yolo"`` (ShuffleNetV2 + SE backbone, DilateFormer at its deepest stage) or
            ``"yolov8s"`` (the CSP-Darknet baseline); both share the PAN neck and the head.
        classes: Class names, in class-id order.
        input_height: Rows the network sees; images are letterboxed to it (multiple of 32).
        input_width: Columns the network sees (multiple of 32).
        msda_dilations: Dilation rate of each MSDA head (Eq. 8). Table 6 finds r = 1 best,
            so every head uses 1 by default; ``[1, 2, 3]`` is DilateFormer's multi-scale choice.
        msda_window: Side of MSDA's sliding window of keys (Eq. 7).
        se: SE attention after the backbone's 1x1 convolutions (Table 7's "proposed method").
        msda: The DilateFormer block at the deepest stage (Table 8's "-T").
        reg_max: Bins of the distribution focal loss per box side (YOLOv8: 16).
    """

    arch: Literal["st-yolo", "yolov8s"] = "st-yolo"
    classes: tuple[str, ...] = OBJECT_TYPES
    input_height: int = Field(640, ge=64, multiple_of=32)
    input_width: int = Field(640, ge=64, multiple_of=32)
    msda_dilations: tuple[int, ...] = (1, 1, 1, 1)
    msda_window: int = Field(3, ge=1)
    se: bool = True
    msda: bool = True
    reg_max: int = Field(16, ge=1)


class DetAugmentConfig(Settings):
    """Training augmentation of the detector (YOLOv8's recipe, scaled down).

    Args:
        mosaic: Chance that a training image is a mosaic of four.
        hflip: Chance of a horizontal flip.
        vflip: Chance of a vertical flip (0: cab views are never upside down).
        hsv_h: Largest hue shift, as a fraction of the hue circle.
        hsv_s: Largest relative saturation change.
        hsv_v: Largest relative brightness change.
        scale: Images are zoomed by a factor in ``[1 - scale, 1 + scale]``.
        translate: Largest shift, as a fraction of the input size.
        min_box_px: Boxes narrower or lower than this after augmentation are dropped.
    """

    mosaic: float = Field(0.5, ge=0, le=1)
    hflip: float = Field(0.5, ge=0, le=1)
    vflip: float = Field(0.0, ge=0, le=1)
    hsv_h: float = Field(0.015, ge=0, le=0.5)
    hsv_s: float = Field(0.7, ge=0, le=1)
    hsv_v: float = Field(0.4, ge=0, le=1)
    scale: float = Field(0.5, ge=0, lt=1)
    translate: float = Field(0.1, ge=0, lt=0.5)
    min_box_px: float = Field(2.0, ge=0)


class DetTrainConfig(TrainingRun):
    """How ``railwatch intrusion train-det`` trains a detector.

    Args:
        epochs: Passes over the training images.
        batch_size: Images per step.
        lr: Peak learning rate of AdamW (linear warm-up, then cosine decay to ``lr * final_lr_ratio``).
        final_lr_ratio: Final learning rate as a fraction of ``lr``.
        weight_decay: AdamW weight decay (not applied to norms and biases).
        warmup_steps: Steps of linear warm-up.
        box_weight: Weight of the CIoU box loss (YOLOv8: 7.5).
        cls_weight: Weight of the classification BCE (YOLOv8: 0.5).
        dfl_weight: Weight of the distribution focal loss (YOLOv8: 1.5).
        tal_topk: Candidate anchors per object in task-aligned assignment (YOLOv8: 10).
        tal_alpha: Exponent of the classification score in the alignment metric (0.5).
        tal_beta: Exponent of the IoU in the alignment metric (6.0).
        ema_decay: Validate and save a moving average of the weights with this decay per step
            (YOLOv8: 0.9999); 0 uses the weights as they are.
        ema_ramp_steps: Steps over which the average's decay ramps up (YOLOv8: 2000).

    The seed, hardware and stopping fields are those of :class:`TrainingRun`; ``init_weights``
    is a detector checkpoint.
    """

    epochs: int = Field(100, ge=1)
    batch_size: int = Field(16, ge=1)
    lr: float = Field(2e-3, gt=0)
    final_lr_ratio: float = Field(0.01, ge=0, le=1)
    weight_decay: float = Field(5e-4, ge=0)
    warmup_steps: int = Field(100, ge=0)
    box_weight: float = Field(7.5, ge=0)
    cls_weight: float = Field(0.5, ge=0)
    dfl_weight: float = Field(1.5, ge=0)
    tal_topk: int = Field(10, ge=1)
    tal_alpha: float = Field(0.5, ge=0)
    tal_beta: float = Field(6.0, ge=0)
    ema_decay: float = Field(0.9999, ge=0, lt=1)
    ema_ramp_steps: float = Field(2000.0, gt=0)
    channels_last: bool = True  # a step of batch 8 on one CPU thread: ST-YOLO 1.15x, YOLOv8s 1.11x faster


class DetInferConfig(Settings):
    """Post-processing of detections (torchvision's batched NMS).

    Args:
        conf_threshold: Detections below this class score are dropped.
        iou_threshold: NMS IoU threshold, per class.
        max_detections: Most detections kept per image.
        input_height: Rows to run the detector at; ``None`` for the size it was trained at.
            The network is fully convolutional, so a larger input finds smaller objects.
        input_width: Columns to run the detector at; ``None`` for the size it was trained at.
    """

    conf_threshold: float = Field(0.25, ge=0, le=1)
    iou_threshold: float = Field(0.6, gt=0, le=1)
    max_detections: int = Field(100, ge=1)
    input_height: int | None = Field(None, ge=64, multiple_of=32)
    input_width: int | None = Field(None, ge=64, multiple_of=32)


class FarFieldConfig(Settings):
    """A second, magnified detector pass over the track's far end in ``railwatch intrusion run``.

    Args:
        zoom: Magnification of the window; the window is the frame divided by it in each
            direction, so 2 shows far objects at twice their size. 1 turns the pass off.
        above_horizon: Share of the window's height above the camera's horizon row (the rest,
            below it, holds the track out to ``1 / zoom`` of the frame's depth of rows).
        edge_px: Boxes of the magnified pass within this many pixels of a window edge inside
            the frame are dropped (objects the window cuts; the whole-frame pass sees them whole).
    """

    zoom: float = Field(2.0, ge=1, le=8)
    above_horizon: float = Field(0.25, ge=0, le=1)
    edge_px: float = Field(2.0, ge=0)


class TrackingConfig(Settings):
    """Tracking and alerting of ``railwatch intrusion run``.

    Args:
        track_activation_threshold: Detections above this score may start a track (ByteTrack).
        lost_track_buffer: Frames a lost track is kept before it is dropped (at 30 fps).
        minimum_matching_threshold: IoU-based matching threshold of ByteTrack.
        minimum_consecutive_frames: Frames a track must be seen before it is reported.
        speed_window_s: Speed is the slope of the ground position over this many seconds.
        level_hold_frames: A tracked object's new risk level must persist this many frames
            before an event is raised (hysteresis), so a level flickering at a boundary raises
            one event, not one per frame.
        train_speed_mps: Speed of the train carrying the camera, m/s; subtracted from the
            objects' apparent approach so their speed is over the ground.
        max_distance_m: Objects further than this are tracked but not graded.
        coast_s: A confirmed track the detector misses is still reported, at ByteTrack's
            Kalman prediction of its box and marked ``coasted``, for up to this many seconds
            (0: never), so an object lost for a moment in rain or fog keeps its level.
    """

    track_activation_threshold: float = Field(0.25, ge=0, le=1)
    lost_track_buffer: int = Field(30, ge=1)
    minimum_matching_threshold: float = Field(0.8, gt=0, le=1)
    minimum_consecutive_frames: int = Field(1, ge=1)
    speed_window_s: float = Field(0.5, gt=0)
    level_hold_frames: int = Field(3, ge=1)
    train_speed_mps: float = Field(0.0, ge=0)
    max_distance_m: float = Field(150.0, gt=0)
    coast_s: float = Field(1.0, ge=0)


class IntrusionConfig(Settings):
    """Settings of the intrusion module (paper 003)."""

    camera: Camera = Field(default_factory=Camera)
    gauge: GaugeConfig = Field(default_factory=GaugeConfig)
    risk: RiskConfig = Field(default_factory=RiskConfig)
    railfit: RailFitConfig = Field(default_factory=RailFitConfig)
    seg: SegModelConfig = Field(default_factory=SegModelConfig)
    seg_train: SegTrainConfig = Field(default_factory=SegTrainConfig)
    det: DetModelConfig = Field(default_factory=DetModelConfig)
    det_augment: DetAugmentConfig = Field(default_factory=DetAugmentConfig)
    det_train: DetTrainConfig = Field(default_factory=DetTrainConfig)
    det_infer: DetInferConfig = Field(default_factory=DetInferConfig)
    far_field: FarFieldConfig = Field(default_factory=FarFieldConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)


class SurfaceTrainConfig(TrainingRun):
    """How ``railwatch surface train|cv`` trains a defect segmenter (paper 002, sections 2.1 and 4.1).

    Args:
        rail_type: RSDDs rail type to read: ``"type1"`` (express rail, 100x160 tiles) or
            ``"type2"`` (common / heavy rail, 100x55 tiles).
        model: Network (see ``railwatch surface models``); ``None`` picks the modified FCN of
            the rail type (``fcn-type1`` or ``fcn-type2``).
        epochs: Passes over the training tiles (300 in the paper).
        batch_size: Tiles per step (16 in the paper).
        lr: Adam learning rate (1e-4 in the paper).
        lr_schedule: ``"constant"`` keeps ``lr`` (the paper); ``"cosine"`` anneals it to
            ``lr_min`` over the run, which lets a short run start at a higher rate without
            diverging late.
        lr_min: Final learning rate of the cosine schedule.
        tile_height: Rows per tile (100 in the paper); tiles span the image's full width.
        mask_threshold: Mask pixels above this value are defects (127 in the paper).
        val_fraction: Share of tiles held out for testing by ``train`` (10% in the paper).
        folds: Folds of ``cv`` (5 in the paper).
        flips: Flip training tiles at random along and across the rail (not in the paper).
        backbone_weights: A torchvision VGG state-dict file (``vgg19`` for the modified FCN,
            ``vgg16`` for FCN-8s, ``vgg16_bn`` for SegNet) to start the encoder from; ``None``
            starts from random weights. Nothing is downloaded.

    The seed, hardware and stopping fields are those of :class:`TrainingRun`.
    """

    rail_type: Literal["type1", "type2"] = "type1"
    model: Literal["fcn-type1", "fcn-type2", "fcn-8s", "segnet"] | None = None
    epochs: int = Field(300, ge=1)
    batch_size: int = Field(16, ge=1)
    lr: float = Field(1e-4, gt=0)
    lr_schedule: Literal["constant", "cosine"] = "constant"
    lr_min: float = Field(0.0, ge=0)
    tile_height: int = Field(100, ge=16)
    mask_threshold: int = Field(127, ge=0, le=254)
    val_fraction: float = Field(0.1, gt=0, lt=1)
    folds: int = Field(5, ge=2)
    flips: bool = False
    num_workers: int = Field(0, ge=0)
    backbone_weights: str | None = None
    channels_last: bool = True  # a step 1.2x (SegNet) to 1.5x (fcn-type1) faster on one CPU thread

    @property
    def model_name(self) -> str:
        """The network to train: ``model``, or the modified FCN of ``rail_type``."""
        return self.model or f"fcn-{self.rail_type}"


class SurfaceConfig(Settings):
    """Settings of the surface module (paper 002)."""

    train: SurfaceTrainConfig = Field(default_factory=SurfaceTrainConfig)


class FastenerModelConfig(Settings):
    """Architecture of the fastener KD-GAN (paper 000, Tables 1-3) and its ablation switches (Table 7).

    Args:
        image_size: Side of the square grey crop (128 in the paper).
        grid: The crop is cut into ``grid x grid`` non-overlapping patches for the encoder (2).
        encoder_channels: Channels of encoder levels 1-4 (Table 1: 32, 64, 128, 256); each level
            halves the patch side, so a 64 px patch ends at 4 x 4.
        discriminator_channels: Channels of discriminator levels 1-5 (Table 3: 16, 64, 128, 128, 128).
        msac: Multi-scale attention coupling in the teacher (section 2.2); off: the teacher
            generator gets no encoder features (the baseline).
        case: Coordinate-channel attention inside MSAC (Eq. 1-9); off: MSAC without attention.
        msac_channels: Widths of MSAC's convolutions on encoder levels 1-3 (128, 256, 512).
        ejpu: Enhanced joint pyramid upsampling in the discriminator (section 2.3).
        ejpu_channels: Width of E-JPU's branches.
        ejpu_dilations: Dilation rates of E-JPU's parallel branches (1, 2, 3, 4).
        memory_slots: Normal-pattern slots of the student's in-painting block.
        inpaint_radius: Each level-4 token is in-painted from the tokens more than this many
            positions away on the crop's token grid (Chebyshev distance; 0: all but itself). A
            level-4 feature sees 31 px of its patch, so its neighbours' codes overlap the 16 px
            it stands for; hiding them (1) makes the student draw a missing part back, at the
            cost of a blurrier reconstruction (README, "Measured").
        teacher_trains_encoder: Let the teacher's losses reach the encoder. Off, the teacher
            reads the encoder's features through a stop-gradient, as SQUID's published code
            does, and the encoder is trained by the student's path alone.
        inpainting: The student's in-painting block: ``tokens`` (KD-GAN's: every level-4 token
            drawn from a learnt memory and the other tokens) or ``squid`` (SQUID's: each patch
            drawn from a queue of normal patches and its eight neighbours, with a masked
            shortcut; :mod:`railwatch.fasteners.squid`).
        queue_slots: Length of each patch position's memory queue (``squid``; SQUID: 200).
        queue_topk: Memory weights each reading keeps (``squid``; SQUID: 5).
        shortcut_rate: Probability that a code skips the block in training (``squid``; SQUID: 0.05).
    """

    image_size: int = Field(128, ge=32, multiple_of=32)
    grid: int = Field(2, ge=1, le=4)
    encoder_channels: tuple[int, int, int, int] = (32, 64, 128, 256)
    discriminator_channels: tuple[int, int, int, int, int] = (16, 64, 128, 128, 128)
    msac: bool = True
    case: bool = True
    msac_channels: tuple[int, int, int] = (128, 256, 512)
    ejpu: bool = True
    ejpu_channels: int = Field(64, ge=4)
    ejpu_dilations: tuple[int, ...] = (1, 2, 3, 4)
    memory_slots: int = Field(256, ge=1)
    inpaint_radius: int = Field(0, ge=0)
    teacher_trains_encoder: bool = True
    inpainting: Literal["tokens", "squid"] = "tokens"
    queue_slots: int = Field(200, ge=1)
    queue_topk: int = Field(5, ge=1)
    shortcut_rate: float = Field(0.05, ge=0, le=1)

    @model_validator(mode="after")
    def _patches_reach_level_four(self) -> "FastenerModelConfig":
        patch = self.image_size // self.grid
        if self.image_size % self.grid or patch % 16:
            raise ValueError(f"image_size {self.image_size} / grid {self.grid} must give patches divisible by 16")
        side = self.image_size // 16  # level-4 tokens per side of the crop
        if 2 * self.inpaint_radius + 1 >= side:  # a token in the middle would see none
            raise ValueError(f"inpaint_radius {self.inpaint_radius} would hide every token of a {side} x {side} grid from some token")
        if self.inpainting == "squid" and self.grid < 2:
            raise ValueError("SQUID in-paints each patch from its neighbours: it needs grid >= 2")
        return self


class FastenerLossConfig(Settings):
    """Weights of the losses of Eq. 16-17 (paper 000, section 2.4); the paper does not give values."""

    teacher: float = Field(1.0, ge=0)  # lambda_t, Eq. 11
    student: float = Field(1.0, ge=0)  # lambda_s, Eq. 12
    distill: float = Field(1.0, ge=0)  # lambda_dist, Eq. 13
    adversarial: float = Field(0.01, ge=0)  # lambda_gen, Eq. 14
    discriminator: float = Field(1.0, ge=0)  # lambda_dis, Eq. 15


PROFILE_STEPS: dict[str, int] = {"quick": 150, "paper": 1000}
"""Training length of each ``--profile``: the paper anneals over 1000 iterations (section 2.5.2)."""


class FastenerTrainConfig(TrainingRun):
    """How ``railwatch fasteners train`` trains an anomaly detector on normal crops (paper 000, section 2.5.2).

    Args:
        model: ``kd-gan`` (the paper's method), or one of its baselines: ``ganomaly`` (Akcay et
            al. 2018), ``memae`` (Gong et al. 2019) or ``f-anogan`` (Schlegl et al. 2019). The
            baselines score with their own papers' measure whatever ``score`` says.
        profile: Training length: ``quick`` (150 steps) or ``paper`` (1000 steps, the length of
            the paper's cosine schedule); ``max_steps`` > 0 overrides it.
        batch_size: Crops per step (16).
        lr: Adam learning rate at the start (1e-4), annealed by a cosine to ``lr_min``.
        lr_min: Learning rate at the end of the schedule (2e-5).
        weight_decay: Adam weight decay (1e-5).
        augment: Horizontal flips and +-20% brightness on training crops (section 2.5.1).
        score: What the anomaly score measures: ``discriminator`` (Eq. 10, D on the student's
            reconstruction), ``reconstruction`` (the student's mean squared error), ``ssim`` (the
            student's largest local structural dissimilarity to the crop), ``distillation``
            (teacher-student feature discrepancy, Eq. 13 per crop), or ``auto``: whichever of
            these has the best AUC on labelled validation crops (the discriminator when the
            validation crops are all normal).
        k: Threshold ``mu + k sigma`` on normal validation scores (section 2.3).
        val_every_steps: Score the validation crops every this many steps.
    """

    model: Literal["kd-gan", "ganomaly", "memae", "f-anogan"] = "kd-gan"
    profile: Literal["quick", "paper"] = "paper"
    epochs: int = Field(10_000, ge=1)
    batch_size: int = Field(16, ge=1)
    lr: float = Field(1e-4, gt=0)
    lr_min: float = Field(2e-5, ge=0)
    weight_decay: float = Field(1e-5, ge=0)
    augment: bool = True
    score: Literal["auto", "discriminator", "reconstruction", "ssim", "distillation"] = "auto"
    k: float = 2.0
    num_workers: int = Field(0, ge=0)
    val_every_steps: int | None = Field(100, ge=1)
    channels_last: bool = True  # 30 steps of the full KD-GAN 1.26x faster on one CPU thread
    arch: FastenerModelConfig = Field(default_factory=FastenerModelConfig)
    loss: FastenerLossConfig = Field(default_factory=FastenerLossConfig)

    @property
    def steps(self) -> int:
        """Optimisation steps: ``max_steps`` when set, else the profile's."""
        return self.max_steps if self.max_steps > 0 else PROFILE_STEPS[self.profile]


class FastenersConfig(Settings):
    """Settings of the fasteners module (paper 000)."""

    train: FastenerTrainConfig = Field(default_factory=FastenerTrainConfig)


class SiteConfig(Settings):
    """How one site's DAS installation and surroundings colour the simulated measurements (paper 001).

    Known sites are in :data:`railwatch.vibration.simulate.SITES`.
    """

    name: str = "training"  # site name, written into data sets
    accel_noise: float = Field(0.002, ge=0)  # accelerometer white-noise std, relative to the event's peak |acceleration|
    das_noise: float = Field(0.2, ge=0)  # DAS ambient (white + 1/f) noise std, relative to the event's peak |DAS signal|
    hum_amplitude: float = Field(0.02, ge=0)  # mains hum amplitude, relative to the event's peak |DAS signal|
    hum_freq: float = Field(50.0, gt=0)  # mains hum frequency, Hz
    coupling_gain: float = Field(1.0, gt=0)  # fibre-to-rail strain transfer at low frequencies
    coupling_freq: float = Field(50.0, gt=0)  # resonance of the taped fibre's coupling, Hz (all clips tight)
    coupling_q: float = Field(15.0, gt=0)  # quality factor of that resonance
    coupling_resonance: float = Field(150.0, ge=0)  # gain of the resonance at its peak, added to 1
    coupling_shift_per_loose_hz: float = 4.0  # shift of the coupling resonance per loose clip, Hz (site artefact)
    hf_cutoff: float = Field(300.0, gt=0)  # corner of the DAS high-frequency attenuation, Hz
    hf_order: int = Field(2, ge=1)  # order of that attenuation (Butterworth-like magnitude)
    gauge_length: float = Field(1.0, gt=0)  # fibre length each sensing point averages over, m


class HammerConfig(Settings):
    """The rail, its fasteners, the hammer blows and the sensor layout of the simulated tests."""

    fs: float = Field(2000.0, gt=0)  # sampling rate, Hz
    duration_s: float = Field(0.6, gt=0)  # record length, s
    pre_trigger_s: float = Field(0.05, gt=0)  # record time before the trigger; the impact falls in its second half
    n_supports: int = Field(11, ge=4)  # fasteners under the simulated rail
    spacing: float = Field(0.6, gt=0)  # fastener spacing, m; the rail overhangs half a spacing at each end
    element_length: float = Field(0.05, gt=0)  # finite-element length, m
    k_vertical: float = Field(1.04e8, gt=0)  # vertical stiffness of a tight fastener, N/m
    k_lateral: float = Field(1.88e7, gt=0)  # lateral stiffness of a tight fastener, N/m
    loose_factor_vertical: float = Field(0.65, gt=0, le=1)  # vertical stiffness of a loose fastener / tight
    loose_factor_lateral: float = Field(0.7, gt=0, le=1)  # lateral stiffness of a loose fastener / tight
    stiffness_scatter: float = Field(0.05, ge=0, lt=0.5)  # relative std of each fastener's stiffness per event
    stiffness_drift: float = Field(0.015, ge=0, lt=0.5)  # relative std of all fasteners' stiffness together per event
    loose_spread: float = Field(0.1, ge=0, lt=1)  # a loose clip's loose factor varies by up to +- this share per event
    damping: tuple[float, float] = (0.02, 0.05)  # range of the first mode's damping ratio, drawn per event
    damping_rise: float = Field(2.0, ge=0)  # higher modes' damping grows as (f / f_first)^damping_rise
    impact_ms: tuple[float, float] = (0.5, 1.5)  # range of the half-sine impact duration, ms
    force_kn: tuple[float, float] = (2.0, 8.0)  # range of the peak impact force, kN
    lateral_share: tuple[float, float] = (0.3, 0.7)  # range of the lateral share of the force (the rest is vertical)
    accel_positions: tuple[float, ...] = (-0.9, -0.45, 0.15, 0.45, 0.9)  # accelerometers, m from the impact
    accel_height: float = -0.06  # accelerometer height above the neutral axis, m (on the web)
    accel_offset: float = 0.0  # accelerometer lateral offset from the rail's centre line, m
    das_positions: tuple[float, ...] = (-1.25, -0.75, -0.25, 0.25, 0.75, 1.25)  # DAS sensing points, m from the impact
    fibre_offset: float = 0.05  # lateral offset of the fibre on the rail foot, m
    youngs_modulus: float = Field(210e9, gt=0)  # rail steel, Pa
    mass_per_m: float = Field(60.3, gt=0)  # UIC60, kg/m
    i_vertical: float = Field(3.055e-5, gt=0)  # UIC60 second moment of area for vertical bending, m^4
    i_lateral: float = Field(5.13e-6, gt=0)  # UIC60 second moment of area for lateral bending, m^4
    neutral_axis: float = Field(0.081, gt=0)  # height of the neutral axis above the foot, m (the fibre's lever arm)

    @model_validator(mode="after")
    def _consistent(self) -> HammerConfig:
        for name in ("damping", "impact_ms", "force_kn", "lateral_share"):
            low, high = getattr(self, name)
            fraction = name in ("damping", "lateral_share")
            if not 0 <= low <= high <= (1.0 if fraction else np.inf):
                raise ValueError(f"{name} must be a range 0 <= low <= high{' <= 1' if fraction else ''}, got ({low}, {high})")
        if self.pre_trigger_s + 0.2 > self.duration_s:
            raise ValueError("duration_s must hold the pre-trigger and 0.2 s of free vibration")
        n_elements = self.rail_length / self.element_length
        if abs(n_elements - round(n_elements)) > 1e-6:
            raise ValueError(f"the rail ({self.rail_length:g} m) must be a whole number of elements")
        if not self.accel_positions or any(not 0 <= x + self.impact_position <= self.rail_length for x in self.accel_positions):
            raise ValueError("every accelerometer must lie on the rail")
        return self

    @property
    def rail_length(self) -> float:
        """Length of the simulated rail, m."""
        return self.n_supports * self.spacing

    @property
    def support_positions(self) -> np.ndarray:
        """Fastener positions from the rail's left end, m."""
        return self.spacing / 2 + self.spacing * np.arange(self.n_supports)

    @property
    def clips(self) -> dict[str, int]:
        """Indices of fasteners #a, #b (either side of the hammer) and #c (beyond #b)."""
        a = self.n_supports // 2 - 1
        return {"a": a, "b": a + 1, "c": a + 2}

    @property
    def impact_position(self) -> float:
        """The hammer's position from the rail's left end, m: mid-span between #a and #b."""
        return float(self.support_positions[self.clips["a"]] + self.spacing / 2)


class VibrationModelConfig(Settings):
    """The CNN+Transformer regressor of paper 001 ("Model implementation", Fig. 2).

    Args:
        conv_channels: Filters of the three Conv1d layers (256, 128, 64); the last is the
            transformer width.
        kernel_size: Convolution kernel (3).
        transformer_blocks: Stacked transformer encoder blocks (3).
        heads: Attention heads per block (4).
        feedforward: Width of each block's feed-forward layer.
        dropout: Dropout in the transformer blocks and the dense layers.
        dense: Units of the dense layers before the sigmoid output (128, 32).
    """

    conv_channels: tuple[int, int, int] = (256, 128, 64)
    kernel_size: int = Field(3, ge=1)
    transformer_blocks: int = Field(3, ge=1)
    heads: int = Field(4, ge=1)
    feedforward: int = Field(128, ge=1)
    dropout: float = Field(0.1, ge=0, lt=1)
    dense: tuple[int, ...] = (128, 32)


class VibrationTrainConfig(TrainingRun):
    """How ``railwatch vibration train`` fits the FFI regressor (paper 001, "Model implementation").

    Args:
        modality: ``accel`` (three axes of one accelerometer), ``das`` (six sensing points) or
            ``transfer`` (pre-train both encoders with MSE + ED, then fine-tune on DAS alone).
        epochs: Passes over the training events (the paper: 2000; fewer suffice on simulated data).
        finetune_epochs: Passes of the DAS-only fine-tuning after transfer pre-training.
        finetune_lr: Adam learning rate of that fine-tuning (it decays to ``lr_min`` where lower),
            small so that fine-tuning adjusts the pre-trained DAS encoder rather than relearning it.
        batch_size: Events per step (20).
        lr: Adam learning rate at the start (1e-3), decaying exponentially to ``lr_min`` (1e-4).
        ed_weight: lambda, the weight of the encoder discrepancy in pre-training (30).
        ed_features: What the discrepancy compares: ``cnn``, the CNN stage's frequency-local
            tokens (default), or ``encoder``, the encoders' outputs after the transformer.
        accelerometer: Which accelerometer (0-based; 2 is #3, nearest the hammer) gives the three axes.
        split: Train:validation:test proportions (7:1:2).
        splits: Random splits the benchmark averages over (5).
        window_s: Free-vibration window after the impact (0.2 s).
        max_freq: Highest spectrum bin in Hz.
    """

    modality: Literal["accel", "das", "transfer"] = "das"
    epochs: int = Field(100, ge=1)
    finetune_epochs: int = Field(50, ge=1)
    finetune_lr: float = Field(1e-4, gt=0)
    batch_size: int = Field(20, ge=1)
    lr: float = Field(1e-3, gt=0)
    lr_min: float = Field(1e-4, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    ed_weight: float = Field(30.0, ge=0)
    ed_features: Literal["encoder", "cnn"] = "cnn"
    accelerometer: int = Field(2, ge=0)
    split: tuple[float, float, float] = (7.0, 1.0, 2.0)
    splits: int = Field(5, ge=1)
    window_s: float = Field(0.2, gt=0)
    max_freq: float = Field(500.0, gt=0)
    num_workers: int = Field(0, ge=0)
    arch: VibrationModelConfig = Field(default_factory=VibrationModelConfig)


class LimeConfig(Settings):
    """Segment-LIME over frequency bands (paper 001, "Interpretable mechanisms"; DESIGN.md).

    Args:
        bands: K, equal frequency bands per channel; each (channel, band) is one feature.
        samples: Perturbed spectra per explanation.
        kernel_width: Width of the exponential kernel on cosine distance that weights samples.
        seed: Seed of the perturbations.
    """

    bands: int = Field(25, ge=2)
    samples: int = Field(600, ge=10)
    kernel_width: float = Field(0.25, gt=0)
    seed: int = 0


class MonitorSettings(Settings):
    """How ``railwatch vibration monitor`` finds and cuts events in a DAS stream.

    Args:
        sta_s: Short-term average window, s.
        lta_s: Long-term average window before it, s; the first ``sta_s + lta_s`` of a stream
            only fill it.
        trigger: STA/LTA ratio that starts an event.
        section_m: Fibre section length, m (channels when the stream has no spacing): an event
            claims the fibre within this of its channel for ``min_gap_s``, and is reported with
            its section number, floor(distance / section_m).
        points: Sensing points: adjacent channels centred on the trigger (SP-A..SP-F).
        window_s: Free-vibration window from the onset ("the first 0.2 s").
        max_freq: Highest spectrum bin, Hz.
        chunk_s: Seconds per chunk when reading a file.
        min_gap_s: Triggers within ``section_m`` and this long after an event belong to it.
    """

    sta_s: float = Field(0.01, gt=0)
    lta_s: float = Field(0.5, gt=0)
    trigger: float = Field(8.0, gt=1)
    section_m: float = Field(25.0, gt=0)
    points: int = Field(6, ge=1)
    window_s: float = Field(0.2, gt=0)
    max_freq: float = Field(500.0, gt=0)
    chunk_s: float = Field(0.5, gt=0)
    min_gap_s: float = Field(0.5, ge=0)

    @model_validator(mode="after")
    def _windows_nest(self) -> MonitorSettings:
        if not self.sta_s < self.lta_s:
            raise ValueError(f"sta_s {self.sta_s} must be shorter than lta_s {self.lta_s}")
        if not 2 * self.sta_s <= self.window_s:
            raise ValueError(f"window_s {self.window_s} must hold at least two STAs of sta_s {self.sta_s}")
        return self


class VibrationConfig(Settings):
    """Settings of the vibration module (paper 001)."""

    simulator: HammerConfig = Field(default_factory=HammerConfig)
    site: SiteConfig = Field(default_factory=SiteConfig)
    train: VibrationTrainConfig = Field(default_factory=VibrationTrainConfig)
    lime: LimeConfig = Field(default_factory=LimeConfig)
    monitor: MonitorSettings = Field(default_factory=MonitorSettings)


class RailwatchConfig(Settings):
    """All railwatch settings; each module owns one section."""

    intrusion: IntrusionConfig = Field(default_factory=IntrusionConfig)
    surface: SurfaceConfig = Field(default_factory=SurfaceConfig)
    fasteners: FastenersConfig = Field(default_factory=FastenersConfig)
    vibration: VibrationConfig = Field(default_factory=VibrationConfig)


def _one_line(error: ValidationError) -> str:
    where, what = first_validation_error(error)
    more = f" (+{error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{where}: {what}{more}"


def config_from_dict(data: dict[str, Any], source: str = "settings") -> RailwatchConfig:
    """Validate a nested dict into a :class:`RailwatchConfig`.

    Raises:
        ConfigError: naming ``source`` and the first bad key.
    """
    try:
        return RailwatchConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(f"{source}: {_one_line(err)}") from None


def load_config(path: str | Path | None = None) -> RailwatchConfig:
    """Load settings from a YAML file, or the defaults when ``path`` is None.

    Raises:
        ConfigError: the file is missing, not YAML, not a mapping, or has a bad key or value.
    """
    if path is None:
        return RailwatchConfig()
    path = Path(path)
    data = read_yaml_mapping(path, "config", ConfigError, "a mapping of sections at the top level")
    return config_from_dict(data, source=str(path))


def override(config: RailwatchConfig, values: dict[str, Any]) -> RailwatchConfig:
    """Return a copy of ``config`` with dotted keys replaced, e.g. ``{"intrusion.camera.focal_px": 2000}``.

    ``None`` values are skipped, so unset CLI flags can be passed straight through.
    """
    data = config.model_dump()
    for dotted, value in values.items():
        if value is None:
            continue
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node[key]
        node[leaf] = value
    return config_from_dict(data, source="command-line options")


def dump_yaml(config: RailwatchConfig) -> str:
    """Serialise settings to YAML, every default written out."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
