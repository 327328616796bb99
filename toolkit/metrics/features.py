"""Feature extractors of the high-level reconstruction metrics: metric name → network, layer, transform, weights.

=============  ===========  ======================  ======  ====================  ===============================
metric         network      layer                   resize  normalisation         reference weights
=============  ===========  ======================  ======  ====================  ===============================
``alexnet2``   AlexNet      ``features.4``          256     ImageNet mean/std     torchvision ``IMAGENET1K_V1``
``alexnet5``   AlexNet      ``features.11``         256     ImageNet mean/std     torchvision ``IMAGENET1K_V1``
``inception``  Inception v3 ``avgpool``             342     ImageNet mean/std     torchvision ``IMAGENET1K_V1``
``clip``       CLIP         final image embedding   224     CLIP mean/std         open_clip ``ViT-L-14`` ``openai``
``effnet``     EffNet-B1    ``avgpool``             255     ImageNet mean/std     torchvision ``IMAGENET1K_V2``
``swav``       ResNet-50    ``avgpool``             224     ImageNet mean/std     SwAV ``swav_800ep_pretrain``
=============  ===========  ======================  ======  ====================  ===============================

The first four are scored by two-way identification, the last two by correlation distance
(:mod:`toolkit.metrics.identification`). Layers are taken with torchvision's ``create_feature_extractor``; the
input is the ``(N, 3, 256, 256)`` batch in [0, 1] from :func:`toolkit.metrics.image.load_images`, resized
(bilinear, antialiased) and normalised per network as above. The torchvision Inception v3 keeps the reference's
``transform_input=True`` (it converts ImageNet-normalised input to the [-1, 1] scaling its weights expect).

Weights (:func:`load_network`, ``weights=``)
-------------------------------------------
- ``"pretrained"`` (alias ``"imagenet"``): the reference weights of the table. Nothing is downloaded: the
  torchvision and SwAV files must already be in the torch hub cache (``$TORCH_HOME/hub/checkpoints``, the place
  ``torchvision`` and ``torch.hub`` download to); a missing file raises an error naming the file, its URL and the
  folder. CLIP uses :meth:`toolkit.embeddings.ClipEmbedder.from_open_clip` (the Hugging Face cache, or a local
  checkpoint); ``"openai"`` or any other open_clip tag of ``clip_model`` may be given for CLIP.
- a path to a local state-dict file (``.pth``/``.pt``/``.bin`` read with ``weights_only=True``, or
  ``.safetensors``) saved from the same torchvision class (a ``"module."`` prefix and a ``{"state_dict": ...}``
  wrapper are removed; the SwAV release file loads as is). For CLIP, an open_clip checkpoint of ``clip_model``.
- ``None``: the reference architecture with seeded random weights; for tests and benchmarks only.
- ``"tiny"``: small random networks of the same classes (:func:`tiny_stand_in`); for tests and benchmarks only.
- a :class:`FeatureNetwork` (any module wrapped with its own flag), or for CLIP a
  :class:`~toolkit.embeddings.ClipEmbedder`.

Every :class:`FeatureNetwork` carries ``random_weights``; the suite reports it so that numbers from stand-ins are
never mistaken for real ones.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import numpy as np

from ..errors import ToolkitError
from ..utils import progress, require
from .image import _resize

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

#: open_clip model of the CLIP metric (OpenAI CLIP ViT-L/14 in MindEye and ATM).
DEFAULT_CLIP_MODEL = "ViT-L-14"
#: open_clip pretrained tag of the CLIP metric.
DEFAULT_CLIP_PRETRAINED = "openai"
#: Layer name of CLIP's final image embedding (``model.encode_image``).
CLIP_EMBEDDING = "embedding"

_SWAV_URL = "https://dl.fbaipublicfiles.com/deepcluster/swav_800ep_pretrain.pth.tar"
# torchvision names its files NAME-<first hex digits of the SHA-256>.pth.
_HASH_IN_NAME = re.compile(r"-([a-f0-9]{6,})\.")
_PRETRAINED_ALIASES = ("pretrained", "imagenet", "default")
_TINY = "tiny"


@dataclass(frozen=True)
class FeatureSpec:
    """How one feature metric is computed.

    Attributes
    ----------
    metric : str
        Metric name (``"alexnet2"``).
    label : str
        Name in tables (``"AlexNet(2)"``).
    network : str
        Network name, a key of :data:`NETWORKS` (``"alexnet"``).
    layer : str
        Node taken with ``create_feature_extractor`` (``"features.4"``), or ``"embedding"`` for CLIP.
    kind : str
        ``"identification"`` (two-way identification, higher is better) or ``"distance"`` (correlation
        distance, lower is better).
    """

    metric: str
    label: str
    network: str
    layer: str
    kind: str

    @property
    def higher_is_better(self) -> bool:
        """Whether larger values are better."""
        return self.kind == "identification"


@dataclass(frozen=True)
class NetworkSpec:
    """A network of the feature metrics: its input transform and reference weights.

    Attributes
    ----------
    name : str
        Network name (``"alexnet"``).
    description : str
        What it is.
    resize : int
        Side the ``[0, 1]`` input is resized to (for CLIP, the model's own image size is used).
    mean, std : tuple of float
        Per-channel normalisation.
    reference_weights : str
        The weights of the reference implementation.
    """

    name: str
    description: str
    resize: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    reference_weights: str


NETWORKS: dict[str, NetworkSpec] = {
    "alexnet": NetworkSpec(
        "alexnet", "torchvision AlexNet", 256, IMAGENET_MEAN, IMAGENET_STD, "torchvision:AlexNet_Weights.IMAGENET1K_V1"
    ),
    "inception": NetworkSpec(
        "inception",
        "torchvision Inception v3 (transform_input=True)",
        342,
        IMAGENET_MEAN,
        IMAGENET_STD,
        "torchvision:Inception_V3_Weights.IMAGENET1K_V1",
    ),
    "clip": NetworkSpec(
        "clip", "open_clip CLIP image tower", 224, CLIP_MEAN, CLIP_STD, f"open_clip:{DEFAULT_CLIP_MODEL}/openai"
    ),
    "effnet": NetworkSpec(
        "effnet",
        "torchvision EfficientNet-B1",
        255,
        IMAGENET_MEAN,
        IMAGENET_STD,
        "torchvision:EfficientNet_B1_Weights.IMAGENET1K_V2",
    ),
    "swav": NetworkSpec(
        "swav", "torchvision ResNet-50 with SwAV weights", 224, IMAGENET_MEAN, IMAGENET_STD, "swav:swav_800ep_pretrain"
    ),
}

FEATURE_METRICS: dict[str, FeatureSpec] = {
    "alexnet2": FeatureSpec("alexnet2", "AlexNet(2)", "alexnet", "features.4", "identification"),
    "alexnet5": FeatureSpec("alexnet5", "AlexNet(5)", "alexnet", "features.11", "identification"),
    "inception": FeatureSpec("inception", "Inception", "inception", "avgpool", "identification"),
    "clip": FeatureSpec("clip", "CLIP", "clip", CLIP_EMBEDDING, "identification"),
    "effnet": FeatureSpec("effnet", "EffNet-B1", "effnet", "avgpool", "distance"),
    "swav": FeatureSpec("swav", "SwAV", "swav", "avgpool", "distance"),
}

# torchvision weights of each network: (enum class, member); SwAV is handled apart.
_TORCHVISION_WEIGHTS = {
    "alexnet": ("AlexNet_Weights", "IMAGENET1K_V1"),
    "inception": ("Inception_V3_Weights", "IMAGENET1K_V1"),
    "effnet": ("EfficientNet_B1_Weights", "IMAGENET1K_V2"),
}
# State-dict keys a weights file may lack / may hold beyond the module, per network (parts no metric layer uses).
_ALLOWED_MISSING = {
    "alexnet": ("classifier.",),
    "inception": ("AuxLogits.", "fc."),
    "effnet": ("classifier.",),
    "swav": ("fc.",),
}
_ALLOWED_UNEXPECTED = {
    "alexnet": (),
    "inception": ("AuxLogits.",),
    "effnet": (),
    "swav": ("projection_head.", "prototypes."),
}


# ======================================================================================== the network wrapper
class FeatureNetwork:
    """A network of the feature metrics with its input transform, ready to extract layers from ``[0, 1]`` images.

    Build it with :func:`load_network` or :func:`tiny_stand_in`, or wrap your own module of the same kind.

    Parameters
    ----------
    network : str
        Network name, a key of :data:`NETWORKS`.
    module : torch.nn.Module
        For ``"clip"`` anything with ``encode_image``; otherwise a module ``create_feature_extractor`` can trace,
        with the layers of :data:`FEATURE_METRICS`. It is put in eval mode.
    random_weights : bool
        Whether the weights are random (stand-ins): reported with every result.
    weights : str
        Description of the weights (``"torchvision:AlexNet_Weights.IMAGENET1K_V1"``, ``"file:...sha256:..."``).
    resize : int | None
        Input side; ``None``: the network's default (for CLIP, the model's image size).
    mean, std : tuple of float | None
        Normalisation; ``None``: the network's default (for CLIP, the model's preprocessing configuration).
    """

    def __init__(
        self,
        network: str,
        module: Any,
        *,
        random_weights: bool,
        weights: str,
        resize: int | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> None:
        spec = _network_spec(network)
        if not isinstance(random_weights, bool):
            raise ToolkitError(f"random_weights must be True or False, got {random_weights!r}.")
        if network == "clip":
            if not hasattr(module, "encode_image"):
                raise ToolkitError(
                    "The CLIP feature network must have encode_image (an open_clip model); got "
                    f"{type(module).__name__}."
                )
            cfg = getattr(getattr(module, "visual", None), "preprocess_cfg", None) or {}
            image_size = getattr(getattr(module, "visual", None), "image_size", spec.resize)
            if isinstance(image_size, (tuple, list)):
                image_size = int(image_size[0])
            if resize is not None and int(resize) != int(image_size):
                raise ToolkitError(
                    f"This CLIP model takes {image_size} × {image_size} images; resize must be {image_size} "
                    f"(or None), got {resize}."
                )
            resize = int(image_size)
            mean = mean if mean is not None else tuple(cfg.get("mean", spec.mean))
            std = std if std is not None else tuple(cfg.get("std", spec.std))
        self.network = network
        self.module = module.eval()
        self.random_weights = random_weights
        self.weights = str(weights)
        self.resize = int(resize if resize is not None else spec.resize)
        self.mean = tuple(float(m) for m in (mean if mean is not None else spec.mean))
        self.std = tuple(float(s) for s in (std if std is not None else spec.std))
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ToolkitError(f"mean and std must have 3 values (RGB), got {self.mean} and {self.std}.")
        self._extractors: dict[tuple[str, ...], Any] = {}

    @property
    def device(self) -> torch.device:
        """Device of the module's parameters."""
        import torch

        params = list(self.module.parameters())
        return params[0].device if params else torch.device("cpu")

    def to(self, device: Any) -> FeatureNetwork:
        """Move the network to ``device`` (in place) and return it."""
        self.module.to(device)
        for extractor in self._extractors.values():
            extractor.to(device)
        return self

    def extract(self, images: torch.Tensor, layers: Sequence[str], *, batch_size: int = 32) -> dict[str, np.ndarray]:
        """Features of ``layers`` for every image, flattened per image.

        Parameters
        ----------
        images : torch.Tensor of float32, shape (n_images, 3, H, W)
            Images in [0, 1] (:func:`toolkit.metrics.image.load_images`); resized and normalised here.
        layers : sequence of str
            Node names (``"features.4"``), or ``"embedding"`` for CLIP.
        batch_size : int
            Images per forward pass.

        Returns
        -------
        dict of str to np.ndarray of float32, shape (n_images, n_features)
            One array per layer.
        """
        import torch

        layers = tuple(dict.fromkeys(layers))
        if not layers:
            raise ToolkitError("No layers requested; pass at least one layer name.")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ToolkitError(f"batch_size must be a positive integer, got {batch_size!r}.")
        if not (hasattr(images, "ndim") and images.ndim == 4 and images.shape[1] == 3):
            raise ToolkitError(
                "images must be a float tensor (N, 3, H, W) in [0, 1], got shape "
                f"{tuple(getattr(images, 'shape', ()))}."
            )
        forward = self._forward_fn(layers)
        device = self.device
        dtype = next((p.dtype for p in self.module.parameters() if p.is_floating_point()), torch.float32)
        mean = torch.tensor(self.mean, device=device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=device).view(1, 3, 1, 1)
        out: dict[str, list[np.ndarray]] = {layer: [] for layer in layers}
        starts = range(0, images.shape[0], batch_size)
        with torch.inference_mode():
            for start in progress(starts, desc=f"{self.network} features", total=len(starts), unit="batch"):
                batch = images[start : start + batch_size].to(device, dtype=torch.float32)
                batch = _resize(batch, self.resize)
                batch = ((batch - mean) / std).to(dtype)
                feats = forward(batch)
                for layer in layers:
                    out[layer].append(feats[layer].flatten(1).float().cpu().numpy())
        return {layer: np.concatenate(chunks, axis=0) for layer, chunks in out.items()}

    def _forward_fn(self, layers: tuple[str, ...]) -> Any:
        if self.network == "clip":
            unknown = [layer for layer in layers if layer != CLIP_EMBEDDING]
            if unknown:
                raise ToolkitError(
                    f"Layer(s) {', '.join(unknown)} are not available from CLIP; the only layer is '{CLIP_EMBEDDING}' "
                    "(the final image embedding)."
                )
            return lambda batch: {CLIP_EMBEDDING: self.module.encode_image(batch)}
        if layers not in self._extractors:
            self._extractors[layers] = _feature_extractor(self.module, layers, self.network)
        extractor = self._extractors[layers]
        return extractor

    def __repr__(self) -> str:
        return (
            f"FeatureNetwork(network={self.network!r}, weights={self.weights!r}, "
            f"random_weights={self.random_weights}, resize={self.resize}, device='{self.device}')"
        )


