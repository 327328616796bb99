"""The "Trials" tab: browse a bundle's trials — stimulus image, butterfly ERP, topomap at a latency, metadata.

The handlers are plain methods of :class:`TrialsTab` (callable and testable without a server); each one is wired to
a named API endpoint (``trials_select``, ``trials_concept``, ``trial``). The work is done by
:class:`toolkit.viz.TrialBrowser`, which caches the opened store, the memory-mapped trial sets and the MNE Info.
"""

from __future__ import annotations

from typing import Any

from toolkit import ToolkitError
from toolkit.viz import TrialBrowser

DEFAULT_LATENCY = 0.2  # seconds; visual ERPs are strong around 0.1-0.3 s

# Small stimuli (the simulator's are 128 px) and the topomap fill their boxes instead of sitting in a corner.
# The top padding keeps the topomap's title clear of the component's label.
CSS = (
    "#trials-stimulus img, #trials-topomap img "
    "{width: 100%; height: 100%; object-fit: contain; padding-top: 30px; box-sizing: border-box;}"
)


def _gr() -> Any:
    from toolkit.utils import require

    return require("gradio", extra="demo", purpose="the Gradio app")


def _error(err: Exception) -> Exception:
    """A Gradio error carrying the toolkit's one-sentence message (shown in the page, no traceback)."""
    return _gr().Error(str(err), print_exception=False)


