"""SDXL(-Turbo) + IP-Adapter from precomputed image embeddings, on a tiny random stack of the real classes."""

from __future__ import annotations

import math

import pytest
import torch

from toolkit import ToolkitError
from toolkit.generation import (
    EmbedsToImageOutput,
    EmbedsToImagePipeline,
    check_ip_adapter_state,
    ip_adapter_shapes,
    load_ip_adapter,
    read_ip_adapter_file,
)
from toolkit.generation import _tiny as tiny
from toolkit.generation.ip_adapter import per_prompt_ip_adapter_embeds

from ._tiny import EMBED_DIM, SIDE, STEPS, embeds, max_diff, mean_diff

pytestmark = pytest.mark.xdist_group("generation")

FAST = {"num_inference_steps": STEPS, "height": SIDE, "width": SIDE, "progress_bar": False}


# ---------------------------------------------------------------------------------------------------- generation
def test_images_of_requested_size_grouped_per_embedding(sdxl_generator):
    out = sdxl_generator(
        embeds(2), seed=7, num_images_per_embed=2, num_inference_steps=STEPS, height=SIDE, width=48, progress_bar=False
    )
    assert isinstance(out, EmbedsToImageOutput)
    assert len(out.images) == 4 and all(im.size == (48, SIDE) and im.mode == "RGB" for im in out.images)
    assert out.seeds == [7, 8, 9, 10]
    assert out.prompts == ["", ""]
    groups = out.per_embed()
    assert len(groups) == 2 and groups[1][0] is out.images[2]
    # Two images of one embedding differ (own seeds).
    assert mean_diff(out.images[0], out.images[1]) > 1.0


def test_default_size_is_the_models(sdxl_generator):
    out = sdxl_generator(embeds(1), seed=0, num_inference_steps=1, progress_bar=False)
    # Tiny UNet sample_size 16 × the tiny VAE's factor 2 (SDXL-Turbo: 64 × 8 = 512).
    assert out.images[0].size == (32, 32)


def test_same_seed_same_image_and_batch_matches_single(sdxl_generator):
    e = embeds(3)
    batched = sdxl_generator(e, seed=10, batch_size=3, **FAST)
    again = sdxl_generator(e, seed=10, batch_size=2, **FAST)
    single = sdxl_generator(e[1:2], seed=11, **FAST)
    assert [max_diff(a, b) for a, b in zip(batched.images, again.images)] == pytest.approx([0, 0, 0], abs=2)
    # Row 1 of the batch is the image made alone with its seed: one embedding per prompt, no mixing across rows.
    assert max_diff(batched.images[1], single.images[0]) <= 2
    other = sdxl_generator(e[1:2], seed=12, **FAST)
    assert mean_diff(single.images[0], other.images[0]) > 1.0


def test_embedding_steers_the_image(sdxl_generator):
    e = embeds(2, seed=3)
    out = sdxl_generator(e, seed=[5, 5], ip_adapter_scale=1.0, **FAST)
    assert mean_diff(out.images[0], out.images[1]) > 1.0
    # With the adapter off, the embeddings no longer matter.
    off = sdxl_generator(e, seed=[5, 5], ip_adapter_scale=0.0, **FAST)
    assert max_diff(off.images[0], off.images[1]) == 0


def test_guidance_runs_with_zero_negative_embeddings(sdxl_generator):
    out = sdxl_generator(embeds(2), seed=0, guidance_scale=3.0, prompt=["a cat", "a dog"], **FAST)
    assert len(out.images) == 2 and out.prompts == ["a cat", "a dog"]


def test_generator_list_and_single_generator(sdxl_generator):
    e = embeds(2)
    by_seed = sdxl_generator(e, seed=[4, 9], **FAST)
    by_list = sdxl_generator(e, generator=[torch.Generator().manual_seed(4), torch.Generator().manual_seed(9)], **FAST)
    assert [max_diff(a, b) for a, b in zip(by_seed.images, by_list.images)] == [0, 0]
    assert by_list.seeds is None
    one = sdxl_generator(e, generator=torch.Generator().manual_seed(0), **FAST)
    assert len(one.images) == 2


class _FakePipe:
    """Stands in for a pipeline: the layout function is called the way diffusers calls it."""

    def prepare_ip_adapter_image_embeds(self, *args):
        return "class method"


def test_per_prompt_layout_and_restore():
    pipe = _FakePipe()
    rows = torch.arange(2 * EMBED_DIM, dtype=torch.float32).reshape(2, 1, EMBED_DIM) + 1
    with per_prompt_ip_adapter_embeds(pipe):
        (plain,) = pipe.prepare_ip_adapter_image_embeds(None, [rows], "cpu", 4, False)
        (guided,) = pipe.prepare_ip_adapter_image_embeds(None, [rows], "cpu", 4, True)
        with pytest.raises(ToolkitError, match="cannot be spread"):
            pipe.prepare_ip_adapter_image_embeds(None, [rows], "cpu", 3, False)
    # Two images per prompt, prompt-major; the negative half is zeros.
    assert plain.shape == (4, 1, EMBED_DIM)
    assert torch.equal(plain[0], rows[0]) and torch.equal(plain[1], rows[0]) and torch.equal(plain[2], rows[1])
    assert guided.shape == (8, 1, EMBED_DIM)
    assert torch.count_nonzero(guided[:4]) == 0 and torch.equal(guided[4:], plain)
    assert pipe.prepare_ip_adapter_image_embeds() == "class method"
    assert "prepare_ip_adapter_image_embeds" not in vars(pipe)


