"""``railwatch data``: make synthetic data sets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from PIL import Image
from rich.progress import track

from railwatch.camera import Camera
from railwatch.cli_support import console, one_line_errors
from railwatch.errors import InputError

app = typer.Typer(help="Synthetic data for every module.", no_args_is_help=True)
synth_app = typer.Typer(help="Generate seeded, deterministic synthetic data.", no_args_is_help=True)
app.add_typer(synth_app, name="synth")


@synth_app.command("rail-masks")
@one_line_errors
def rail_masks(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the masks and their truth to.")],
    count: Annotated[int, typer.Option("--count", "-n", help="How many masks.", min=1)] = 10,
    kind: Annotated[
        str, typer.Option("--kind", help="straight, curved, multi, dashed, noisy or mixed.")
    ] = "mixed",
    seed: Annotated[int, typer.Option("--seed", help="Seed; the same seed gives the same masks.")] = 0,
    width: Annotated[int, typer.Option("--width", help="Image width in px.", min=64)] = 1920,
    height: Annotated[int, typer.Option("--height", help="Image height in px.", min=64)] = 1080,
    focal_px: Annotated[float, typer.Option("--focal-px", help="Focal length in px.")] = 1400.0,
) -> None:
    """Draw cab-view rail masks through a pinhole camera, with exact truth.

    Writes mask_NNNN.png (rail heads white) and mask_NNNN.json: the camera, each rail's true
    centre column every 10 rows, and the scene settings. Try `railwatch intrusion railfit` on them.
    """
    from railwatch.data.rail_masks import SCENE_KINDS, random_scene, render_rail_mask

    if kind not in SCENE_KINDS:
        raise InputError(f"unknown scene kind {kind!r}; known kinds: {', '.join(SCENE_KINDS)}")
    camera = Camera(width_px=width, height_px=height, focal_px=focal_px)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in track(range(count), description="rendering masks", console=console):
        scene = random_scene(kind, rng, camera)  # type: ignore[arg-type]
        sample = render_rail_mask(scene, seed=seed * 100_003 + i)
        Image.fromarray(sample.mask.astype(np.uint8) * 255).save(out / f"mask_{i:04d}.png")
        truth = {
            "camera": camera.model_dump(),
            "ego_track": scene.ego_index,
            "tracks": [{"offset_m": t.offset_m, "radius_m": t.radius_m} for t in scene.tracks],
            "max_distance_m": scene.max_distance_m,
            "rails": [
                {
                    "track": r.track,
                    "side": r.side,
                    "rows": r.rows[::10].tolist(),
                    "cols": np.round(r.cols[::10], 2).tolist(),
                }
                for r in sample.rails
            ],
        }
        (out / f"mask_{i:04d}.json").write_text(json.dumps(truth, indent=1), encoding="utf-8")
    console.print(f"wrote {count} masks to {out}")


@synth_app.command("scenes")
@one_line_errors
def scenes(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the data set to.")],
    count: Annotated[int, typer.Option("--count", "-n", help="How many images.")] = 100,
    seed: Annotated[int, typer.Option("--seed", help="Seed (>= 0); the same seed gives the same images.")] = 0,
    width: Annotated[int, typer.Option("--width", help="Image width in px.")] = 1024,
    height: Annotated[int, typer.Option("--height", help="Image height in px.")] = 512,
    focal_px: Annotated[float, typer.Option("--focal-px", help="Focal length in px.")] = 747.0,
    weather: Annotated[
        str, typer.Option("--weather", help="Comma-separated weathers to draw from: clear, overcast, fog, rain, night.")
    ] = "clear,overcast,fog,rain,night",
    val_fraction: Annotated[float, typer.Option("--val-fraction", help="Fraction of images for validation.")] = 0.1,
    image_format: Annotated[str, typer.Option("--format", help="Image format: png or jpg.")] = "png",
) -> None:
    """Render cab-view railway images with exact labels, as a YOLO data set.

    Each image shows one or more tracks (straight or curved, parallel neighbours, turnouts),
    people, cars, animals and stones at known positions, in clear, overcast, foggy, rainy or
    night conditions. Writes images/, YOLO boxes in labels/, rail, track and semantic masks in
    masks/, the truth of each image (rails, objects with offset and distance) in meta/, and
    data.yaml for training a detector. Scene i is the same whatever --count is.
    """
    from railwatch.data.scenes import check_weathers, write_scene_dataset

    weathers = check_weathers(weather)
    if width < 32 or height < 32:
        raise InputError(f"image size must be at least 32 x 32 px, got {width} x {height}")
    if not focal_px > 0:
        raise InputError(f"focal length must be > 0 px, got {focal_px}")
    camera = Camera(width_px=width, height_px=height, focal_px=focal_px)
    data_yaml = write_scene_dataset(
        out, count, seed=seed, camera=camera, weathers=weathers, val_fraction=val_fraction, image_format=image_format
    )
    root = data_yaml.parent
    n_val = round(count * val_fraction)
    boxes = 0
    for i in range(count):
        split = "val" if i >= count - n_val else "train"
        boxes += len((root / "labels" / split / f"scene_{i:06d}.txt").read_text(encoding="utf-8").splitlines())
    console.print(f"wrote {count} images ({count - n_val} train, {n_val} val) with {boxes} boxes to {root}")
    console.print(f"data set: {data_yaml}")


@synth_app.command("clip")
@one_line_errors
def clip(
    out: Annotated[Path, typer.Argument(help="Folder to write the clip to.")],
    frames: Annotated[int, typer.Option("--frames", help="Number of frames.")] = 50,
    fps: Annotated[float, typer.Option("--fps", help="Frames per second.")] = 25.0,
    seed: Annotated[int, typer.Option("--seed", help="Seed (>= 0); the same seed gives the same clip.")] = 0,
    train_speed: Annotated[float, typer.Option("--train-speed-mps", help="Speed of the train, m/s.")] = 10.0,
    weather: Annotated[
        str, typer.Option("--weather", help="Comma-separated weathers to draw from: clear, overcast, fog, rain, night.")
    ] = "clear,overcast,fog,rain,night",
    video: Annotated[bool, typer.Option("--video", help="Write clip.mp4 (H.264) instead of frames/*.png.")] = False,
) -> None:
    """Render a cab-view clip in which people and animals walk onto the track, with exact truth.

    The train runs at --train-speed-mps along a straight or gently curved track, so every
    object comes nearer by that speed; people and animals cross the track at 0.5-2 m/s, cars
    and stones stand still. Writes frames/NNNNNN.png (or clip.mp4), truth.jsonl (per frame:
    each object's id, class, box, foot, offset, distance, speed and true risk level),
    camera.yaml and clip.json. Try `railwatch intrusion run` on it.
    """
    from railwatch.data.scene_clips import random_clip_spec, write_clip

    if frames < 1 or frames > 100_000:
        raise InputError(f"--frames must be between 1 and 100000, got {frames}")
    spec = random_clip_spec(seed, frames, fps, train_speed_mps=train_speed, weathers=weather)
    write_clip(out, spec, video=video)
    objects = ", ".join(
        f"{o.type} {o.offset_m:+.1f} m at {o.distance_m:.0f} m"
        + (f" walking {o.lateral_speed_mps:+.1f} m/s" if o.lateral_speed_mps else "")
        for o in spec.objects
    )
    console.print(f"wrote {frames} frames ({spec.scene.weather}, {spec.duration_s:.1f} s) to {out}: {objects}")
    source = out / ("clip.mp4" if video else "frames")
    console.print(
        f"run: railwatch intrusion run {source} --camera {out / 'camera.yaml'} --out {out / 'run'} "
        f"--train-speed-mps {train_speed:g}" + ("" if video else f" --fps {fps:g}"),
        soft_wrap=True,
    )


@synth_app.command("surface")
@one_line_errors
def surface(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the RSDDs-layout data set to.")],
    count: Annotated[int, typer.Option("--count", "-n", help="Strips per rail type.", min=1)] = 20,
    rail_type: Annotated[str, typer.Option("--type", help="type1, type2 or both.")] = "both",
    seed: Annotated[int, typer.Option("--seed", help="Seed; the same seed gives the same strips.")] = 0,
) -> None:
    """Draw rail running-surface strips with defect masks, in the RSDDs layout (paper 002).

    Type-I strips (express rail) are 160x1000 px, Type-II (common / heavy rail) 55x1250. Each has
    stains and scratches that are not defects, and spalls, squats, cracks and pits covering about
    1% of its pixels. Writes OUT/Type-I RSDDs dataset/{Rail surface images,GroundTruth}/rail_N.jpg
    (likewise Type-II), ready for `railwatch surface train OUT`.
    """
    from railwatch.data.surface_strips import RAIL_TYPES, write_rsdds

    types = list(RAIL_TYPES) if rail_type == "both" else [rail_type]
    if any(t not in RAIL_TYPES for t in types):
        raise InputError(f"unknown rail type {rail_type!r}; use type1, type2 or both")
    for name in types:
        for i in track(range(1, count + 1), description=f"drawing {name} strips", console=console):
            write_rsdds(out, name, 1, seed=seed, start=i)
        console.print(f"{name}: {count} strips in {out / RAIL_TYPES[name].folder}")


@synth_app.command("fasteners")
@one_line_errors
def fasteners(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the data set to.")],
    normal: Annotated[int, typer.Option("--normal", help="How many normal crops.", min=0)] = 200,
    per_kind: Annotated[int, typer.Option("--per-kind", help="How many crops of each defect kind.", min=0)] = 20,
    seed: Annotated[int, typer.Option("--seed", help="Seed (>= 0); the same seed gives the same crops.", min=0)] = 0,
    kinds: Annotated[
        str, typer.Option("--kinds", help="Comma-separated defect kinds: broken_clip, missing_bolt, occlusion.")
    ] = "broken_clip,missing_bolt,occlusion",
) -> None:
    """Draw top-down 128x128 grey crops of rail fasteners, normal and defective, with defect masks.

    Each crop shows a spring clip and its bolt on a concrete sleeper, with ballast and the rail
    foot, moved, scaled and lit differently per crop. Defects: a broken clip arm, a missing bolt
    (empty hole) and a foreign object over the fastener. Writes OUT/normal/normal_NNNN.png,
    OUT/abnormal/<kind>/<kind>_NNNN.png and OUT/masks/<kind>/<kind>_NNNN.png (white = defect),
    for training an anomaly detector on the normal crops and testing it on the others.
    """
    from rich.progress import Progress

    from railwatch.data.fastener_crops import FASTENER_DEFECTS, write_fastener_folder

    names = [name.strip() for name in kinds.split(",") if name.strip()]
    unknown = [name for name in names if name not in FASTENER_DEFECTS]
    if unknown:
        raise InputError(f"unknown fastener defect {unknown[0]!r}; known kinds: {', '.join(FASTENER_DEFECTS)}")
    with Progress(console=console) as bar:
        task = bar.add_task("drawing fasteners", total=None)
        counts = write_fastener_folder(
            out, normal, per_kind, seed=seed, kinds=names, progress=lambda done, total: bar.update(task, completed=done, total=total)
        )
    summary = ", ".join(f"{n} {name}" for name, n in counts.items())
    console.print(f"wrote {sum(counts.values())} fastener crops ({summary}) to {out}")


@synth_app.command("hammer")
@one_line_errors
def hammer(
    out: Annotated[Path, typer.Option("--out", help="HDF5 file to write.")],
    repeats: Annotated[int, typer.Option("--repeats", help="Hammer blows per condition (C1..C6).", min=1)] = 50,
    seed: Annotated[int, typer.Option("--seed", help="Seed (>= 0); the same seed gives the same records.", min=0)] = 0,
    site: Annotated[
        str | None, typer.Option("--site", help="A known site (training, other); YAML site keys apply on top. Default: vibration.site.")
    ] = None,
    noise: Annotated[
        float | None, typer.Option("--noise", help="DAS ambient noise std, relative to each blow's peak.", min=0)
    ] = None,
    hum: Annotated[
        float | None, typer.Option("--hum", help="DAS 50 Hz hum amplitude, relative to each blow's peak.", min=0)
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="YAML settings (vibration.simulator, vibration.site); flags override it."),
    ] = None,
) -> None:
    """Simulate hammer tests on a rail with loose fastener clips: accelerometers and DAS (paper 001).

    A UIC60 rail on 11 fasteners is struck between fasteners #a and #b under the paper's six
    conditions (C1 all tight ... C6 with #a, #b and #c loose); five 3-axis accelerometers and six
    DAS sensing points record each blow. Writes OUT with arrays accel, das, ffi, condition and
    the sampling rate, ready for `railwatch vibration train OUT`.
    """
    from railwatch.config import load_config
    from railwatch.vibration.hammer_io import write_hammer_h5
    from railwatch.vibration.simulate import CONDITIONS, rail_modes, resolve_site, simulate_hammer_tests

    cfg = load_config(config).vibration
    simulator, site_config = cfg.simulator, cfg.site
    if site is not None:  # a known site, with the site keys the YAML sets on top
        site_config = resolve_site(site).model_copy(update={key: getattr(cfg.site, key) for key in cfg.site.model_fields_set})
    overrides = {key: value for key, value in (("das_noise", noise), ("hum_amplitude", hum)) if value is not None}
    site_config = site_config.model_copy(update=overrides)
    dataset = simulate_hammer_tests(simulator, site_config, repeats=repeats, seed=seed, progress=True)
    settings_used = {
        "simulator": simulator.model_dump(mode="json"),
        "site": site_config.model_dump(mode="json"),
        "repeats": repeats,
        "seed": seed,
    }
    write_hammer_h5(out, dataset, settings_used)
    console.print(
        f"wrote {len(dataset)} events ({repeats} per condition C1..C{len(CONDITIONS)}) at {dataset.fs:g} Hz, "
        f"{dataset.das.shape[-1]} samples, site {site_config.name} to {out}",
        soft_wrap=True,
    )
    first = {plane: (rail_modes(simulator, 1, plane)[0], rail_modes(simulator, 6, plane)[0]) for plane in ("vertical", "lateral")}
    console.print(
        ", ".join(f"first {plane} mode {tight:.1f} Hz tight, {loose:.1f} Hz C6" for plane, (tight, loose) in first.items()),
        soft_wrap=True,
    )
