"""EmbeddingCaptioner and CaptionLoop: embeddings → (prior) → captions → prompts → (generator)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from toolkit import ToolkitError
from toolkit.captions import (
    CaptionLoop,
    CaptionLoopOutput,
    EmbeddingCaptioner,
    GitCaptioner,
    PixelProjector,
    PixelProjectorConfig,
    format_prompts,
)

from ._tiny import N_VISION_TOKENS, VISION_HIDDEN

pytestmark = pytest.mark.xdist_group("tiny-git")
EMBED_DIM = 12


def _projector(n_tokens: int = N_VISION_TOKENS, hidden: int = VISION_HIDDEN, seed: int = 0) -> PixelProjector:
    torch.manual_seed(seed)
    projector = PixelProjector(PixelProjectorConfig(embed_dim=EMBED_DIM, n_tokens=n_tokens, hidden_size=hidden))
    with torch.no_grad():  # spread the LayerNorm gains so different embeddings give different tokens
        projector.feature_norm.weight.normal_(std=3.0)
    return projector.eval()


def _embeds(n: int = 4, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, EMBED_DIM, generator=torch.Generator().manual_seed(seed))


def test_embedding_captioner(captioner: GitCaptioner):
    projector = _projector()
    model = EmbeddingCaptioner(projector, captioner, max_new_tokens=8, batch_size=3)
    x = _embeds(5)
    captions = model(x)
    assert len(captions) == 5 and all(isinstance(c, str) for c in captions)
    assert len(set(captions)) > 1  # the embeddings steer the captions
    assert model(x) == captions  # greedy decoding is deterministic
    assert model(x.numpy()) == captions
    # It is the projector followed by the latent path, in any batching.
    with torch.no_grad():
        tokens = projector(x)
    assert captioner.caption_vision_tokens(tokens, max_new_tokens=8) == captions
    assert EmbeddingCaptioner(projector, captioner, max_new_tokens=8, batch_size=1)(x) == captions
    assert model.settings == {"max_new_tokens": 8, "num_beams": 1, "decoding": "greedy", "batch_size": 3}
    beams = EmbeddingCaptioner(projector, captioner, max_new_tokens=8, num_beams=2)
    assert len(beams(x[:2])) == 2 and beams.settings["decoding"] == "beam search"


def test_projector_must_fit_the_git_model(captioner: GitCaptioner):
    with pytest.raises(ToolkitError, match=rf"makes 16 × {VISION_HIDDEN} vision tokens but the GIT model takes "
                                           rf"{N_VISION_TOKENS} × {VISION_HIDDEN}"):
        EmbeddingCaptioner(_projector(n_tokens=16), captioner)
    with pytest.raises(ToolkitError, match=rf"makes {N_VISION_TOKENS} × 32 vision tokens"):
        EmbeddingCaptioner(_projector(hidden=32), captioner)


def test_embedding_captioner_bad_inputs(captioner: GitCaptioner):
    model = EmbeddingCaptioner(_projector(), captioner, max_new_tokens=4)
    with pytest.raises(ToolkitError, match=r"image_embeds has shape \(2, 13\).*\(batch, 12\)"):
        model(torch.zeros(2, 13))
    with pytest.raises(ToolkitError, match="NaN"):
        model(torch.full((1, EMBED_DIM), float("nan")))
    with pytest.raises(ToolkitError, match="max_new_tokens"):
        EmbeddingCaptioner(_projector(), captioner, max_new_tokens=0)
    with pytest.raises(ToolkitError, match="num_beams"):
        EmbeddingCaptioner(_projector(), captioner, num_beams=0)
    with pytest.raises(ToolkitError, match="PixelProjector"):
        EmbeddingCaptioner(torch.nn.Linear(EMBED_DIM, 4), captioner)
    with pytest.raises(ToolkitError, match="GitCaptioner"):
        EmbeddingCaptioner(_projector(), lambda tokens: ["x"])


def test_loop_with_a_real_prior_and_a_generator(captioner: GitCaptioner):
    from toolkit.prior import DiffusionPriorUNet, PriorPipeline, PriorUNetConfig

    torch.manual_seed(0)
    prior_pipe = PriorPipeline(
        DiffusionPriorUNet(PriorUNetConfig(embed_dim=EMBED_DIM, cond_dim=8, hidden_dims=(16, 8), time_embed_dim=8))
    )

    def prior(eeg_embeds: torch.Tensor) -> Any:  # ATM's caption setting: 4 steps, guidance 5, seeded
        generator = torch.Generator().manual_seed(0)
        return prior_pipe(eeg_embeds, num_inference_steps=4, guidance_scale=5.0, generator=generator,
                          progress_bar=False)

    calls = []

    def generate(image_embeds: torch.Tensor, *, prompt: list[str], seed: int) -> str:
        calls.append((image_embeds, prompt, seed))
        return "images"

    captioner_fn = EmbeddingCaptioner(_projector(), captioner, max_new_tokens=6)
    loop = CaptionLoop(captioner_fn, prior=prior, template="a photo of {caption}")
    eeg = torch.randn(3, 8, generator=torch.Generator().manual_seed(1))
    out = loop(eeg, generate=generate, seed=7)
    assert isinstance(out, CaptionLoopOutput) and out.images == "images"
    expected_embeds = prior(eeg).image_embeds
    torch.testing.assert_close(out.image_embeds, expected_embeds)
    assert out.captions == captioner_fn(expected_embeds)
    assert out.prompts == [f"a photo of {c}" if c else "" for c in out.captions]
    (embeds_seen, prompts_seen, seed_seen), = calls
    torch.testing.assert_close(embeds_seen, expected_embeds)
    assert prompts_seen == out.prompts and seed_seen == 7
    assert loop.captions(eeg) == out.captions  # seeded prior: same captions again
    without = CaptionLoop(captioner_fn)(expected_embeds.numpy())
    assert without.captions == out.captions and without.images is None


def test_loop_callables_and_refusals():
    def fake_captioner(x: torch.Tensor) -> list[str]:
        return [f"[CLS] thing {i} [SEP]" for i in range(x.shape[0])]

    out = CaptionLoop(fake_captioner, prior=lambda e: (e * 2,))(np.ones((2, 5), dtype=np.float32))
    assert out.captions == ["[CLS] thing 0 [SEP]", "[CLS] thing 1 [SEP]"]
    assert out.prompts == ["thing 0", "thing 1"]  # toolkit.generation.caption_prompt cleans tokenizer markers
    torch.testing.assert_close(out.image_embeds, torch.full((2, 5), 2.0))
    with pytest.raises(ToolkitError, match="template"):
        CaptionLoop(fake_captioner, template="no field here")
    with pytest.raises(ToolkitError, match="no generate callable"):
        CaptionLoop(fake_captioner)(torch.ones(1, 5), seed=0)
    with pytest.raises(ToolkitError, match="do not pass prompt"):
        CaptionLoop(fake_captioner)(torch.ones(1, 5), generate=lambda e, prompt: None, prompt="x")
    with pytest.raises(ToolkitError, match="returned 1 captions for 2"):
        CaptionLoop(lambda x: ["one"])(torch.ones(2, 5))
    with pytest.raises(ToolkitError, match="list of strings"):
        CaptionLoop(lambda x: "one")(torch.ones(1, 5))
    with pytest.raises(ToolkitError, match="one \\(batch, embed_dim\\) row per input"):
        CaptionLoop(fake_captioner, prior=lambda e: e[:1])(torch.ones(2, 5))
    with pytest.raises(ToolkitError, match="captioner must be"):
        CaptionLoop("not callable")
    with pytest.raises(ToolkitError, match="prior must be"):
        CaptionLoop(fake_captioner, prior=3)


def test_format_prompts():
    assert format_prompts(["a dog .", ""], "{caption}, high quality") == ["a dog., high quality", ""]
    with pytest.raises(ToolkitError, match="template"):
        format_prompts(["a"], "{caption} {caption}")
    with pytest.raises(ToolkitError, match="sequence of strings"):
        format_prompts("a dog")
