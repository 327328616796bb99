"""Guided DDPM sampling with the diffusion prior (tiny components built in-process)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from toolkit import ToolkitError
from toolkit.prior import DiffusionPriorUNet, PriorPipeline, PriorPipelineOutput, PriorUNetConfig, default_scheduler

TINY = PriorUNetConfig(embed_dim=16, cond_dim=12, hidden_dims=(16, 8, 4), time_embed_dim=8)
STEPS = 4


def _pipe(seed: int = 0) -> PriorPipeline:
    torch.manual_seed(seed)
    return PriorPipeline(DiffusionPriorUNet(TINY).eval())


def _eeg(n: int = 3, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, 12, generator=torch.Generator().manual_seed(seed))


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _manual(pipe: PriorPipeline, eeg, scale: float | None, seed: int, steps: int = STEPS) -> torch.Tensor:
    """The reference sampler (ATM ``Pipe.generate``): separate conditional and unconditional passes."""
    prior, scheduler = pipe.prior, default_scheduler()
    generator = _gen(seed)
    scheduler.set_timesteps(steps)
    n_rows = 1 if eeg is None else eeg.shape[0]
    sample = torch.randn(n_rows, prior.embed_dim, generator=generator)
    with torch.no_grad():
        for t in scheduler.timesteps:
            t_rows = torch.full((n_rows,), float(t))
            if eeg is None:
                eps = prior(sample, t_rows)
            elif scale is None:
                eps = prior(sample, t_rows, eeg)
            else:
                eps_cond, eps_uncond = prior(sample, t_rows, eeg), prior(sample, t_rows)
                eps = eps_uncond + scale * (eps_cond - eps_uncond)
            sample = scheduler.step(eps, t, sample, generator=generator).prev_sample
    return sample


def test_default_scheduler_is_reference_schedule():
    config = default_scheduler().config
    assert config.num_train_timesteps == 1000
    assert (config.beta_start, config.beta_end, config.beta_schedule) == (1e-4, 0.02, "linear")
    assert config.prediction_type == "epsilon" and config.clip_sample is True
    assert config.variance_type == "fixed_small" and config.timestep_spacing == "leading"


def test_output_and_shapes():
    pipe = _pipe()
    out = pipe(_eeg(3), num_inference_steps=STEPS, generator=_gen())
    assert isinstance(out, PriorPipelineOutput)
    assert out.image_embeds.shape == (3, 16) and out.image_embeds.dtype == torch.float32
    assert torch.isfinite(out.image_embeds).all()
    assert not out.image_embeds.is_inference()
    (as_tuple,) = pipe(_eeg(3), num_inference_steps=STEPS, generator=_gen(), return_dict=False)
    assert torch.equal(as_tuple, out.image_embeds)
    numpy_out = pipe(_eeg(3).numpy(), num_inference_steps=STEPS, generator=_gen()).image_embeds
    assert torch.equal(numpy_out, out.image_embeds)


def test_guided_matches_reference_sampler():
    pipe = _pipe()
    eeg = _eeg(3)
    ours = pipe(eeg, num_inference_steps=STEPS, guidance_scale=5.0, generator=_gen(7)).image_embeds
    torch.testing.assert_close(ours, _manual(pipe, eeg, 5.0, seed=7), rtol=0, atol=1e-5)


def test_guidance_one_equals_conditional_only():
    pipe = _pipe()
    eeg = _eeg(3)
    ours = pipe(eeg, num_inference_steps=STEPS, guidance_scale=1.0, generator=_gen(3)).image_embeds
    torch.testing.assert_close(ours, _manual(pipe, eeg, None, seed=3), rtol=0, atol=1e-6)
    # ... and the guided formula at w = 1 agrees with it.
    torch.testing.assert_close(ours, _manual(pipe, eeg, 1.0, seed=3), rtol=0, atol=1e-5)


def test_unconditional_paths():
    pipe = _pipe()
    uncond = pipe(None, num_inference_steps=STEPS, generator=_gen(5)).image_embeds
    assert uncond.shape == (1, 16)
    torch.testing.assert_close(uncond, _manual(pipe, None, None, seed=5), rtol=0, atol=1e-6)
    many = pipe(num_inference_steps=STEPS, batch_size=4, generator=_gen(5)).image_embeds
    assert many.shape == (4, 16)
    # guidance 0 ignores the condition: same as unconditional sampling with the same noise.
    zero = pipe(_eeg(4), num_inference_steps=STEPS, guidance_scale=0.0, generator=_gen(5)).image_embeds
    assert torch.equal(zero, many)
    # and the condition matters otherwise.
    guided = pipe(_eeg(4), num_inference_steps=STEPS, guidance_scale=5.0, generator=_gen(5)).image_embeds
    assert not torch.allclose(guided, many)


def test_determinism_by_seed():
    pipe = _pipe()
    eeg = _eeg(3)
    first = pipe(eeg, num_inference_steps=STEPS, generator=_gen(11)).image_embeds
    again = pipe(eeg, num_inference_steps=STEPS, generator=_gen(11)).image_embeds
    other = pipe(eeg, num_inference_steps=STEPS, generator=_gen(12)).image_embeds
    assert torch.equal(first, again)
    assert not torch.allclose(first, other)


def test_batch_of_one_matches_batch_of_n_with_per_row_generators():
    pipe = _pipe()
    eeg = _eeg(4)
    batch = pipe(eeg, num_inference_steps=STEPS, generator=[_gen(s) for s in range(4)]).image_embeds
    for row in range(4):
        single = pipe(eeg[row : row + 1], num_inference_steps=STEPS, generator=[_gen(row)]).image_embeds
        torch.testing.assert_close(single, batch[row : row + 1], rtol=0, atol=1e-5)


def test_training_mode_restored_and_dropout_off_while_sampling():
    pipe = _pipe()
    pipe.prior.train()
    first = pipe(_eeg(2), num_inference_steps=STEPS, generator=_gen(1)).image_embeds
    second = pipe(_eeg(2), num_inference_steps=STEPS, generator=_gen(1)).image_embeds
    assert torch.equal(first, second)
    assert pipe.prior.training


def test_dtype_and_device_follow_module():
    pipe = _pipe().to(torch.float64)
    out = pipe(_eeg(2), num_inference_steps=STEPS, generator=_gen()).image_embeds
    assert out.dtype == torch.float64 and out.device.type == "cpu"
    pipe.to(torch.bfloat16)
    assert pipe(_eeg(2), num_inference_steps=STEPS, generator=_gen()).image_embeds.dtype == torch.bfloat16
    pipe.to(torch.float16)
    with pytest.raises(ToolkitError, match="float16 on the CPU"):
        pipe(_eeg(2), num_inference_steps=STEPS)


def test_pipeline_save_load_round_trip(tmp_path):
    pipe = _pipe()
    folder = pipe.save_pretrained(tmp_path / "pipe")
    assert sorted(p.name for p in folder.iterdir()) == ["model_index.json", "prior", "scheduler"]
    loaded = PriorPipeline.from_pretrained(folder)
    assert loaded.scheduler.config.clip_sample is True
    eeg = _eeg(2)
    a = pipe(eeg, num_inference_steps=STEPS, generator=_gen(2)).image_embeds
    b = loaded(eeg, num_inference_steps=STEPS, generator=_gen(2)).image_embeds
    assert torch.equal(a, b)
    (folder / "model_index.json").write_text('{"scheduler": ["os", "system"]}')
    with pytest.raises(ToolkitError, match="scheduler"):
        PriorPipeline.from_pretrained(folder)
    with pytest.raises(ToolkitError, match=r"model_index\.json"):
        PriorPipeline.from_pretrained(tmp_path / "absent")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"guidance_scale": -1.0}, "guidance_scale"),
        ({"guidance_scale": math.nan}, "guidance_scale"),
        ({"guidance_scale": math.inf}, "guidance_scale"),
        ({"guidance_scale": "5"}, "guidance_scale"),
        ({"num_inference_steps": 0}, "num_inference_steps"),
        ({"num_inference_steps": 1001}, "num_inference_steps"),
        ({"num_inference_steps": 2.5}, "num_inference_steps"),
        ({"generator": 3}, "generator"),
        ({"generator": [torch.Generator()]}, "one generator per row"),
        ({"batch_size": 5}, "batch_size=5"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ToolkitError, match=match):
        _pipe()(_eeg(3), **kwargs)


@pytest.mark.parametrize(
    ("eeg", "match"),
    [
        (torch.randn(3, 10), r"shape \(3, 10\).*\(batch, 12\)"),
        (torch.randn(12), r"shape \(12,\)"),
        (torch.randn(0, 12), "batch ≥ 1"),
        (torch.ones(2, 12, dtype=torch.int64), "floating point"),
        (torch.full((2, 12), float("nan")), "NaN"),
        ([[0.0] * 12], "tensor or array"),
        (np.zeros((2, 7), dtype=np.float32), r"shape \(2, 7\)"),
    ],
)
def test_bad_eeg_embeds(eeg, match):
    with pytest.raises(ToolkitError, match=match):
        _pipe()(eeg, num_inference_steps=STEPS)


def test_bad_components():
    with pytest.raises(ToolkitError, match="DiffusionPriorUNet"):
        PriorPipeline(torch.nn.Linear(2, 2))
    with pytest.raises(ToolkitError, match="diffusers scheduler"):
        PriorPipeline(DiffusionPriorUNet(TINY), scheduler=object())
    from diffusers import DDPMScheduler

    with pytest.raises(ToolkitError, match="prediction_type"):
        PriorPipeline(DiffusionPriorUNet(TINY), scheduler=DDPMScheduler(prediction_type="sample"))