# ============================================================================================== loading
def load_network(
    network: str,
    weights: Any = "pretrained",
    *,
    device: str = "cpu",
    clip_model: str = DEFAULT_CLIP_MODEL,
    seed: int = 0,
) -> FeatureNetwork:
    """Build a feature network with the requested weights (nothing is downloaded).

    Parameters
    ----------
    network : str
        ``"alexnet"``, ``"inception"``, ``"clip"``, ``"effnet"`` or ``"swav"``.
    weights : str | os.PathLike | None | FeatureNetwork | ClipEmbedder
        ``"pretrained"`` / ``"imagenet"`` (reference weights from the local cache), a state-dict or checkpoint
        path, an open_clip tag (CLIP only), ``None`` (random reference architecture), ``"tiny"`` (small random
        stand-in), or a ready network (see the module docstring).
    device : str
        Where to run (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``).
    clip_model : str
        open_clip model name for ``network="clip"``.
    seed : int
        Seed of random initialisation (``weights=None`` or ``"tiny"``).

    Returns
    -------
    FeatureNetwork
        On ``device``, in eval mode.
    """
    spec = _network_spec(network)
    require("torchvision", extra="metrics", purpose="the feature metrics")
    from ..embeddings.clip import _resolve_device

    torch_device = _resolve_device(device)
    if isinstance(weights, FeatureNetwork):
        if weights.network != network:
            raise ToolkitError(
                f"feature_weights['{network}'] is a FeatureNetwork for '{weights.network}'; pass one built for "
                f"'{network}'."
            )
        return weights.to(torch_device)
    if network == "clip" and hasattr(weights, "encode_images") and hasattr(weights, "model"):
        ident = getattr(weights, "identity", {}) or {}
        weights_id = str(ident.get("weights", "injected"))
        desc = f"{ident.get('model', type(weights.model).__name__)}:{weights_id}"
        random = weights_id.startswith("random")  # e.g. tiny_clip_embedder()
        return FeatureNetwork("clip", weights.model, random_weights=random, weights=desc).to(torch_device)
    if _is_module(weights):
        raise ToolkitError(
            f"feature_weights['{network}'] is a bare {type(weights).__name__}; wrap it as "
            f"FeatureNetwork('{network}', module, random_weights=..., weights='...') so the result can say whether "
            "its weights are real."
        )
    if weights is None:
        module = _build_random(network, clip_model, seed)
        return FeatureNetwork(network, module, random_weights=True, weights="random").to(torch_device)
    if isinstance(weights, str) and weights == _TINY:
        return tiny_stand_in(network, seed=seed).to(torch_device)
    if not isinstance(weights, (str, os.PathLike)):
        raise ToolkitError(
            f"feature_weights['{network}'] must be 'pretrained', a weights file path, None, 'tiny' or a "
            f"FeatureNetwork, not {type(weights).__name__}."
        )
    if network == "clip":
        return _load_clip(weights, clip_model, torch_device)
    text = str(weights)
    check_weights(network, weights)
    if text.lower() in _PRETRAINED_ALIASES:
        module, desc = _load_reference(network)
    else:
        from ..embeddings.clip import file_checksum

        path = Path(text).expanduser()
        module = _build_architecture(network)
        _apply_state_dict(network, module, _read_state_dict(path), str(path))
        desc = f"file:{path.name} sha256:{file_checksum(path)}"
    _finish_inception(network, module)
    logger.info("loaded %s with %s weights", spec.description, desc)
    return FeatureNetwork(network, module, random_weights=False, weights=desc).to(torch_device)


