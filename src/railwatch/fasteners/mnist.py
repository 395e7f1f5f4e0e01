"""The MNIST check of paper 000, section 3.1.1 and Figure 7, drawn from MNIST's test split.

Digit 0 is the anomaly class and 1-9 are normal. 2000 normal and 100 anomalous images are drawn
(seeded), resized to 128x128 bicubic and split as Table 4 (:func:`mnist_protocol`). The
anomalies are zeros and, as Figure 7 shows, normal-class digits made anomalous by swapping two
of their parts (:func:`disorder_digit`) or erasing one (:func:`erase_digit_part`). The idx files
are read by :func:`read_mnist`, with one-line errors for missing, truncated or wrong files.
"""

from __future__ import annotations

import functools
import gzip
import math
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from railwatch.errors import InputError
from railwatch.fasteners.data import IMAGE_SIZE, NORMAL_KIND, CropSet, CropSplits, crop_set, split_generated, square_resize

MNIST_NORMAL, MNIST_ANOMALOUS = 2000, 100
"""Images drawn from MNIST for the protocol of section 3.1.1."""
MNIST_ANOMALY_KINDS: tuple[str, ...] = ("digit", "disorder", "missing")
"""The MNIST anomalies of section 3.1.1 and Figure 7 (b)-(d): the anomaly digit itself ("zero-position"),
normal digits with two parts swapped ("disorder") and normal digits with a part erased ("missing")."""

_MNIST_FILES = {"images": ("t10k-images-idx3-ubyte", 2051, 3), "labels": ("t10k-labels-idx1-ubyte", 2049, 1)}
"""Base name, magic number and number of dimensions of each MNIST idx file."""


def _read_idx(root: Path, key: str) -> tuple[Path, np.ndarray]:
    base, magic, ndim = _MNIST_FILES[key]
    path = next((p for p in (root / f"{base}.gz", root / base) if p.is_file()), None)
    if path is None:
        raise InputError(f"{root / base}(.gz): file not found")
    try:
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except EOFError:
        raise InputError(f"{path}: truncated gzip file") from None
    except (OSError, zlib.error) as err:  # gzip.BadGzipFile is an OSError
        raise InputError(f"{path}: not a readable gzip file ({type(err).__name__})") from None
    header = 4 + 4 * ndim
    if len(data) < header:
        raise InputError(f"{path}: truncated ({len(data)} bytes, shorter than the idx header)")
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        raise InputError(f"{path}: wrong magic number {found:#010x} (expected {magic:#010x} for an idx{ndim} ubyte file)")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + math.prod(shape)
    if len(data) != expected:
        problem = "truncated" if len(data) < expected else "longer than its header says"
        raise InputError(f"{path}: {problem} ({len(data)} bytes, expected {expected} for shape {shape})")
    return path, np.frombuffer(data, np.uint8, offset=header).reshape(shape)


