"""Sampling CLIP image embeddings from EEG embeddings with the diffusion prior and classifier-free guidance.

ATM's sampler (reference/ATM.md §7.4): start from N(0, I) in the image-embedding space, run the DDPM reverse process
for ``num_inference_steps`` steps, and at each step combine the conditional and unconditional noise predictions as
ε = ε_u + w · (ε_c − ε_u). The paper writes (1 + w′) ε_c − w′ ε_u, the same rule with w = 1 + w′. The reference
settings are 50 steps with w = 5.0.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._version import __version__
from ..errors import ToolkitError
from ..utils import atomic_path, progress, require
from .unet import DiffusionPriorUNet

_PIPELINE_INDEX = "model_index.json"


@dataclass
class PriorPipelineOutput:
    """Output of :class:`PriorPipeline`.

    Attributes
    ----------
    image_embeds : torch.Tensor, shape (batch, embed_dim)
        Sampled CLIP image embeddings, in the (unnormalised) space the prior was trained on.
    """

    image_embeds: torch.Tensor


def default_scheduler() -> Any:
    """The reference noise schedule: diffusers ``DDPMScheduler()`` with its defaults.

    Returns
    -------
    diffusers.DDPMScheduler
        1,000 training steps, linear betas 1e-4 → 0.02, ε-prediction, "fixed_small" variance, "leading" timestep
        spacing and ``clip_sample=True`` (predicted x_0 clipped to ±1). The clipping is what the reference sampler
        does because it uses the defaults; it is kept for parity even though unnormalised CLIP embeddings can exceed
        ±1 in a few coordinates. Pass another scheduler to :class:`PriorPipeline` to change it.
    """
    diffusers = require("diffusers", extra="generate", purpose="the diffusion prior's noise schedule")
    return diffusers.DDPMScheduler()


class PriorPipeline:
    """EEG embeddings → CLIP image embeddings by guided DDPM sampling with a :class:`DiffusionPriorUNet`.

    Parameters
    ----------
    prior : DiffusionPriorUNet
        The denoiser. Sampling runs on its device and dtype (move it with :meth:`to`).
    scheduler : diffusers.SchedulerMixin | None
        A diffusers scheduler predicting from ε; ``None`` uses :func:`default_scheduler` (the reference schedule).
        The pipeline sets its timesteps, so do not share one scheduler between pipelines running concurrently.
    """

    def __init__(self, prior: DiffusionPriorUNet, scheduler: Any | None = None) -> None:
        if not isinstance(prior, DiffusionPriorUNet):
            raise ToolkitError(f"prior must be a DiffusionPriorUNet, got {type(prior).__name__}.")
        scheduler = default_scheduler() if scheduler is None else scheduler
        for attr in ("set_timesteps", "step", "timesteps", "config"):
            if not hasattr(scheduler, attr):
                raise ToolkitError(
                    f"scheduler must be a diffusers scheduler (with set_timesteps and step), got "
                    f"{type(scheduler).__name__}."
                )
        prediction = getattr(scheduler.config, "prediction_type", "epsilon")
        if prediction != "epsilon":
            raise ToolkitError(
                f"scheduler has prediction_type={prediction!r} but the prior predicts the noise; "
                "configure the scheduler with prediction_type='epsilon'."
            )
        self.prior = prior
        self.scheduler = scheduler

    @property
    def device(self) -> torch.device:
        """Device the pipeline samples on (the prior's)."""
        return self.prior.device

    @property
    def dtype(self) -> torch.dtype:
        """Floating-point type the pipeline samples in (the prior's)."""
        return self.prior.dtype

    def to(self, *args: Any, **kwargs: Any) -> PriorPipeline:
        """Move the prior (``torch.nn.Module.to`` arguments) and return ``self``."""
        self.prior.to(*args, **kwargs)
        return self

    def __call__(
        self,
        eeg_embeds: torch.Tensor | np.ndarray | None = None,
        *,
        num_inference_steps: int = 50,
        guidance_scale: float = 5.0,
        generator: torch.Generator | list[torch.Generator] | None = None,
        batch_size: int | None = None,
        return_dict: bool = True,
        progress_bar: bool = True,
    ) -> PriorPipelineOutput | tuple[torch.Tensor]:
        """Sample one CLIP image embedding per EEG embedding.

        Parameters
        ----------
        eeg_embeds : torch.Tensor | numpy.ndarray | None, shape (batch, cond_dim)
            EEG embeddings from the encoder the prior was trained with (as the prior saw them in training; no
            normalisation is applied here). ``None`` samples from the unconditional prior (the "prior-only"
            control), ``batch_size`` rows.
        num_inference_steps : int
            Number of denoising steps (1 to the scheduler's number of training steps).
        guidance_scale : float
            Classifier-free guidance weight w ≥ 0 in ε = ε_u + w · (ε_c − ε_u): 0 is unconditional sampling, 1 is
            conditional sampling without guidance (both run a single pass per step), larger values push towards
            the condition (the paper's w′ = w − 1). Ignored when ``eeg_embeds`` is None.
        generator : torch.Generator | list of torch.Generator | None
            Random source; a list gives each row its own generator, so a row's sample does not depend on the
            other rows in the batch. The same seeds give identical samples.
        batch_size : int | None
            Number of unconditional samples when ``eeg_embeds`` is None (default 1); when given with
            ``eeg_embeds`` it must equal its number of rows.
        return_dict : bool
            Return a :class:`PriorPipelineOutput`; otherwise a one-element tuple.
        progress_bar : bool
            Show a progress bar over the steps (also silenced by ``EEG_TOOLKIT_NO_PROGRESS=1``).

        Returns
        -------
        PriorPipelineOutput | tuple of torch.Tensor
            ``image_embeds`` (batch, embed_dim) on the prior's device and dtype.
        """
        prior = self.prior
        if prior.device.type == "cpu" and prior.dtype == torch.float16:
            raise ToolkitError(
                "The prior is in float16 on the CPU, which PyTorch runs slowly and inaccurately; use "
                "pipeline.to(torch.float32) (or bfloat16) on the CPU, or move it to a GPU for float16."
            )
        steps = _check_steps(num_inference_steps, self.scheduler.config.num_train_timesteps)
        scale = _check_guidance(guidance_scale)
        cond = None if eeg_embeds is None else self._check_eeg_embeds(eeg_embeds)
        n_rows = _check_batch(batch_size, cond)
        _check_generator(generator, n_rows)
        if cond is None or scale == 0.0:
            mode = "uncond"
        elif scale == 1.0:
            mode = "cond"
        else:
            mode = "guided"

        was_training = prior.training
        prior.eval()
        try:
            with torch.inference_mode():
                sample = self._sample(cond, n_rows, steps, scale, mode, generator, progress_bar)
        finally:
            prior.train(was_training)
        # A clone made outside inference mode is an ordinary tensor that later autograd code may use.
        image_embeds = sample.clone()
        if not return_dict:
            return (image_embeds,)
        return PriorPipelineOutput(image_embeds=image_embeds)

    def _sample(
        self,
        cond: torch.Tensor | None,
        n_rows: int,
        steps: int,
        scale: float,
        mode: str,
        generator: torch.Generator | list[torch.Generator] | None,
        progress_bar: bool,
    ) -> torch.Tensor:
        torch_utils = require("diffusers.utils.torch_utils", extra="generate", purpose="the diffusion prior")
        prior, scheduler = self.prior, self.scheduler
        device, dtype = prior.device, prior.dtype
        try:
            scheduler.set_timesteps(steps, device=device)
        except ValueError as err:  # e.g. a scheduler whose timestep spacing cannot give this many steps
            raise ToolkitError(f"num_inference_steps={steps} is not possible with this scheduler: {err}") from err

        sample = torch_utils.randn_tensor((n_rows, prior.embed_dim), generator=generator, device=device, dtype=dtype)
        sample = sample * scheduler.init_noise_sigma
        cond_features = None
        if mode == "cond":
            cond_features = prior.encode_condition(cond)
        elif mode == "guided":
            # The condition embeddings do not change over the steps: compute them once. Rows n_rows: are the
            # unconditional half of the batched pass, where the condition contribution is zero (the reference skips
            # the condition Linear, bias included; adding an exact zero gives the same numbers).
            cond_features = [torch.cat([f, torch.zeros_like(f)]) for f in prior.encode_condition(cond)]

        for t in progress(scheduler.timesteps, desc="prior sampling", disable=None if progress_bar else True):
            model_input = scheduler.scale_model_input(sample, t)
            if mode == "guided":
                # Conditional and unconditional predictions in one batched forward pass.
                eps = prior(torch.cat([model_input, model_input]), t, cond_features=cond_features)
                eps_cond, eps_uncond = eps.chunk(2)
                eps = eps_uncond + scale * (eps_cond - eps_uncond)
            else:
                eps = prior(model_input, t, cond_features=cond_features)
            sample = scheduler.step(eps, t, sample, generator=generator).prev_sample
        return sample

    def _check_eeg_embeds(self, eeg_embeds: Any) -> torch.Tensor:
        if isinstance(eeg_embeds, np.ndarray):
            eeg_embeds = torch.from_numpy(np.asarray(eeg_embeds))
        width = self.prior.cond_dim
        if not isinstance(eeg_embeds, torch.Tensor):
            raise ToolkitError(
                f"eeg_embeds must be a tensor or array of shape (batch, {width}) or None, got "
                f"{type(eeg_embeds).__name__}."
            )
        if eeg_embeds.ndim != 2 or eeg_embeds.shape[1] != width or eeg_embeds.shape[0] < 1:
            raise ToolkitError(
                f"eeg_embeds has shape {tuple(eeg_embeds.shape)} but this prior expects (batch, {width}) with "
                f"batch ≥ 1; pass EEG embeddings of dimension {width} (one row per trial)."
            )
        if not eeg_embeds.is_floating_point():
            raise ToolkitError(f"eeg_embeds must be floating point, got {eeg_embeds.dtype}.")
        if not bool(torch.isfinite(eeg_embeds).all()):
            raise ToolkitError("eeg_embeds holds NaN or infinite values; check the encoder's output.")
        return eeg_embeds.to(device=self.device, dtype=self.dtype)

    # ------------------------------------------------------------------ save / load
    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write ``model_index.json``, ``prior/`` and ``scheduler/`` to ``directory`` (atomically).

        Parameters
        ----------
        directory : str | os.PathLike
            Destination folder (replaced).

        Returns
        -------
        Path
            The folder written.
        """
        index = {
            "_class_name": "PriorPipeline",
            "_toolkit_version": __version__,
            "prior": ["toolkit.prior", "DiffusionPriorUNet"],
            "scheduler": ["diffusers", type(self.scheduler).__name__],
        }
        with atomic_path(directory, is_dir=True) as tmp:
            (tmp / _PIPELINE_INDEX).write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
            self.prior._write_pretrained(tmp / "prior")
            self.scheduler.save_pretrained(str(tmp / "scheduler"))
        return Path(directory)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> PriorPipeline:
        """Load a pipeline written by :meth:`save_pretrained` from a local folder.

        Parameters
        ----------
        directory : str | os.PathLike
            Folder holding ``model_index.json``, ``prior/`` and ``scheduler/``.

        Returns
        -------
        PriorPipeline
            The pipeline, on the CPU in float32, the prior in evaluation mode.
        """
        folder = Path(directory)
        index_path = folder / _PIPELINE_INDEX
        try:
            index = json.loads(index_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ToolkitError(
                f"Could not read {index_path} ({err}); point at a folder written by PriorPipeline.save_pretrained."
            ) from err
        scheduler_cls = _scheduler_class(index, index_path)
        prior = DiffusionPriorUNet.from_pretrained(folder, subfolder="prior")
        try:
            scheduler = scheduler_cls.from_pretrained(str(folder), subfolder="scheduler")
        except (OSError, ValueError) as err:
            raise ToolkitError(f"Could not load the scheduler from {folder / 'scheduler'}: {err}.") from err
        return cls(prior, scheduler)


def _scheduler_class(index: Any, index_path: Path) -> Any:
    """The diffusers scheduler class named in a pipeline index (only diffusers scheduler classes are accepted)."""
    diffusers = require("diffusers", extra="generate", purpose="the diffusion prior's noise schedule")
    entry = index.get("scheduler") if isinstance(index, dict) else None
    name = entry[1] if isinstance(entry, list) and len(entry) == 2 and entry[0] == "diffusers" else None
    cls = getattr(diffusers, name, None) if isinstance(name, str) and name.endswith("Scheduler") else None
    if not (isinstance(cls, type) and issubclass(cls, diffusers.SchedulerMixin)):
        raise ToolkitError(f"{index_path} does not name a diffusers scheduler class under 'scheduler': {entry!r}.")
    return cls


def _check_steps(num_inference_steps: Any, num_train_timesteps: int) -> int:
    if (
        isinstance(num_inference_steps, bool)
        or not isinstance(num_inference_steps, (int, np.integer))
        or not 1 <= num_inference_steps <= num_train_timesteps
    ):
        raise ToolkitError(
            f"num_inference_steps must be an integer from 1 to {num_train_timesteps} (the scheduler's training "
            f"steps), got {num_inference_steps!r}."
        )
    return int(num_inference_steps)


def _check_guidance(guidance_scale: Any) -> float:
    if (
        isinstance(guidance_scale, bool)
        or not isinstance(guidance_scale, (int, float, np.integer, np.floating))
        or not math.isfinite(float(guidance_scale))
        or guidance_scale < 0
    ):
        raise ToolkitError(
            f"guidance_scale must be a finite number ≥ 0 (1.0 = no guidance, 5.0 = the reference), "
            f"got {guidance_scale!r}."
        )
    return float(guidance_scale)


def _check_batch(batch_size: Any, cond: torch.Tensor | None) -> int:
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise ToolkitError(f"batch_size must be a positive integer or None, got {batch_size!r}.")
    if cond is None:
        return 1 if batch_size is None else batch_size
    if batch_size is not None and batch_size != cond.shape[0]:
        raise ToolkitError(
            f"batch_size={batch_size} but eeg_embeds has {cond.shape[0]} rows; leave batch_size out when passing "
            "eeg_embeds."
        )
    return cond.shape[0]


def _check_generator(generator: Any, n_rows: int) -> None:
    if generator is None or isinstance(generator, torch.Generator):
        return
    if isinstance(generator, list) and all(isinstance(g, torch.Generator) for g in generator):
        if len(generator) != n_rows:
            raise ToolkitError(
                f"generator is a list of {len(generator)} generators but {n_rows} embeddings are sampled; pass one "
                "generator per row, a single generator, or None."
            )
        return
    raise ToolkitError(f"generator must be a torch.Generator, a list of them or None, got {type(generator).__name__}.")


__all__ = ["PriorPipeline", "PriorPipelineOutput", "default_scheduler"]
