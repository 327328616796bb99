"""Stimuli of the simulator: compositional concepts, per-image variation, latent features, and JPEG rendering.

A concept is a (shape, colour, texture) combination such as ``red_striped_circle``. Its images vary in size,
position, rotation, a small colour jitter, texture phase and the noisy background. Test concepts are unseen
combinations: every attribute value of a test concept occurs in training, but no test triple does.

The latent feature vector of an image is what the EEG model encodes: one-hot shape, colour and texture, the
standardised size and position, and a few random per-concept dimensions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import ToolkitError
from ._presets import COLOURS, SimulationConfig

# Ranges of the per-image variation (fractions of the image side, degrees, 0-255 levels).
SIZE_RANGE = (0.42, 0.74)  # diameter of the shape's bounding circle
OFFSET_RANGE = (-0.12, 0.12)  # centre offset from the image centre; with the largest size the shape stays inside
ROTATION_RANGE = (-20.0, 20.0)
COLOUR_JITTER_SD = 10.0
BACKGROUND_RANGE = (95.0, 165.0)


@dataclass(frozen=True)
class Concept:
    """One concept: its index, folder name and attribute values (as indices into the preset's vocabularies)."""

    index: int
    shape: int
    colour: int
    texture: int
    name: str  # "red_striped_circle"

    @property
    def folder(self) -> str:
        """THINGS-style folder name, ``NNNNN_<name>`` with a 1-based, zero-padded 5-digit prefix."""
        return f"{self.index + 1:05d}_{self.name}"


def concept_name(config: SimulationConfig, shape: int, colour: int, texture: int) -> str:
    """``"<colour>_<texture>_<shape>"``, e.g. ``"red_striped_circle"``."""
    return f"{config.colours[colour]}_{config.textures[texture]}_{config.shapes[shape]}"


def _balanced_pick(candidates: np.ndarray, n: int, sizes: tuple[int, int, int]) -> np.ndarray:
    """Pick ``n`` rows of ``candidates`` (already in random order) so that attribute values stay balanced.

    Greedy: each step takes the first remaining candidate whose values have been used least so far (sum of the
    three counts), so every value is covered as soon as ``n`` allows and counts differ by little.
    """
    counts = [np.zeros(s, dtype=np.int64) for s in sizes]
    available = np.ones(len(candidates), dtype=bool)
    picked = np.empty(n, dtype=np.int64)
    for i in range(n):
        score = counts[0][candidates[:, 0]] + counts[1][candidates[:, 1]] + counts[2][candidates[:, 2]]
        score = np.where(available, score, np.iinfo(np.int64).max)
        j = int(np.argmin(score))
        picked[i] = j
        available[j] = False
        for a in range(3):
            counts[a][candidates[j, a]] += 1
    return picked


def choose_concepts(config: SimulationConfig, rng: np.random.Generator) -> tuple[list[Concept], list[Concept]]:
    """Choose the training and test concepts.

    Test concepts are picked first (balanced over attribute values), then training concepts from the remaining
    combinations (balanced, covering every value). Concept indices follow a random order, as THINGS' alphabetical
    order is unrelated to visual attributes.

    Parameters
    ----------
    config : SimulationConfig
        Sizes and vocabularies.
    rng : np.random.Generator
        Random generator (the world stream).

    Returns
    -------
    train, test : list of Concept
        Concepts in index order.
    """
    sizes = (config.n_shapes, config.n_colours, config.n_textures)
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in sizes], indexing="ij"), axis=-1).reshape(-1, 3)
    grid = grid[rng.permutation(len(grid))]
    test_rows = _balanced_pick(grid, config.n_test_concepts, sizes)
    rest = np.delete(grid, test_rows, axis=0)
    train_rows = _balanced_pick(rest, config.n_train_concepts, sizes)
    test_triples, train_triples = grid[test_rows], rest[train_rows]
    for a, label in enumerate(("shape", "colour", "texture")):
        missing = set(range(sizes[a])) - set(train_triples[:, a].tolist())
        if missing:  # cannot happen when n_train_concepts >= the widest vocabulary; kept as a guard
            raise ToolkitError(
                f"The training concepts miss {label} values {sorted(missing)}; use more training concepts."
            )

    def build(triples: np.ndarray) -> list[Concept]:
        order = rng.permutation(len(triples))
        return [
            Concept(i, int(s), int(c), int(t), concept_name(config, int(s), int(c), int(t)))
            for i, (s, c, t) in enumerate(triples[order])
        ]

    return build(train_triples), build(test_triples)


def image_names(concept: Concept, n_images: int) -> list[str]:
    """File names of a concept's images, ``<name>_01.jpg`` …, in sorted (= condition) order."""
    width = max(2, len(str(n_images)))
    return [f"{concept.name}_{j + 1:0{width}d}.jpg" for j in range(n_images)]


