"""The "Saliency" tab: which channels and times drive an encoder's match between a trial and its image.

:meth:`SaliencyTab.saliency` (API ``/saliency``) attributes the cosine similarity (or the margin over the other
test images) of one test trial to its true image with :func:`toolkit.explain.attribute` (integrated gradients,
gradient saliency or occlusion) and draws the maps with :mod:`toolkit.viz.attribution` (plotly): a scalp map at the
latency slider, the channel × time heatmap and the time course. Beside them, test-time ablation of the subject's whole
test split (:func:`toolkit.explain.ablate_windows` / :func:`~toolkit.explain.ablate_regions`): retrieval accuracy
with only one time window or one region kept. Ablations cost seconds; they are computed once per subject and
encoder and cached, as are the last attributions (so moving the slider only redraws the map).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from toolkit import ToolkitError

from .retrieval_tab import (
    AVERAGE,
    _number,
    add_examples,
    check_encoder,
    describe_repetition,
    encoder_picker,
    example_label,
    pick_trial,
    picker,
    pipeline_lock,
    select_subject,
    shared_model,
)
from .trials_tab import _error, _gr

#: Attribution methods offered, with the settings that keep one request well under 1.5 s on a CPU.
METHODS = {
    "ig": ("Integrated gradients", {"n_steps": 8}),
    "saliency": ("Gradient saliency", {}),
    "occlusion": (
        "Occlusion (1 channel × 200 ms)",
        {"sliding_window_shapes": (1, 50), "strides": (1, 50), "perturbations_per_eval": 128},
    ),
}
TARGETS = {
    "similarity": "cosine similarity to the true image",
    "margin": "margin of the true image over the other test images",
}
DEFAULT_LATENCY = 0.2
_CACHE_SIZE = 32


class SaliencyTab:
    """Handlers and layout of the "Saliency" tab.

    Parameters
    ----------
    pipeline : toolkit.pipeline.DecodingPipeline
        The app's pipeline (shared with the other decoding tabs).
    """

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline
        self._lock = threading.Lock()
        self._attributions: OrderedDict[tuple, Any] = OrderedDict()
        self._ablations: dict[tuple[str, str], tuple[Any, Any]] = {}

    # -- cached library calls ---------------------------------------------------------------------------------------
    def _subject_id(self, encoder: str, subject: str) -> list[int] | None:
        ids = (self.pipeline.manifest["components"]["encoders"][encoder].get("subject_ids") or {})
        return [int(ids[subject])] if subject in ids else None

    def attribution(
        self, subject: str, condition: int, repetition: int, encoder: str, method: str, target: str, eeg: Any
    ) -> Any:
        """``(n_chans, n_times)`` attribution of one trial's match to its own test image (cached, LRU)."""
        key = (subject, condition, repetition, encoder, method, target)
        with self._lock:
            if key in self._attributions:
                self._attributions.move_to_end(key)
                return self._attributions[key]
        from toolkit.explain import attribute

        gallery, _ = self.pipeline.gallery("image", normalize=True)
        options = dict(METHODS[method][1])
        if method != "saliency":
            # Baseline: the subject's mean test trial (a "typical" signal; zeros would be far from real EEG).
            averaged = self.pipeline.trials(subject, "test", average=True).data[:, 0]
            options["baselines"] = averaged.mean(axis=0, keepdims=True)
        model = shared_model(self.pipeline, "encoder", encoder)
        # One attribution per encoder at a time: it freezes the encoder's parameters (requires_grad) for its
        # duration and restores them after, which concurrent attributions would interleave.
        with pipeline_lock(self.pipeline, f"attribution:{encoder}"):
            attr = attribute(
                model, eeg, method=method, target=target, index=[condition], image_embeds=gallery, normalize=True,
                subject_ids=self._subject_id(encoder, subject), **options,
            )[0]
        with self._lock:
            self._attributions[key] = attr
            while len(self._attributions) > _CACHE_SIZE:
                self._attributions.popitem(last=False)
        return attr

    def ablations(self, subject: str, encoder: str) -> tuple[Any, Any]:
        """``(window ablation, region ablation)`` of the subject's averaged test split (cached per encoder)."""
        key = (subject, encoder)
        with pipeline_lock(self, f"ablations:{subject}:{encoder}"):  # seconds of work: computed once
            if key not in self._ablations:
                self._ablations[key] = self._ablate(subject, encoder)
        return self._ablations[key]

    def _ablate(self, subject: str, encoder: str) -> tuple[Any, Any]:
        from toolkit.explain import ablate_regions, ablate_windows

        trials = self.pipeline.trials(subject, "test", average=True)
        eeg = trials.data[:, 0]
        gallery, _ = self.pipeline.gallery("image", normalize=True)
        ids = self._subject_id(encoder, subject)
        kwargs = {
            "normalize": True, "times": trials.times, "ch_names": trials.ch_names, "progress": False,
            "subject_ids": None if ids is None else ids * len(eeg),
        }
        model = shared_model(self.pipeline, "encoder", encoder)
        windows = ablate_windows(model, eeg, gallery, analyses=("sliding",), **kwargs)
        regions = ablate_regions(model, eeg, gallery, **kwargs)
        return windows, regions

    # -- handlers -------------------------------------------------------------------------------------------------
    def saliency(
        self,
        subject: str,
        condition: int,
        repetition: int,
        encoder: str,
        method: str,
        target: str,
        latency: float,
    ) -> tuple:
        """Attribution maps of one test trial and the subject's ablation bars (API ``/saliency``).

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
        method : str
            ``"ig"``, ``"saliency"`` or ``"occlusion"``.
        target : str
            ``"similarity"`` or ``"margin"``.
        latency : float
            Seconds: the scalp map shows the attribution at the nearest sample.

        Returns
        -------
        tuple
            Plotly figures ``(topomap, heatmap, time course, window ablation, region ablation)`` and a summary
            Markdown.
        """
        try:
            return self._saliency(subject, condition, repetition, encoder, method, target, latency)
        except ToolkitError as err:
            raise _error(err) from None

    def _saliency(self, subject, condition, repetition, encoder, method, target, latency) -> tuple:
        from toolkit.explain.aggregate import peak, time_course
        from toolkit.viz.attribution import (
            plot_attribution_heatmap,
            plot_attribution_time_course,
            plot_attribution_topomaps,
            plot_region_bars,
        )

        trials, eeg, condition, repetition = pick_trial(self.pipeline, subject, condition, repetition)
        encoder = check_encoder(self.pipeline, encoder)
        if not isinstance(method, str) or method not in METHODS:  # a list from the API is unhashable
            raise ToolkitError(f"Unknown attribution method {method!r}; choose one of {', '.join(METHODS)}.")
        if not isinstance(target, str) or target not in TARGETS:  # a list from the API is unhashable
            raise ToolkitError(f"Unknown attribution target {target!r}; choose one of {', '.join(TARGETS)}.")
        times = trials.times
        latency = _number(latency, "latency (s)", float(times[0]), float(times[-1]))
        attr = self.attribution(subject, condition, repetition, encoder, method, target, eeg)
        ch_names = list(trials.ch_names)
        label = METHODS[method][0]
        topomap = plot_attribution_topomaps(
            attr, ch_names, times, latencies=[latency], engine="plotly", height=340,
            title=f"{label} at {latency * 1000:.0f} ms",
        )
        heatmap = plot_attribution_heatmap(attr, ch_names, times, engine="plotly", height=520, title="Channels × time")
        course = plot_attribution_time_course(
            attr, times, ch_names=ch_names, by_group=True, engine="plotly", height=300,
            title="Mean |attribution| over time, per region",
        )
        windows, regions = self.ablations(subject, encoder)
        chance = 100 * windows.chance["top1"]
        window_bars = plot_region_bars(
            {r["label"]: 100 * r["top1"] for r in windows.select("sliding")}, chance=chance, engine="plotly",
            height=300, title="Only one 100 ms window kept", ylabel="test top-1 (%)",
        )
        region_bars = plot_region_bars(
            {r["region"]: 100 * r["top1"] for r in regions.select("region_keep")}, chance=chance, engine="plotly",
            height=300, title="Only one region kept", ylabel="test top-1 (%)",
        )
        peak_time, _ = peak(time_course(attr), times)
        what = describe_repetition(repetition)
        full = windows.select("full")[0]["top1"]
        summary = (
            f"**{label}** of the {TARGETS[target]} (*{trials.images.concept_of(condition)}*; {subject}, test trial "
            f"{condition}, {what}; encoder {encoder}). Attribution peaks at **{peak_time * 1000:.0f} ms**. "
            f"Ablation bars: top-1 of the {windows.n_trials} averaged test trials among {windows.gallery_size} images "
            f"with the rest of the signal replaced by its mean (all kept: {100 * full:.1f} %, chance "
            f"{chance:.1f} %)."
        )
        return topomap, heatmap, course, window_bars, region_bars, summary

    def select_subject(self, subject: str) -> tuple:
        """Refresh the trial and repetition choices for ``subject`` (API ``/saliency_subject``)."""
        return select_subject(self.pipeline, subject)

    def examples(self) -> list[list]:
        """Example inputs of ``/saliency``: integrated gradients of two averaged trials of the first subject (one
        subject: its ablations are computed once for both)."""
        subject, encoder = self.pipeline.subjects[0], self.pipeline.encoders[0]
        n_conditions = self.pipeline.trials(subject, "test").n_conditions
        latency = self._default_latency(subject)
        return [
            [subject, condition, AVERAGE, encoder, "ig", "similarity", latency]
            for condition in sorted({0, n_conditions // 2})
        ]

    def _default_latency(self, subject: str) -> float:
        times = self.pipeline.trials(subject, "test").times
        return min(max(DEFAULT_LATENCY, float(times[0])), float(times[-1]))

    # -- layout -----------------------------------------------------------------------------------------------------
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
        subject0 = self.pipeline.subjects[0]
        times = self.pipeline.trials(subject0, "test").times
        gr.Markdown(
            "Attribution of one trial's match to its own image over channels and time, and test-time ablation of "
            "the subject's test split. Attributions explain the model, not the brain: check them against the "
            "ablations and the sanity checks in the notebooks."
        )
        with gr.Row():
            subject, condition, repetition = picker(self.pipeline)
            encoder = encoder_picker(self.pipeline)
        with gr.Row():
            method = gr.Radio([(v[0], k) for k, v in METHODS.items()], value="ig", label="Method")
            target = gr.Radio([(v, k) for k, v in TARGETS.items()], value="similarity", label="Target")
            latency = gr.Slider(
                float(times[0]), float(times[-1]), value=self._default_latency(subject0),
                step=float(times[1] - times[0]), label="Latency of the scalp map (s)",
            )
        run = gr.Button("Explain", variant="primary")
        examples_slot = gr.Column()  # filled below, once the outputs exist
        summary = gr.Markdown()
        with gr.Row(equal_height=False):
            with gr.Column():
                topomap = gr.Plot(label="Scalp map")
                course = gr.Plot(label="Time course")
            heatmap = gr.Plot(label="Channels × time")
        with gr.Row(equal_height=False):
            window_bars = gr.Plot(label="Window ablation")
            region_bars = gr.Plot(label="Region ablation")
        subject.input(
            self.select_subject, inputs=[subject], outputs=[condition, repetition], api_name="saliency_subject"
        )
        inputs = [subject, condition, repetition, encoder, method, target, latency]
        outputs = [topomap, heatmap, course, window_bars, region_bars, summary]
        gr.on(
            [run.click, latency.release],
            self.saliency,
            inputs=inputs,
            outputs=outputs,
            api_name="saliency",
            concurrency_limit=2,
            trigger_mode="always_last",
        )
        rows = self.examples()
        with examples_slot:
            examples = add_examples(
                rows, inputs=inputs, outputs=outputs, fn=self.saliency, cache=cache_examples,
                api_name="saliency_example",
                labels=[f"{example_label(self.pipeline, *row[:3])} · {METHODS[row[4]][0]}" for row in rows],
            )
        return {
            "subject": subject, "condition": condition, "repetition": repetition, "encoder": encoder,
            "method": method, "target": target, "latency": latency, "run": run, "summary": summary,
            "topomap": topomap, "heatmap": heatmap, "course": course, "window_bars": window_bars,
            "region_bars": region_bars, "examples": examples,
        }