def read_mnist(root: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """The MNIST test split from ``t10k-images-idx3-ubyte(.gz)`` and ``t10k-labels-idx1-ubyte(.gz)`` in ``root``.

    Returns:
        Images ``(N, 28, 28)`` uint8 and labels ``(N,)`` int64.

    Raises:
        InputError: naming the file: missing, not gzip, truncated, wrong magic number, image
            and label counts that differ, or labels outside 0-9.
    """
    root = Path(root)
    _, images = _read_idx(root, "images")
    labels_path, labels = _read_idx(root, "labels")
    if len(labels) != len(images):
        raise InputError(f"{labels_path}: {len(labels)} labels for {len(images)} images")
    if labels.size and labels.max() > 9:
        raise InputError(f"{labels_path}: label {int(labels.max())} is not a digit 0-9")
    return images.copy(), labels.astype(np.int64)


def _ink_moved(before: np.ndarray, after: np.ndarray) -> float:
    """Share of ``before``'s ink (grey mass) that is no longer where it was in ``after``."""
    ink = float(before.sum())
    return float(np.clip(before.astype(np.float64) - after, 0, None).sum()) / ink if ink else 0.0


def _draw_within(image: np.ndarray, draw: Callable[[], np.ndarray], share: tuple[float, float], tries: int = 64) -> np.ndarray:
    """``draw()`` again until it moves a ``share`` of ``image``'s ink within bounds (the closest of ``tries`` draws)."""
    best, best_gap = image, math.inf
    for _ in range(tries):
        out = draw()
        moved = _ink_moved(image, out)
        gap = max(share[0] - moved, moved - share[1], 0.0)
        if gap < best_gap:
            best, best_gap = out, gap
        if gap == 0:
            break
    return best


def disorder_digit(
    image: np.ndarray, rng: np.random.Generator, grid: int = 4, moved: tuple[float, float] = (0.2, 0.6)
) -> np.ndarray:
    """A "disorder anomaly" (section 3.1.1, Figure 7c): two blocks of a ``grid x grid`` split of the digit swapped.

    Pairs of blocks are drawn until the swap moves between ``moved[0]`` and ``moved[1]`` of the
    digit's ink (the closest of 64 draws otherwise), so every result is visibly out of order but
    still mostly the digit. Only pixels move: the grey values are a permutation of the input's.
    """
    block_h, block_w = image.shape[0] // grid, image.shape[1] // grid

    def swap() -> np.ndarray:
        (ay, ax), (by, bx) = (divmod(int(k), grid) for k in rng.choice(grid * grid, 2, replace=False))
        first = (slice(ay * block_h, (ay + 1) * block_h), slice(ax * block_w, (ax + 1) * block_w))
        second = (slice(by * block_h, (by + 1) * block_h), slice(bx * block_w, (bx + 1) * block_w))
        out = image.copy()
        out[first], out[second] = image[second], image[first]
        return out

    return _draw_within(image, swap, moved)


def erase_digit_part(
    image: np.ndarray, rng: np.random.Generator, side: float = 1 / 3, removed: tuple[float, float] = (0.2, 0.6)
) -> np.ndarray:
    """A "missing anomaly" (section 3.1.1, Figure 7d): a square of ``side`` of the image blanked over a stroke.

    The square is centred on a random stroke pixel and redrawn until it erases between
    ``removed[0]`` and ``removed[1]`` of the digit's ink (the closest of 64 draws otherwise).
    Pixels are only ever set to black.
    """
    half = max(1, round(min(image.shape) * side)) // 2
    strokes = np.argwhere(image > 127)
    if len(strokes) == 0:
        strokes = np.argwhere(image > 0)

    def erase() -> np.ndarray:
        y, x = strokes[rng.integers(len(strokes))] if len(strokes) else rng.integers(image.shape)
        out = image.copy()
        out[max(0, y - half) : y + half + 1, max(0, x - half) : x + half + 1] = 0
        return out

    return _draw_within(image, erase, removed)


def mnist_protocol(
    root: str | Path,
    seed: int = 0,
    anomaly_digit: int = 0,
    size: int = IMAGE_SIZE,
    anomalies: Sequence[str] = MNIST_ANOMALY_KINDS,
) -> CropSplits:
    """The MNIST experiment of section 3.1.1 on the test split in ``root`` (:func:`read_mnist`).

    Digit ``anomaly_digit`` (0 in the paper) is the anomaly class, the others normal. A seeded
    draw of 2000 normal and 100 anomalous images, resized to ``size`` bicubic, is split into 1200
    normal for training, 600 normal + 40 anomalous for validation and 200 normal + 60 anomalous
    for testing (:func:`split_generated`, stratified per kind). The 100 anomalies are shared
    evenly between the ``anomalies`` kinds of Figure 7 (34/33/33 for all three):

    - ``"digit"``: images of ``anomaly_digit`` (kind ``"digit-<d>"``, Figure 7b);
    - ``"disorder"``: other normal-class digits with two parts swapped (:func:`disorder_digit`, 7c);
    - ``"missing"``: other normal-class digits with a part erased (:func:`erase_digit_part`, 7d).

    The made anomalies start from digits outside the 2000 normal images, and are made at MNIST's
    28 x 28 before resizing. ``anomalies=("digit",)`` is the zeros-only reading (100 zeros).
    Sources read ``"mnist-t10k#<index>"``, with ``/disorder`` or ``/missing`` for made anomalies.

    Raises:
        InputError: unreadable files, a digit outside 0-9, an unknown anomaly kind, or too few
            images of a class.
    """
    if not 0 <= anomaly_digit <= 9:
        raise InputError(f"anomaly digit must be 0-9, got {anomaly_digit}")
    unknown = sorted(set(anomalies) - set(MNIST_ANOMALY_KINDS))
    if unknown or not anomalies:
        raise InputError(
            f"MNIST anomaly kinds must be some of {', '.join(MNIST_ANOMALY_KINDS)}, got {', '.join(anomalies) or 'none'}"
        )
    kinds = list(dict.fromkeys(anomalies))
    counts = {kind: MNIST_ANOMALOUS // len(kinds) + (i < MNIST_ANOMALOUS % len(kinds)) for i, kind in enumerate(kinds)}
    images, labels = read_mnist(root)
    rng = np.random.default_rng([seed, 3011])  # the draw; split_generated shuffles with its own stream
    normal_pool = np.flatnonzero(labels != anomaly_digit)
    draws = {NORMAL_KIND: (normal_pool, MNIST_NORMAL)}
    if "digit" in counts:
        draws[f"digit-{anomaly_digit}"] = (np.flatnonzero(labels == anomaly_digit), counts["digit"])
    picked = {}
    for name, (pool, n) in draws.items():
        if len(pool) < n:
            raise InputError(f"{root}: only {len(pool)} {name} images, the protocol draws {n}")
        picked[name] = np.sort(rng.choice(pool, n, replace=False))
    made = {kind: counts[kind] for kind in kinds if kind != "digit"}
    to_make = sum(made.values())
    spare = np.setdiff1d(normal_pool, picked[NORMAL_KIND])
    if len(spare) < to_make:
        raise InputError(f"{root}: only {len(spare)} normal-class images left to make {to_make} anomalies from")
    make_rng = np.random.default_rng([seed, 3011, 1])  # its own stream, so the zeros-only draw stays as it was
    bases = make_rng.choice(spare, to_make, replace=False)
    makers = {"disorder": disorder_digit, "missing": erase_digit_part}
    sets = []
    for kind, idx in picked.items():
        crops = [square_resize(images[i], size, "bicubic") for i in idx]
        label = int(kind != NORMAL_KIND)
        sets.append(crop_set(crops, [label] * len(idx), [kind] * len(idx), [f"mnist-t10k#{i}" for i in idx], size))
    start = 0
    for kind, n in made.items():
        idx = bases[start : start + n]
        start += n
        crops = [square_resize(makers[kind](images[i], make_rng), size, "bicubic") for i in idx]
        sets.append(crop_set(crops, [1] * n, [kind] * n, [f"mnist-t10k#{i}/{kind}" for i in idx], size))
    return split_generated(sets[0], functools.reduce(CropSet.concat, sets[1:]), seed=seed)
