"""The prior's training objective: ε-MSE with whole-batch condition dropout, and a toy training run."""

from __future__ import annotations

import math

import pytest
import torch

from toolkit import ToolkitError
from toolkit.prior import DiffusionPriorUNet, PriorPipeline, PriorUNetConfig, default_scheduler, prior_loss

TINY = PriorUNetConfig(embed_dim=16, cond_dim=12, hidden_dims=(16, 8, 4), time_embed_dim=8, dropout=0.0)


def _setup(seed: int = 0):
    torch.manual_seed(seed)
    prior = DiffusionPriorUNet(TINY)
    data = torch.Generator().manual_seed(seed + 1)
    return prior, default_scheduler(), torch.randn(6, 16, generator=data) * 0.5, torch.randn(6, 12, generator=data)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_loss_follows_the_recipe():
    prior, scheduler, image_embeds, cond = _setup()
    loss = prior_loss(prior, scheduler, image_embeds, cond, cond_drop_prob=0.0, generator=_gen(3))
    # Same draws by hand: drop decision, one timestep per row, noise; forward process x_t = √ᾱ x_0 + √(1−ᾱ) ε.
    generator = _gen(3)
    torch.rand((), generator=generator)
    t = torch.randint(0, 1000, (6,), generator=generator)
    noise = torch.randn(6, 16, generator=generator)
    alpha_bar = scheduler.alphas_cumprod[t][:, None]
    noisy = alpha_bar.sqrt() * image_embeds + (1 - alpha_bar).sqrt() * noise
    expected = ((prior(noisy, t, cond) - noise) ** 2).mean()
    torch.testing.assert_close(loss, expected)
    assert loss.requires_grad and loss.ndim == 0
    loss.backward()
    assert prior.encode_cond_embedding[0].weight.grad is not None


def test_condition_dropped_for_the_whole_batch():
    prior, scheduler, image_embeds, cond = _setup()
    kinds = set()
    for seed in range(16):
        with torch.no_grad():
            mixed = prior_loss(prior, scheduler, image_embeds, cond, cond_drop_prob=0.5, generator=_gen(seed))
            kept = prior_loss(prior, scheduler, image_embeds, cond, cond_drop_prob=0.0, generator=_gen(seed))
            dropped = prior_loss(prior, scheduler, image_embeds, cond, cond_drop_prob=1.0, generator=_gen(seed))
            uncond = prior_loss(prior, scheduler, image_embeds, None, generator=_gen(seed))
        assert torch.equal(dropped, uncond)
        assert not torch.equal(kept, dropped)
        assert torch.equal(mixed, kept) or torch.equal(mixed, dropped)
        kinds.add(bool(torch.equal(mixed, kept)))
    assert kinds == {True, False}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"cond_drop_prob": -0.1}, "cond_drop_prob"),
        ({"cond_drop_prob": 1.5}, "cond_drop_prob"),
        ({"cond_drop_prob": math.nan}, "cond_drop_prob"),
        ({"generator": 0}, "generator"),
    ],
)
def test_bad_arguments(kwargs, match):
    prior, scheduler, image_embeds, cond = _setup()
    with pytest.raises(ToolkitError, match=match):
        prior_loss(prior, scheduler, image_embeds, cond, **kwargs)


def test_bad_inputs():
    prior, scheduler, image_embeds, cond = _setup()
    with pytest.raises(ToolkitError, match=r"image_embeds has shape \(6, 15\)"):
        prior_loss(prior, scheduler, torch.randn(6, 15), cond)
    with pytest.raises(ToolkitError, match="pair row by row"):
        prior_loss(prior, scheduler, image_embeds, cond[:5])
    with pytest.raises(ToolkitError, match=r"cond has shape \(6, 10\)"):
        prior_loss(prior, scheduler, image_embeds, torch.randn(6, 10), cond_drop_prob=0.0)
    with pytest.raises(ToolkitError, match="scheduler"):
        prior_loss(prior, object(), image_embeds, cond)
    with pytest.raises(ToolkitError, match="DiffusionPriorUNet"):
        prior_loss(torch.nn.Linear(16, 16), scheduler, image_embeds, cond)


def test_toy_training_reduces_loss_and_samples_reach_their_targets(one_thread):
    # Four 8-D targets, the condition a one-hot label: a few hundred steps must learn to denoise towards the
    # target named by the condition.
    torch.manual_seed(0)
    generator = _gen(0)
    n_targets, width = 4, 8
    targets = torch.rand(n_targets, width, generator=generator) * 1.2 - 0.6
    config = PriorUNetConfig(embed_dim=width, cond_dim=n_targets, hidden_dims=(64, 32), time_embed_dim=16, dropout=0)
    prior = DiffusionPriorUNet(config).train()
    scheduler = default_scheduler()
    optimiser = torch.optim.Adam(prior.parameters(), lr=3e-3)
    losses = []
    for _ in range(250):
        labels = torch.randint(0, n_targets, (64,), generator=generator)
        image_embeds = targets[labels] + 0.02 * torch.randn(64, width, generator=generator)
        cond = torch.nn.functional.one_hot(labels, n_targets).float()
        loss = prior_loss(prior, scheduler, image_embeds, cond, generator=generator)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert sum(losses[-50:]) / 50 < 0.4 * sum(losses[:50]) / 50

    labels = torch.arange(n_targets).repeat_interleave(16)
    cond = torch.nn.functional.one_hot(labels, n_targets).float()
    samples = PriorPipeline(prior)(cond, num_inference_steps=25, guidance_scale=2.0, generator=_gen(1)).image_embeds
    distances = torch.cdist(samples, targets)
    assert (distances.argmin(dim=1) == labels).float().mean() >= 0.9
    own = distances[torch.arange(len(labels)), labels]
    assert own.mean() < 0.5 * distances.mean()


def test_a_wrapped_prior_is_called_through_its_wrapper():
    # accelerate / DistributedDataParallel wrap the prior; the forward must go through the wrapper (gradient sync).
    prior, scheduler, image_embeds, cond = _setup()

    class Wrapper(torch.nn.Module):
        def __init__(self, module):
            super().__init__()
            self.module, self.calls = module, 0

        def forward(self, *args):
            self.calls += 1
            return self.module(*args)

    wrapped = Wrapper(prior)
    loss = prior_loss(wrapped, scheduler, image_embeds, cond, cond_drop_prob=0.0, generator=_gen(4))
    assert wrapped.calls == 1
    assert torch.equal(loss, prior_loss(prior, scheduler, image_embeds, cond, cond_drop_prob=0.0, generator=_gen(4)))
    with pytest.raises(ToolkitError, match="prior must be a DiffusionPriorUNet"):
        prior_loss(Wrapper(torch.nn.Linear(2, 2)), scheduler, image_embeds, cond)
