"""CLIP image embeddings → images with SDXL(-Turbo) and an IP-Adapter (ATM's reconstruction stage II).

ATM (reference/ATM.md §8) feeds the prior's CLIP image embeddings to SDXL-Turbo through the IP-Adapter
``h94/IP-Adapter`` ``sdxl_models/ip-adapter_sdxl_vit-h.safetensors`` (adapter scale 1), with an empty prompt, 4
denoising steps and no classifier-free guidance, at 512 × 512. The adapter was trained on **unnormalised** OpenCLIP
ViT-H-14 (laion2b) image embeddings of width 1024, so the prior must produce unnormalised embeddings.

:class:`EmbedsToImagePipeline` wraps an injected diffusers ``StableDiffusionXLPipeline`` whose UNet has a plain
IP-Adapter loaded (:func:`load_ip_adapter`, which checks the file's shapes against the UNet first). The embeddings
are passed through diffusers' ``ip_adapter_image_embeds`` argument, so no image encoder is loaded.

How the embeddings are laid out: diffusers expects, per adapter, a tensor (1 [× 2 with classifier-free guidance],
n_images, dim) that applies to *every* prompt of the call, and repeats it ``batch × num_images_per_prompt`` times
(``prepare_ip_adapter_image_embeds``). A batch of different embeddings, one per prompt, is therefore not possible
through the public argument alone (passing (batch, 1, dim) silently mixes them; diffusers issue #9813). During our
calls the pipeline's ``prepare_ip_adapter_image_embeds`` is replaced on the instance by one that keeps one row per
prompt — row i for the images of prompt i, and zero embeddings as the negative half when guidance is on (what
diffusers uses as the unconditional image embedding) — and restored afterwards. Everything else is diffusers' own
``__call__``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ToolkitError
from ..utils import progress
from . import _checks
from ._components import (
    DIFFUSERS_NOISE,
    check_source,
    diffusers_module,
    hub_file,
    is_local,
    load_pipeline,
    progress_off,
    quiet_loggers,
    resolve_device,
    resolve_dtype,
    resolve_variant,
    train_steps,
)

SDXL_TURBO = "stabilityai/sdxl-turbo"
"""Hub id of SDXL-Turbo, ATM's generator."""

IP_ADAPTER_SDXL_VIT_H = ("h94/IP-Adapter", "sdxl_models", "ip-adapter_sdxl_vit-h.safetensors")
"""(repository, subfolder, weight file) of the SDXL IP-Adapter trained on OpenCLIP ViT-H-14 image embeddings."""

_IP_TOKENS = 4  # a plain IP-Adapter projects one image embedding to 4 extra cross-attention tokens
_SDXL_CLASSES = ("StableDiffusionXLPipeline",)