def tiny_stand_in(network: str, *, seed: int = 0, resize: int | None = None) -> FeatureNetwork:
    """A small randomly initialised network of the same class as the reference one, for tests and benchmarks.

    - ``alexnet``: torchvision ``AlexNet`` as is (the class has no width option; its convolutional part is
      already cheap);
    - ``inception``: torchvision ``Inception3`` whose every convolution has 1/16 of the channels (through the
      class's ``inception_blocks`` argument); 128 features at ``avgpool``;
    - ``effnet``: torchvision ``EfficientNet`` with the B0 stage table at width 0.25 and depth 0.25 (one block
      per stage);
    - ``swav``: torchvision ``ResNet`` with ``BasicBlock``, one per stage (ResNet-50 uses ``Bottleneck``
      blocks, which cost several times more at the same input size); 512 features at ``avgpool``;
    - ``clip``: an open_clip ``CLIP`` with a 2-layer, width-64 ViT-B/32-style image tower and a 2-layer,
      width-64 text tower (the standard BPE vocabulary shipped with open_clip).

    The inputs are resized as for the reference network unless ``resize`` says otherwise. The result has
    ``random_weights=True``.

    Parameters
    ----------
    network : str
        Network name.
    seed : int
        Seed of the random initialisation.
    resize : int | None
        Input side instead of the reference one (smaller is faster; AlexNet needs at least 63, Inception 75;
        for CLIP it sets the model's image size, a multiple of 32).

    Returns
    -------
    FeatureNetwork
        On the CPU.
    """
    _network_spec(network)
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if network == "clip":
            module = tiny_clip_model(image_size=resize or NETWORKS["clip"].resize)
        else:
            module = _build_tiny_torchvision(network)
    return FeatureNetwork(network, module, random_weights=True, weights="tiny-random", resize=resize)


