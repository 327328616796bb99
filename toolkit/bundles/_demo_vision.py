"""The demo bundle's vision models: trained on a simulated dataset's training images on first use, then loaded.

One small convolutional autoencoder gives the demo its CLIP stand-in (:mod:`toolkit.embeddings.demo`): the encoder
embeds images, the decoder turns (predicted) embeddings back into images (:mod:`toolkit.generation.demo`), and
linear attribute heads caption them (:mod:`toolkit.captions.demo`). Training uses the TRAINING images only; the
test concepts (unseen colour × texture × shape combinations) are embedded afterwards for the reported metrics and
never used for fitting or for choosing anything.

Training, in two phases (about a minute for the ``demo`` preset's 1,200 images on one CPU core):

1. encoder, decoder and heads together: pixel reconstruction (squared error of the pixels and of their
   horizontal and vertical differences, which keeps outlines sharp) plus cross-entropy of the colour, texture and
   shape heads (the attributes come from the concept names, ``<colour>_<texture>_<shape>``). The classification
   term makes the space semantic like CLIP's: attributes are linearly readable, so EEG → embedding regression and
   zero-shot retrieval of unseen combinations work. Images are mirrored at random, and half of them get their
   colour channels swapped (their colour label is then dropped), so that shape and texture are learnt in colours
   their training concepts never had rather than read off the colour. The decoder and the heads see slightly
   perturbed embedding directions, which makes them tolerant of the imperfect embeddings a prior or an EEG encoder
   predicts;
2. the decoder alone on the frozen encoder's embeddings of the images and their mirror images: the target no
   longer moves, which sharpens the reconstructions at a fraction of the cost of more joint epochs.

Finally the text embedder's word vectors are fitted by least squares: bias + colour + texture + shape vectors ≈ the
mean raw embedding of each training concept's images.

Folder layout (written atomically; the folder is replaced as a whole)::

    config.json         format, version, model configuration, per-part weight checksums, training summary
    model.safetensors   encoder.*, decoder.*, heads.{weight,bias}, text.{word_vectors,bias} (float32)
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ToolkitError

logger = logging.getLogger(__name__)

#: Training settings (the defaults train the ``demo`` preset's models in about a minute on one CPU core).
DEFAULT_EPOCHS = 20
DEFAULT_BATCH_SIZE = 16
LEARNING_RATE = 3e-3
WEIGHT_DECAY = 1e-4
RECONSTRUCTION_WEIGHT = 20.0
#: Weight of the squared error of the reconstructions' horizontal and vertical pixel differences (edges), which
#: keeps outlines sharp where plain MSE blurs them.
GRADIENT_WEIGHT = 20.0
#: Weight of the mean cross-entropy of the three attribute heads.
ATTRIBUTE_WEIGHT = 1.0
#: Standard deviation of the perturbation of unit embedding directions seen by the decoder and heads in training,
#: relative to the spread of one coordinate (1 / sqrt(embed_dim)).
EMBEDDING_NOISE = 0.1
#: Share of the training images whose colour channels are swapped (see ``_augment``).
RECOLOUR = 0.5
#: Epochs and peak learning rate of the decoder's refinement on the frozen encoder's embeddings.
DEFAULT_DECODER_EPOCHS = 6
DECODER_LEARNING_RATE = 1e-3
#: Ridge penalty of the least-squares fit of the word vectors (relative to the number of training concepts).
TEXT_RIDGE = 1e-3
_PARTS = ("encoder", "decoder", "heads", "text")


@dataclass
class DemoVision:
    """The demo vision models loaded from one folder.

    Attributes
    ----------
    embedder : toolkit.embeddings.demo.DemoEmbedder
        Images and texts → embeddings (an :class:`~toolkit.embeddings.Embedder`).
    decoder : toolkit.generation.demo.DemoDecoder
        Embeddings → images.
    captioner : toolkit.captions.demo.DemoCaptioner
        Embeddings → captions and attribute probabilities.
    config : toolkit.embeddings.demo.DemoVisionConfig
        Sizes and vocabulary.
    training : dict
        The training summary stored in ``config.json`` (seed, epochs, seconds, metrics).
    path : Path | None
        The folder they were loaded from.
    """

    embedder: Any
    decoder: Any
    captioner: Any
    config: Any
    training: dict = field(default_factory=dict)
    path: Path | None = None


# -- data ------------------------------------------------------------------------------------------------------------
def _vocabulary(root: Path, concepts: list[str]) -> dict[str, tuple[str, ...]]:
    """Attribute values: the simulator's ground truth when present, else the words of the training concept names."""
    from ..embeddings.demo import ATTRIBUTES

    if (root / "ground_truth.json").is_file():
        from ..data.simulate import load_ground_truth

        attributes = load_ground_truth(root).get("attributes")
        if not isinstance(attributes, dict) or not all(isinstance(attributes.get(a), list) for a in ATTRIBUTES):
            raise ToolkitError(
                f"'{root / 'ground_truth.json'}' lists no colour, texture and shape values; simulate the dataset "
                "again."
            )
        return {a: tuple(attributes[a]) for a in ATTRIBUTES}
    words = [_split_concept(c, None) for c in concepts]
    return {a: tuple(sorted({w[i] for w in words})) for i, a in enumerate(ATTRIBUTES)}