# ----------------------------------------------------------------------------------------------------------------
# IP-Adapter weights: reading, checking against the UNet, loading
# ----------------------------------------------------------------------------------------------------------------
def ip_adapter_shapes(unet: Any, image_embed_dim: int) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes of a plain IP-Adapter for ``unet``, in the original file layout.

    Parameters
    ----------
    unet : diffusers.UNet2DConditionModel
        The UNet the adapter is for.
    image_embed_dim : int
        Width of the image embeddings the adapter projects (1024 for OpenCLIP ViT-H-14).

    Returns
    -------
    dict of str to tuple of int
        ``"image_proj.proj.weight"`` (4 · cross_attention_dim, image_embed_dim), its bias, the LayerNorm
        ``"image_proj.norm.*"`` and, for every cross-attention layer, ``"ip_adapter.{k}.to_k_ip.weight"`` and
        ``"ip_adapter.{k}.to_v_ip.weight"`` (hidden size, cross_attention_dim) with k = 1, 3, 5, ... in the UNet's
        attention-processor order (how diffusers' loader numbers them).
    """
    cross = unet.config.cross_attention_dim
    if isinstance(cross, bool) or not isinstance(cross, int):
        raise ToolkitError(
            f"This UNet has per-block cross_attention_dim {cross!r}; only UNets with one cross-attention width "
            "(Stable Diffusion 1.x/2.x, SDXL) take an IP-Adapter here."
        )
    shapes: dict[str, tuple[int, ...]] = {
        "image_proj.proj.weight": (_IP_TOKENS * cross, image_embed_dim),
        "image_proj.proj.bias": (_IP_TOKENS * cross,),
        "image_proj.norm.weight": (cross,),
        "image_proj.norm.bias": (cross,),
    }
    channels = list(unet.config.block_out_channels)
    key = 1
    for name in unet.attn_processors:
        if name.endswith("attn1.processor") or "motion_modules" in name:
            continue
        # The hidden size of each block, as diffusers' IP-Adapter loader derives it from the processor name.
        if name.startswith("mid_block"):
            hidden = channels[-1]
        elif name.startswith("up_blocks"):
            hidden = list(reversed(channels))[int(name.split(".")[1])]
        else:
            hidden = channels[int(name.split(".")[1])]
        shapes[f"ip_adapter.{key}.to_k_ip.weight"] = (hidden, cross)
        shapes[f"ip_adapter.{key}.to_v_ip.weight"] = (hidden, cross)
        key += 2
    return shapes


def read_ip_adapter_file(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """Read an IP-Adapter weights file without executing code from it.

    Parameters
    ----------
    path : str | os.PathLike
        ``.safetensors`` with ``image_proj.*`` and ``ip_adapter.*`` tensors (the h94 layout), or a PyTorch file
        (``.bin``, ``.pt``, ``.pth``) holding ``{"image_proj": {...}, "ip_adapter": {...}}``, read weights-only.

    Returns
    -------
    dict
        ``{"image_proj": {name: tensor}, "ip_adapter": {name: tensor}}`` on the CPU.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise ToolkitError(f"The IP-Adapter weights file {path} does not exist.")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError, safe_open

        state: dict[str, dict[str, Any]] = {"image_proj": {}, "ip_adapter": {}}
        try:
            with safe_open(str(path), framework="pt", device="cpu") as handle:
                for key in handle.keys():  # noqa: SIM118 - safe_open handles are not iterable
                    group, _, rest = key.partition(".")
                    if group in state and rest:
                        state[group][rest] = handle.get_tensor(key)
        except (OSError, SafetensorError) as err:
            raise ToolkitError(f"{path} is not a readable safetensors file ({err}).") from err
    elif path.suffix in (".bin", ".pt", ".pth"):
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # pickle errors of many kinds; weights_only refuses anything but tensors
            raise ToolkitError(
                f"Could not read {path} as a weights-only PyTorch file ({err}); use the .safetensors release."
            ) from err
        if not (
            isinstance(state, Mapping)
            and all(isinstance(state.get(g), Mapping) for g in ("image_proj", "ip_adapter"))
            and all(isinstance(v, torch.Tensor) for g in ("image_proj", "ip_adapter") for v in state[g].values())
        ):
            raise ToolkitError(f"{path} must hold {{'image_proj': {{...}}, 'ip_adapter': {{...}}}} of tensors.")
        state = {"image_proj": dict(state["image_proj"]), "ip_adapter": dict(state["ip_adapter"])}
    else:
        raise ToolkitError(f"{path} is not an IP-Adapter weights file; expected .safetensors (or .bin).")
    if not state["image_proj"] or not state["ip_adapter"]:
        raise ToolkitError(
            f"{path} has no image_proj.* or no ip_adapter.* tensors; it is not an IP-Adapter weights file."
        )
    return state


def check_ip_adapter_state(
    state: Mapping[str, Mapping[str, Any]], unet: Any, *, source: str, image_embed_dim: int | None = None
) -> int:
    """Check that a plain IP-Adapter fits ``unet`` and return the width of the image embeddings it projects.

    Parameters
    ----------
    state : Mapping
        ``{"image_proj": {...}, "ip_adapter": {...}}`` as :func:`read_ip_adapter_file` returns.
    unet : diffusers.UNet2DConditionModel
        The UNet it is for.
    source : str
        Where ``state`` came from (a file), named in messages.
    image_embed_dim : int | None
        The embedding width the caller will feed; ``None`` accepts the file's.

    Returns
    -------
    int
        The image-embedding width.
    """
    proj = state["image_proj"]
    if "proj.weight" not in proj:
        kind = (
            "an IP-Adapter Plus (resampler over image hidden states)"
            if "latents" in proj
            else "an IP-Adapter Full/FaceID variant"
            if ("proj.3.weight" in proj or "perceiver_resampler.proj_in.weight" in proj or "norm.weight" in proj)
            else "an unknown adapter"
        )
        raise ToolkitError(
            f"{source} holds {kind}, but this generator feeds pooled CLIP image embeddings, which only a plain "
            f"IP-Adapter takes; use {IP_ADAPTER_SDXL_VIT_H[2]} (or its SD-1.5 counterpart)."
        )
    weight = proj["proj.weight"]
    file_dim = int(weight.shape[-1]) if weight.ndim == 2 else -1
    if image_embed_dim is not None and file_dim != image_embed_dim:
        raise ToolkitError(
            f"The IP-Adapter in {source} projects {file_dim}-dimensional image embeddings (image_proj.proj.weight "
            f"{list(weight.shape)}) but image_embed_dim={image_embed_dim} was requested; use an adapter trained on "
            f"the embedding model the prior was trained on (expected image_proj.proj.weight "
            f"[{_IP_TOKENS * unet.config.cross_attention_dim}, {image_embed_dim}])."
        )
    expected = ip_adapter_shapes(unet, max(file_dim, 1))
    found = {f"image_proj.{k}": tuple(v.shape) for k, v in proj.items()}
    found.update({f"ip_adapter.{k}": tuple(v.shape) for k, v in state["ip_adapter"].items()})
    wrong = [
        f"{k} expected {list(s)} found {list(found[k])}" for k, s in expected.items() if k in found and found[k] != s
    ]
    missing = [f"{k} {list(s)}" for k, s in expected.items() if k not in found]
    if wrong or missing:
        parts = []
        if wrong:
            parts.append(
                "wrong shapes: " + "; ".join(wrong[:5]) + (f" (and {len(wrong) - 5} more)" if len(wrong) > 5 else "")
            )
        if missing:
            parts.append(f"{len(missing)} missing: " + ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else ""))
        raise ToolkitError(
            f"The IP-Adapter in {source} does not fit this UNet "
            f"(cross_attention_dim={unet.config.cross_attention_dim}, "
            f"block_out_channels={list(unet.config.block_out_channels)}): {'; '.join(parts)}. Use the adapter made "
            "for this base model (ip-adapter_sdxl_* for SDXL, ip-adapter_sd15* for SD 1.5)."
        )
    return file_dim