def tiny_clip_model(image_size: int = 224) -> Any:
    """A small random open_clip ``CLIP`` (64-d embeddings, patch 32); seed torch before calling."""
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 32 or image_size % 32:
        raise ToolkitError(f"The tiny CLIP's image size must be a positive multiple of 32, got {image_size!r}.")
    open_clip = require("open_clip", extra="metrics", purpose="the CLIP metrics")
    from open_clip.model import CLIPTextCfg, CLIPVisionCfg

    vision = CLIPVisionCfg(layers=2, width=64, head_width=32, patch_size=32, image_size=image_size)
    text = CLIPTextCfg(context_length=77, vocab_size=49408, width=64, heads=2, layers=2)
    return open_clip.CLIP(embed_dim=64, vision_cfg=vision, text_cfg=text).eval()


# ================================================================================================ helpers
def _network_spec(network: Any) -> NetworkSpec:
    if network not in NETWORKS:
        raise ToolkitError(f"Unknown feature network {network!r}; known networks: {', '.join(NETWORKS)}.")
    return NETWORKS[network]


def _is_module(x: Any) -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a core dependency
        return False
    return isinstance(x, torch.nn.Module)


def _build_architecture(network: str) -> Any:
    """The reference architecture, uninitialised beyond PyTorch's defaults (weights are loaded next)."""
    from torchvision import models

    if network == "alexnet":
        return models.alexnet(weights=None)
    if network == "inception":
        # The layout torchvision uses for its pretrained weights (aux head kept for loading, dropped after).
        return models.Inception3(aux_logits=True, transform_input=True, init_weights=False)
    if network == "effnet":
        return models.efficientnet_b1(weights=None)
    if network == "swav":
        return models.resnet50(weights=None)
    raise AssertionError(network)  # pragma: no cover - guarded by _network_spec


