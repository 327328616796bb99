"""BrainVis' cascaded generation: SD 1.5 conditioned on predicted CLIP text hidden states, then class-prompted img2img.

(reference/BRAINVIS.md §6.) Stage 1 ("semantic stage") runs Stable Diffusion 1.5 with the EEG-predicted
77 × 768 tensor used directly as the cross-attention context — diffusers' ``prompt_embeds`` — with the PLMS sampler
(diffusers' ``PNDMScheduler(skip_prk_steps=True)``, SD 1.5's configured scheduler), 50 steps and guidance 1.0 (no
classifier-free guidance). Stage 2 ("refinement stage") runs img2img from each stage-1 image, prompted by the class
phrase of the EEG-predicted label, at strength 0.85, guidance 7.5 and 100 steps (≈ 85 denoising steps). The
reference made 4 samples per trial.

:class:`BrainVisGenerator` wraps an injected ``StableDiffusionPipeline``; the img2img pipeline is made from the same
components with ``StableDiffusionImg2ImgPipeline.from_pipe`` (no copy of the weights; its own scheduler instance).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from ..errors import ToolkitError
from ..utils import progress
from . import _checks
from ._components import (
    DIFFUSERS_NOISE,
    check_source,
    diffusers_module,
    load_pipeline,
    progress_off,
    quiet_loggers,
    resolve_device,
    resolve_dtype,
    resolve_variant,
    train_steps,
)
from .ip_adapter import vae_multiple

SD15 = "stable-diffusion-v1-5/stable-diffusion-v1-5"
"""Hub id of Stable Diffusion 1.5 (the maintained mirror of the original ``runwayml`` repository)."""

_SD_CLASSES = ("StableDiffusionPipeline",)


@dataclass
class BrainVisOutput:
    """Output of :class:`BrainVisGenerator`.

    Attributes
    ----------
    images : list of PIL.Image.Image
        Final images (stage 2; stage 1 when ``refine=False``), item-major: image j of item i is
        ``images[i * num_images_per_embed + j]``.
    stage1_images : list of PIL.Image.Image
        The semantic-stage images, same order.
    num_images_per_embed : int
        Images per item.
    seeds : list of int | None
        The seed of every image when the call was given ``seed``.
    label_prompts : list of str
        The stage-2 prompt of every item (empty when not refined).
    nsfw_content_detected : list of bool | None
        The safety checker's flags for ``images`` (None without a safety checker).
    """

    images: list[Any]
    stage1_images: list[Any]
    num_images_per_embed: int = 1
    seeds: list[int] | None = None
    label_prompts: list[str] = field(default_factory=list)
    nsfw_content_detected: list[bool] | None = None


class BrainVisGenerator:
    """Predicted CLIP text hidden states (batch, 77, 768) + predicted class phrases → images (BrainVis' cascade).

    Parameters
    ----------
    pipe : diffusers.StableDiffusionPipeline
        SD 1.5 (or any ``StableDiffusionPipeline``); its scheduler is used for stage 1 (SD 1.5 ships PNDM with
        ``skip_prk_steps=True``, i.e. PLMS) and a fresh instance of the same scheduler for stage 2.

    Examples
    --------
    >>> gen = BrainVisGenerator.from_pretrained()  # doctest: +SKIP
    >>> out = gen(predicted_77x768, ["german shepherd dog", "canoe or kayak"], seed=0)  # doctest: +SKIP
    """

    def __init__(self, pipe: Any) -> None:
        diffusers = diffusers_module()
        if not isinstance(pipe, diffusers.StableDiffusionPipeline):
            raise ToolkitError(
                f"pipe must be a diffusers StableDiffusionPipeline (SD 1.x), got {type(pipe).__name__}."
            )
        self.pipe = pipe
        scheduler = pipe.scheduler
        with quiet_loggers(*DIFFUSERS_NOISE):
            self.img2img = diffusers.StableDiffusionImg2ImgPipeline.from_pipe(
                pipe, scheduler=type(scheduler).from_config(scheduler.config)
            )
        self.img2img.set_progress_bar_config(disable=True)

    @classmethod
    def from_pretrained(
        cls,
        repo_id: str | os.PathLike = SD15,
        *,
        revision: str | None = None,
        device: Any = None,
        dtype: Any = None,
        variant: str | None = "auto",
        safety_checker: bool = True,
        local_files_only: bool = False,
        cache_dir: str | os.PathLike | None = None,
    ) -> BrainVisGenerator:
        """Load SD 1.5 from a Hub id or a local folder.

        Parameters
        ----------
        repo_id : str | os.PathLike
            Hub id (default ``"stable-diffusion-v1-5/stable-diffusion-v1-5"``) or a folder written by
            ``StableDiffusionPipeline.save_pretrained``.
        revision : str | None
            Hub branch, tag or commit.
        device : str | torch.device | None
            ``None``: CUDA if available, else the CPU.
        dtype : torch.dtype | str | None
            ``None``: float16 on CUDA, float32 on the CPU (float16 on the CPU falls back to float32 with a warning).
        variant : str | None
            ``"auto"`` reads the ``fp16`` weight files of a Hub repository when loading in float16.
        safety_checker : bool
            Load the repository's safety checker (diffusers' default; it blacks out flagged images, which then
            count in any metric). False skips it.
        local_files_only : bool
            Never use the network.
        cache_dir : str | os.PathLike | None
            Hugging Face cache folder.

        Returns
        -------
        BrainVisGenerator
            The generator on ``device``.
        """
        diffusers = diffusers_module()
        dev = resolve_device(device)
        dt = resolve_dtype(dtype, dev)
        source = check_source(repo_id, what="the SD 1.5 pipeline", revision=revision)
        overrides: dict[str, Any] = {"image_encoder": None}
        if not safety_checker:
            overrides.update(safety_checker=None, feature_extractor=None, requires_safety_checker=False)
        pipe = load_pipeline(
            diffusers.StableDiffusionPipeline,
            source,
            what="the SD 1.5 pipeline",
            accepted=_SD_CLASSES,
            revision=revision,
            dtype=dt,
            variant=resolve_variant(variant, source, dt),
            local_files_only=local_files_only,
            cache_dir=cache_dir,
            overrides=overrides,
        )
        return cls(pipe.to(dev))

    @property
    def device(self) -> Any:
        """Device of the UNet."""
        return self.pipe.unet.device

    @property
    def prompt_embeds_shape(self) -> tuple[int, int]:
        """(sequence length, hidden size) of the text conditioning: (77, 768) for SD 1.5."""
        return int(self.pipe.tokenizer.model_max_length), int(self.pipe.text_encoder.config.hidden_size)

    def to(self, *args: Any, **kwargs: Any) -> BrainVisGenerator:
        """Move the pipeline (``DiffusionPipeline.to`` arguments) and return ``self``."""
        self.pipe.to(*args, **kwargs)
        return self

    def _check_prompt_embeds(self, prompt_embeds: Any) -> Any:
        length, hidden = self.prompt_embeds_shape
        cross = self.pipe.unet.config.cross_attention_dim
        if cross != hidden:
            raise ToolkitError(
                f"The pipeline's text encoder has hidden size {hidden} but its UNet attends to width {cross}; the "
                "components do not belong together."
            )
        value = _checks.as_float_tensor(prompt_embeds, "prompt_embeds")
        if value.ndim != 3 or tuple(value.shape[1:]) != (length, hidden) or value.shape[0] < 1:
            hint = (
                " (add a batch dimension with prompt_embeds[None])" if tuple(value.shape) == (length, hidden) else ""
            )
            raise ToolkitError(
                f"prompt_embeds has shape {tuple(value.shape)} but this pipeline's text conditioning is (batch, "
                f"{length}, {hidden}) (tokenizer max length × text-encoder hidden size: the CLIP ViT-L/14 "
                f"last_hidden_state for SD 1.5){hint}."
            )
        return value.to(dtype=self.pipe.unet.dtype)

    def __call__(
        self,
        prompt_embeds: Any,
        label_prompts: str | Sequence[str] | None = None,
        *,
        num_inference_steps: int = 50,
        guidance_scale: float = 1.0,
        strength: float = 0.85,
        refine_steps: int = 100,
        refine_guidance_scale: float = 7.5,
        negative_prompt: str = "",
        height: int | None = None,
        width: int | None = None,
        generator: Any = None,
        seed: int | Sequence[int] | None = None,
        num_images_per_embed: int = 1,
        batch_size: int = 4,
        progress_bar: bool = True,
    ) -> BrainVisOutput:
        """Run the two stages.

        Parameters
        ----------
        prompt_embeds : torch.Tensor | numpy.ndarray, shape (n, 77, 768)
            Predicted CLIP text hidden states (``last_hidden_state`` of ``openai/clip-vit-large-patch14`` at length
            77 is what BrainVis regresses).
        label_prompts : str | Sequence[str] | None
            The class phrase of each item's predicted label (e.g. ``"german shepherd dog"``), or one phrase for all;
            ``None`` skips stage 2.
        num_inference_steps : int
            Stage-1 steps (50).
        guidance_scale : float
            Stage-1 guidance ≥ 0 (1.0: none, as in BrainVis; above 1 the negative is the empty prompt).
        strength : float
            Stage-2 img2img strength in (0, 1] (0.85).
        refine_steps : int
            Stage-2 schedule length (100; ``int(refine_steps × strength)`` steps run).
        refine_guidance_scale : float
            Stage-2 guidance ≥ 0 (7.5).
        negative_prompt : str
            Stage-2 negative prompt.
        height, width : int | None
            Image size (multiples of 8); ``None`` is the model's default (512 for SD 1.5).
        generator : torch.Generator | list of torch.Generator | None
            Random source; a list gives one generator per image, used by both stages.
        seed : int | Sequence[int] | None
            Instead of ``generator``: image k gets seed ``seed + k`` (or image j of item i ``seed[i] + j``).
        num_images_per_embed : int
            Samples per item (BrainVis: 4), each refined once.
        batch_size : int
            Items per diffusers call.
        progress_bar : bool
            Show a progress bar over the batches.

        Returns
        -------
        BrainVisOutput
            Both stages' images.
        """
        embeds = self._check_prompt_embeds(prompt_embeds)
        n = embeds.shape[0]
        refine = label_prompts is not None
        labels = _checks.check_prompts(label_prompts, n, "label_prompts", allow_empty=False) if refine else []
        if not isinstance(negative_prompt, str):
            raise ToolkitError(f"negative_prompt must be a string, got {type(negative_prompt).__name__}.")
        steps = _checks.check_int(
            num_inference_steps, "num_inference_steps", minimum=1, maximum=train_steps(self.pipe)
        )
        guidance = _checks.check_scale(guidance_scale, "guidance_scale", hint=" (1.0 = no guidance, as in BrainVis)")
        strength = _checks.check_strength(strength)
        refine_steps = _checks.check_int(refine_steps, "refine_steps", minimum=1, maximum=train_steps(self.pipe))
        refine_guidance = _checks.check_scale(refine_guidance_scale, "refine_guidance_scale")
        if refine:
            _checks.check_img2img_steps(refine_steps, strength, steps_name="refine_steps", strength_name="strength")
        height, width = _checks.check_size(height, width, multiple=vae_multiple(self.pipe))
        per = _checks.check_int(num_images_per_embed, "num_images_per_embed", minimum=1)
        batch = _checks.check_int(batch_size, "batch_size", minimum=1)
        generators, seeds = _checks.make_generators(generator, seed, n, per)

        stage1: list[Any] = []  # (images, 3, H, W) tensors in [0, 1]
        final: list[Any] = []
        flags: list[bool] | None = []
        with progress_off(self.pipe), progress_off(self.img2img), quiet_loggers(*DIFFUSERS_NOISE):
            for start in progress(
                range(0, n, batch), desc="BrainVis generation", disable=None if progress_bar else True
            ):
                stop = min(start + batch, n)
                gens = _checks.chunk_generators(generators, start * per, stop * per)
                first = self.pipe(
                    prompt_embeds=embeds[start:stop],
                    num_inference_steps=steps,
                    guidance_scale=guidance,
                    height=height,
                    width=width,
                    num_images_per_prompt=per,
                    generator=gens,
                    output_type="pt",
                )
                pixels = first.images  # (stop - start) · per images in [0, 1]
                stage1.append(pixels.float().cpu())
                if not refine:
                    flags = _merge_flags(flags, first.nsfw_content_detected, len(pixels))
                    continue
                second = self.img2img(
                    prompt=[label for label in labels[start:stop] for _ in range(per)],
                    negative_prompt=[negative_prompt] * len(pixels),
                    image=pixels,
                    strength=strength,
                    num_inference_steps=refine_steps,
                    guidance_scale=refine_guidance,
                    generator=gens,
                    output_type="pil",
                )
                final.extend(second.images)
                flags = _merge_flags(flags, second.nsfw_content_detected, len(pixels))
        processor = self.pipe.image_processor
        stage1_images = processor.numpy_to_pil(processor.pt_to_numpy(torch.cat(stage1)))
        return BrainVisOutput(
            images=final if refine else list(stage1_images),
            stage1_images=stage1_images,
            num_images_per_embed=per,
            seeds=seeds,
            label_prompts=labels,
            nsfw_content_detected=flags,
        )


def _merge_flags(flags: list[bool] | None, new: Any, n: int) -> list[bool] | None:
    """Collect the safety checker's per-image flags; None once any batch had no checker."""
    if flags is None or new is None:
        return None
    return flags + [bool(f) for f in new][:n]


__all__ = ["SD15", "BrainVisGenerator", "BrainVisOutput"]