def _split_concept(concept: str, vocabulary: dict[str, tuple[str, ...]] | None) -> tuple[str, str, str]:
    from ..embeddings.demo import ATTRIBUTES

    parts = concept.split("_")
    if len(parts) != 3 or (vocabulary is not None and any(p not in vocabulary[a] for p, a in zip(parts, ATTRIBUTES))):
        raise ToolkitError(
            f"The concept {concept!r} is not a simulated '<colour>_<texture>_<shape>' name of known values; the demo "
            "vision models train on a dataset written by `python -m toolkit simulate`."
        )
    return parts[0], parts[1], parts[2]


def _split_data(image_set: Any, config: Any) -> tuple[Any, Any, np.ndarray, list[str]]:
    """Pixels (n, 3, image_size, image_size), their decoder-size targets, attribute labels (n, 3) and concepts."""
    import torch

    from ..embeddings.demo import ATTRIBUTES, images_to_tensor

    index = {a: {v: i for i, v in enumerate(config.vocabulary[a])} for a in ATTRIBUTES}
    concept_labels = np.array(
        [[index[a][w] for a, w in zip(ATTRIBUTES, _split_concept(c, config.vocabulary))] for c in image_set.concepts],
        dtype=np.int64,
    )
    n = image_set.n_conditions
    pixels = images_to_tensor([image_set.image_path(i) for i in range(n)], config.image_size)
    targets = torch.nn.functional.adaptive_avg_pool2d(pixels, config.decoder_size)
    concepts = [image_set.concept_of(i) for i in range(n)]
    return pixels, targets, concept_labels[image_set.condition_concept], concepts


