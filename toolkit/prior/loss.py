"""The diffusion prior's training objective (one step of ATM's ``Pipe.train``; reference/ATM.md §7.3).

For a batch of (image embedding, EEG embedding) pairs: draw a timestep per row and Gaussian noise, noise the image
embeddings with the scheduler's forward process, drop the condition for the **whole batch** with probability
``cond_drop_prob`` (classifier-free-guidance training), predict the noise and take the mean squared error. The
optimiser, learning-rate schedule and gradient clipping belong to the trainer that calls this.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ..errors import ToolkitError
from ..utils import require
from .unet import DiffusionPriorUNet


def prior_loss(
    prior: DiffusionPriorUNet,
    scheduler: Any,
    image_embeds: torch.Tensor,
    cond_embeds: torch.Tensor | None,
    *,
    cond_drop_prob: float = 0.1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """ε-prediction MSE of ``prior`` on one batch, with whole-batch condition dropout.

    Parameters
    ----------
    prior : DiffusionPriorUNet
        The denoiser being trained (put it in training mode yourself for dropout), or a wrapper of one with a
        ``module`` attribute (``DistributedDataParallel`` under accelerate): the forward pass goes through the
        wrapper, so gradients are synchronised across processes.
    scheduler : diffusers.SchedulerMixin
        Scheduler providing ``add_noise`` and ``config.num_train_timesteps`` (e.g.
        :func:`~toolkit.prior.default_scheduler`).
    image_embeds : torch.Tensor, shape (batch, embed_dim)
        Target CLIP image embeddings (the reference uses unnormalised ones).
    cond_embeds : torch.Tensor | None, shape (batch, cond_dim)
        EEG embeddings paired row by row with ``image_embeds``; ``None`` trains an unconditional prior.
    cond_drop_prob : float
        Probability of training this batch unconditionally (reference: 0.1).
    generator : torch.Generator | None
        Random source for the drop decision, the timesteps and the noise.

    Returns
    -------
    torch.Tensor
        The scalar loss (differentiable with respect to the prior's parameters).
    """
    torch_utils = require("diffusers.utils.torch_utils", extra="generate", purpose="training the diffusion prior")
    model = getattr(prior, "module", prior)  # accelerate / DDP wrap the module; checks read the module itself
    if not isinstance(model, DiffusionPriorUNet):
        raise ToolkitError(f"prior must be a DiffusionPriorUNet, got {type(prior).__name__}.")
    if not hasattr(scheduler, "add_noise") or not hasattr(scheduler, "config"):
        raise ToolkitError(f"scheduler must be a diffusers scheduler with add_noise, got {type(scheduler).__name__}.")
    if (
        isinstance(cond_drop_prob, bool)
        or not isinstance(cond_drop_prob, (int, float))
        or not math.isfinite(cond_drop_prob)
        or not 0 <= cond_drop_prob <= 1
    ):
        raise ToolkitError(f"cond_drop_prob must be a probability in [0, 1], got {cond_drop_prob!r}.")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ToolkitError(f"generator must be a torch.Generator or None, got {type(generator).__name__}.")
    if not isinstance(image_embeds, torch.Tensor) or image_embeds.ndim != 2 or image_embeds.shape[0] < 1:
        shape = tuple(image_embeds.shape) if isinstance(image_embeds, torch.Tensor) else type(image_embeds).__name__
        raise ToolkitError(f"image_embeds must be a tensor of shape (batch, {model.embed_dim}), got {shape}.")
    n_rows = image_embeds.shape[0]
    if cond_embeds is not None and (
        not isinstance(cond_embeds, torch.Tensor) or cond_embeds.ndim != 2 or cond_embeds.shape[0] != n_rows
    ):
        shape = tuple(cond_embeds.shape) if isinstance(cond_embeds, torch.Tensor) else type(cond_embeds).__name__
        raise ToolkitError(
            f"cond_embeds must pair row by row with image_embeds, shape ({n_rows}, {model.cond_dim}), got {shape}."
        )

    device, dtype = model.device, model.dtype
    image_embeds = model._check_embeds(image_embeds, model.embed_dim, "image_embeds")
    # Random draws are made on the generator's device (CPU generators work for any model device).
    rand_device = generator.device if generator is not None else device
    drop = bool(torch.rand((), generator=generator, device=rand_device) < cond_drop_prob)
    n_train = int(scheduler.config.num_train_timesteps)
    timesteps = torch.randint(0, n_train, (n_rows,), generator=generator, device=rand_device).to(device)
    noise = torch_utils.randn_tensor(tuple(image_embeds.shape), generator=generator, device=device, dtype=dtype)
    noisy = scheduler.add_noise(image_embeds, noise, timesteps)
    eps = prior(noisy, timesteps, None if drop else cond_embeds)
    return torch.nn.functional.mse_loss(eps, noise)


__all__ = ["prior_loss"]
