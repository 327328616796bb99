"""ATM's low-level path: EEG → SDXL-VAE latent → blurry image → SDXL img2img with the IP-Adapter.

(reference/ATM.md §9.) A :class:`LowLevelEncoder` regresses the VAE latent of the seen image from one EEG trial
(L1 loss, :func:`low_level_loss`; targets from :func:`encode_image_latents`). At generation time the predicted latent
is decoded by the VAE into a blurry image that carries the layout and colours, and :class:`LowLevelRefiner` refines
it with SDXL(-Turbo) img2img, conditioned on the same CLIP image embeddings through the IP-Adapter.

Latent scaling is explicit everywhere: ``scaled=False`` means raw VAE latents (``vae.encode(x).latent_dist``, ATM's
targets), ``scaled=True`` means latents multiplied by ``vae.config.scaling_factor`` (what diffusers' UNets denoise).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import _pretrained
from ..encoders.base import check_encoder_input
from ..errors import ToolkitError
from ..utils import progress
from . import _checks
from ._components import (
    DIFFUSERS_NOISE,
    check_source,
    diffusers_module,
    load_model_component,
    progress_off,
    quiet_loggers,
    train_steps,
)
from .ip_adapter import (
    IP_ADAPTER_SDXL_VIT_H,
    SDXL_TURBO,
    EmbedsToImagePipeline,
    per_prompt_ip_adapter_embeds,
)

SDXL_BASE = "stabilityai/stable-diffusion-xl-base-1.0"
"""Hub id of SDXL-base 1.0, whose VAE (``vae`` subfolder) gives ATM's low-level targets."""

_CLASS_NAME = "LowLevelEncoder"


# ----------------------------------------------------------------------------------------------------------------
# The encoder
# ----------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LowLevelEncoderConfig:
    """Architecture of :class:`LowLevelEncoder`; the defaults are ATM's (143,333,268 parameters).

    Parameters
    ----------
    n_chans, n_times : int
        EEG channels and samples per trial (ATM: 63 × 250).
    time_dim : int
        Width of the Linear layer applied over time to every channel (ATM: 128).
    hidden_channels : tuple of int
        Output channels of the stride-2 ConvTranspose2d layers (kernel 4, padding 1), each followed by BatchNorm and
        ReLU; each doubles the side, from 1 × 1 to ``2 ** len(hidden_channels)`` (ATM: 1024 … 32, six layers, 64 × 64).
        The first layer (``n_chans · time_dim`` → ``hidden_channels[0]`` channels, 4 × 4 kernel) holds most of the
        parameters (132 M at the defaults).
    head_channels : tuple of int
        Output channels of the 1 × 1 ConvTranspose2d layers that follow, each with BatchNorm and ReLU (ATM: 16).
    latent_channels : int
        Channels of the final 1 × 1 ConvTranspose2d (no activation): the VAE's latent channels (4).
    """

    n_chans: int = 63
    n_times: int = 250
    time_dim: int = 128
    hidden_channels: tuple[int, ...] = (1024, 512, 256, 128, 64, 32)
    head_channels: tuple[int, ...] = (16,)
    latent_channels: int = 4

    def __post_init__(self) -> None:
        for name in ("n_chans", "n_times", "time_dim", "latent_channels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ToolkitError(f"LowLevelEncoderConfig.{name} must be a positive integer, got {value!r}.")
        for name, min_len in (("hidden_channels", 1), ("head_channels", 0)):
            value = getattr(self, name)
            if isinstance(value, list):
                value = tuple(value)
                object.__setattr__(self, name, value)
            if (
                not isinstance(value, tuple)
                or len(value) < min_len
                or any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in value)
            ):
                raise ToolkitError(
                    f"LowLevelEncoderConfig.{name} must be a tuple of{' at least one' if min_len else ''} positive "
                    f"integers, got {value!r}."
                )

    @property
    def latent_size(self) -> int:
        """Side of the predicted latent (64 at the defaults: a 512 × 512 image through the SDXL VAE)."""
        return 2 ** len(self.hidden_channels)

    def to_dict(self) -> dict[str, Any]:
        """The configuration as a JSON-serialisable dict."""
        out = dataclasses.asdict(self)
        out["hidden_channels"] = list(self.hidden_channels)
        out["head_channels"] = list(self.head_channels)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "the configuration") -> LowLevelEncoderConfig:
        """Build a configuration from a dict (keys starting with ``_`` are metadata and ignored)."""
        if not isinstance(data, Mapping):
            raise ToolkitError(f"{source} must hold a JSON object with the low-level encoder's configuration.")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(k for k in data if not str(k).startswith("_") and k not in fields)
        if unknown:
            raise ToolkitError(f"{source} has unknown keys {unknown}; expected only {sorted(fields)}.")
        kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items() if k in fields}
        return cls(**kwargs)


