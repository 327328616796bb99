"""The "Reconstruct & caption" tab: EEG → diffusion prior → image and caption, beside the stimulus and two controls.

The controls use the same seeds: the prior conditioned on the EEG of *another* trial (shuffled) and the prior with no
EEG at all (prior only); a reconstruction is only informative where it beats both. The handler
(:meth:`ReconstructTab.reconstruct`, API ``/reconstruct``) is one call of
:meth:`toolkit.pipeline.DecodingPipeline.reconstruct`, the captioner on the same image embeddings and
PixCorr / SSIM against the stimulus (:mod:`toolkit.metrics`).

Beside the EEG reconstruction the demo bundle shows its *semantic path*: the reconstruction's caption drawn by the
simulator's stimulus renderer (:attr:`toolkit.pipeline.ReconstructionOutput.semantic_images`). The real bundle has
no such image here (its semantic path, caption → SDXL, is ``python -m toolkit caption``); the slot stays empty.
"""

from __future__ import annotations

from typing import Any

from toolkit import ToolkitError

from .retrieval_tab import (
    _integer,
    _number,
    add_examples,
    check_encoder,
    describe_repetition,
    encoder_picker,
    example_label,
    example_trials,
    pick_trial,
    picker,
    pipeline_lock,
    select_subject,
    shared_model,
)
from .trials_tab import _error, _gr

#: Validated ranges of the generation controls (the demo prior is small: 100 steps is already slow on a CPU).
SEED_RANGE = (0, 2**31 - 1)
STEPS_RANGE = (1, 100)
GUIDANCE_RANGE = (0.0, 20.0)
DEFAULTS = {"seed": 0, "steps": 20, "guidance": 5.0}
IMAGE_SIZE = 256
#: Label of the semantic-path image (the reconstruction's caption drawn by the demo's stimulus renderer).
SEMANTIC_LABEL = "Semantic path (caption -> renderer)"

# The stimuli (128 px in the demo bundle) fill their boxes like the 256 px reconstructions beside them.
CSS = "#reconstruct-stimulus img {width: 100%; height: 100%; object-fit: contain;}"


