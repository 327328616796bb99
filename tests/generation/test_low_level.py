"""ATM's low-level path: EEG → VAE latent encoder, VAE helpers and the img2img refiner (tiny components)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from toolkit import ToolkitError
from toolkit.generation import (
    LowLevelEncoder,
    LowLevelEncoderConfig,
    LowLevelOutput,
    LowLevelRefiner,
    decode_latents,
    encode_image_latents,
    low_level_loss,
    reference_parameter_count,
)

from ._tiny import EMBED_DIM, embeds, max_diff, mean_diff

pytestmark = pytest.mark.xdist_group("generation")

# 4 channels × 32 samples → 4 × 16 × 16 latents (the tiny VAE decodes them to 32 × 32 images).
TINY = LowLevelEncoderConfig(n_chans=4, n_times=32, time_dim=8, hidden_channels=(16, 8, 8, 8), head_channels=(8,))


def _eeg(n: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, TINY.n_chans, TINY.n_times, generator=torch.Generator().manual_seed(seed))


def _encoder(seed: int = 0) -> LowLevelEncoder:
    torch.manual_seed(seed)
    return LowLevelEncoder(TINY).eval()


# ---------------------------------------------------------------------------------------------------- encoder
def test_encoder_shapes_and_reference_size():
    model = _encoder()
    latents = model(_eeg(3))
    assert latents.shape == (3, 4, 16, 16) and TINY.latent_size == 16
    assert model.n_parameters() == reference_parameter_count(TINY)
    # ATM's default: 63 × 250 EEG → 4 × 64 × 64, about 143.3 M parameters, 132.1 M of them in the first layer.
    assert LowLevelEncoderConfig().latent_size == 64
    assert reference_parameter_count() == 143_333_268
    first = LowLevelEncoderConfig().n_chans * 128 * 1024 * 16 + 1024
    assert first == 132_121_600


def test_encoder_trains_with_the_l1_loss():
    model = _encoder().train()
    target = torch.randn(4, 4, 16, 16, generator=torch.Generator().manual_seed(1))
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(5):
        loss = low_level_loss(model(_eeg(4)), target)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    pred = torch.ones(1, 4, 2, 2)
    assert float(low_level_loss(pred, torch.zeros(1, 4, 2, 2))) == 1.0


def test_encoder_bad_input_and_config():
    model = _encoder()
    with pytest.raises(ToolkitError, match=r"expects 4 channels x 32 samples"):
        model(torch.zeros(2, 5, 32))
    with pytest.raises(ToolkitError, match="must be 3-D"):
        model(torch.zeros(4, 32))
    with pytest.raises(ToolkitError, match="NaN or infinite"):
        model(torch.full((1, 4, 32), math.nan))
    with pytest.raises(ToolkitError, match="hidden_channels must be a tuple of at least one"):
        LowLevelEncoderConfig(hidden_channels=())
    with pytest.raises(ToolkitError, match="time_dim must be a positive integer"):
        LowLevelEncoderConfig(time_dim=0)
    with pytest.raises(ToolkitError, match="differ in shape"):
        low_level_loss(torch.zeros(1, 4, 8, 8), torch.zeros(1, 4, 16, 16))


def test_encoder_save_and_load(tmp_path):
    model = _encoder(seed=3)
    folder = model.save_pretrained(tmp_path / "low-level")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    assert json.loads((folder / "config.json").read_text())["_class_name"] == "LowLevelEncoder"
    loaded = LowLevelEncoder.from_pretrained(folder)
    assert loaded.config == TINY and not loaded.training
    x = _eeg(2)
    assert torch.equal(loaded(x), model(x))


def test_encoder_load_errors(tmp_path):
    _encoder().save_pretrained(tmp_path / "a")
    # Weights saved for another configuration: one error naming the file and the mismatched shapes.
    LowLevelEncoder(
        LowLevelEncoderConfig(n_chans=4, n_times=32, time_dim=4, hidden_channels=(16, 8, 8, 8))
    ).save_pretrained(tmp_path / "b")
    (tmp_path / "a" / "model.safetensors").replace(tmp_path / "a" / "other.safetensors")
    (tmp_path / "b" / "model.safetensors").replace(tmp_path / "a" / "model.safetensors")
    with pytest.raises(ToolkitError, match=r"model.safetensors does not fit the low-level encoder.*shape mismatches"):
        LowLevelEncoder.from_pretrained(tmp_path / "a")
    (tmp_path / "a" / "model.safetensors").unlink()
    with pytest.raises(ToolkitError, match=r"model\.safetensors is missing"):
        LowLevelEncoder.from_pretrained(tmp_path / "a")
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "config.json").write_text(json.dumps({"n_chans": 4, "colour": "red"}))
    (tmp_path / "c" / "model.safetensors").write_bytes(b"")
    with pytest.raises(ToolkitError, match=r"unknown keys \['colour'\]"):
        LowLevelEncoder.from_pretrained(tmp_path / "c")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ToolkitError, match="is a file"):
        _encoder().save_pretrained(tmp_path / "file")
    with pytest.raises(ToolkitError, match=r"owner/low-level/config\.json.*local_files_only=True"):
        LowLevelEncoder.from_pretrained("owner/low-level", local_files_only=True, cache_dir=tmp_path / "hub")


# ---------------------------------------------------------------------------------------------------- VAE helpers
def test_encode_and_decode_latents(sdxl_generator):
    vae = sdxl_generator.pipe.vae
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)) for _ in range(3)]
    raw = encode_image_latents(vae, images, size=32, batch_size=2)
    assert raw.shape == (3, 4, 16, 16) and raw.dtype == torch.float32
    scaled = encode_image_latents(vae, images, size=32, scaled=True)
    assert torch.allclose(scaled, raw * vae.config.scaling_factor, atol=1e-5)
    decoded = decode_latents(vae, raw)
    assert decoded.shape == (3, 3, 32, 32) and float(decoded.min()) >= 0 and float(decoded.max()) <= 1
    assert torch.allclose(decode_latents(vae, scaled, scaled=True), decoded, atol=1e-5)
    sampled = encode_image_latents(vae, images, size=32, sample=True, generator=torch.Generator().manual_seed(0))
    assert not torch.equal(sampled, raw)
    from_tensor = encode_image_latents(vae, torch.rand(2, 3, 32, 32))
    assert from_tensor.shape == (2, 4, 16, 16)


def test_vae_helper_errors(sdxl_generator):
    vae = sdxl_generator.pipe.vae
    with pytest.raises(ToolkitError, match=r"this VAE decodes \(batch, 4, height, width\)"):
        decode_latents(vae, torch.zeros(1, 3, 8, 8))
    with pytest.raises(ToolkitError, match=r"values in \[0, 1\]"):
        encode_image_latents(vae, torch.full((1, 3, 8, 8), 2.0))
    with pytest.raises(ToolkitError, match="non-empty list"):
        encode_image_latents(vae, [])
    with pytest.raises(ToolkitError, match="AutoencoderKL"):
        decode_latents(sdxl_generator.pipe.unet, torch.zeros(1, 4, 8, 8))


# ---------------------------------------------------------------------------------------------------- refiner
@pytest.fixture(scope="module")
def refiner(sdxl_generator):
    return LowLevelRefiner(sdxl_generator)


def test_refiner_makes_blurry_and_refined_images(refiner):
    latents = _encoder()(_eeg(2)).detach()
    out = refiner(latents, embeds(2), seed=3, strength=0.5, num_inference_steps=4, progress_bar=False)
    assert isinstance(out, LowLevelOutput)
    assert len(out.images) == 2 and len(out.blurry_images) == 2 and out.seeds == [3, 4]
    assert all(im.size == (32, 32) for im in out.images + out.blurry_images)
    # img2img changed the blurry images, and the blurry images are the VAE decodings.
    assert mean_diff(out.images[0], out.blurry_images[0]) > 1.0
    assert max_diff(out.blurry_images[1], refiner.decode(latents[1:2])[0]) == 0
    again = refiner(latents, embeds(2), seed=3, strength=0.5, num_inference_steps=4, progress_bar=False)
    assert max(max_diff(a, b) for a, b in zip(out.images, again.images)) <= 2
    no_embeds = refiner(latents[:1], None, seed=3, strength=0.5, num_inference_steps=4, progress_bar=False)
    assert len(no_embeds.images) == 1


def test_refiner_scaling_convention(sdxl_generator):
    latents = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    raw = LowLevelRefiner(sdxl_generator).decode(latents)[0]
    scaled = LowLevelRefiner(sdxl_generator, latents_scaled=True).decode(latents)[0]
    assert mean_diff(raw, scaled) > 1.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"strength": 0.0}, r"strength must be a number in \(0, 1\]"),
        ({"strength": 1.5}, "strength must be"),
        ({"strength": math.nan}, "strength must be"),
        ({"strength": 0.2, "num_inference_steps": 4}, r"gives int\(4 × 0.2\) = 0 denoising steps"),
        ({"guidance_scale": -1}, "guidance_scale"),
        ({"ip_adapter_scale": math.inf}, "ip_adapter_scale"),
    ],
)
def test_refiner_bad_arguments(refiner, kwargs, match):
    with pytest.raises(ToolkitError, match=match):
        refiner(torch.zeros(1, 4, 16, 16), embeds(1), **kwargs)


def test_refiner_bad_inputs(refiner, sdxl_generator):
    with pytest.raises(ToolkitError, match="image_embeds has 2 rows but latents has 1"):
        refiner(torch.zeros(1, 4, 16, 16), embeds(2))
    with pytest.raises(ToolkitError, match=r"expects \(batch, 16\)"):
        refiner(torch.zeros(1, 4, 16, 16), embeds(1, dim=EMBED_DIM + 2))
    with pytest.raises(ToolkitError, match="EmbedsToImagePipeline"):
        LowLevelRefiner(sdxl_generator.pipe)
    with pytest.raises(ToolkitError, match="latents_scaled must be True or False"):
        LowLevelRefiner(sdxl_generator, latents_scaled="yes")


def test_refiner_from_pretrained_with_a_separate_vae(saved_sdxl):
    refiner = LowLevelRefiner.from_pretrained(
        saved_sdxl.pipeline_dir,
        ip_adapter=saved_sdxl.ip_adapter,
        vae=saved_sdxl.pipeline_dir,
        device="cpu",
        local_files_only=True,
    )
    assert refiner.vae is not refiner.generator.pipe.vae and refiner.vae.dtype == torch.float32
    assert refiner.img2img.unet is refiner.generator.pipe.unet
    assert refiner.img2img.scheduler is not refiner.generator.pipe.scheduler
