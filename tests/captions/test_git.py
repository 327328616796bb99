"""GitCaptioner: the vision-token (latent) path, the image path, loading, bad inputs (tiny GIT, offline)."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from toolkit import ToolkitError
from toolkit.captions import GitCaptioner, caption_images

from ._tiny import N_VISION_TOKENS, VISION_HIDDEN, random_images, tiny_blip
from .conftest import COMMIT, HUB_ID

pytestmark = pytest.mark.xdist_group("tiny-git")


def test_sizes(captioner: GitCaptioner):
    assert (captioner.n_vision_tokens, captioner.vision_hidden_size) == (N_VISION_TOKENS, VISION_HIDDEN)
    assert captioner.device.type == "cpu" and captioner.dtype == torch.float32
    identity = captioner.identity
    assert identity["vision_tokens"] == [N_VISION_TOKENS, VISION_HIDDEN] and identity["commit"] is None


def test_latent_path_batch_and_determinism(captioner: GitCaptioner):
    tokens = torch.randn(4, N_VISION_TOKENS, VISION_HIDDEN, generator=torch.Generator().manual_seed(0))
    first = captioner.caption_vision_tokens(tokens, max_new_tokens=8)
    assert len(first) == 4 and all(isinstance(c, str) for c in first)
    assert len(set(first)) > 1  # the tokens steer the decoder: different inputs, different captions
    assert captioner.caption_vision_tokens(tokens, max_new_tokens=8) == first
    assert captioner.caption_vision_tokens(tokens.numpy(), max_new_tokens=8, batch_size=1) == first
    out = captioner.generate(vision_tokens=tokens, max_new_tokens=3)
    assert out.sequences.shape[0] == 4 and out.sequences.shape[1] <= 1 + 3
    assert (out.sequences[:, 0] == captioner.tokenizer.cls_token_id).all()


def test_own_encoder_output_gives_the_image_caption(captioner: GitCaptioner, images: list[Any]):
    """Feeding GIT's own vision-encoder output through the latent path reproduces captioning the image."""
    tokens = captioner.encode_images(images)
    assert tokens.shape == (len(images), N_VISION_TOKENS, VISION_HIDDEN) and tokens.dtype == torch.float32
    direct = captioner.caption_images(images, max_new_tokens=10)
    assert len(set(direct)) > 1
    assert captioner.caption_vision_tokens(tokens, max_new_tokens=10) == direct
    # Not just the argmax: every step's next-token scores agree.
    pixel_values = captioner.pixel_values(images)
    by_pixels = captioner.generate(pixel_values=pixel_values, max_new_tokens=6, output_scores=True)
    by_tokens = captioner.generate(vision_tokens=tokens, max_new_tokens=6, output_scores=True)
    torch.testing.assert_close(by_tokens.sequences, by_pixels.sequences, rtol=0, atol=0)
    for a, b in zip(by_tokens.scores, by_pixels.scores):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    # Beam search (the tokens are repeated per beam like pixels).
    beams = captioner.caption_images(images, max_new_tokens=10, num_beams=3)
    assert captioner.caption_vision_tokens(tokens, max_new_tokens=10, num_beams=3) == beams
    # Control: other tokens give other scores, so the comparison above can fail.
    other = captioner.generate(vision_tokens=tokens.roll(1, dims=0), max_new_tokens=6, output_scores=True)
    assert not torch.allclose(other.scores[0], by_pixels.scores[0])


def test_injection_restores_the_model(captioner: GitCaptioner):
    encoder = captioner.model.git.image_encoder
    keys = list(captioner.model.state_dict())
    captioner.model.train()
    captioner.caption_vision_tokens(torch.zeros(1, N_VISION_TOKENS, VISION_HIDDEN), max_new_tokens=2)
    assert captioner.model.git.image_encoder is encoder
    assert list(captioner.model.state_dict()) == keys
    assert captioner.model.training  # the mode it was in is restored after decoding in eval mode
    captioner.model.eval()
    with pytest.raises(ToolkitError):
        captioner.caption_vision_tokens(torch.zeros(1, 3, VISION_HIDDEN))
    assert captioner.model.git.image_encoder is encoder