def load_ip_adapter(
    pipe: Any,
    source: str | os.PathLike | Mapping[str, Any],
    subfolder: str | None = None,
    weight_name: str | None = None,
    *,
    image_embed_dim: int | None = None,
    revision: str | None = None,
    local_files_only: bool = False,
    cache_dir: str | os.PathLike | None = None,
) -> int:
    """Load a plain IP-Adapter into ``pipe`` (``pipe.load_ip_adapter``) after checking its shapes; no image encoder.

    Parameters
    ----------
    pipe : diffusers.DiffusionPipeline
        A pipeline with ``load_ip_adapter`` (SDXL or SD 1.5 family). An adapter already loaded is replaced.
    source : str | os.PathLike | Mapping
        A Hub id (``"h94/IP-Adapter"``), a local folder laid out like it, a weights file, or a state dict
        ``{"image_proj": {...}, "ip_adapter": {...}}``.
    subfolder : str | None
        Folder inside ``source`` (``"sdxl_models"``).
    weight_name : str | None
        File inside ``subfolder`` (``"ip-adapter_sdxl_vit-h.safetensors"``); needed for Hub ids and folders.
    image_embed_dim : int | None
        Embedding width the caller will feed (1024 for ViT-H-14); checked against the file. ``None`` accepts the
        file's.
    revision : str | None
        Hub revision of ``source``.
    local_files_only : bool
        Never use the network.
    cache_dir : str | os.PathLike | None
        Hub cache folder.

    Returns
    -------
    int
        The width of the image embeddings the adapter projects.
    """
    import torch

    if not hasattr(pipe, "load_ip_adapter") or not hasattr(pipe, "unet"):
        raise ToolkitError(
            f"pipe must be a diffusers pipeline with a UNet and load_ip_adapter, got {type(pipe).__name__}."
        )
    if isinstance(source, Mapping):
        where = "the given IP-Adapter state dict"
        if not all(isinstance(source.get(g), Mapping) for g in ("image_proj", "ip_adapter")):
            raise ToolkitError("An IP-Adapter state dict must be {'image_proj': {...}, 'ip_adapter': {...}}.")
        state = {g: dict(source[g]) for g in ("image_proj", "ip_adapter")}
        if not all(isinstance(v, torch.Tensor) for g in state.values() for v in g.values()):
            raise ToolkitError("The IP-Adapter state dict must map names to tensors.")
    else:
        path = Path(source).expanduser() if isinstance(source, (str, os.PathLike)) else None
        if path is not None and path.is_file():
            file = path
        else:
            if not isinstance(weight_name, str) or not weight_name:
                raise ToolkitError(
                    f"weight_name (the adapter file inside {source!s}) is needed, e.g. {IP_ADAPTER_SDXL_VIT_H[2]!r}."
                )
            text = check_source(source, what="the IP-Adapter", revision=revision)
            if is_local(text):
                file = Path(text) / (subfolder or "") / weight_name
                if not file.is_file():
                    raise ToolkitError(f"The IP-Adapter weights file {file} does not exist.")
            else:
                file = hub_file(
                    text,
                    weight_name,
                    subfolder=subfolder,
                    revision=revision,
                    local_files_only=local_files_only,
                    cache_dir=cache_dir,
                    what="the IP-Adapter",
                )
        where = str(file)
        state = read_ip_adapter_file(file)
    dim = check_ip_adapter_state(state, pipe.unet, source=where, image_embed_dim=image_embed_dim)
    try:
        with quiet_loggers(*DIFFUSERS_NOISE):
            pipe.load_ip_adapter(state, subfolder=None, weight_name=None, image_encoder_folder=None)
    except Exception as err:  # diffusers raises ValueError/RuntimeError for anything it cannot map
        raise ToolkitError(f"diffusers could not load the IP-Adapter from {where}: {err}") from err
    return dim


