"""Image loading for the metrics, and the low-level metrics PixCorr and SSIM (MindEye / ATM definitions).

Every image, whatever it came as, is turned into the same thing before any metric sees it: a float32 RGB tensor
``(3, size, size)`` in [0, 1] (``size`` = 256 by default, as the ATM metrics notebook resizes both the
reconstructions and the ground truths to 256 × 256 first).

Accepted inputs, per image
--------------------------
- a PIL image of any mode: ``RGB`` as is; ``L``, ``P``, ``CMYK``, ``YCbCr``, ``LAB``, ``HSV``, ``1`` converted to
  RGB by Pillow; ``RGBA`` / ``LA`` / ``PA``: the alpha channel is dropped (not composited on a background);
  16-bit ``I;16*`` / ``I`` modes are scaled by 1/65535; ``F`` must already lie in [0, 1];
- the path of an image file (read with Pillow, then as above);
- a numpy array read as ``(H, W)`` or ``(H, W, C)`` with C in {1, 3, 4} (4: alpha dropped): ``uint8`` scaled by
  1/255, ``uint16`` by 1/65535, ``bool`` as 0/1, floats must lie in [0, 1];
- a torch tensor read as ``(C, H, W)`` or ``(H, W)`` with the same channel and dtype rules.

A whole batch may be given as one 4-D torch tensor ``(N, C, H, W)`` or numpy array ``(N, H, W, C)``.

Images of different sizes or aspect ratios are all resized to ``size × size`` (bilinear, antialiased; the aspect
ratio is not kept, as in the reference notebook, which resizes to 256 × 256). Unreadable images, values outside
[0, 1], NaNs, a count mismatch between reconstructions and ground truths and empty lists raise a
:class:`~toolkit.ToolkitError` naming the offending item (``reconstructions[3]`` or its file path).

PixCorr and SSIM
----------------
- **PixCorr**: both images resized to 425 × 425 (bilinear), flattened over channels and pixels, Pearson r per
  (reconstruction, ground truth) pair, mean over pairs.
- **SSIM**: both images resized to 425 × 425, converted to grey with scikit-image's ``rgb2gray`` (ITU-R 709 luma
  weights), then scikit-image's ``structural_similarity`` with Gaussian weights, σ = 1.5, population covariance
  (``use_sample_covariance=False``) and ``data_range=1.0``; mean over pairs. This is the 2-D SSIM of the grey
  images. (The MindEye code also passed ``multichannel=True`` on these 2-D grey images: scikit-image 0.19–0.2x
  then read the image columns as channels and averaged 1-D SSIMs, while newer releases ignore that argument. The
  2-D definition here is the one the metric is meant to be; numbers from the two differ slightly.)
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ToolkitError
from ..utils import require

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

#: Size both image sets are resized to first (the ATM metrics notebook uses 256 × 256).
DEFAULT_IMAGE_SIZE = 256
#: Size PixCorr and SSIM resize to (MindEye's low-level metrics).
LOW_LEVEL_SIZE = 425
#: Pairs resized to 425 × 425 at a time in PixCorr and SSIM (bounds memory: 32 pairs ≈ 140 MB).
_LOW_LEVEL_CHUNK = 32
# Images of one shape resized together when loading.
_RESIZE_CHUNK = 32
# Values this far outside [0, 1] in a float image are rounding (clipped); farther out is an error.
_RANGE_TOLERANCE = 1e-4


# ============================================================================================== image loading
def load_images(
    images: Any,
    *,
    size: int | None = DEFAULT_IMAGE_SIZE,
    what: str = "images",
) -> torch.Tensor:
    """Convert a list of images (or one batch) to a float32 RGB batch in [0, 1], resized to ``size × size``.

    Parameters
    ----------
    images : sequence | torch.Tensor | np.ndarray
        A list/tuple of PIL images, image file paths, numpy arrays ``(H, W[, C])`` or torch tensors ``(C, H, W)``
        (mixed freely), or one batch: a torch tensor ``(N, C, H, W)`` or a numpy array ``(N, H, W, C)``. See the
        module docstring for modes, dtypes and value ranges.
    size : int | None
        Side every image is resized to (bilinear, antialiased; the aspect ratio is not kept). ``None`` keeps the
        sizes, which must then all be equal.
    what : str
        Name of the argument, used in error messages (``"reconstructions"`` → ``reconstructions[3]``).

    Returns
    -------
    images : torch.Tensor of float32, shape (n_images, 3, size, size)
        The batch, on the CPU.
    """
    import torch

    items = _as_item_list(images, what)
    if size is not None:
        _check_positive_int(size, "size")
    if size is None:
        out = [_to_float_chw(item, _label(what, index, item)) for index, item in enumerate(items)]
    else:
        # Decoded in chunks (bounded memory), and the images of equal shape in a chunk resized in one call.
        out = []
        for start in range(0, len(items), _RESIZE_CHUNK):
            chunk = [
                _to_float_chw(item, _label(what, start + offset, item))
                for offset, item in enumerate(items[start : start + _RESIZE_CHUNK])
            ]
            by_shape: dict[tuple[int, ...], list[int]] = {}
            for offset, chw in enumerate(chunk):
                if tuple(chw.shape[1:]) != (size, size):
                    by_shape.setdefault(tuple(chw.shape), []).append(offset)
            for offsets in by_shape.values():
                resized = _resize(torch.stack([chunk[i] for i in offsets]), size)
                for i, chw in zip(offsets, resized):
                    chunk[i] = chw
            out.extend(chunk)
    if size is None:
        shapes = {tuple(t.shape) for t in out}
        if len(shapes) > 1:
            raise ToolkitError(
                f"The {what} have different sizes ({', '.join(str(s[1:]) for s in sorted(shapes))}) and size=None; "
                "pass size=N to resize them all to N × N."
            )
    return torch.stack(out).contiguous()


def to_pil_images(images: Any, *, what: str = "images") -> list[Any]:
    """Convert images in any accepted form (see :func:`load_images`) to RGB PIL images at their own size.

    Parameters
    ----------
    images : sequence | torch.Tensor | np.ndarray
        As for :func:`load_images`.
    what : str
        Name of the argument, used in error messages.

    Returns
    -------
    list of PIL.Image.Image
        One RGB image per input, not resized.
    """
    from PIL import Image

    items = _as_item_list(images, what)
    out = []
    for index, item in enumerate(items):
        if isinstance(item, Image.Image) and item.mode == "RGB":
            out.append(item)
            continue
        chw = _to_float_chw(item, _label(what, index, item))
        hwc = (chw.permute(1, 2, 0).numpy() * 255.0).round().clip(0, 255).astype(np.uint8)
        out.append(Image.fromarray(hwc, mode="RGB"))
    return out


def check_pairs(recons: Any, ground_truths: Any) -> tuple[list[Any], list[Any]]:
    """Check that reconstructions and ground truths are non-empty and equally many; return them as lists.

    Parameters
    ----------
    recons, ground_truths : sequence | torch.Tensor | np.ndarray
        The two image sets, one reconstruction per ground-truth image in the same order.

    Returns
    -------
    tuple of list
        ``(recons, ground_truths)``, one item per image (a batch tensor or array is split).
    """
    rec = _as_item_list(recons, "reconstructions")
    gt = _as_item_list(ground_truths, "ground_truths")
    if len(rec) != len(gt):
        raise ToolkitError(
            f"Got {len(rec)} reconstructions but {len(gt)} ground truths; pass exactly one reconstruction per "
            "ground-truth image, in the same order."
        )
    return rec, gt


def load_pairs(
    recons: Any, ground_truths: Any, *, size: int = DEFAULT_IMAGE_SIZE
) -> tuple[torch.Tensor, torch.Tensor]:
    """Check and load (reconstruction, ground truth) pairs into two ``(N, 3, size, size)`` batches.

    Parameters
    ----------
    recons, ground_truths : sequence | torch.Tensor | np.ndarray
        The two image sets (see :func:`load_images`), one reconstruction per ground truth, in the same order.
    size : int
        Common side both sets are resized to first (256 in the reference notebook).

    Returns
    -------
    recons, ground_truths : torch.Tensor of float32, shape (n_pairs, 3, size, size)
        The two batches.
    """
    rec, gt = check_pairs(recons, ground_truths)
    return load_images(rec, size=size, what="reconstructions"), load_images(gt, size=size, what="ground_truths")


# ================================================================================================= PixCorr, SSIM
def pixcorr(
    recons: Any,
    ground_truths: Any,
    *,
    image_size: int = DEFAULT_IMAGE_SIZE,
    resize: int = LOW_LEVEL_SIZE,
    per_pair: bool = False,
) -> float | np.ndarray:
    """PixCorr: mean pixel-wise Pearson correlation between each reconstruction and its ground truth.

    Both images are resized to ``image_size`` (the common size) and then to ``resize`` × ``resize`` (bilinear),
    flattened over channels and pixels, and correlated.

    Parameters
    ----------
    recons, ground_truths : sequence | torch.Tensor | np.ndarray
        The two image sets (see :func:`load_images`), paired by position.
    image_size : int
        Common size both sets are resized to first (256 in the reference notebook).
    resize : int
        Size the correlation is computed at (425 in MindEye).
    per_pair : bool
        Return the per-pair values instead of their mean.

    Returns
    -------
    float | np.ndarray of float64, shape (n_pairs,)
        The mean (higher is better, 1 for identical images), or one value per pair. A pair where either image is
        constant has no correlation: its value is NaN, it is logged, and the mean skips it.
    """
    rec, gt = load_pairs(recons, ground_truths, size=image_size)
    values = pixcorr_from_tensors(rec, gt, resize=resize)
    return values if per_pair else _nanmean(values, "PixCorr")


def ssim(
    recons: Any,
    ground_truths: Any,
    *,
    image_size: int = DEFAULT_IMAGE_SIZE,
    resize: int = LOW_LEVEL_SIZE,
    per_pair: bool = False,
) -> float | np.ndarray:
    """SSIM of the grey images (MindEye settings), mean over (reconstruction, ground truth) pairs.

    Parameters
    ----------
    recons, ground_truths : sequence | torch.Tensor | np.ndarray
        The two image sets (see :func:`load_images`), paired by position.
    image_size : int
        Common size both sets are resized to first (256 in the reference notebook).
    resize : int
        Size SSIM is computed at (425 in MindEye); at least 7.
    per_pair : bool
        Return the per-pair values instead of their mean.

    Returns
    -------
    float | np.ndarray of float64, shape (n_pairs,)
        The mean (higher is better, 1 for identical images), or one value per pair.
    """
    rec, gt = load_pairs(recons, ground_truths, size=image_size)
    values = ssim_from_tensors(rec, gt, resize=resize)
    return values if per_pair else float(values.mean())


def pixcorr_from_tensors(
    recons: torch.Tensor, ground_truths: torch.Tensor, *, resize: int = LOW_LEVEL_SIZE
) -> np.ndarray:
    """Per-pair PixCorr of two already loaded batches (:func:`load_pairs`).

    Parameters
    ----------
    recons, ground_truths : torch.Tensor of float32, shape (n_pairs, 3, H, W)
        The two batches, in [0, 1].
    resize : int
        Size the correlation is computed at.

    Returns
    -------
    np.ndarray of float64, shape (n_pairs,)
        Pearson r per pair (NaN where an image is constant).
    """
    _check_batches(recons, ground_truths)
    _check_positive_int(resize, "resize")
    out = []
    for start in range(0, recons.shape[0], _LOW_LEVEL_CHUNK):
        stop = start + _LOW_LEVEL_CHUNK
        rec = _resize(recons[start:stop], resize).flatten(1).double().numpy()
        gt = _resize(ground_truths[start:stop], resize).flatten(1).double().numpy()
        out.append(_rowwise_pearson(rec, gt))
    values = np.concatenate(out)
    bad = np.flatnonzero(np.isnan(values))
    if bad.size:
        logger.warning(
            "PixCorr is undefined for %d pair(s) with a constant image (first: pair %d); they are left out of the "
            "mean.",
            bad.size,
            int(bad[0]),
        )
    return values


def ssim_from_tensors(
    recons: torch.Tensor, ground_truths: torch.Tensor, *, resize: int = LOW_LEVEL_SIZE
) -> np.ndarray:
    """Per-pair SSIM of two already loaded batches (:func:`load_pairs`).

    Parameters
    ----------
    recons, ground_truths : torch.Tensor of float32, shape (n_pairs, 3, H, W)
        The two batches, in [0, 1].
    resize : int
        Size SSIM is computed at; at least 7 (the Gaussian window).

    Returns
    -------
    np.ndarray of float64, shape (n_pairs,)
        SSIM per pair.
    """
    require("skimage", extra="metrics", purpose="SSIM")
    from skimage.color import rgb2gray
    from skimage.metrics import structural_similarity

    _check_batches(recons, ground_truths)
    _check_positive_int(resize, "resize")
    if resize < 7:
        raise ToolkitError(f"resize must be at least 7 for SSIM (its 7 × 7 window), got {resize}.")
    out = []
    for start in range(0, recons.shape[0], _LOW_LEVEL_CHUNK):
        stop = start + _LOW_LEVEL_CHUNK
        rec = _resize(recons[start:stop], resize).permute(0, 2, 3, 1).double().numpy()
        gt = _resize(ground_truths[start:stop], resize).permute(0, 2, 3, 1).double().numpy()
        for r, g in zip(rgb2gray(rec), rgb2gray(gt)):
            out.append(
                structural_similarity(
                    r, g, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0
                )
            )
    return np.asarray(out, dtype=np.float64)


# ================================================================================================ helpers
def _as_item_list(images: Any, what: str) -> list[Any]:
    """Split the input into a list of single images, or raise naming ``what``."""
    if images is None:
        raise ToolkitError(f"No {what} given (None); pass a list of images, image paths, arrays or tensors.")
    if isinstance(images, (str, os.PathLike)):
        raise ToolkitError(
            f"'{what}' is a single path ({images}); pass a list of image paths (one per image), in pair order."
        )
    if _is_tensor(images):
        if images.ndim != 4:
            raise ToolkitError(
                f"'{what}' is a tensor of shape {tuple(images.shape)}; a batch tensor must be (N, C, H, W) "
                "(pass a list for single images)."
            )
        items: list[Any] = list(images.unbind(0))
    elif isinstance(images, np.ndarray):
        if images.ndim != 4:
            raise ToolkitError(
                f"'{what}' is an array of shape {images.shape}; a batch array must be (N, H, W, C) "
                "(pass a list for single images)."
            )
        items = list(images)
    else:
        try:
            items = list(images)
        except TypeError:
            raise ToolkitError(
                f"'{what}' must be a list of images, image paths, arrays or tensors, not {type(images).__name__}."
            ) from None
    if not items:
        raise ToolkitError(f"No {what} given (the list is empty); pass at least one image.")
    return items


def _label(what: str, index: int, item: Any) -> str:
    if isinstance(item, (str, os.PathLike)):
        return f"{what}[{index}] ('{item}')"
    return f"{what}[{index}]"


def _is_tensor(x: Any) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "detach") and hasattr(x, "ndim")


def _to_float_chw(item: Any, label: str) -> torch.Tensor:
    """One image → float32 ``(3, H, W)`` tensor in [0, 1], or a ToolkitError naming ``label``."""
    import torch
    from PIL import Image

    if isinstance(item, (str, os.PathLike)):
        item = _open_image(Path(item), label)
    if isinstance(item, Image.Image):
        hwc = _pil_to_float_hwc(item, label)
        return torch.from_numpy(np.ascontiguousarray(hwc.transpose(2, 0, 1)))
    if _is_tensor(item):
        t = item.detach().cpu()
        if t.ndim == 2:
            t = t.unsqueeze(0)
        if t.ndim != 3:
            raise ToolkitError(
                f"{label} is a tensor of shape {tuple(item.shape)}; image tensors must be (C, H, W) or (H, W)."
            )
        chw = _scale_to_unit(t.numpy() if t.dtype != torch.bfloat16 else t.float().numpy(), label)
        return torch.from_numpy(np.ascontiguousarray(_fix_channels(chw, 0, label)))
    if isinstance(item, np.ndarray):
        arr = item
        if arr.ndim == 2:
            arr = arr[:, :, None]
        if arr.ndim != 3:
            raise ToolkitError(f"{label} is an array of shape {item.shape}; image arrays must be (H, W, C) or (H, W).")
        hwc = _fix_channels(_scale_to_unit(arr, label), 2, label)
        return torch.from_numpy(np.ascontiguousarray(hwc.transpose(2, 0, 1)))
    raise ToolkitError(
        f"{label} is a {type(item).__name__}; pass a PIL image, an image file path, a numpy array (H, W, C) or a "
        "torch tensor (C, H, W)."
    )


def _open_image(path: Path, label: str) -> Any:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            return img.copy()
    except FileNotFoundError:
        raise ToolkitError(f"Image file {label} does not exist; check the path.") from None
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as err:
        raise ToolkitError(f"Image file {label} cannot be read as an image ({err}); replace or remove it.") from None


def _pil_to_float_hwc(img: Any, label: str) -> np.ndarray:
    """A PIL image of any mode → float32 ``(H, W, 3)`` in [0, 1]."""
    mode = img.mode
    if mode.startswith("I;16") or mode == "I":
        # 16-bit (or 32-bit integer) grey: Pillow's convert("RGB") would clip at 255, so scale here.
        grey = np.asarray(img, dtype=np.float64) / 65535.0
        return _fix_channels(_check_unit_range(grey[:, :, None], label), 2, label).astype(np.float32)
    if mode == "F":
        grey = np.asarray(img, dtype=np.float64)
        return _fix_channels(_check_unit_range(grey[:, :, None], label), 2, label).astype(np.float32)
    if mode != "RGB":
        try:
            img = img.convert("RGB")  # alpha channels are dropped here
        except (ValueError, OSError) as err:
            raise ToolkitError(f"{label} (PIL mode {mode}) cannot be converted to RGB ({err}).") from None
    return np.asarray(img, dtype=np.float32) / 255.0


def _scale_to_unit(arr: np.ndarray, label: str) -> np.ndarray:
    """Integer/bool arrays scaled to [0, 1]; float arrays checked to lie in [0, 1]. Returns float32."""
    if arr.size == 0:
        raise ToolkitError(f"{label} is empty (shape {arr.shape}); pass a non-empty image.")
    kind = arr.dtype.kind
    if kind == "b":
        return arr.astype(np.float32)
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if arr.dtype == np.uint16:
        return (arr.astype(np.float64) / 65535.0).astype(np.float32)
    if kind == "f":
        return _check_unit_range(arr.astype(np.float64), label).astype(np.float32)
    raise ToolkitError(
        f"{label} has dtype {arr.dtype}; pass uint8 (0–255), uint16 (0–65535) or float images in [0, 1]."
    )


def _check_unit_range(arr: np.ndarray, label: str) -> np.ndarray:
    if not np.isfinite(arr).all():
        raise ToolkitError(f"{label} contains NaN or Inf values; pass a finite image.")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < -_RANGE_TOLERANCE or hi > 1.0 + _RANGE_TOLERANCE:
        raise ToolkitError(
            f"{label} is a float image with values in [{lo:.4g}, {hi:.4g}]; float images must lie in [0, 1] "
            "(divide uint8 values by 255, or undo a normalisation first)."
        )
    return np.clip(arr, 0.0, 1.0)


def _fix_channels(arr: np.ndarray, axis: int, label: str) -> np.ndarray:
    """Grey → RGB (repeated), RGBA → RGB (alpha dropped); other channel counts are an error."""
    n = arr.shape[axis]
    if min(s for i, s in enumerate(arr.shape) if i != axis) < 1:
        raise ToolkitError(f"{label} has an empty side (shape {arr.shape}); pass a non-empty image.")
    if n == 3:
        return arr
    if n == 1:
        return np.repeat(arr, 3, axis=axis)
    if n == 4:
        return np.take(arr, [0, 1, 2], axis=axis)
    layout = "(C, H, W)" if axis == 0 else "(H, W, C)"
    raise ToolkitError(
        f"{label} has {n} channels (shape {arr.shape}, read as {layout}); pass 1 (grey), 3 (RGB) or 4 (RGBA) "
        "channels — numpy arrays are read as (H, W, C) and torch tensors as (C, H, W)."
    )


def _resize(batch: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear, antialiased resize of ``(N, 3, H, W)`` to ``(N, 3, size, size)``, clamped to [0, 1]."""
    if tuple(batch.shape[-2:]) == (size, size):
        return batch
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF

    out = TF.resize(batch, [size, size], interpolation=InterpolationMode.BILINEAR, antialias=True)
    return out.clamp_(0.0, 1.0)