def test_image_inputs(captioner: GitCaptioner, images: list[Any], tmp_path: Path):
    paths = []
    for i, image in enumerate(images[:2]):
        paths.append(tmp_path / f"{i}.png")
        image.save(paths[-1])
    arrays = [np.asarray(image) for image in images[:2]]
    expected = captioner.caption_images(images[:2], max_new_tokens=6)
    assert captioner.caption_images(paths, max_new_tokens=6) == expected
    assert captioner.caption_images(arrays, max_new_tokens=6) == expected
    with pytest.raises(ToolkitError, match="wrap a single image in a list"):
        captioner.caption_images(images[0])
    with pytest.raises(ToolkitError, match="does not exist"):
        captioner.caption_images([tmp_path / "missing.png"])
    with pytest.raises(ToolkitError, match=r"uint8"):
        captioner.caption_images([np.zeros((8, 8, 3), dtype=np.float32)])
    with pytest.raises(ToolkitError, match="non-empty"):
        captioner.caption_images([])


def test_generic_image_to_text(captioner: GitCaptioner, images: list[Any]):
    expected = captioner.caption_images(images, max_new_tokens=7)
    # Any (model, processor) pair with generate(): here GIT itself through the generic code path.
    pair = (captioner.model, captioner.processor)
    assert caption_images(images, pair, max_new_tokens=7, batch_size=2) == expected
    assert caption_images(images, captioner, max_new_tokens=7) == expected
    # A callable returning pipeline-style outputs.
    seen = []

    def fake_pipeline(chunk: list) -> list:
        seen.append(len(chunk))
        return [[{"generated_text": f" image {i} "}] for i in range(len(chunk))]

    assert caption_images(images, fake_pipeline, batch_size=3) == ["image 0", "image 1", "image 2", "image 0",
                                                                    "image 1"]
    assert seen == [3, 2]
    with pytest.raises(ToolkitError, match="returned 1 outputs for 2 images"):
        caption_images(images[:2], lambda chunk: ["only one"])
    with pytest.raises(ToolkitError, match="expected a string"):
        caption_images(images[:1], lambda chunk: [3])
    with pytest.raises(ToolkitError, match="captioner must be"):
        caption_images(images[:1], object())
    with pytest.raises(ToolkitError, match="prompt is not used by GitCaptioner"):
        caption_images(images[:1], captioner, prompt="a picture of")


def test_other_image_to_text_models(images: list[Any]):
    """A BLIP (model, processor) pair, with and without a prompt, and a transformers pipeline around it."""
    from transformers import pipeline

    model, processor = tiny_blip()
    plain = caption_images(images[:3], (model, processor), max_new_tokens=5)
    assert len(plain) == 3 and all(isinstance(c, str) and c for c in plain)
    prompted = caption_images(images[:3], (model, processor), max_new_tokens=5, prompt="a")
    assert all(c.split()[0] == "a" for c in prompted)  # BLIP continues the prompt
    pipe = pipeline("image-text-to-text", model=model, processor=processor)
    direct = pipe(images[:3], text=["a"] * 3, generate_kwargs={"max_new_tokens": 5, "do_sample": False})
    got = caption_images(images[:3], pipe, max_new_tokens=5, prompt="a", batch_size=2)
    assert got == [d["generated_text"].strip() for d in direct]


def test_bad_decoding_settings(captioner: GitCaptioner, images: list[Any]):
    tokens = torch.zeros(1, N_VISION_TOKENS, VISION_HIDDEN)
    for kwargs, name in (
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"max_new_tokens": 2.5}, "max_new_tokens"),
        ({"num_beams": 0}, "num_beams"),
        ({"batch_size": 0}, "batch_size"),
    ):
        with pytest.raises(ToolkitError, match=name):
            captioner.caption_vision_tokens(tokens, **kwargs)
    with pytest.raises(ToolkitError, match="max_new_tokens"):
        captioner.caption_images(images[:1], max_new_tokens=0)
    with pytest.raises(ToolkitError, match="max_new_tokens"):
        caption_images(images[:1], lambda chunk: ["x"], max_new_tokens=-1)


def test_bad_vision_tokens(captioner: GitCaptioner):
    good = (N_VISION_TOKENS, VISION_HIDDEN)
    for shape in ((2, N_VISION_TOKENS + 1, VISION_HIDDEN), (2, N_VISION_TOKENS, 32), good, (0, *good)):
        with pytest.raises(ToolkitError, match=rf"\(batch, {N_VISION_TOKENS}, {VISION_HIDDEN}\)"):
            captioner.caption_vision_tokens(torch.zeros(shape))
    nan = torch.zeros(1, *good)
    nan[0, 0, 0] = float("nan")
    with pytest.raises(ToolkitError, match="NaN"):
        captioner.caption_vision_tokens(nan)
    with pytest.raises(ToolkitError, match="floating point"):
        captioner.caption_vision_tokens(torch.zeros(1, *good, dtype=torch.long))
    with pytest.raises(ToolkitError, match="exactly one"):
        captioner.generate()