# -- training --------------------------------------------------------------------------------------------------------
def train_demo_vision(
    sim_root: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    seed: int = 0,
    epochs: int = DEFAULT_EPOCHS,
    decoder_epochs: int = DEFAULT_DECODER_EPOCHS,
    image_size: int = 128,
    decoder_size: int = 32,
    embed_dim: int = 96,
    width: int = 16,
    decoder_width: int = 16,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress_bar: bool = True,
) -> dict[str, Any]:
    """Train the demo encoder, decoder, attribute heads and text embedder on a simulated dataset's training images.

    Deterministic for a given seed on a given machine and torch version (CPU; the global random state is left
    untouched). The test images, when present, are only embedded afterwards for the reported metrics.

    Parameters
    ----------
    sim_root : str | os.PathLike
        A dataset written by ``python -m toolkit simulate`` (``training_images/``, and ``ground_truth.json`` for
        the vocabulary; without it the vocabulary is read off the training concept names).
    out_dir : str | os.PathLike
        Folder to write (``config.json`` + ``model.safetensors``); it is replaced as a whole, so it must be a folder
        of its own: a non-empty folder that is not a demo-vision folder is refused.
    seed : int
        Seed of the initialisation, the batch order, the augmentations and the embedding perturbations.
    epochs : int
        Passes over the training images training encoder, decoder and heads together.
    decoder_epochs : int
        Passes over the training images and their mirror images refining the decoder alone afterwards.
    image_size, decoder_size, embed_dim, width, decoder_width : int
        See :class:`toolkit.embeddings.demo.DemoVisionConfig`.
    batch_size : int
        Images per optimisation step.
    progress_bar : bool
        Show a progress bar over the epochs (also silenced by ``EEG_TOOLKIT_NO_PROGRESS=1``).

    Returns
    -------
    dict
        ``path`` (the folder), ``seconds``, ``weights`` (checksum per part), and the ``training`` summary stored in
        ``config.json``: seed, epochs, sizes, final losses and ``metrics`` (attribute and caption accuracy on the
        training images and on the unseen test concepts, zero-shot text → image top-1 among the test concepts,
        reconstruction error).
    """
    import torch

    from ..data.images import ImageSet
    from ..embeddings.demo import DemoVisionConfig
    from ..generation._checks import check_int

    start = time.perf_counter()
    root = Path(sim_root)
    if not (root / "training_images").is_dir():
        raise ToolkitError(
            f"'{root}' has no training_images/ folder; pass the folder of a dataset written by "
            "`python -m toolkit simulate`."
        )
    out_dir = Path(out_dir)
    _check_out_dir(out_dir)
    seed = check_int(seed, "seed", minimum=0, maximum=2**63 - 1)
    epochs = check_int(epochs, "epochs", minimum=1, maximum=10_000)
    decoder_epochs = check_int(decoder_epochs, "decoder_epochs", minimum=0, maximum=10_000)
    batch_size = check_int(batch_size, "batch_size", minimum=2)
    train_set = ImageSet.from_folder(root / "training_images")
    config = DemoVisionConfig(
        vocabulary=_vocabulary(root, train_set.concepts),
        image_size=image_size,
        decoder_size=decoder_size,
        embed_dim=embed_dim,
        width=width,
        decoder_width=decoder_width,
    )
    pixels, targets, labels, image_concepts = _split_data(train_set, config)
    load_s = time.perf_counter() - start

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        state, losses = _fit(config, pixels, targets, labels, seed, epochs, decoder_epochs, batch_size, progress_bar)
    fit_s = time.perf_counter() - start - load_s

    models = _build_models(config, state)
    train_embeds = models.embedder.encode_pixels(pixels)
    word_vectors, text_bias = _fit_text(config, train_embeds, image_concepts)
    state["text.word_vectors"], state["text.bias"] = word_vectors, text_bias
    models = _build_models(config, state)

    metrics = {"train": _metrics(models, pixels, targets, labels, image_concepts, train_embeds)}
    if (root / "test_images").is_dir():
        test_set = ImageSet.from_folder(root / "test_images")
        test_pixels, test_targets, test_labels, test_concepts = _split_data(test_set, config)
        metrics["test"] = _metrics(models, test_pixels, test_targets, test_labels, test_concepts, None)
    training = {
        "seed": seed,
        "epochs": epochs,
        "decoder_epochs": decoder_epochs,
        "batch_size": batch_size,
        "learning_rate": LEARNING_RATE,
        "reconstruction_weight": RECONSTRUCTION_WEIGHT,
        "gradient_weight": GRADIENT_WEIGHT,
        "attribute_weight": ATTRIBUTE_WEIGHT,
        "embedding_noise": EMBEDDING_NOISE,
        "recolour": RECOLOUR,
        "n_train_images": int(pixels.shape[0]),
        "n_train_concepts": len(set(image_concepts)),
        "dataset_preset": _dataset_preset(root),
        "final_losses": losses,
        "metrics": metrics,
        "seconds": {"load": round(load_s, 2), "fit": round(fit_s, 2)},
        "torch_threads": torch.get_num_threads(),
    }
    checksums = save_demo_vision(out_dir, config, state, training)
    seconds = time.perf_counter() - start
    logger.info("Trained the demo vision models in %.1f s (%s).", seconds, out_dir)
    return {"path": str(out_dir), "seconds": round(seconds, 2), "weights": checksums, "training": training}