def _build_random(network: str, clip_model: str, seed: int) -> Any:
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if network == "clip":
            open_clip = require("open_clip", extra="metrics", purpose="the CLIP metric")
            from ..embeddings.clip import _check_model_name

            _check_model_name(open_clip, clip_model)
            return open_clip.create_model(clip_model, pretrained=None)
        if network == "inception":
            from torchvision import models

            module = models.Inception3(aux_logits=False, transform_input=True, init_weights=True)
        else:
            module = _build_architecture(network)
    _finish_inception(network, module)
    return module


def _finish_inception(network: str, module: Any) -> None:
    """Drop the auxiliary head after loading, as torchvision does for ``aux_logits=False``."""
    if network == "inception":
        module.aux_logits = False
        module.AuxLogits = None


def _build_tiny_torchvision(network: str) -> Any:
    from functools import partial

    import torch
    from torchvision import models
    from torchvision.models import efficientnet, inception, resnet

    if network == "alexnet":
        return models.AlexNet()
    if network == "inception":
        # Inception3 builds its stem with inception_blocks[0] and the mixed blocks with the other entries, which
        # create their own convolutions unless given a conv_block: so every block gets the narrow one.
        narrow = _narrow_conv_class()
        blocks = [narrow] + [
            partial(block, conv_block=narrow)
            for block in (
                inception.InceptionA,
                inception.InceptionB,
                inception.InceptionC,
                inception.InceptionD,
                inception.InceptionE,
                inception.InceptionAux,
            )
        ]
        module = inception.Inception3(
            aux_logits=False, transform_input=True, inception_blocks=blocks, init_weights=False, num_classes=10
        )
        module.fc = torch.nn.Linear(2048 // narrow.divisor, 10)  # the class hard-codes 2048 inputs
        return module
    if network == "effnet":
        conf = partial(efficientnet.MBConvConfig, width_mult=0.25, depth_mult=0.25)
        # EfficientNet's B0 stage table: expand ratio, kernel, stride, in channels, out channels, layers.
        setting = [
            conf(1, 3, 1, 32, 16, 1),
            conf(6, 3, 2, 16, 24, 2),
            conf(6, 5, 2, 24, 40, 2),
            conf(6, 3, 2, 40, 80, 3),
            conf(6, 5, 1, 80, 112, 3),
            conf(6, 5, 2, 112, 192, 4),
            conf(6, 3, 1, 192, 320, 1),
        ]
        return efficientnet.EfficientNet(setting, dropout=0.2, num_classes=10)
    if network == "swav":
        return resnet.ResNet(resnet.BasicBlock, [1, 1, 1, 1], num_classes=10)
    raise AssertionError(network)  # pragma: no cover


@functools.lru_cache(maxsize=1)
def _narrow_conv_class() -> Any:
    # Created on first use (it subclasses a torchvision class, and nothing heavy is imported at import time).
    from torchvision.models.inception import BasicConv2d

    class NarrowBasicConv2d(BasicConv2d):
        """Inception's conv block with 1/16 of the channels (the RGB input of the stem stays 3 channels)."""

        divisor = 16  # every channel count of Inception v3 is a multiple of 16

        def __init__(self, in_channels: int, out_channels: int, **kwargs: Any) -> None:
            d = self.divisor
            super().__init__(in_channels if in_channels == 3 else in_channels // d, out_channels // d, **kwargs)

    return NarrowBasicConv2d


def _reference_file(network: str) -> tuple[Path, str, bool, str]:
    """``(cached file, URL, whether its name holds a checksum, description)`` of a network's reference weights;
    a ToolkitError saying where to put the file when it is not there."""
    import torch

    if network == "swav":
        url, check_hash, desc = _SWAV_URL, False, "swav:swav_800ep_pretrain"  # no checksum in its name
    else:
        import torchvision.models as tvm

        enum_name, member = _TORCHVISION_WEIGHTS[network]
        url, check_hash, desc = getattr(tvm, enum_name)[member].url, True, f"torchvision:{enum_name}.{member}"
    filename = Path(urlparse(url).path).name
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    if not (folder / filename).is_file():
        raise ToolkitError(
            f"The reference weights of '{network}' ({filename}) are not in the torch hub cache and are not "
            f"downloaded here: place the file from {url} in '{folder}' (or set TORCH_HOME), or pass the path of a "
            f"state-dict file as feature_weights['{network}']."
        )
    return folder / filename, url, check_hash, desc


def check_weights(network: str, weights: Any) -> None:
    """Fail early, before any work, when ``load_network(network, weights)`` cannot find its weights file.

    Only file locations are checked (reference files in the torch hub cache, local paths); the files are read by
    :func:`load_network`. CLIP weights are checked when loaded.

    Parameters
    ----------
    network : str
        Network name.
    weights : Any
        As for :func:`load_network`.
    """
    _network_spec(network)
    if network == "clip" or not isinstance(weights, (str, os.PathLike)) or weights == _TINY:
        return
    text = str(weights)
    if text.lower() in _PRETRAINED_ALIASES:
        _reference_file(network)
    elif not Path(text).expanduser().is_file():
        raise ToolkitError(
            f"feature_weights['{network}'] = {text!r} is neither 'pretrained' nor an existing file; pass "
            "'pretrained' (reference weights from the torch hub cache), the path of a state-dict file, None "
            "(random weights) or 'tiny'."
        )


def _load_reference(network: str) -> tuple[Any, str]:
    """The reference weights from the torch hub cache, never downloaded."""
    import torch

    path, url, check_hash, desc = _reference_file(network)
    folder, filename = path.parent, path.name
    if check_hash:
        _check_hash_prefix(folder / filename, url)
    try:
        state = torch.hub.load_state_dict_from_url(
            url, model_dir=str(folder), map_location="cpu", progress=False, weights_only=True
        )
    except Exception as err:  # a corrupt or truncated file
        raise ToolkitError(
            f"The cached weights file '{folder / filename}' could not be loaded ({type(err).__name__}: "
            f"{str(err).splitlines()[0][:200] if str(err) else ''}); delete it and place a fresh copy from {url}."
        ) from None
    module = _build_architecture(network)
    _apply_state_dict(network, module, _unwrap_state_dict(state, str(folder / filename)), str(folder / filename))
    return module, desc


def _check_hash_prefix(path: Path, url: str) -> None:
    """Check a cached torchvision file against the SHA-256 prefix in its name (torch.hub checks only downloads)."""
    from ..embeddings.clip import file_checksum

    match = _HASH_IN_NAME.search(path.name)
    if match is None:
        return
    if not file_checksum(path).startswith(match.group(1)):
        raise ToolkitError(
            f"The cached weights file '{path}' does not match the checksum in its name (a corrupt or different "
            f"file); delete it and place a fresh copy from {url}."
        )


def _read_state_dict(path: Path) -> dict:
    import torch

    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:
        first = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise ToolkitError(
            f"Weights file '{path}' could not be read as a state dict ({first}); pass a file of tensors saved with "
            "torch.save(model.state_dict()) or safetensors (pickled modules are refused)."
        ) from None
    return _unwrap_state_dict(state, str(path))


def _unwrap_state_dict(state: Any, source: str) -> dict:
    if isinstance(state, dict):
        for key in ("state_dict", "model"):
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    if not isinstance(state, dict) or not state:
        raise ToolkitError(f"Weights file '{source}' holds no state dict (a dict of tensors); pass a state-dict file.")
    return {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in state.items()}


def _apply_state_dict(network: str, module: Any, state: dict, source: str) -> None:
    try:
        result = module.load_state_dict(state, strict=False)
    except RuntimeError as err:
        first = str(err).strip().splitlines()
        detail = first[1].strip() if len(first) > 1 else first[0]
        raise ToolkitError(
            f"Weights file '{source}' does not fit the {NETWORKS[network].description} ({detail[:200]}); pass "
            f"a state dict saved from that class."
        ) from None
    missing = [k for k in result.missing_keys if not k.startswith(_ALLOWED_MISSING[network])]
    unexpected = [k for k in result.unexpected_keys if not k.startswith(_ALLOWED_UNEXPECTED[network])]
    matched = len(state) - len(result.unexpected_keys)
    if missing or unexpected or matched == 0:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s), e.g. {missing[0]!r}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s), e.g. {unexpected[0]!r}")
        if not parts:
            parts.append("no key matches")
        raise ToolkitError(
            f"Weights file '{source}' does not fit the {NETWORKS[network].description} ({'; '.join(parts)}); pass "
            "a state dict saved from that class."
        )