def sample_image_params(n_images: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Draw the per-image variation of ``n_images`` images.

    Returns
    -------
    dict of str to np.ndarray
        ``size`` (fraction of the side), ``x`` and ``y`` (centre offset as a fraction of the side; ``y`` grows
        upwards), ``rotation`` (degrees), ``colour_jitter`` (n, 3) (levels), ``texture_period`` (factor),
        ``texture_phase`` (0 … 1), ``background`` (grey level), ``background_blobs`` and ``background_grain``
        (noise amplitudes in levels).
    """
    return {
        "size": rng.uniform(*SIZE_RANGE, n_images),
        "x": rng.uniform(*OFFSET_RANGE, n_images),
        "y": rng.uniform(*OFFSET_RANGE, n_images),
        "rotation": rng.uniform(*ROTATION_RANGE, n_images),
        "colour_jitter": rng.normal(0.0, COLOUR_JITTER_SD, (n_images, 3)),
        "texture_period": rng.uniform(0.85, 1.15, n_images),
        "texture_phase": rng.uniform(0.0, 1.0, n_images),
        "background": rng.uniform(*BACKGROUND_RANGE, n_images),
        "background_blobs": rng.uniform(4.0, 22.0, n_images),
        "background_grain": rng.uniform(2.0, 7.0, n_images),
    }


def _standardise(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Map a uniform(low, high) variable to zero mean and unit variance."""
    return (values - (low + high) / 2) / ((high - low) / math.sqrt(12))


def feature_names(config: SimulationConfig) -> list[str]:
    """Names of the latent feature dimensions, in order."""
    return (
        [f"shape:{s}" for s in config.shapes]
        + [f"colour:{c}" for c in config.colours]
        + [f"texture:{t}" for t in config.textures]
        + ["size", "x", "y"]
        + [f"concept:{k}" for k in range(config.n_concept_dims)]
    )


def feature_groups(config: SimulationConfig) -> dict[str, list[int]]:
    """Indices of each feature group (``shape``, ``colour``, ``texture``, ``size``, ``x``, ``y``, ``concept``)."""
    sizes = {
        "shape": config.n_shapes, "colour": config.n_colours, "texture": config.n_textures,
        "size": 1, "x": 1, "y": 1, "concept": config.n_concept_dims,
    }  # fmt: skip
    groups, start = {}, 0
    for name, n in sizes.items():
        groups[name] = list(range(start, start + n))
        start += n
    return groups


def feature_matrix(
    config: SimulationConfig,
    concepts: list[Concept],
    image_concept: np.ndarray,
    params: dict[str, np.ndarray],
    concept_dims: np.ndarray,
) -> np.ndarray:
    """Latent features of every image, ``(n_images, n_features)`` float64 (see :func:`feature_names`).

    Parameters
    ----------
    config : SimulationConfig
        Vocabulary sizes.
    concepts : list of Concept
        The split's concepts.
    image_concept : np.ndarray of int, shape (n_images,)
        Concept index of each image.
    params : dict
        Output of :func:`sample_image_params`.
    concept_dims : np.ndarray, shape (n_concepts, n_concept_dims)
        Random per-concept latent values.
    """
    groups = feature_groups(config)
    n_features = sum(len(v) for v in groups.values())
    feats = np.zeros((len(image_concept), n_features))
    attrs = np.array([[c.shape, c.colour, c.texture] for c in concepts], dtype=np.int64)[image_concept]
    rows = np.arange(len(image_concept))
    feats[rows, np.asarray(groups["shape"])[attrs[:, 0]]] = 1.0
    feats[rows, np.asarray(groups["colour"])[attrs[:, 1]]] = 1.0
    feats[rows, np.asarray(groups["texture"])[attrs[:, 2]]] = 1.0
    feats[:, groups["size"][0]] = _standardise(params["size"], *SIZE_RANGE)
    feats[:, groups["x"][0]] = _standardise(params["x"], *OFFSET_RANGE)
    feats[:, groups["y"][0]] = _standardise(params["y"], *OFFSET_RANGE)
    if config.n_concept_dims:
        feats[:, groups["concept"]] = concept_dims[image_concept]
    return feats


# -- rendering --------------------------------------------------------------------------------------------------
def _regular(n: int, start_deg: float, radius: float = 1.0) -> np.ndarray:
    ang = np.deg2rad(start_deg + 360.0 * np.arange(n) / n)
    return radius * np.stack([np.cos(ang), np.sin(ang)], axis=1)


def _star(points: int, inner: float) -> np.ndarray:
    ang = np.deg2rad(90.0 + 180.0 * np.arange(2 * points) / points)
    rad = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner)
    return np.stack([rad * np.cos(ang), rad * np.sin(ang)], axis=1)