def _check_out_dir(out_dir: Path) -> None:
    from ..embeddings.demo import CONFIG_NAME, DEMO_VISION_FORMAT

    if out_dir.exists() and not out_dir.is_dir():
        raise ToolkitError(f"'{out_dir}' is a file; pass a folder for the demo vision models.")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        try:
            fmt = json.loads((out_dir / CONFIG_NAME).read_text(encoding="utf-8")).get("format")
        except (OSError, ValueError, AttributeError):
            fmt = None
        if fmt != DEMO_VISION_FORMAT:
            raise ToolkitError(
                f"'{out_dir}' is a non-empty folder that holds no demo vision models; it would be replaced as a "
                "whole, so pass an empty or new folder of its own."
            )


def _dataset_preset(root: Path) -> str | None:
    try:
        return json.loads((root / "simulation.json").read_text(encoding="utf-8")).get("preset")
    except (OSError, ValueError, AttributeError):
        return None


def _fit(
    config: Any,
    pixels: Any,
    targets: Any,
    labels: np.ndarray,
    seed: int,
    epochs: int,
    decoder_epochs: int,
    batch_size: int,
    progress_bar: bool,
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Train encoder, decoder and heads; return their weights (prefixed by part) and the last epochs' losses.

    Phase 1 trains the three jointly on augmented images; phase 2 refines the decoder alone on the frozen
    encoder's embeddings (the encoder no longer moves under it, which sharpens the reconstructions cheaply).
    """
    import torch
    from torch import nn
    from torch.nn import functional as F

    from ..embeddings.demo import ATTRIBUTES, PIXEL_MEAN, PIXEL_STD, build_encoder
    from ..generation.demo import build_decoder
    from ..utils import progress

    encoder, decoder = build_encoder(config), build_decoder(config)
    heads = nn.Linear(config.embed_dim, len(config.words))
    generator = torch.Generator().manual_seed(seed)
    y = torch.from_numpy(labels)
    bounds = np.cumsum([0] + [config.n_values[a] for a in ATTRIBUTES]).tolist()
    noise = EMBEDDING_NOISE / math.sqrt(config.embed_dim)
    sqrt_dim = math.sqrt(config.embed_dim)
    colour = ATTRIBUTES.index("colour")

    def perturb(direction: torch.Tensor) -> torch.Tensor:
        # Unit directions nudged at random, times sqrt(embed_dim): what the decoder and heads see in training.
        noisy = direction + noise * torch.randn(direction.shape, generator=generator)
        return F.normalize(noisy, dim=-1) * sqrt_dim

    def reconstruction_loss(recon: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        edges = F.mse_loss(recon.diff(dim=-1), target.diff(dim=-1)) + F.mse_loss(
            recon.diff(dim=-2), target.diff(dim=-2)
        )
        mse = F.mse_loss(recon, target)
        return mse, RECONSTRUCTION_WEIGHT * mse + GRADIENT_WEIGHT * edges

    bar = progress(
        total=epochs + decoder_epochs, desc="demo vision models", unit="epoch", disable=None if progress_bar else True
    )
    n = pixels.shape[0]
    losses = {"reconstruction": 0.0, "attributes": 0.0}
    # -- phase 1: encoder, decoder and heads together
    params = [*encoder.parameters(), *decoder.parameters(), *heads.parameters()]
    optimizer, schedule = _optimizer(params, LEARNING_RATE, epochs * math.ceil(n / batch_size))
    for _ in range(epochs):
        sums = {"reconstruction": 0.0, "attributes": 0.0}
        for idx in torch.randperm(n, generator=generator).split(batch_size):
            x, target, keep_colour = _augment(pixels[idx], targets[idx], generator)
            direction = F.normalize(encoder((x - PIXEL_MEAN) / PIXEL_STD), dim=-1)
            z = perturb(direction)
            mse, rec_loss = reconstruction_loss(decoder(z), target)
            logits = heads(z)
            attr_losses = []
            for k in range(len(ATTRIBUTES)):
                ce = F.cross_entropy(logits[:, bounds[k] : bounds[k + 1]], y[idx, k], reduction="none")
                if k == colour:  # recoloured images have no colour label
                    ce = ce[keep_colour] if bool(keep_colour.any()) else ce[:0]
                attr_losses.append(ce.mean() if ce.numel() else ce.sum())
            attr_loss = sum(attr_losses) / len(ATTRIBUTES)
            optimizer.zero_grad(set_to_none=True)
            (rec_loss + ATTRIBUTE_WEIGHT * attr_loss).backward()
            optimizer.step()
            schedule.step()
            sums["reconstruction"] += float(mse.detach()) * len(idx) / n
            sums["attributes"] += float(attr_loss.detach()) * len(idx) / n
        losses.update(sums)
        bar.update(1)
        bar.set_postfix(rec=f"{sums['reconstruction']:.4f}", attr=f"{sums['attributes']:.3f}")
    # -- phase 2: the decoder alone on the frozen encoder's embeddings of the images and their mirror images
    if decoder_epochs == 0:
        bar.close()
        return _state(encoder, decoder, heads), {k: round(v, 5) for k, v in losses.items()}
    encoder.eval()
    with torch.no_grad():
        inputs = torch.cat([pixels, pixels.flip(-1)])
        directions = torch.cat(
            [F.normalize(encoder((chunk - PIXEL_MEAN) / PIXEL_STD), dim=-1) for chunk in inputs.split(256)]
        )
    all_targets = torch.cat([targets, targets.flip(-1)])
    m = directions.shape[0]
    optimizer, schedule = _optimizer(
        list(decoder.parameters()), DECODER_LEARNING_RATE, decoder_epochs * math.ceil(m / batch_size)
    )
    for _ in range(decoder_epochs):
        total = 0.0
        for idx in torch.randperm(m, generator=generator).split(batch_size):
            mse, rec_loss = reconstruction_loss(decoder(perturb(directions[idx])), all_targets[idx])
            optimizer.zero_grad(set_to_none=True)
            rec_loss.backward()
            optimizer.step()
            schedule.step()
            total += float(mse.detach()) * len(idx) / m
        losses["reconstruction"] = total
        bar.update(1)
        bar.set_postfix(rec=f"{total:.4f}")
    bar.close()
    return _state(encoder, decoder, heads), {k: round(v, 5) for k, v in losses.items()}


def _state(encoder: Any, decoder: Any, heads: Any) -> dict[str, np.ndarray]:
    """The weights of the three networks as float32 arrays, prefixed by part."""
    state: dict[str, np.ndarray] = {}
    for part, module in (("encoder", encoder), ("decoder", decoder), ("heads", heads)):
        for key, value in module.state_dict().items():
            state[f"{part}.{key}"] = value.detach().cpu().numpy().astype(np.float32)
    return state


def _optimizer(params: list, lr: float, total_steps: int) -> tuple[Any, Any]:
    """AdamW with a one-cycle schedule (warm-up over the first 15 %, then cosine decay)."""
    import torch

    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=WEIGHT_DECAY)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=lr, total_steps=max(total_steps, 1), pct_start=0.15
    )
    return optimizer, schedule


def _augment(x: Any, target: Any, generator: Any) -> tuple[Any, Any, Any]:
    """Random mirror images and, for a share of the images, swapped colour channels.

    Mirroring keeps every attribute (the shapes are mirror-symmetric up to their random rotation). Swapping the
    colour channels turns a red object into a blue or green one on the same grey background: the colour label no
    longer applies (the returned mask drops it), but the shape and texture heads then see every shape and texture
    in colours their training concepts never had, which stops them from reading shape or texture off the colour.
    """
    import torch

    n = x.shape[0]
    flip = (torch.rand(n, generator=generator) < 0.5)[:, None, None, None]
    x, target = torch.where(flip, x.flip(-1), x), torch.where(flip, target.flip(-1), target)
    swaps = torch.tensor([[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]])
    which = torch.randint(1, len(swaps), (n,), generator=generator)
    which = torch.where(torch.rand(n, generator=generator) < RECOLOUR, which, 0)
    order = swaps[which][:, :, None, None]
    x = torch.gather(x, 1, order.expand(-1, -1, *x.shape[2:]))
    target = torch.gather(target, 1, order.expand(-1, -1, *target.shape[2:]))
    return x, target, which == 0


def _fit_text(config: Any, embeds: np.ndarray, image_concepts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Word vectors and bias with bias + Σ word vectors ≈ mean raw embedding of each training concept (ridge).

    The attribute indicators are centred before the fit, so each attribute's vectors average to zero over the
    training concepts and a text that omits an attribute gets its average.
    """
    names = sorted(set(image_concepts))
    rows = {c: i for i, c in enumerate(names)}
    concept_of = np.array([rows[c] for c in image_concepts])
    means = np.stack([embeds[concept_of == i].mean(axis=0) for i in range(len(names))]).astype(np.float64)
    word_index = {w: i for i, w in enumerate(config.words)}
    design = np.zeros((len(names), len(config.words)))
    for i, name in enumerate(names):
        for word in _split_concept(name, config.vocabulary):
            design[i, word_index[word]] = 1.0
    centre = design.mean(axis=0)
    centred = design - centre
    target = means - means.mean(axis=0)
    # Ridge by augmentation, solved with lstsq (numpy; a closed form needs no solver library).
    penalty = math.sqrt(TEXT_RIDGE * len(names))
    a = np.vstack([centred, penalty * np.eye(len(config.words))])
    b = np.vstack([target, np.zeros((len(config.words), config.embed_dim))])
    vectors = np.linalg.lstsq(a, b, rcond=None)[0]
    bias = means.mean(axis=0) - centre @ vectors
    # Re-centre each attribute's vectors on their average over the training concepts (moved into the bias).
    start = 0
    for attribute in config.vocabulary:
        stop = start + config.n_values[attribute]
        weights = centre[start:stop] / max(centre[start:stop].sum(), 1e-12)
        shift = weights @ vectors[start:stop]
        vectors[start:stop] -= shift
        bias += shift
        start = stop
    return vectors.astype(np.float32), bias.astype(np.float32)


def _build_models(config: Any, state: dict[str, np.ndarray]) -> DemoVision:
    from ..captions.demo import DemoCaptioner
    from ..embeddings.demo import DemoEmbedder, part_tensors
    from ..generation.demo import DemoDecoder

    text_vectors = state.get("text.word_vectors", np.zeros((len(config.words), config.embed_dim), np.float32))
    text_bias = state.get("text.bias", np.zeros(config.embed_dim, np.float32))
    heads = part_tensors(state, "heads", "the trained state")
    return DemoVision(
        embedder=DemoEmbedder(config, part_tensors(state, "encoder", "the trained state"), text_vectors, text_bias),
        decoder=DemoDecoder(config, part_tensors(state, "decoder", "the trained state")),
        captioner=DemoCaptioner(config, heads["weight"], heads["bias"]),
        config=config,
    )


def _metrics(
    models: DemoVision,
    pixels: Any,
    targets: Any,
    labels: np.ndarray,
    concepts: list[str],
    embeds: np.ndarray | None,
) -> dict[str, Any]:
    """Attribute and caption accuracy, zero-shot text retrieval among the split's concepts, reconstruction MSE."""
    from ..embeddings.demo import ATTRIBUTES

    if embeds is None:
        embeds = models.embedder.encode_pixels(pixels)
    probs = models.captioner.probabilities(embeds)
    predicted = np.stack([probs[a].argmax(axis=1) for a in ATTRIBUTES], axis=1)
    correct = predicted == labels
    names = sorted(set(concepts))
    text = models.embedder.encode_texts(names, normalize=True)
    image = embeds / np.linalg.norm(embeds, axis=1, keepdims=True)
    truth = np.array([names.index(c) for c in concepts])
    zero_shot = float(((image @ text.T).argmax(axis=1) == truth).mean())
    recon = models.decoder.decode(embeds)
    mse = float(((recon - targets.permute(0, 2, 3, 1).numpy()) ** 2).mean())
    return {
        "n_images": len(concepts),
        "n_concepts": len(names),
        "attribute_accuracy": {a: round(float(correct[:, k].mean()), 4) for k, a in enumerate(ATTRIBUTES)},
        "caption_accuracy": round(float(correct.all(axis=1).mean()), 4),
        "zero_shot_top1": round(zero_shot, 4),
        "zero_shot_chance": round(1.0 / len(names), 4),
        "reconstruction_mse": round(mse, 5),
    }


# -- files -----------------------------------------------------------------------------------------------------------
def save_demo_vision(
    out_dir: str | os.PathLike, config: Any, state: dict[str, np.ndarray], training: dict[str, Any]
) -> dict[str, str]:
    """Write ``config.json`` and ``model.safetensors`` atomically (the folder is replaced as a whole).

    Parameters
    ----------
    out_dir : str | os.PathLike
        Destination folder.
    config : toolkit.embeddings.demo.DemoVisionConfig
        Model configuration.
    state : dict of str to np.ndarray
        Every weight, prefixed by its part (``encoder.``, ``decoder.``, ``heads.``, ``text.``).
    training : dict
        JSON-serialisable training summary.

    Returns
    -------
    dict of str to str
        The checksum of each part, as stored in ``config.json``.
    """
    from safetensors.numpy import save_file

    from .. import __version__
    from ..embeddings.demo import CONFIG_NAME, DEMO_VISION_FORMAT, DEMO_VISION_VERSION, WEIGHTS_NAME, tensor_digest
    from ..utils import atomic_path

    tensors = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in state.items()}
    checksums = {
        part: tensor_digest({k: v for k, v in tensors.items() if k.startswith(f"{part}.")}) for part in _PARTS
    }
    meta = {
        "format": DEMO_VISION_FORMAT,
        "version": DEMO_VISION_VERSION,
        "toolkit_version": __version__,
        "config": config.to_dict(),
        "weights_sha256": checksums,
        "training": training,
    }
    text = json.dumps(meta, indent=2) + "\n"  # fails before anything is written if training is not serialisable
    out_dir = Path(out_dir)
    _check_out_dir(out_dir)
    with atomic_path(out_dir, is_dir=True) as tmp:
        save_file(tensors, str(tmp / WEIGHTS_NAME), metadata={"format": "np"})
        (tmp / CONFIG_NAME).write_text(text, encoding="utf-8")
    return checksums


def load_demo_vision(directory: str | os.PathLike) -> DemoVision:
    """Load the embedder, decoder and captioner written by :func:`train_demo_vision`.

    Parameters
    ----------
    directory : str | os.PathLike
        The folder.

    Returns
    -------
    DemoVision
        The three models, the configuration and the training summary.
    """
    from ..embeddings.demo import read_demo_vision

    meta, config, tensors = read_demo_vision(directory)
    for part in _PARTS:
        if part not in meta["weights_sha256"]:
            raise ToolkitError(f"'{directory}' lacks the {part} weights; train the demo vision models again.")
    models = _build_models(config, tensors)
    training = meta.get("training") if isinstance(meta.get("training"), dict) else {}
    return DemoVision(
        embedder=models.embedder,
        decoder=models.decoder,
        captioner=models.captioner,
        config=config,
        training=training,
        path=Path(directory),
    )