def _load_clip(weights: Any, clip_model: str, device: Any) -> FeatureNetwork:
    from ..embeddings import ClipEmbedder

    text = str(weights)
    pretrained = DEFAULT_CLIP_PRETRAINED if text.lower() in _PRETRAINED_ALIASES else text
    embedder = ClipEmbedder.from_open_clip(clip_model, pretrained, device=str(device))
    ident = embedder.identity
    return FeatureNetwork("clip", embedder.model, random_weights=False, weights=f"{clip_model}:{ident['weights']}")


def _feature_extractor(module: Any, layers: tuple[str, ...], network: str) -> Any:
    from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names

    module.eval()
    try:
        return create_feature_extractor(module, return_nodes={layer: layer for layer in layers}).eval()
    except ValueError as err:
        try:
            _, eval_nodes = get_graph_node_names(module)
        except Exception:  # an untraceable module: report the first error
            eval_nodes = []
        hint = f" (nodes include: {', '.join(eval_nodes[:12])}, ...)" if eval_nodes else ""
        raise ToolkitError(
            f"Layer(s) {', '.join(layers)} cannot be taken from the '{network}' network ({str(err)[:200]}){hint}."
        ) from None
    except Exception as err:
        raise ToolkitError(
            f"The '{network}' module ({type(module).__name__}) cannot be traced by torchvision's "
            f"create_feature_extractor ({type(err).__name__}: {str(err)[:200]}); pass a traceable module."
        ) from None
