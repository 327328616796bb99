"""BrainVis' cascade: SD 1.5 with predicted 77 × 768 prompt embeddings, then label-prompted img2img (tiny stack)."""

from __future__ import annotations

import inspect
import math

import pytest
import torch

from toolkit import ToolkitError
from toolkit.generation import BrainVisGenerator, BrainVisOutput
from toolkit.generation import _tiny as tiny

from ._tiny import SIDE, max_diff, mean_diff

pytestmark = pytest.mark.xdist_group("generation")

HIDDEN = tiny.TEXT_HIDDEN  # 768 for SD 1.5; 32 for the tiny text encoder
FAST = {
    "num_inference_steps": 2,
    "refine_steps": 4,
    "strength": 0.5,
    "height": SIDE,
    "width": SIDE,
    "progress_bar": False,
}


def _prompt_embeds(n: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 77, HIDDEN, generator=torch.Generator().manual_seed(seed))


def test_reference_defaults():
    params = inspect.signature(BrainVisGenerator.__call__).parameters
    defaults = {name: params[name].default for name in params if params[name].default is not inspect.Parameter.empty}
    assert defaults["num_inference_steps"] == 50 and defaults["guidance_scale"] == 1.0
    assert (
        defaults["strength"] == 0.85 and defaults["refine_steps"] == 100 and defaults["refine_guidance_scale"] == 7.5
    )


def test_schedulers_are_plms_and_separate(brainvis):
    assert type(brainvis.pipe.scheduler).__name__ == "PNDMScheduler" and brainvis.pipe.scheduler.config.skip_prk_steps
    assert brainvis.img2img.scheduler is not brainvis.pipe.scheduler
    assert dict(brainvis.img2img.scheduler.config) == dict(brainvis.pipe.scheduler.config)
    assert brainvis.img2img.unet is brainvis.pipe.unet
    assert brainvis.prompt_embeds_shape == (77, HIDDEN)


def test_both_stages(brainvis):
    out = brainvis(_prompt_embeds(2), ["a cat", "a dog"], seed=0, **FAST)
    assert isinstance(out, BrainVisOutput)
    assert len(out.images) == 2 and len(out.stage1_images) == 2
    assert all(im.size == (SIDE, SIDE) for im in out.images + out.stage1_images)
    assert out.label_prompts == ["a cat", "a dog"] and out.seeds == [0, 1]
    assert out.nsfw_content_detected is None  # no safety checker in the tiny stack
    # Stage 2 changed the stage-1 images.
    assert mean_diff(out.images[0], out.stage1_images[0]) > 1.0
    again = brainvis(_prompt_embeds(2)[1:], ["a dog"], seed=1, **FAST)
    assert max_diff(out.images[1], again.images[0]) <= 2


def test_prompt_embeds_steer_stage_one_and_stage_two_is_optional(brainvis):
    a = brainvis(_prompt_embeds(1, seed=1), None, seed=[4], num_images_per_embed=2, **FAST)
    b = brainvis(_prompt_embeds(1, seed=2), None, seed=[4], num_images_per_embed=2, **FAST)
    assert len(a.images) == 2 and a.seeds == [4, 5]
    assert a.images == a.stage1_images and a.label_prompts == []
    # The conditioning reaches the UNet (the tiny random UNet responds weakly to it, hence the small threshold).
    assert mean_diff(a.images[0], b.images[0]) > 0.1
    assert mean_diff(a.images[0], a.images[1]) > 1.0


def test_from_pretrained_local_folder(tmp_path, brainvis):
    brainvis.pipe.save_pretrained(tmp_path / "sd15")
    loaded = BrainVisGenerator.from_pretrained(tmp_path / "sd15", device="cpu", local_files_only=True)
    assert loaded.device.type == "cpu" and loaded.pipe.unet.dtype == torch.float32
    mine, theirs = loaded.pipe.unet.state_dict(), brainvis.pipe.unet.state_dict()
    assert all(torch.equal(mine[k], theirs[k]) for k in theirs)
    e = _prompt_embeds(1, seed=5)
    x = loaded(e, "a cat", seed=1, **FAST)
    y = brainvis(e, "a cat", seed=1, **FAST)
    assert max_diff(x.images[0], y.images[0]) <= 2
    no_checker = BrainVisGenerator.from_pretrained(
        tmp_path / "sd15", device="cpu", safety_checker=False, local_files_only=True
    )
    assert no_checker.pipe.safety_checker is None


@pytest.mark.parametrize(
    ("embeds", "labels", "kwargs", "match"),
    [
        (torch.zeros(2, 77, HIDDEN + 1), None, {}, r"shape \(2, 77, 33\).*\(batch, 77, 32\)"),
        (torch.zeros(2, 76, HIDDEN), None, {}, r"\(batch, 77, 32\)"),
        (torch.zeros(77, HIDDEN), None, {}, "add a batch dimension"),
        (torch.full((1, 77, HIDDEN), math.nan), None, {}, "NaN or infinite"),
        (torch.zeros(2, 77, HIDDEN), ["a cat"], {}, "label_prompts has 1 entries but there are 2"),
        (torch.zeros(1, 77, HIDDEN), [" "], {}, "label_prompts has empty entries"),
        (torch.zeros(1, 77, HIDDEN), "a cat", {"strength": 0.0}, "strength must be"),
        (
            torch.zeros(1, 77, HIDDEN),
            "a cat",
            {"strength": 0.1, "refine_steps": 5},
            r"refine_steps=5 with strength=0.1",
        ),
        (torch.zeros(1, 77, HIDDEN), "a cat", {"guidance_scale": -1.0}, "guidance_scale"),
        (torch.zeros(1, 77, HIDDEN), "a cat", {"refine_guidance_scale": math.inf}, "refine_guidance_scale"),
        (torch.zeros(1, 77, HIDDEN), "a cat", {"negative_prompt": None}, "negative_prompt must be a string"),
        (torch.zeros(1, 77, HIDDEN), "a cat", {"height": 20}, "height must be None or a positive multiple of 8"),
    ],
)
def test_bad_inputs(brainvis, embeds, labels, kwargs, match):
    with pytest.raises(ToolkitError, match=match):
        brainvis(embeds, labels, **{**FAST, **kwargs})


def test_needs_a_stable_diffusion_pipeline(sdxl_generator):
    with pytest.raises(ToolkitError, match="StableDiffusionPipeline"):
        BrainVisGenerator(sdxl_generator.pipe)