# ---------------------------------------------------------------------------------------------------- save / load
def test_from_pretrained_local_folders_reproduce_in_memory_stack(sdxl_generator, saved_sdxl):
    loaded = EmbedsToImagePipeline.from_pretrained(
        saved_sdxl.pipeline_dir,
        ip_adapter=saved_sdxl.ip_adapter,
        image_embed_dim=EMBED_DIM,
        device="cpu",
        local_files_only=True,
    )
    assert loaded.image_embed_dim == EMBED_DIM
    assert loaded.device.type == "cpu" and loaded.dtype == torch.float32
    # The weights round-trip exactly (the adapter's projection and attention layers included) ...
    for name in ("unet", "vae", "text_encoder", "text_encoder_2"):
        mine, theirs = getattr(loaded.pipe, name).state_dict(), getattr(sdxl_generator.pipe, name).state_dict()
        assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine), name
    # ... so the images agree up to CPU kernel rounding (separately allocated models may take other SIMD paths).
    e = embeds(2, seed=21)
    a = loaded(e, seed=0, **FAST)
    b = sdxl_generator(e, seed=0, **FAST)
    assert max(max_diff(x, y) for x, y in zip(a.images, b.images)) <= 2


def test_from_pretrained_accepts_a_weight_file_path(saved_sdxl):
    loaded = EmbedsToImagePipeline.from_pretrained(
        saved_sdxl.pipeline_dir, ip_adapter=saved_sdxl.ip_adapter_file, device="cpu", local_files_only=True
    )
    assert loaded.image_embed_dim == EMBED_DIM


def test_float16_on_cpu_falls_back_to_float32_with_a_warning(saved_sdxl):
    with pytest.warns(UserWarning, match="float16 was requested on the CPU"):
        loaded = EmbedsToImagePipeline.from_pretrained(
            saved_sdxl.pipeline_dir,
            ip_adapter=saved_sdxl.ip_adapter,
            device="cpu",
            dtype=torch.float16,
            local_files_only=True,
        )
    assert loaded.dtype == torch.float32 and loaded.pipe.text_encoder.dtype == torch.float32


def test_bfloat16_is_honoured(saved_sdxl):
    loaded = EmbedsToImagePipeline.from_pretrained(
        saved_sdxl.pipeline_dir, ip_adapter=saved_sdxl.ip_adapter, dtype="bf16", device="cpu", local_files_only=True
    )
    assert (
        loaded.dtype == torch.bfloat16
        and loaded.pipe.unet.encoder_hid_proj.image_projection_layers[0].image_embeds.weight.dtype == torch.bfloat16
    )


# ---------------------------------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize(
    ("value", "match"),
    [
        (torch.zeros(2, EMBED_DIM + 1), r"shape \(2, 17\).*expects \(batch, 16\)"),
        (torch.zeros(EMBED_DIM), r"add a batch dimension"),
        (torch.zeros(0, EMBED_DIM), r"batch ≥ 1"),
        (torch.full((1, EMBED_DIM), math.nan), "NaN or infinite"),
        (torch.zeros(1, EMBED_DIM, dtype=torch.int64), "floating point"),
        ([[0.0] * EMBED_DIM], "torch.Tensor or a NumPy array"),
    ],
)
def test_bad_embeddings(sdxl_generator, value, match):
    with pytest.raises(ToolkitError, match=match):
        sdxl_generator(value, **FAST)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"guidance_scale": -1.0}, "guidance_scale must be a finite number ≥ 0"),
        ({"guidance_scale": math.inf}, "guidance_scale"),
        ({"guidance_scale": math.nan}, "guidance_scale"),
        ({"ip_adapter_scale": -0.5}, "ip_adapter_scale must be a finite number ≥ 0"),
        ({"ip_adapter_scale": math.nan}, "ip_adapter_scale"),
        ({"num_inference_steps": 0}, "num_inference_steps must be an integer"),
        ({"num_inference_steps": 2.5}, "num_inference_steps"),
        ({"height": 30}, "height must be None or a positive multiple of 8"),
        ({"width": -8}, "width"),
        ({"num_images_per_embed": 0}, "num_images_per_embed"),
        ({"batch_size": 0}, "batch_size"),
        ({"prompt": ["only one"]}, "prompt has 1 entries but there are 2 items"),
        ({"prompt": 3}, "prompt must be a string"),
        ({"seed": 0, "generator": torch.Generator()}, "either generator or seed"),
        ({"seed": [1]}, "seed has 1 entries"),
        ({"seed": -1}, "non-negative"),
        ({"seed": "0"}, "seed must be an int"),
        ({"generator": [torch.Generator()]}, "list of 1 generators but 2 images"),
        ({"generator": "cpu"}, "generator must be a torch.Generator"),
    ],
)
def test_bad_arguments(sdxl_generator, kwargs, match):
    call = {**FAST, **kwargs}
    with pytest.raises(ToolkitError, match=match):
        sdxl_generator(embeds(2), **call)