def _heart() -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, 96, endpoint=False)
    pts = np.stack(
        [16 * np.sin(t) ** 3, 13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)], axis=1
    )
    pts[:, 1] += 2.5  # centre the bounding box vertically
    return pts / np.abs(pts).max(axis=0).max()


def shape_polygons(shape: str) -> list[tuple[np.ndarray, bool]]:
    """Polygons of a shape in unit coordinates (bounding radius about 1, y up), each with "fill" or "cut out"."""
    circle = _regular(72, 0.0)
    table = {
        "circle": [(circle, True)],
        "square": [(_regular(4, 45.0), True)],
        "triangle": [(_regular(3, 90.0) - np.array([0.0, 0.15]), True)],
        "star": [(_star(5, 0.42), True)],
        "cross": [(np.array([[-.3, 1], [.3, 1], [.3, .3], [1, .3], [1, -.3], [.3, -.3], [.3, -1], [-.3, -1],
                             [-.3, -.3], [-1, -.3], [-1, .3], [-.3, .3]]), True)],
        "ring": [(circle, True), (0.55 * circle, False)],
        "diamond": [(np.array([[0, 1], [0.62, 0], [0, -1], [-0.62, 0]]), True)],
        "hexagon": [(_regular(6, 0.0), True)],
        "pentagon": [(_regular(5, 90.0), True)],
        "heart": [(_heart(), True)],
        "crescent": [(circle, True), (0.85 * circle + np.array([0.45, 0.12]), False)],
        "arrow": [(np.array([[-1, -.22], [.15, -.22], [.15, -.62], [1, 0], [.15, .62], [.15, .22], [-1, .22]]),
                   True)],
    }  # fmt: skip
    return table[shape]


def _texture(name: str, u: np.ndarray, v: np.ndarray, period: float, phase: float, rng: np.random.Generator):
    """Pattern value (1 = base colour, 0 = secondary colour) of a texture at object coordinates ``u, v`` (pixels)."""
    a, b = u / period + phase, v / period + phase
    if name == "plain":
        return np.ones_like(u)
    if name == "striped":
        return (np.mod(a, 1.0) < 0.5).astype(np.float32)
    if name == "dotted":
        du, dv = np.mod(a, 1.0) - 0.5, np.mod(b, 1.0) - 0.5
        return (du**2 + dv**2 > 0.28**2).astype(np.float32)
    if name == "checkered":
        return (np.mod(np.floor(a) + np.floor(b), 2) == 0).astype(np.float32)
    if name == "hatched":
        return (np.mod((u + v) / (period * math.sqrt(2)) + phase, 1.0) > 0.3).astype(np.float32)
    if name == "gridded":
        return ((np.mod(a, 1.0) > 0.22) & (np.mod(b, 1.0) > 0.22)).astype(np.float32)
    if name == "wavy":
        return (np.mod(a + 0.35 * np.sin(2 * np.pi * v / (2.5 * period)), 1.0) < 0.5).astype(np.float32)
    if name == "zigzag":
        tri = np.abs(np.mod(v / (1.5 * period), 1.0) - 0.5)
        return (np.mod(a + 0.8 * tri, 1.0) < 0.5).astype(np.float32)
    if name == "speckled":
        from PIL import Image

        grid = max(3, round(u.shape[0] / (0.9 * period)))
        coarse = (rng.uniform(0, 255, (grid, grid))).astype(np.uint8)
        smooth = np.asarray(Image.fromarray(coarse).resize(u.shape[::-1], Image.Resampling.BICUBIC), np.float32)
        return (smooth > 110).astype(np.float32)
    if name == "ringed":
        return (np.mod(np.hypot(u, v) / period + phase, 1.0) < 0.5).astype(np.float32)
    raise ValueError(f"unknown texture {name!r}")  # vocabulary is fixed in _presets; not user input


def _secondary(rgb: np.ndarray) -> np.ndarray:
    """The second colour of a texture: a darker shade of light colours, a lighter tint of dark ones."""
    lum = (0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]) / 255.0
    return rgb * 0.45 if lum > 0.45 else rgb + (255.0 - rgb) * 0.55