def _rowwise_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r of row i of ``a`` with row i of ``b`` (NaN where a row is constant)."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    num = np.einsum("ij,ij->i", a, b)
    den = np.sqrt(np.einsum("ij,ij->i", a, a) * np.einsum("ij,ij->i", b, b))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = num / den
    r[den == 0] = np.nan
    return np.clip(r, -1.0, 1.0)


def _nanmean(values: np.ndarray, name: str) -> float:
    finite = values[~np.isnan(values)]
    if finite.size == 0:
        logger.warning("%s is undefined for every pair (constant images); returning NaN.", name)
        return float("nan")
    return float(finite.mean())


def _check_batches(recons: Any, ground_truths: Any) -> None:
    for name, t in (("recons", recons), ("ground_truths", ground_truths)):
        if not _is_tensor(t) or t.ndim != 4 or t.shape[1] != 3:
            raise ToolkitError(
                f"'{name}' must be a float tensor (N, 3, H, W) from load_pairs(); got "
                f"{type(t).__name__} {tuple(getattr(t, 'shape', ()))}."
            )
    if recons.shape[0] != ground_truths.shape[0]:
        raise ToolkitError(
            f"Got {recons.shape[0]} reconstructions but {ground_truths.shape[0]} ground truths; pass one "
            "reconstruction per ground-truth image."
        )
    if recons.shape[0] == 0:
        raise ToolkitError("No image pairs given; pass at least one (reconstruction, ground truth) pair.")


def _check_positive_int(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ToolkitError(f"{name} must be a positive integer, got {value!r}.")