def test_from_pretrained_hub_id_with_revision(hub_cache: Path, images: list[Any], captioner: GitCaptioner):
    """The real microsoft/git-large-coco code path, resolved from a local cache (no network)."""
    loaded = GitCaptioner.from_pretrained(HUB_ID, revision=COMMIT, cache_dir=hub_cache, local_files_only=True,
                                          device="cpu")
    assert loaded.identity["source"] == HUB_ID and loaded.identity["revision"] == COMMIT
    assert loaded.identity["commit"] == COMMIT
    assert loaded.caption_images(images, max_new_tokens=6) == captioner.caption_images(images, max_new_tokens=6)
    main = GitCaptioner.from_pretrained(HUB_ID, cache_dir=hub_cache, local_files_only=True, device="cpu")
    assert main.identity["commit"] == COMMIT  # the branch resolved to the cached commit
    with pytest.raises(ToolkitError, match="local_files_only=True"):
        GitCaptioner.from_pretrained(HUB_ID, revision="f" * 40, cache_dir=hub_cache, local_files_only=True)


def test_from_pretrained_refusals(git_dir: Path, tmp_path: Path):
    with pytest.raises(ToolkitError, match="revision"):
        GitCaptioner.from_pretrained(git_dir, revision=COMMIT)
    with pytest.raises(ToolkitError, match="neither an existing folder nor a Hugging Face Hub id"):
        GitCaptioner.from_pretrained(tmp_path / "no-such-folder")
    bert = tmp_path / "bert"
    bert.mkdir()
    (bert / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ToolkitError, match="holds a 'bert' model, not GIT"):
        GitCaptioner.from_pretrained(bert, local_files_only=True)


@pytest.mark.parametrize("damage", ["missing", "shape", "no file"])
def test_bad_weights_name_the_file_and_shape(git_dir: Path, tmp_path: Path, damage: str):
    from safetensors.torch import load_file, save_file

    folder = tmp_path / "git"
    shutil.copytree(git_dir, folder)
    weights = folder / "model.safetensors"
    state = load_file(weights)
    key = "git.visual_projection.visual_projection.0.weight"
    if damage == "missing":
        del state[key]
        save_file(state, weights, metadata={"format": "pt"})
        match = rf"{weights}.*lack 1 tensor.*{key} \[32, {VISION_HIDDEN}\]"
    elif damage == "shape":
        state[key] = torch.zeros(32, VISION_HIDDEN + 1)
        save_file(state, weights, metadata={"format": "pt"})
        match = rf"{weights}.*{key} expected \[32, {VISION_HIDDEN}\] found \[32, {VISION_HIDDEN + 1}\]"
    else:
        weights.unlink()
        match = "Could not load the GIT weights"
    with pytest.raises(ToolkitError, match=match) as err:
        GitCaptioner.from_pretrained(folder, local_files_only=True, device="cpu")
    assert "\n" not in str(err.value)


def test_dtype_policy(git_dir: Path, captioner: GitCaptioner):
    with pytest.warns(UserWarning, match="float16 was requested on the CPU"):
        fallback = GitCaptioner.from_pretrained(git_dir, device="cpu", dtype="float16", local_files_only=True)
    assert fallback.dtype == torch.float32
    bf16 = GitCaptioner.from_pretrained(git_dir, device="cpu", dtype=torch.bfloat16, local_files_only=True)
    assert bf16.dtype == torch.bfloat16
    assert len(bf16.caption_vision_tokens(torch.zeros(2, N_VISION_TOKENS, VISION_HIDDEN), max_new_tokens=3)) == 2
    half = GitCaptioner(bf16.model.to(torch.float16), captioner.processor)
    with warnings.catch_warnings(), pytest.raises(ToolkitError, match="float16 on the CPU"):
        half.caption_vision_tokens(torch.zeros(1, N_VISION_TOKENS, VISION_HIDDEN))


def test_constructor_refusals(captioner: GitCaptioner):
    with pytest.raises(ToolkitError, match="GitForCausalLM"):
        GitCaptioner(torch.nn.Linear(2, 2), captioner.processor)
    with pytest.raises(ToolkitError, match="tokenizer"):
        GitCaptioner(captioner.model)
    latent_only = GitCaptioner(captioner.model, tokenizer=captioner.tokenizer)
    assert latent_only.caption_vision_tokens(torch.zeros(1, N_VISION_TOKENS, VISION_HIDDEN), max_new_tokens=2)
    with pytest.raises(ToolkitError, match="no processor"):
        latent_only.caption_images(random_images(1))
