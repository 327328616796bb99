"""The semantic path: captions as SDXL prompts next to the IP-Adapter embedding."""

from __future__ import annotations

import pytest

from toolkit import ToolkitError
from toolkit.generation import CaptionedImagesOutput, caption_prompt, generate_with_captions

from ._tiny import SIDE, STEPS, embeds, max_diff

pytestmark = pytest.mark.xdist_group("generation")

FAST = {"num_inference_steps": STEPS, "height": SIDE, "width": SIDE, "progress_bar": False}


@pytest.mark.parametrize(
    ("caption", "template", "expected"),
    [
        ("a dog running on the grass", "{caption}", "a dog running on the grass"),
        ("  a dog [SEP] running\n on  grass . ", "{caption}", "a dog running on grass."),
        ("[CLS] a red car <|endoftext|>", "a photo of {caption}, high quality", "a photo of a red car, high quality"),
        ("a cat\x00\x07 on a mat", "{caption}", "a cat on a mat"),
        ("   [SEP] ", "a photo of {caption}", ""),
        ("a {weird} caption", "{caption}", "a {weird} caption"),
    ],
)
def test_caption_prompt(caption, template, expected):
    assert caption_prompt(caption, template=template) == expected


def test_caption_prompt_bad_inputs():
    with pytest.raises(ToolkitError, match="caption must be a string"):
        caption_prompt(None)
    with pytest.raises(ToolkitError, match=r"exactly one '\{caption\}' field"):
        caption_prompt("a dog", template="a photo")


def test_captions_become_the_prompts(sdxl_generator):
    e = embeds(3, seed=4)
    calls = []

    def captioner(batch):
        calls.append(tuple(batch.shape))
        return [f"object number {len(calls)}-{i} [SEP]" for i in range(batch.shape[0])]

    out = generate_with_captions(sdxl_generator, e, captioner, caption_batch_size=2, seed=0, **FAST)
    assert isinstance(out, CaptionedImagesOutput)
    assert calls == [(2, 16), (1, 16)]
    assert out.captions[0] == "object number 1-0 [SEP]" and out.prompts[2] == "object number 2-0"
    assert len(out.images) == 3 and out.seeds == [0, 1, 2]
    direct = sdxl_generator(e, prompt=out.prompts, seed=0, **FAST)
    assert max(max_diff(a, b) for a, b in zip(out.images, direct.images)) <= 2
    # Captions read from a file work the same way.
    listed = generate_with_captions(sdxl_generator, e[:1], ["a cat"], template="a photo of {caption}", seed=0, **FAST)
    assert listed.prompts == ["a photo of a cat"]


def test_captioner_misbehaving(sdxl_generator):
    e = embeds(2)
    with pytest.raises(ToolkitError, match="captioner returned 1 captions for 2 embeddings"):
        generate_with_captions(sdxl_generator, e, lambda b: ["one"], **FAST)
    with pytest.raises(ToolkitError, match="captioner must return a sequence of strings"):
        generate_with_captions(sdxl_generator, e, lambda b: "a cat", **FAST)
    with pytest.raises(ToolkitError, match="has 1 entries but there are 2"):
        generate_with_captions(sdxl_generator, e, ["a cat"], **FAST)
    with pytest.raises(ToolkitError, match="do not pass prompt"):
        generate_with_captions(sdxl_generator, e, ["a", "b"], prompt="x", **FAST)
    with pytest.raises(ToolkitError, match="EmbedsToImagePipeline"):
        generate_with_captions(sdxl_generator.pipe, e, ["a", "b"], **FAST)
    with pytest.raises(ToolkitError, match=r"expects \(batch, 16\)"):
        generate_with_captions(sdxl_generator, embeds(2, dim=8), ["a", "b"], **FAST)