class TrialsTab:
    """Handlers and layout of the "Trials" tab.

    Parameters
    ----------
    browser : toolkit.viz.TrialBrowser
        The browser over the bundle's store.
    """

    def __init__(self, browser: TrialBrowser) -> None:
        self.browser = browser

    # -- defaults ---------------------------------------------------------------------------------------------
    def default_selection(self) -> dict:
        """The first subject, the test split if there is one, its first concept and image."""
        subjects = self.browser.subjects
        if not subjects:
            raise ToolkitError("The bundle's store holds no subjects; rebuild the bundle.")
        subject = subjects[0]
        splits = self.browser.splits(subject)
        split = "test" if "test" in splits else splits[0]
        concept = self.browser.concepts(subject, split)[0]
        condition = self.browser.conditions(subject, split, concept)[0][1]
        return {"subject": subject, "split": split, "concept": concept, "condition": condition}

    def _latency_in(self, subject: str, split: str, latency: float) -> float:
        times = self.browser.trials(subject, split).times
        return float(min(max(latency, times[0]), times[-1]))

    # -- handlers (named API endpoints) -----------------------------------------------------------------------
    def show_trial(
        self, subject: str, split: str, condition: int, repetition: int, average: bool, latency: float
    ) -> tuple:
        """Render one selection (API ``trial``).

        Parameters
        ----------
        subject, split : str
            Which trial set (``"sub-01"``, ``"test"``).
        condition : int
            Image condition, 0-based.
        repetition : int
            Repetition shown when ``average`` is false, 0-based.
        average : bool
            Show the average of all repetitions instead of a single trial.
        latency : float
            Latency in seconds for the ERP marker and the topomap.

        Returns
        -------
        tuple
            ``(stimulus image path or None, plotly butterfly figure, topomap RGB array, metadata Markdown)``.
        """
        try:
            view = self.browser.render(
                subject, split, condition, repetition=repetition, average=bool(average), latency=latency
            )
        except ToolkitError as err:
            raise _error(err) from None
        image = str(view.image_path) if view.image_path is not None else None
        return image, view.erp, view.topomap, view.metadata_markdown()

    def select_concept(
        self, subject: str, split: str, concept: str, repetition: int, average: bool, latency: float
    ) -> tuple:
        """Choose a concept: list its images and show the first (API ``trials_concept``).

        Returns
        -------
        tuple
            ``(image dropdown update, *show_trial outputs)``.
        """
        gr = _gr()
        try:
            choices = self.browser.conditions(subject, split, concept)
        except ToolkitError as err:
            raise _error(err) from None
        condition = choices[0][1]
        view = self.show_trial(subject, split, condition, repetition, average, latency)
        return (gr.update(choices=choices, value=condition), *view)

    def select_split(self, subject: str, split: str, average: bool, latency: float) -> tuple:
        """Choose a subject or split: refresh every choice and show its first trial (API ``trials_select``).

        A split the subject does not have falls back to its test split (or its first split).

        Returns
        -------
        tuple
            ``(split, concept, image, repetition, latency updates, *show_trial outputs)``.
        """
        gr = _gr()
        try:
            splits = self.browser.splits(subject)
            if split not in splits:
                split = "test" if "test" in splits else splits[0]
            ts = self.browser.trials(subject, split)
            concepts = self.browser.concepts(subject, split)
            conditions = self.browser.conditions(subject, split, concepts[0])
            latency = self._latency_in(subject, split, float(latency))
        except ToolkitError as err:
            raise _error(err) from None
        except (TypeError, ValueError):
            raise _error(ToolkitError(f"latency must be a number of seconds; got {latency!r}.")) from None
        condition = conditions[0][1]
        updates = (
            gr.update(choices=splits, value=split),
            gr.update(choices=concepts, value=concepts[0]),
            gr.update(choices=conditions, value=condition),
            gr.update(minimum=0, maximum=max(ts.n_repetitions - 1, 1), value=0, interactive=ts.n_repetitions > 1),
            gr.update(minimum=float(ts.times[0]), maximum=float(ts.times[-1]), step=1.0 / ts.sfreq, value=latency),
        )
        return (*updates, *self.show_trial(subject, split, condition, 0, average, latency))

    # -- layout -----------------------------------------------------------------------------------------------
    def build(self) -> dict:
        """Create the tab's components inside the current Blocks/Tab context and wire the events.

        Returns
        -------
        dict
            The components by name (for tests and for other tabs).
        """
        gr = _gr()
        sel = self.default_selection()
        browser = self.browser
        ts = browser.trials(sel["subject"], sel["split"])
        # The repetition slider starts at the largest repetition count of the subject's splits, so that API calls
        # made without a browser session (which keep the initial limits) are not refused for any split.
        max_rep = max(browser.trials(sel["subject"], s).n_repetitions for s in browser.splits(sel["subject"]))
        latency = self._latency_in(sel["subject"], sel["split"], DEFAULT_LATENCY)
        first = self.show_trial(sel["subject"], sel["split"], sel["condition"], 0, True, latency)

        with gr.Row():
            subject = gr.Dropdown(browser.subjects, value=sel["subject"], label="Subject")
            split = gr.Dropdown(browser.splits(sel["subject"]), value=sel["split"], label="Split")
            # Custom values are allowed so that API calls may name any split's concepts and images; the handlers
            # validate them.
            concept = gr.Dropdown(
                browser.concepts(sel["subject"], sel["split"]),
                value=sel["concept"],
                label="Concept",
                allow_custom_value=True,
            )
            condition = gr.Dropdown(
                browser.conditions(sel["subject"], sel["split"], sel["concept"]),
                value=sel["condition"],
                label="Image",
                allow_custom_value=True,
            )
        with gr.Row():
            repetition = gr.Slider(
                0, max(max_rep - 1, 1), value=0, step=1, label="Repetition (single trial, numbered from 0)"
            )
            average = gr.Checkbox(value=True, label="Average of all repetitions")
            latency_slider = gr.Slider(
                float(ts.times[0]), float(ts.times[-1]), value=latency, step=1.0 / ts.sfreq, label="Latency (s)"
            )
        with gr.Row(equal_height=False):
            stimulus = gr.Image(
                value=first[0],
                type="filepath",
                label="Stimulus",
                interactive=False,
                height=260,
                format="png",
                elem_id="trials-stimulus",
            )
            topomap = gr.Image(
                value=first[2],
                type="numpy",
                label="Topomap at the latency",
                elem_id="trials-topomap",
                interactive=False,
                height=260,
                format="png",
            )
            with gr.Column(scale=2):
                metadata = gr.Markdown(first[3])
        erp = gr.Plot(value=first[1], label="Butterfly ERP (hover a trace for its channel)")

        view = [stimulus, erp, topomap, metadata]
        gr.on(
            [subject.input, split.input],
            self.select_split,
            inputs=[subject, split, average, latency_slider],
            outputs=[split, concept, condition, repetition, latency_slider, *view],
            api_name="trials_select",
            trigger_mode="always_last",
        )
        gr.on(
            [concept.input],
            self.select_concept,
            inputs=[subject, split, concept, repetition, average, latency_slider],
            outputs=[condition, *view],
            api_name="trials_concept",
            trigger_mode="always_last",
        )
        gr.on(
            [condition.input, repetition.release, average.input, latency_slider.release],
            self.show_trial,
            inputs=[subject, split, condition, repetition, average, latency_slider],
            outputs=view,
            api_name="trial",
            trigger_mode="always_last",
            show_progress="minimal",
        )
        return {
            "subject": subject,
            "split": split,
            "concept": concept,
            "condition": condition,
            "repetition": repetition,
            "average": average,
            "latency": latency_slider,
            "stimulus": stimulus,
            "erp": erp,
            "topomap": topomap,
            "metadata": metadata,
        }