def render_image(
    shape: str,
    colour: str,
    texture: str,
    params: dict[str, float | np.ndarray],
    size: int,
    rng: np.random.Generator,
):
    """Render one stimulus.

    Parameters
    ----------
    shape, colour, texture : str
        Attribute values (names from the vocabularies).
    params : dict
        One image's entries of :func:`sample_image_params` (scalars; ``colour_jitter`` of shape (3,)).
    size : int
        Image side in pixels.
    rng : np.random.Generator
        The image's own random stream (background noise, speckles).

    Returns
    -------
    PIL.Image.Image
        RGB image.
    """
    from PIL import Image, ImageDraw

    # Shapes are drawn with supersampling and reduced (anti-aliasing); textures are evaluated on the same grid.
    ss = 2 if size < 192 else 1
    n = size * ss
    radius = 0.5 * float(params["size"]) * n
    cx = n / 2 + float(params["x"]) * n
    cy = n / 2 - float(params["y"]) * n
    theta = np.deg2rad(float(params["rotation"]))
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])

    mask_img = Image.new("L", (2 * n, 2 * n), 0)
    draw = ImageDraw.Draw(mask_img)
    for poly, fill in shape_polygons(shape):
        pts = (np.asarray(poly, dtype=np.float64) @ rot.T) * radius
        xy = [(2 * (cx + px), 2 * (cy - py)) for px, py in pts]
        draw.polygon(xy, fill=255 if fill else 0)
    mask = np.asarray(mask_img.reduce(2), dtype=np.float32) / 255.0

    blobs = rng.uniform(0.0, 255.0, (6, 6)).astype(np.uint8)
    blob_img = Image.fromarray(blobs).resize((n, n), Image.Resampling.BICUBIC)
    grey = float(params["background"]) + (np.asarray(blob_img, np.float32) / 127.5 - 1.0) * float(
        params["background_blobs"]
    )
    out = np.repeat(grey[..., None], 3, axis=2)

    # Texture and colour are computed only inside the shape's bounding box (most of the image is background).
    r0, r1 = max(0, int(cy - 1.1 * radius) - 1), min(n, int(cy + 1.1 * radius) + 2)
    c0, c1 = max(0, int(cx - 1.1 * radius) - 1), min(n, int(cx + 1.1 * radius) + 2)
    yy, xx = np.mgrid[r0:r1, c0:c1].astype(np.float32)
    dx, dy = xx + 0.5 - cx, cy - (yy + 0.5)
    u = np.cos(theta) * dx + np.sin(theta) * dy  # object coordinates: the texture turns and moves with the shape
    v = -np.sin(theta) * dx + np.cos(theta) * dy
    period = max(3.0 * ss, 0.2 * radius * float(params["texture_period"]))
    pattern = _texture(texture, u, v, period, float(params["texture_phase"]), rng)
    base = np.clip(np.asarray(COLOURS[colour], dtype=np.float32) + np.asarray(params["colour_jitter"]), 0, 255)
    second = _secondary(base).astype(np.float32)
    fill_rgb = second + pattern[..., None] * (base.astype(np.float32) - second)
    box = out[r0:r1, c0:c1]
    box += mask[r0:r1, c0:c1, None] * (fill_rgb - box)

    if ss > 1:
        out = sum(out[i::ss, j::ss] for i in range(ss) for j in range(ss)) / float(ss * ss)
    # Sensor grain is added at the final resolution (supersampling it would only average it away).
    out += float(params["background_grain"]) * rng.standard_normal((size, size, 1), dtype=np.float32)
    return Image.fromarray(np.clip(np.rint(out), 0, 255).astype(np.uint8), "RGB")


def write_images(
    folder: Path,
    config: SimulationConfig,
    concepts: list[Concept],
    n_images: int,
    params: dict[str, np.ndarray],
    seed_key: list[int],
    bar=None,
) -> list[str]:
    """Render and save a split's images as ``folder/NNNNN_name/name_JJ.jpg``; return the relative paths in order.

    Parameters
    ----------
    folder : Path
        The split's image folder (``training_images`` or ``test_images``), created if needed.
    config : SimulationConfig
        Image size and JPEG quality.
    concepts : list of Concept
        The split's concepts in index order.
    n_images : int
        Images per concept.
    params : dict
        Per-image variation for all ``len(concepts) * n_images`` images (condition order).
    seed_key : list of int
        Prefix of the per-image random streams (``[seed, stream, split]``).
    bar : tqdm | None
        Progress bar to advance by one per image.
    """
    paths = []
    for concept in concepts:
        sub = folder / concept.folder
        sub.mkdir(parents=True, exist_ok=True)
        for j, fname in enumerate(image_names(concept, n_images)):
            i = concept.index * n_images + j
            one = {k: v[i] for k, v in params.items()}
            rng = np.random.default_rng([*seed_key, i])
            img = render_image(
                config.shapes[concept.shape], config.colours[concept.colour], config.textures[concept.texture],
                one, config.image_size, rng,
            )  # fmt: skip
            img.save(sub / fname, format="JPEG", quality=config.jpeg_quality)
            paths.append(f"{concept.folder}/{fname}")
            if bar is not None:
                bar.update(1)
    return paths