def test_constructor_needs_sdxl_with_an_adapter(tokenizer_dir, brainvis):
    with pytest.raises(ToolkitError, match="StableDiffusionXLPipeline"):
        EmbedsToImagePipeline(brainvis.pipe)
    with pytest.raises(ToolkitError, match="no IP-Adapter loaded"):
        EmbedsToImagePipeline(tiny.tiny_sdxl_pipeline(tokenizer_dir))


# ---------------------------------------------------------------------------------------------------- adapter files
def test_adapter_shapes_follow_the_unet(sdxl_generator):
    unet = sdxl_generator.pipe.unet
    shapes = ip_adapter_shapes(unet, 1024)
    assert shapes["image_proj.proj.weight"] == (4 * unet.config.cross_attention_dim, 1024)
    layers = [k for k in shapes if k.startswith("ip_adapter.") and k.endswith("to_k_ip.weight")]
    n_cross = sum(1 for name in unet.attn_processors if name.endswith("attn2.processor"))
    assert len(layers) == n_cross and layers[0] == "ip_adapter.1.to_k_ip.weight"


def test_adapter_embedding_dim_mismatch_names_file_and_expected_shape(tokenizer_dir, saved_sdxl):
    pipe = tiny.tiny_sdxl_pipeline(tokenizer_dir)
    with pytest.raises(ToolkitError) as info:
        load_ip_adapter(pipe, *saved_sdxl.ip_adapter, image_embed_dim=1024)
    message = str(info.value)
    assert str(saved_sdxl.ip_adapter_file) in message
    assert "projects 16-dimensional" in message and "[256, 1024]" in message


def test_adapter_for_another_unet_is_refused(tmp_path, tokenizer_dir, brainvis):
    # An adapter made for the SD-1.5-like UNet (cross-attention 32) does not fit the SDXL one (64).
    path = tiny.save_ip_adapter(
        tiny.tiny_ip_adapter_state_dict(brainvis.pipe.unet, EMBED_DIM), tmp_path / "a.safetensors"
    )
    pipe = tiny.tiny_sdxl_pipeline(tokenizer_dir)
    with pytest.raises(
        ToolkitError, match=r"does not fit this UNet.*image_proj.proj.weight expected \[256, 16\] found \[128, 16\]"
    ):
        load_ip_adapter(pipe, path)


def test_adapter_missing_tensor_and_plus_variant(tmp_path, sdxl_generator):
    unet = sdxl_generator.pipe.unet
    state = tiny.tiny_ip_adapter_state_dict(unet, EMBED_DIM)
    del state["ip_adapter"]["3.to_v_ip.weight"]
    with pytest.raises(ToolkitError, match=r"1 missing: ip_adapter.3.to_v_ip.weight \[64, 64\]"):
        check_ip_adapter_state(state, unet, source="x.safetensors")
    plus = {"image_proj": {"latents": torch.zeros(1, 16, 64)}, "ip_adapter": {}}
    with pytest.raises(ToolkitError, match="IP-Adapter Plus"):
        check_ip_adapter_state(plus, unet, source="plus.safetensors")


def test_adapter_file_errors(tmp_path, tokenizer_dir):
    pipe = tiny.tiny_sdxl_pipeline(tokenizer_dir)
    with pytest.raises(ToolkitError, match="does not exist"):
        read_ip_adapter_file(tmp_path / "missing.safetensors")
    (tmp_path / "adapter.txt").write_text("x")
    with pytest.raises(ToolkitError, match=r"expected \.safetensors"):
        read_ip_adapter_file(tmp_path / "adapter.txt")
    (tmp_path / "broken.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ToolkitError, match="not a readable safetensors file"):
        read_ip_adapter_file(tmp_path / "broken.safetensors")
    # A pickle holding anything but tensors is refused without running it (weights_only).
    import datetime

    torch.save({"image_proj": {"when": datetime.datetime(2024, 1, 1)}, "ip_adapter": {}}, tmp_path / "code.bin")
    with pytest.raises(ToolkitError, match="weights-only"):
        read_ip_adapter_file(tmp_path / "code.bin")
    with pytest.raises(ToolkitError, match="weight_name"):
        load_ip_adapter(pipe, str(tmp_path))


def test_adapter_hub_id_offline_gives_one_clear_error(tmp_path, tokenizer_dir):
    pipe = tiny.tiny_sdxl_pipeline(tokenizer_dir)
    with pytest.raises(
        ToolkitError, match=r"h94/IP-Adapter/sdxl_models/ip-adapter_sdxl_vit-h.safetensors.*local_files_only"
    ):
        load_ip_adapter(
            pipe,
            "h94/IP-Adapter",
            "sdxl_models",
            "ip-adapter_sdxl_vit-h.safetensors",
            local_files_only=True,
            cache_dir=tmp_path,
        )