class ReconstructTab:
    """Handlers and layout of the "Reconstruct & caption" tab.

    Parameters
    ----------
    pipeline : toolkit.pipeline.DecodingPipeline
        The app's pipeline (shared with the other decoding tabs).
    """

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline

    def reconstruct(
        self,
        subject: str,
        condition: int,
        repetition: int,
        encoder: str,
        seed: int,
        steps: int,
        guidance: float,
    ) -> tuple:
        """Reconstruct and caption one test trial (API ``/reconstruct``).

        Parameters
        ----------
        subject : str
            Subject label.
        condition : int
            Test trial (image condition), 0-based.
        repetition : int
            Repetition, 0-based, or ``-1`` for the average of all repetitions.
        encoder : str
            One of the bundle's encoders.
        seed : int
            Seed of the prior's noise (the controls reuse it), 0 to 2**31 - 1.
        steps : int
            Denoising steps of the prior, 1 to 100.
        guidance : float
            Classifier-free guidance scale of the prior, 0 to 20 (1 = none).

        Returns
        -------
        tuple
            ``(stimulus path, reconstruction, shuffled control, prior-only control, captions Markdown, metrics
            Markdown, semantic-path image)``; the images are PIL images (the semantic one ``None`` when the bundle
            has no semantic path).
        """
        try:
            return self._reconstruct(subject, condition, repetition, encoder, seed, steps, guidance)
        except ToolkitError as err:
            raise _error(err) from None

    def _reconstruct(self, subject, condition, repetition, encoder, seed, steps, guidance) -> tuple:
        from toolkit.metrics import pixcorr, ssim

        trials, eeg, condition, repetition = pick_trial(self.pipeline, subject, condition, repetition)
        encoder = check_encoder(self.pipeline, encoder)
        seed = _integer(seed, "seed", *SEED_RANGE)
        steps = _integer(steps, "steps", *STEPS_RANGE)
        guidance = _number(guidance, "guidance", *GUIDANCE_RANGE)
        shared_model(self.pipeline, "encoder", encoder)
        shared_model(self.pipeline, "prior")
        shared_model(self.pipeline, "vision")
        # The prior's scheduler holds the timesteps of the running call: one generation at a time per pipeline
        # (shared with every tab that generates).
        with pipeline_lock(self.pipeline, "generation"):
            out = self.pipeline.reconstruct(
                eeg, subject, encoder=encoder, seed=seed, num_inference_steps=steps, guidance_scale=guidance,
                size=IMAGE_SIZE,
            )
        # Captions of the same image embeddings the images were decoded from (one captioner call for all three).
        import numpy as np

        embeds = np.concatenate([out.image_embeds, out.shuffled_embeds, out.prior_only_embeds])
        captions = self.pipeline.vision.captioner(embeds)
        stimulus = trials.images.image_path(condition)
        images = [out.images[0], out.shuffled_images[0], out.prior_only_images[0]]
        names = ["EEG reconstruction", "shuffled EEG (control)", "prior only (control)"]
        semantic = out.semantic_images[0] if out.semantic_images is not None else None
        scored, scored_names = list(images), list(names)
        if semantic is not None:
            scored.append(semantic)
            scored_names.append(SEMANTIC_LABEL)
        pix = pixcorr(scored, [str(stimulus)] * len(scored), per_pair=True)
        sim = ssim(scored, [str(stimulus)] * len(scored), per_pair=True)
        truth = trials.images.concept_of(condition)
        what = describe_repetition(repetition)
        caption_md = "\n".join(
            [
                f"**Stimulus:** *{truth}* ({subject}, test trial {condition}, {what}; encoder {encoder}, seed {seed}, "
                f"{steps} steps, guidance {guidance:g})",
                "",
                *(f"- **{name}:** {text}" for name, text in zip(names, captions, strict=True)),
            ]
        )
        metrics_md = "\n".join(
            [
                "| Image | PixCorr ↑ | SSIM ↑ |",
                "|---|---|---|",
                *(f"| {name} | {p:.3f} | {s:.3f} |" for name, p, s in zip(scored_names, pix, sim, strict=True)),
                "",
                "One trial is noisy: compare against the controls, and see the notebooks for test-set averages.",
            ]
        )
        # The semantic image comes last so the first six outputs keep their API positions.
        return str(stimulus), *images, caption_md, metrics_md, semantic

    def select_subject(self, subject: str) -> tuple:
        """Refresh the trial and repetition choices for ``subject`` (API ``/reconstruct_subject``)."""
        return select_subject(self.pipeline, subject)

    def examples(self) -> list[list]:
        """Example inputs of ``/reconstruct``: two trials (see :func:`~demos.retrieval_tab.example_trials`) with the
        default encoder and generation settings."""
        encoder = self.pipeline.encoders[0]
        return [
            [subject, condition, repetition, encoder, DEFAULTS["seed"], DEFAULTS["steps"], DEFAULTS["guidance"]]
            for subject, condition, repetition in example_trials(self.pipeline, 2)
        ]

    def build(self, *, cache_examples: bool | str = False) -> dict:
        """Create the tab's components in the current Blocks/Tab context and wire the events.

        Parameters
        ----------
        cache_examples : bool | str
            How the examples' outputs are stored (see :func:`demos.retrieval_tab.add_examples`).

        Returns
        -------
        dict
            The components by name (``"examples"``: the :class:`gradio.Examples`).
        """
        gr = _gr()
        gr.Markdown(
            "EEG → encoder embedding → diffusion prior → image embedding → decoder. The two controls use the same "
            "seed: the prior conditioned on another trial's EEG, and the prior without EEG. The semantic path "
            "captions the same image embedding and draws the caption (demo bundle: with the stimulus renderer)."
        )
        with gr.Row():
            subject, condition, repetition = picker(self.pipeline)
            encoder = encoder_picker(self.pipeline)
        with gr.Row():
            seed = gr.Number(DEFAULTS["seed"], label="Seed", precision=0, minimum=SEED_RANGE[0], maximum=SEED_RANGE[1])
            steps = gr.Slider(*STEPS_RANGE, value=DEFAULTS["steps"], step=1, label="Prior steps")
            guidance = gr.Slider(*GUIDANCE_RANGE, value=DEFAULTS["guidance"], step=0.5, label="Guidance scale")
        run = gr.Button("Reconstruct", variant="primary")
        examples_slot = gr.Column()  # filled below, once the outputs exist
        with gr.Row(equal_height=True):
            kwargs = {"interactive": False, "height": 260}
            stimulus = gr.Image(type="filepath", label="Stimulus", elem_id="reconstruct-stimulus", **kwargs)
            recon = gr.Image(type="pil", label="EEG reconstruction", **kwargs)
            semantic = gr.Image(type="pil", label=SEMANTIC_LABEL, **kwargs)
            shuffled = gr.Image(type="pil", label="Shuffled EEG (control)", **kwargs)
            prior_only = gr.Image(type="pil", label="Prior only (control)", **kwargs)
        with gr.Row(equal_height=False):
            captions = gr.Markdown()
            metrics = gr.Markdown()
        subject.input(
            self.select_subject, inputs=[subject], outputs=[condition, repetition], api_name="reconstruct_subject"
        )
        inputs = [subject, condition, repetition, encoder, seed, steps, guidance]
        outputs = [stimulus, recon, shuffled, prior_only, captions, metrics, semantic]
        run.click(
            self.reconstruct,
            inputs=inputs,
            outputs=outputs,
            api_name="reconstruct",
            concurrency_limit=1,  # the generation is serialised anyway (see _reconstruct)
        )
        rows = self.examples()
        with examples_slot:
            examples = add_examples(
                rows, inputs=inputs, outputs=outputs, fn=self.reconstruct, cache=cache_examples,
                api_name="reconstruct_example",
                labels=[f"{example_label(self.pipeline, *row[:3])} · {row[3]}" for row in rows],
            )
        return {
            "subject": subject, "condition": condition, "repetition": repetition, "encoder": encoder, "seed": seed,
            "steps": steps, "guidance": guidance, "run": run, "stimulus": stimulus, "recon": recon,
            "shuffled": shuffled, "prior_only": prior_only, "captions": captions, "metrics": metrics,
            "semantic": semantic, "examples": examples,
        }