class LowLevelEncoder(nn.Module):
    """EEG trials → VAE latents: Linear over time, reshape to 1 × 1, a ConvTranspose2d stack up to the latent size.

    Parameters
    ----------
    config : LowLevelEncoderConfig | None
        Architecture; ``None`` is ATM's (63 × 250 EEG → 4 × 64 × 64 latent).

    Notes
    -----
    Input (batch, n_chans, n_times) → ``Linear(n_times, time_dim)`` per channel → (batch, n_chans · time_dim, 1, 1) →
    ``hidden_channels`` stride-2 transposed convolutions with BatchNorm + ReLU → ``head_channels`` 1 × 1 transposed
    convolutions with BatchNorm + ReLU → a 1 × 1 transposed convolution to ``latent_channels``. The output is in the
    space of the targets it was trained on (raw VAE latents in ATM). The reference also co-optimised an identity
    "Proj_img" module, which is omitted.
    """

    name = "low-level"

    def __init__(self, config: LowLevelEncoderConfig | None = None) -> None:
        super().__init__()
        config = LowLevelEncoderConfig() if config is None else config
        if not isinstance(config, LowLevelEncoderConfig):
            raise ToolkitError(f"config must be a LowLevelEncoderConfig, got {type(config).__name__}.")
        self.config = config
        self.time_linear = nn.Linear(config.n_times, config.time_dim)
        layers: list[nn.Module] = []
        width = config.n_chans * config.time_dim
        for out in config.hidden_channels:
            layers += [
                nn.ConvTranspose2d(width, out, 4, stride=2, padding=1),
                nn.BatchNorm2d(out),
                nn.ReLU(inplace=True),
            ]
            width = out
        for out in config.head_channels:
            layers += [nn.ConvTranspose2d(width, out, 1), nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
            width = out
        layers.append(nn.ConvTranspose2d(width, config.latent_channels, 1))
        self.upsample = nn.Sequential(*layers)

    @property
    def device(self) -> torch.device:
        """Device of the parameters."""
        return self.time_linear.weight.device

    @property
    def dtype(self) -> torch.dtype:
        """Floating-point type of the parameters."""
        return self.time_linear.weight.dtype

    def n_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def forward(self, eeg: torch.Tensor) -> torch.Tensor:
        """Predict latents.

        Parameters
        ----------
        eeg : torch.Tensor, shape (batch, n_chans, n_times)
            EEG trials, on the module's device and dtype.

        Returns
        -------
        torch.Tensor, shape (batch, latent_channels, latent_size, latent_size)
            Predicted VAE latents.
        """
        check_encoder_input(eeg, None, self.config, encoder=self.name, reference=self.time_linear.weight)
        x = self.time_linear(eeg)  # (batch, n_chans, time_dim)
        x = x.reshape(x.shape[0], -1, 1, 1)
        return self.upsample(x)

    def _describe(self) -> str:
        cfg = self.config
        return (
            f"low-level encoder with n_chans={cfg.n_chans}, n_times={cfg.n_times}, time_dim={cfg.time_dim}, "
            f"hidden_channels={list(cfg.hidden_channels)}, head_channels={list(cfg.head_channels)}"
        )

    # ------------------------------------------------------------------ save / load
    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write ``config.json`` and ``model.safetensors`` to ``directory`` (atomically; replaces the folder).

        Parameters
        ----------
        directory : str | os.PathLike
            Destination folder.

        Returns
        -------
        Path
            The folder written.
        """
        return _pretrained.save_component(
            directory,
            config=self.config.to_dict(),
            state_dict=self.state_dict(),
            class_name=_CLASS_NAME,
            what="the low-level encoder",
        )

    @classmethod
    def from_pretrained(
        cls,
        pretrained: str | os.PathLike,
        *,
        revision: str | None = None,
        local_files_only: bool = False,
        cache_dir: str | os.PathLike | None = None,
    ) -> LowLevelEncoder:
        """Load an encoder written by :meth:`save_pretrained` from a folder or a Hugging Face Hub repository.

        Parameters
        ----------
        pretrained : str | os.PathLike
            Folder with ``config.json`` and ``model.safetensors``, or a Hub id ``owner/name``.
        revision : str | None
            Hub branch, tag or commit (Hub ids only).
        local_files_only : bool
            Never use the network.
        cache_dir : str | os.PathLike | None
            Hub cache folder.

        Returns
        -------
        LowLevelEncoder
            The encoder in evaluation mode, on the CPU in float32.
        """
        data, config_path, weights_path = _pretrained.read_pretrained_component(
            pretrained,
            revision=revision,
            cache_dir=cache_dir,
            local_files_only=local_files_only,
            class_name=_CLASS_NAME,
            what="low-level encoder",
            save_hint="LowLevelEncoder.save_pretrained",
        )
        model = cls(LowLevelEncoderConfig.from_dict(data, source=str(config_path)))
        state = _pretrained.read_state_dict(weights_path, what="low-level encoder")
        _pretrained.load_checked_state_dict(model, state, source=str(weights_path), what=model._describe())
        return model.eval()


def low_level_loss(pred_latents: torch.Tensor, target_latents: torch.Tensor) -> torch.Tensor:
    """ATM's low-level training loss: mean absolute error (L1) between predicted and target VAE latents.

    Parameters
    ----------
    pred_latents : torch.Tensor, shape (batch, channels, height, width)
        :class:`LowLevelEncoder` output.
    target_latents : torch.Tensor, shape (batch, channels, height, width)
        Latents of the seen images in the same convention (:func:`encode_image_latents`).

    Returns
    -------
    torch.Tensor
        Scalar loss.
    """
    for name, value in (("pred_latents", pred_latents), ("target_latents", target_latents)):
        if not isinstance(value, torch.Tensor) or value.ndim != 4 or not value.is_floating_point():
            raise ToolkitError(f"{name} must be a floating-point tensor (batch, channels, height, width).")
    if pred_latents.shape != target_latents.shape:
        raise ToolkitError(
            f"pred_latents {tuple(pred_latents.shape)} and target_latents {tuple(target_latents.shape)} differ in "
            "shape; build the encoder for the VAE's latent size and channels."
        )
    return nn.functional.l1_loss(pred_latents, target_latents.to(pred_latents.dtype))


# ----------------------------------------------------------------------------------------------------------------
# VAE helpers
# ----------------------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _vae_precision(vae: Any) -> Iterator[torch.dtype]:
    """Run a float16 VAE marked ``force_upcast`` (the SDXL VAE overflows in float16) in float32, as diffusers does."""
    original = vae.dtype
    upcast = original == torch.float16 and bool(getattr(vae.config, "force_upcast", False))
    if upcast:
        vae.to(dtype=torch.float32)
    try:
        yield vae.dtype
    finally:
        if upcast:
            vae.to(dtype=original)


def _check_vae(vae: Any) -> None:
    diffusers = diffusers_module()
    if not isinstance(vae, diffusers.AutoencoderKL):
        raise ToolkitError(f"vae must be a diffusers AutoencoderKL, got {type(vae).__name__}.")


def _scaling(vae: Any) -> tuple[float, float]:
    shift = getattr(vae.config, "shift_factor", None)
    return float(vae.config.scaling_factor), float(shift or 0.0)


def encode_image_latents(
    vae: Any,
    images: Any,
    *,
    size: int | None = None,
    scaled: bool = False,
    sample: bool = False,
    generator: torch.Generator | None = None,
    batch_size: int = 8,
) -> torch.Tensor:
    """VAE latents of images: the low-level encoder's training targets (ATM: 512 × 512 → 4 × 64 × 64, raw).

    Parameters
    ----------
    vae : diffusers.AutoencoderKL
        The VAE (ATM: the SDXL-base VAE in float32).
    images : list of PIL.Image.Image | torch.Tensor
        Images, or a float tensor (batch, 3, height, width) in [0, 1].
    size : int | None
        Resize to ``size × size`` first (ATM: 512); ``None`` keeps the size (rounded down to the VAE's multiple).
    scaled : bool
        Multiply by ``vae.config.scaling_factor`` (diffusers' UNet convention); ATM's targets are raw (False).
    sample : bool
        Draw from the latent distribution instead of taking its mode (the mean).
    generator : torch.Generator | None
        Random source when ``sample`` is True.
    batch_size : int
        Images per VAE call.

    Returns
    -------
    torch.Tensor, shape (batch, latent_channels, size / f, size / f)
        float32 latents on the CPU (f = the VAE's scale factor).
    """
    _check_vae(vae)
    from diffusers.image_processor import VaeImageProcessor

    batch = _checks.check_int(batch_size, "batch_size", minimum=1)
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    if size is not None:
        _checks.check_size(size, size, multiple=factor)
    if isinstance(images, torch.Tensor):
        images = _checks.as_float_tensor(images, "images")
        if images.ndim != 4 or images.shape[1] != 3 or images.shape[0] < 1:
            raise ToolkitError(f"images must be (batch, 3, height, width) in [0, 1], got {tuple(images.shape)}.")
        if float(images.min()) < 0 or float(images.max()) > 1:
            raise ToolkitError("images must hold values in [0, 1] (a tensor in [-1, 1] or 0–255 is not accepted).")
    elif not isinstance(images, Sequence) or len(images) == 0:
        raise ToolkitError("images must be a non-empty list of PIL images or a (batch, 3, H, W) tensor.")
    processor = VaeImageProcessor(vae_scale_factor=factor)
    try:
        pixels = processor.preprocess(images, height=size, width=size)
    except (ValueError, TypeError) as err:
        raise ToolkitError(f"Could not prepare the images for the VAE: {err}") from err
    sf, shift = _scaling(vae)
    out = []
    with torch.inference_mode(), _vae_precision(vae) as dtype:
        for start in range(0, pixels.shape[0], batch):
            dist = vae.encode(pixels[start : start + batch].to(vae.device, dtype)).latent_dist
            z = dist.sample(generator) if sample else dist.mode()
            if scaled:
                z = (z - shift) * sf
            out.append(z.float().cpu())
    return torch.cat(out)


def decode_latents(vae: Any, latents: Any, *, scaled: bool = False, batch_size: int = 8) -> torch.Tensor:
    """Decode VAE latents into images (the low-level path's blurry images).

    Parameters
    ----------
    vae : diffusers.AutoencoderKL
        The VAE the latents belong to.
    latents : torch.Tensor | numpy.ndarray, shape (batch, latent_channels, height, width)
        Latents; ``scaled`` says whether they include ``vae.config.scaling_factor``.
    scaled : bool
        The latents were multiplied by the scaling factor (undone here); False for raw latents (ATM).
    batch_size : int
        Latents per VAE call.

    Returns
    -------
    torch.Tensor, shape (batch, 3, height · f, width · f)
        float32 images in [0, 1] on the CPU.
    """
    _check_vae(vae)
    batch = _checks.check_int(batch_size, "batch_size", minimum=1)
    latents = _checks.as_float_tensor(latents, "latents")
    channels = vae.config.latent_channels
    if latents.ndim != 4 or latents.shape[1] != channels or latents.shape[0] < 1:
        raise ToolkitError(
            f"latents has shape {tuple(latents.shape)} but this VAE decodes (batch, {channels}, height, width)."
        )
    sf, shift = _scaling(vae)
    out = []
    with torch.inference_mode(), _vae_precision(vae) as dtype:
        for start in range(0, latents.shape[0], batch):
            z = latents[start : start + batch].to(vae.device, dtype)
            if scaled:
                z = z / sf + shift
            x = vae.decode(z).sample
            out.append((x.float() / 2 + 0.5).clamp(0, 1).cpu())
    return torch.cat(out)


def _to_pil(images: torch.Tensor) -> list[Any]:
    from PIL import Image

    arrays = (images.permute(0, 2, 3, 1).numpy() * 255).round().clip(0, 255).astype("uint8")
    return [Image.fromarray(a) for a in arrays]


# ----------------------------------------------------------------------------------------------------------------
# Refinement
# ----------------------------------------------------------------------------------------------------------------
@dataclass
class LowLevelOutput:
    """Output of :class:`LowLevelRefiner`.

    Attributes
    ----------
    images : list of PIL.Image.Image
        The refined images, one per latent.
    blurry_images : list of PIL.Image.Image
        The VAE decodings of the latents (the img2img starting points).
    seeds : list of int | None
        The seed of every image when the call was given ``seed``.
    prompts : list of str
        The prompt of every image.
    """

    images: list[Any]
    blurry_images: list[Any]
    seeds: list[int] | None = None
    prompts: list[str] = field(default_factory=list)


class LowLevelRefiner:
    """Predicted VAE latents (+ CLIP image embeddings) → blurry images → SDXL img2img refinements.

    Parameters
    ----------
    generator : EmbedsToImagePipeline
        The SDXL(-Turbo) + IP-Adapter generator; an img2img pipeline is made from its components with
        ``StableDiffusionXLImg2ImgPipeline.from_pipe`` (no copy of the weights; its own scheduler instance).
    vae : diffusers.AutoencoderKL | None
        The VAE the latents belong to (ATM: the SDXL-base VAE); ``None`` uses the generator's.
    latents_scaled : bool
        The latents include ``vae.config.scaling_factor``; False for raw VAE latents (ATM's targets).

    Notes
    -----
    The blurry image is handed to img2img as a float image in [0, 1], which diffusers maps to [−1, 1] and re-encodes
    with the pipeline's VAE. ATM's patched pipeline normalised it with CLIP's mean and standard deviation instead,
    which puts VAE inputs out of their training range; the standard [−1, 1] mapping is used here.
    """

    def __init__(self, generator: EmbedsToImagePipeline, *, vae: Any = None, latents_scaled: bool = False) -> None:
        diffusers = diffusers_module()
        if not isinstance(generator, EmbedsToImagePipeline):
            raise ToolkitError(f"generator must be an EmbedsToImagePipeline, got {type(generator).__name__}.")
        self.generator = generator
        self.vae = generator.pipe.vae if vae is None else vae
        _check_vae(self.vae)
        if not isinstance(latents_scaled, bool):
            raise ToolkitError(f"latents_scaled must be True or False, got {latents_scaled!r}.")
        self.latents_scaled = latents_scaled
        scheduler = generator.pipe.scheduler
        with quiet_loggers(*DIFFUSERS_NOISE):
            self.img2img = diffusers.StableDiffusionXLImg2ImgPipeline.from_pipe(
                generator.pipe, scheduler=type(scheduler).from_config(scheduler.config)
            )
        self.img2img.set_progress_bar_config(disable=True)

    @classmethod
    def from_pretrained(
        cls,
        repo_id: str | os.PathLike = SDXL_TURBO,
        *,
        ip_adapter: tuple[str | os.PathLike, str | None, str] | str | os.PathLike = IP_ADAPTER_SDXL_VIT_H,
        vae: str | os.PathLike | None = None,
        vae_subfolder: str = "vae",
        vae_revision: str | None = None,
        latents_scaled: bool = False,
        **kwargs: Any,
    ) -> LowLevelRefiner:
        """Load the generator (see :meth:`EmbedsToImagePipeline.from_pretrained`) and optionally a separate VAE.

        Parameters
        ----------
        repo_id : str | os.PathLike
            The SDXL pipeline (default SDXL-Turbo).
        ip_adapter : tuple | str | os.PathLike
            The IP-Adapter (default ``ip-adapter_sdxl_vit-h``).
        vae : str | os.PathLike | None
            Hub id or folder holding the VAE the latents were made with (e.g. ``SDXL_BASE``), loaded in float32 on
            the generator's device; ``None`` uses the pipeline's VAE.
        vae_subfolder : str
            Folder of the VAE inside ``vae``.
        vae_revision : str | None
            Hub revision of ``vae``.
        latents_scaled : bool
            See :class:`LowLevelRefiner`.
        **kwargs
            Passed to :meth:`EmbedsToImagePipeline.from_pretrained` (``revision``, ``device``, ``dtype``,
            ``local_files_only``, ``cache_dir``, ...).

        Returns
        -------
        LowLevelRefiner
            The refiner.
        """
        generator = EmbedsToImagePipeline.from_pretrained(repo_id, ip_adapter=ip_adapter, **kwargs)
        vae_model = None
        if vae is not None:
            diffusers = diffusers_module()
            source = check_source(vae, what="the VAE", revision=vae_revision)
            vae_model = load_model_component(
                diffusers.AutoencoderKL,
                source,
                vae_subfolder,
                dtype=torch.float32,
                variant=None,
                revision=vae_revision,
                local_files_only=bool(kwargs.get("local_files_only", False)),
                cache_dir=kwargs.get("cache_dir"),
            ).to(generator.device)
        return cls(generator, vae=vae_model, latents_scaled=latents_scaled)

    def decode(self, latents: Any, *, batch_size: int = 8) -> list[Any]:
        """The blurry images of ``latents`` (PIL), decoded with the refiner's VAE and scaling convention."""
        return _to_pil(decode_latents(self.vae, latents, scaled=self.latents_scaled, batch_size=batch_size))

    def __call__(
        self,
        latents: Any,
        image_embeds: Any = None,
        *,
        prompt: str | Sequence[str] = "",
        strength: float = 0.5,
        num_inference_steps: int = 4,
        guidance_scale: float = 0.0,
        ip_adapter_scale: float = 1.0,
        generator: Any = None,
        seed: int | Sequence[int] | None = None,
        batch_size: int = 8,
        progress_bar: bool = True,
    ) -> LowLevelOutput:
        """Decode the latents and refine the blurry images with img2img.

        Parameters
        ----------
        latents : torch.Tensor | numpy.ndarray, shape (n, latent_channels, height, width)
            Predicted VAE latents (:class:`LowLevelEncoder` output), in the refiner's scaling convention.
        image_embeds : torch.Tensor | numpy.ndarray | None, shape (n, image_embed_dim)
            CLIP image embeddings for the IP-Adapter (as for :class:`EmbedsToImagePipeline`); ``None`` refines
            without them (adapter scale 0).
        prompt : str | Sequence[str]
            Text prompt, one for all or one per latent.
        strength : float
            In (0, 1]: the share of the denoising schedule applied to the blurry image (ATM: 0.5; 0.8 in its batch
            script). img2img runs ``int(num_inference_steps × strength)`` steps, which must be ≥ 1.
        num_inference_steps : int
            Steps of the full schedule (SDXL-Turbo: 4; ATM's SDXL: 10).
        guidance_scale : float
            Classifier-free guidance ≥ 0 (≤ 1 disables it).
        ip_adapter_scale : float
            Weight of the image condition, ≥ 0.
        generator : torch.Generator | list of torch.Generator | None
            Random source (one per image for a list).
        seed : int | Sequence[int] | None
            Instead of ``generator``: image k gets seed ``seed + k`` (or ``seed[k]``).
        batch_size : int
            Images per diffusers call.
        progress_bar : bool
            Show a progress bar over the batches.

        Returns
        -------
        LowLevelOutput
            Refined and blurry images.
        """
        blurry = decode_latents(self.vae, latents, scaled=self.latents_scaled)
        n = blurry.shape[0]
        dim = self.generator.image_embed_dim
        if image_embeds is None:
            embeds = torch.zeros(n, dim)
            scale = 0.0
        else:
            embeds = _checks.check_embeds(
                image_embeds, dim, "image_embeds", what="the IP-Adapter loaded in this pipeline"
            )
            if embeds.shape[0] != n:
                raise ToolkitError(
                    f"image_embeds has {embeds.shape[0]} rows but latents has {n}; pass one per latent."
                )
            scale = _checks.check_scale(ip_adapter_scale, "ip_adapter_scale")
        prompts = _checks.check_prompts(prompt, n)
        strength = _checks.check_strength(strength)
        steps = _checks.check_int(
            num_inference_steps, "num_inference_steps", minimum=1, maximum=train_steps(self.img2img)
        )
        _checks.check_img2img_steps(steps, strength, steps_name="num_inference_steps", strength_name="strength")
        guidance = _checks.check_scale(guidance_scale, "guidance_scale", hint=" (≤ 1 disables guidance)")
        batch = _checks.check_int(batch_size, "batch_size", minimum=1)
        generators, seeds = _checks.make_generators(generator, seed, n, 1)

        pipe = self.img2img
        pipe.set_ip_adapter_scale(scale)
        embeds = embeds.to(dtype=pipe.unet.dtype)
        images: list[Any] = []
        with per_prompt_ip_adapter_embeds(pipe), progress_off(pipe), quiet_loggers(*DIFFUSERS_NOISE):
            for start in progress(range(0, n, batch), desc="refining images", disable=None if progress_bar else True):
                stop = min(start + batch, n)
                result = pipe(
                    prompt=prompts[start:stop],
                    image=blurry[start:stop],
                    strength=strength,
                    num_inference_steps=steps,
                    guidance_scale=guidance,
                    ip_adapter_image_embeds=[embeds[start:stop, None, :]],
                    generator=_checks.chunk_generators(generators, start, stop),
                    output_type="pil",
                )
                images.extend(result.images)
        return LowLevelOutput(images=images, blurry_images=_to_pil(blurry), seeds=seeds, prompts=prompts)


def reference_parameter_count(config: LowLevelEncoderConfig | None = None) -> int:
    """Parameters of a :class:`LowLevelEncoder` computed from its configuration (no weights allocated).

    At ATM's defaults this is 143,333,268 (the first transposed convolution alone has 132,121,600).
    """
    cfg = LowLevelEncoderConfig() if config is None else config
    total = cfg.n_times * cfg.time_dim + cfg.time_dim
    width = cfg.n_chans * cfg.time_dim
    for out in cfg.hidden_channels:
        total += width * out * 16 + out + 2 * out
        width = out
    for out in cfg.head_channels:
        total += width * out + out + 2 * out
        width = out
    total += width * cfg.latent_channels + cfg.latent_channels
    return total


__all__ = [
    "SDXL_BASE",
    "LowLevelEncoder",
    "LowLevelEncoderConfig",
    "LowLevelOutput",
    "LowLevelRefiner",
    "decode_latents",
    "encode_image_latents",
    "low_level_loss",
    "reference_parameter_count",
]