def ip_adapter_embed_dim(pipe: Any) -> int:
    """Width of the image embeddings taken by the single plain IP-Adapter loaded in ``pipe``'s UNet."""
    diffusers_module()  # a clear error if diffusers is missing
    from diffusers.models.embeddings import ImageProjection, MultiIPAdapterImageProjection

    proj = getattr(getattr(pipe, "unet", None), "encoder_hid_proj", None)
    if not isinstance(proj, MultiIPAdapterImageProjection):
        raise ToolkitError(
            "The pipeline has no IP-Adapter loaded; load one with toolkit.generation.load_ip_adapter(pipe, "
            "'h94/IP-Adapter', 'sdxl_models', 'ip-adapter_sdxl_vit-h.safetensors') first."
        )
    layers = list(proj.image_projection_layers)
    if len(layers) != 1 or not isinstance(layers[0], ImageProjection):
        raise ToolkitError(
            f"The pipeline has {len(layers)} IP-Adapter(s) of type(s) {[type(la).__name__ for la in layers]}; this "
            "generator feeds one plain IP-Adapter (ImageProjection) with pooled image embeddings."
        )
    return int(layers[0].image_embeds.in_features)


# ----------------------------------------------------------------------------------------------------------------
# Running a pipeline with one IP-Adapter embedding per prompt
# ----------------------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def per_prompt_ip_adapter_embeds(pipe: Any) -> Iterator[None]:
    """Make ``pipe`` use row i of ``ip_adapter_image_embeds`` for the images of prompt i during the block.

    See the module docstring: diffusers' ``prepare_ip_adapter_image_embeds`` repeats the given tensor for every
    prompt; the replacement expands (batch, n_images, dim) to one row per image (prompt-major, as diffusers orders
    the images) and prepends zero embeddings as the negative half when guidance is on. Like the pipeline itself,
    this is not meant for concurrent calls on one pipeline from several threads.
    """
    import torch

    def prepare(ip_adapter_image, ip_adapter_image_embeds, device, num_images_per_prompt, do_classifier_free_guidance):
        # ``num_images_per_prompt`` here is diffusers' batch_size × num_images_per_prompt: the number of images.
        out = []
        for embeds in ip_adapter_image_embeds:
            if num_images_per_prompt % embeds.shape[0]:
                raise ToolkitError(
                    f"{embeds.shape[0]} IP-Adapter embedding rows cannot be spread over "
                    f"{num_images_per_prompt} images."
                )
            rows = embeds.repeat_interleave(num_images_per_prompt // embeds.shape[0], dim=0)
            if do_classifier_free_guidance:
                rows = torch.cat([torch.zeros_like(rows), rows])
            out.append(rows.to(device=device))
        return out

    sentinel = object()
    previous = pipe.__dict__.get("prepare_ip_adapter_image_embeds", sentinel)
    pipe.prepare_ip_adapter_image_embeds = prepare
    try:
        yield
    finally:
        if previous is sentinel:
            del pipe.prepare_ip_adapter_image_embeds
        else:
            pipe.prepare_ip_adapter_image_embeds = previous


def vae_multiple(pipe: Any) -> int:
    """Image sides must be multiples of this (diffusers' own check is 8; the VAE may need more)."""
    return int(np.lcm(8, int(getattr(pipe, "vae_scale_factor", 8))))


# ----------------------------------------------------------------------------------------------------------------
# The pipeline
# ----------------------------------------------------------------------------------------------------------------
@dataclass
class EmbedsToImageOutput:
    """Output of :class:`EmbedsToImagePipeline` (and of the other toolkit generators).

    Attributes
    ----------
    images : list of PIL.Image.Image
        ``n_embeds × num_images_per_embed`` images, embedding-major: image j of embedding i is
        ``images[i * num_images_per_embed + j]``.
    num_images_per_embed : int
        Images made per embedding.
    seeds : list of int | None
        The seed of every image when the call was given ``seed`` (reproduce image k alone with ``seed=seeds[k]``).
    prompts : list of str
        The prompt of every embedding.
    """

    images: list[Any]
    num_images_per_embed: int = 1
    seeds: list[int] | None = None
    prompts: list[str] = field(default_factory=list)

    def per_embed(self) -> list[list[Any]]:
        """The images grouped by embedding: ``out.per_embed()[i][j]``."""
        k = self.num_images_per_embed
        return [self.images[i : i + k] for i in range(0, len(self.images), k)]


class EmbedsToImagePipeline:
    """CLIP image embeddings → images, with SDXL(-Turbo) conditioned through a plain IP-Adapter.

    Parameters
    ----------
    pipe : diffusers.StableDiffusionXLPipeline
        An SDXL pipeline (SDXL-Turbo or SDXL-base) whose UNet has exactly one plain IP-Adapter loaded (see
        :func:`load_ip_adapter`). The pipeline is used as it is: move it with :meth:`to` or ``pipe.to``.

    Notes
    -----
    The embeddings must be in the space the adapter was trained on: for ``ip-adapter_sdxl_vit-h`` the
    **unnormalised** OpenCLIP ViT-H-14 (laion2b) image embeddings, width 1024 (what ATM's prior outputs). L2-normalised
    embeddings (the retrieval convention) have a much smaller norm and give washed-out images.

    Examples
    --------
    >>> gen = EmbedsToImagePipeline.from_pretrained()  # SDXL-Turbo + ip-adapter_sdxl_vit-h  # doctest: +SKIP
    >>> out = gen(image_embeds, seed=0)  # (n, 1024) unnormalised ViT-H-14 embeddings  # doctest: +SKIP
    >>> out.images[0].save("reconstruction.png")  # doctest: +SKIP
    """

    def __init__(self, pipe: Any) -> None:
        diffusers = diffusers_module()
        if not isinstance(pipe, diffusers.StableDiffusionXLPipeline):
            raise ToolkitError(
                f"pipe must be a diffusers StableDiffusionXLPipeline (SDXL or SDXL-Turbo), got {type(pipe).__name__}."
            )
        self.image_embed_dim = ip_adapter_embed_dim(pipe)
        self.pipe = pipe

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_pretrained(
        cls,
        repo_id: str | os.PathLike = SDXL_TURBO,
        *,
        ip_adapter: tuple[str | os.PathLike, str | None, str] | str | os.PathLike = IP_ADAPTER_SDXL_VIT_H,
        revision: str | None = None,
        ip_adapter_revision: str | None = None,
        image_embed_dim: int | None = None,
        device: Any = None,
        dtype: Any = None,
        variant: str | None = "auto",
        local_files_only: bool = False,
        cache_dir: str | os.PathLike | None = None,
    ) -> EmbedsToImagePipeline:
        """Load SDXL(-Turbo) and an IP-Adapter from Hub ids or local folders.

        Parameters
        ----------
        repo_id : str | os.PathLike
            Hub id of an SDXL pipeline (``"stabilityai/sdxl-turbo"``, ``"stabilityai/stable-diffusion-xl-base-1.0"``)
            or a folder written by its ``save_pretrained``.
        ip_adapter : tuple | str | os.PathLike
            ``(repository or folder, subfolder, weight file)`` — default
            ``("h94/IP-Adapter", "sdxl_models", "ip-adapter_sdxl_vit-h.safetensors")`` — or a path to a weights file.
        revision, ip_adapter_revision : str | None
            Hub branch, tag or commit of the pipeline and of the adapter (pin them for reproducible results).
        image_embed_dim : int | None
            Width of the embeddings you will feed (1024 for ViT-H-14), checked against the adapter file.
        device : str | torch.device | None
            ``None``: CUDA if available, else the CPU.
        dtype : torch.dtype | str | None
            ``None``: float16 on CUDA, float32 on the CPU. float16 on the CPU falls back to float32 with a warning.
        variant : str | None
            Weight-file variant; ``"auto"`` reads the ``fp16`` files of a Hub repository when loading in float16.
        local_files_only : bool
            Never use the network (Hub ids must be in the local cache).
        cache_dir : str | os.PathLike | None
            Hugging Face cache folder.

        Returns
        -------
        EmbedsToImagePipeline
            The generator on ``device``.
        """
        diffusers = diffusers_module()
        dev = resolve_device(device)
        dt = resolve_dtype(dtype, dev)
        source = check_source(repo_id, what="the SDXL pipeline", revision=revision)
        pipe = load_pipeline(
            diffusers.StableDiffusionXLPipeline,
            source,
            what="the SDXL pipeline",
            accepted=_SDXL_CLASSES,
            revision=revision,
            dtype=dt,
            variant=resolve_variant(variant, source, dt),
            local_files_only=local_files_only,
            cache_dir=cache_dir,
            overrides={"image_encoder": None, "feature_extractor": None},
        )
        if isinstance(ip_adapter, (str, os.PathLike)):
            adapter_args: tuple[Any, Any, Any] = (ip_adapter, None, None)
        elif isinstance(ip_adapter, tuple) and len(ip_adapter) == 3:
            adapter_args = ip_adapter
        else:
            raise ToolkitError(
                f"ip_adapter must be (repository or folder, subfolder, weight file) or a file path, "
                f"got {ip_adapter!r}."
            )
        load_ip_adapter(
            pipe,
            *adapter_args,
            image_embed_dim=image_embed_dim,
            revision=ip_adapter_revision,
            local_files_only=local_files_only,
            cache_dir=cache_dir,
        )
        return cls(pipe.to(dev))

    # ------------------------------------------------------------------ properties
    @property
    def device(self) -> Any:
        """Device of the UNet."""
        return self.pipe.unet.device

    @property
    def dtype(self) -> Any:
        """Weight type of the UNet."""
        return self.pipe.unet.dtype

    def to(self, *args: Any, **kwargs: Any) -> EmbedsToImagePipeline:
        """Move the pipeline (``DiffusionPipeline.to`` arguments) and return ``self``."""
        self.pipe.to(*args, **kwargs)
        return self

    # ------------------------------------------------------------------ generation
    def __call__(
        self,
        image_embeds: Any,
        *,
        prompt: str | Sequence[str] = "",
        num_inference_steps: int = 4,
        guidance_scale: float = 0.0,
        ip_adapter_scale: float = 1.0,
        height: int | None = None,
        width: int | None = None,
        generator: Any = None,
        seed: int | Sequence[int] | None = None,
        num_images_per_embed: int = 1,
        batch_size: int = 8,
        progress_bar: bool = True,
    ) -> EmbedsToImageOutput:
        """Generate images from CLIP image embeddings.

        Parameters
        ----------
        image_embeds : torch.Tensor | numpy.ndarray, shape (n_embeds, image_embed_dim)
            Image embeddings in the adapter's space (unnormalised ViT-H-14 for ``ip-adapter_sdxl_vit-h``).
        prompt : str | Sequence[str]
            Text prompt, one for all or one per embedding (``""``: ATM's image-only setting; a caption for the
            semantic path, see :func:`~toolkit.generation.generate_with_captions`).
        num_inference_steps : int
            Denoising steps (4 for SDXL-Turbo; 25–50 for SDXL-base).
        guidance_scale : float
            Classifier-free guidance, ≥ 0; ≤ 1 disables it (SDXL-Turbo is trained without it: use 0). Above 1 the
            negative image embedding is zero and the negative prompt empty.
        ip_adapter_scale : float
            Weight of the image condition, ≥ 0 (ATM: 1.0; 0 ignores the embeddings).
        height, width : int | None
            Image size in pixels, multiples of 8; ``None`` is the model's default (512 for SDXL-Turbo, 1024 for SDXL).
        generator : torch.Generator | list of torch.Generator | None
            diffusers-style random source; a list gives one generator per image (item-major).
        seed : int | Sequence[int] | None
            Instead of ``generator``: image k gets seed ``seed + k`` (or image j of embedding i gets ``seed[i] + j``
            for a sequence), each with its own CPU generator, so the same seed gives the same image whatever the
            batch it is made in.
        num_images_per_embed : int
            Images per embedding (ATM: 10 per test concept).
        batch_size : int
            Embeddings per diffusers call (each call makes ``batch_size × num_images_per_embed`` images).
        progress_bar : bool
            Show a progress bar over the batches (also silenced by ``EEG_TOOLKIT_NO_PROGRESS=1``).

        Returns
        -------
        EmbedsToImageOutput
            The PIL images, embedding-major.
        """
        embeds = _checks.check_embeds(
            image_embeds, self.image_embed_dim, "image_embeds", what="the IP-Adapter loaded in this pipeline"
        )
        n = embeds.shape[0]
        prompts = _checks.check_prompts(prompt, n)
        steps = _checks.check_int(
            num_inference_steps, "num_inference_steps", minimum=1, maximum=train_steps(self.pipe)
        )
        guidance = _checks.check_scale(guidance_scale, "guidance_scale", hint=" (≤ 1 disables guidance)")
        scale = _checks.check_scale(
            ip_adapter_scale, "ip_adapter_scale", hint=" (1.0 = ATM; 0 ignores the embeddings)"
        )
        height, width = _checks.check_size(height, width, multiple=vae_multiple(self.pipe))
        per = _checks.check_int(num_images_per_embed, "num_images_per_embed", minimum=1)
        batch = _checks.check_int(batch_size, "batch_size", minimum=1)
        generators, seeds = _checks.make_generators(generator, seed, n, per)

        pipe = self.pipe
        pipe.set_ip_adapter_scale(scale)
        embeds = embeds.to(dtype=pipe.unet.dtype)
        images: list[Any] = []
        starts = range(0, n, batch)
        with per_prompt_ip_adapter_embeds(pipe), progress_off(pipe):
            for start in progress(starts, desc="generating images", disable=None if progress_bar else True):
                stop = min(start + batch, n)
                result = pipe(
                    prompt=prompts[start:stop],
                    ip_adapter_image_embeds=[embeds[start:stop, None, :]],
                    num_inference_steps=steps,
                    guidance_scale=guidance,
                    height=height,
                    width=width,
                    num_images_per_prompt=per,
                    generator=_checks.chunk_generators(generators, start * per, stop * per),
                    output_type="pil",
                )
                images.extend(result.images)
        return EmbedsToImageOutput(images=images, num_images_per_embed=per, seeds=seeds, prompts=prompts)

    def __repr__(self) -> str:
        return (
            f"EmbedsToImagePipeline(pipe={type(self.pipe).__name__}, image_embed_dim={self.image_embed_dim}, "
            f"device={self.device}, dtype={self.dtype})"
        )


__all__ = [
    "IP_ADAPTER_SDXL_VIT_H",
    "SDXL_TURBO",
    "EmbedsToImageOutput",
    "EmbedsToImagePipeline",
    "check_ip_adapter_state",
    "ip_adapter_embed_dim",
    "ip_adapter_shapes",
    "load_ip_adapter",
    "per_prompt_ip_adapter_embeds",
    "read_ip_adapter_file",
    "vae_multiple",
]
