"""The "Retrieval" tab: EEG → top-k test images for every encoder of the bundle, k-way accuracy, protocol card.

The handlers are plain methods of :class:`RetrievalTab` (callable without a server); the main one is wired to the
API endpoint ``/retrieve``. The work is done by :class:`toolkit.pipeline.DecodingPipeline`, shared by every decoding
tab of the app (it loads each model once). This module also holds the small trial picker (subject, trial,
repetition) that the reconstruction and saliency tabs reuse.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from toolkit import ToolkitError

from .trials_tab import _error, _gr

AVERAGE = -1  # the "repetition" meaning: the average of all repetitions (the test convention)
DEFAULT_K = 5
ACCURACY_KS = (2, 4, 10, 50, 100, 200)  # k of the k-way curve (those above the gallery size are left out)
_RANKING_CACHE = 4096  # cached rankings (of one single-repetition trial, or of a subject's averaged trials)
#: Concurrent ``/retrieve`` requests. The handler is read-only and thread-safe (locked caches, models loaded under
#: :func:`shared_model`, inference only); once a subject's caches are warm a request is a few milliseconds of
#: lookups, so queueing behind a small limit would only add waiting (and the queue's status messages).
RETRIEVE_CONCURRENCY = 16


# -- models and state shared by the decoding tabs ---------------------------------------------------------------------
_LOCKS: dict[tuple[int, str], threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def pipeline_lock(pipeline: Any, what: str) -> threading.Lock:
    """The app-wide lock named ``what`` of ``pipeline`` (one per object and name, shared by every tab).

    The tabs use ``"encoder:<name>"``, ``"vision"`` and ``"prior"`` to load models once, ``"generation"`` around
    the diffusion prior, whose scheduler holds the timesteps of the running call (one generation at a time), and
    ``"attribution:<encoder>"`` around attributions, which freeze the encoder's parameters while they run. A tab
    passes itself as ``pipeline`` for the locks of its own caches.
    """
    with _LOCKS_GUARD:
        return _LOCKS.setdefault((id(pipeline), what), threading.Lock())


def shared_model(pipeline: Any, kind: str, name: str | None = None) -> Any:
    """``pipeline.encoder(name)``, ``pipeline.vision`` or ``pipeline.prior``, loaded by one thread only.

    The pipeline loads its models lazily on first use; when concurrent requests reach a model that is not loaded
    yet, the first one loads it while the others wait for it instead of loading copies of their own.

    Parameters
    ----------
    pipeline : toolkit.pipeline.DecodingPipeline
        The app's pipeline.
    kind : str
        ``"encoder"``, ``"vision"`` or ``"prior"``.
    name : str | None
        Encoder name (``kind="encoder"``; ``None``: the default encoder).

    Returns
    -------
    object
        The loaded model.
    """
    if kind == "encoder":
        name = pipeline.encoders[0] if name is None else name
        with pipeline_lock(pipeline, f"encoder:{name}"):
            return pipeline.encoder(name)
    if kind not in ("vision", "prior"):
        raise ToolkitError(f"Unknown model kind {kind!r}; use 'encoder', 'vision' or 'prior'.")
    with pipeline_lock(pipeline, kind):
        return getattr(pipeline, kind)


# -- the trial picker shared by the decoding tabs -------------------------------------------------------------------
def trial_choices(pipeline: Any, subject: str) -> list[tuple[str, int]]:
    """``(label, condition)`` of every test trial of ``subject`` (label: ``"3: red_plain_star"``)."""
    trials = pipeline.trials(subject, "test")
    return [(f"{c}: {trials.images.concept_of(c)}", c) for c in range(trials.n_conditions)]


def repetition_choices(pipeline: Any, subject: str) -> list[tuple[str, int]]:
    """``(label, repetition)``: the average (:data:`AVERAGE`) first, then every single repetition."""
    n = pipeline.trials(subject, "test").n_repetitions
    return [(f"Average of {n} repetitions", AVERAGE), *((f"Repetition {r + 1}", r) for r in range(n))]


def pick_trial(pipeline: Any, subject: Any, condition: Any, repetition: Any) -> tuple[Any, np.ndarray, int, int]:
    """Validate a selection and return ``(test TrialSet, eeg (1, n_chans, n_times), condition, repetition)``.

    Raises
    ------
    ToolkitError
        Naming the bad field (empty selection, unknown subject, trial or repetition out of range).
    """
    if subject in (None, ""):
        raise ToolkitError("Choose a subject.")
    if subject not in pipeline.subjects:
        raise ToolkitError(
            f"Unknown subject {subject!r}; the {pipeline.bundle} bundle has {', '.join(pipeline.subjects)}."
        )
    trials = pipeline.trials(subject, "test")
    condition = _integer(condition, "trial", 0, trials.n_conditions - 1)
    last = trials.n_repetitions - 1
    repetition = AVERAGE if repetition in (None, "") else _integer(repetition, "repetition", AVERAGE, last)
    data = trials.data[condition]
    eeg = data.mean(axis=0) if repetition == AVERAGE else data[repetition]
    return trials, np.asarray(eeg, dtype=np.float32)[None], condition, repetition


def picker(pipeline: Any) -> tuple[Any, Any, Any]:
    """Create the subject, trial and repetition dropdowns (first subject, first trial, average) in the current
    Blocks context. Custom values let API calls reach the handlers, which name the valid choices."""
    gr = _gr()
    subject0 = pipeline.subjects[0]
    choices = trial_choices(pipeline, subject0)
    subject = gr.Dropdown(pipeline.subjects, value=subject0, label="Subject (test split)", allow_custom_value=True)
    condition = gr.Dropdown(choices, value=choices[0][1], label="Trial (test image)", allow_custom_value=True)
    repetition = gr.Dropdown(
        repetition_choices(pipeline, subject0), value=AVERAGE, label="EEG", allow_custom_value=True
    )
    return subject, condition, repetition


def select_subject(pipeline: Any, subject: str) -> tuple:
    """Updates of the trial and repetition dropdowns for ``subject`` (its first trial, the average)."""
    gr = _gr()
    try:
        if subject not in pipeline.subjects:
            raise ToolkitError(f"Unknown subject {subject!r}; choose one of {', '.join(pipeline.subjects)}.")
        trials = trial_choices(pipeline, subject)
        reps = repetition_choices(pipeline, subject)
    except ToolkitError as err:
        raise _error(err) from None
    return gr.update(choices=trials, value=trials[0][1]), gr.update(choices=reps, value=AVERAGE)


def example_trials(pipeline: Any, n: int = 3) -> list[tuple[str, int, int]]:
    """``n`` example selections ``(subject, test trial, repetition)`` spread over the subjects and the test trials.

    The first is the first subject's first trial averaged over repetitions (what the tabs open on); the others take
    the next subjects (cycling) and trials further into the test split, every third one a single repetition.
    """
    subjects = pipeline.subjects
    n_conditions = pipeline.trials(subjects[0], "test").n_conditions
    step = max(1, n_conditions // max(n, 1))
    out = []
    for i in range(n):
        repetition = 0 if i % 3 == 2 else AVERAGE
        out.append((subjects[i % len(subjects)], (i * step) % n_conditions, repetition))
    return out


def add_examples(
    rows: list[list],
    *,
    inputs: list,
    outputs: list,
    fn: Any,
    cache: bool | str,
    api_name: str,
    labels: list[str] | None = None,
) -> Any:
    """A :class:`gradio.Examples` block in the current Blocks context (see :func:`demos.app.build_app`).

    Parameters
    ----------
    rows : list of list
        One list of input values per example.
    inputs, outputs : list of gradio components
        The handler's inputs and outputs.
    fn : callable
        The handler.
    cache : bool | str
        ``True``: outputs computed when the server starts and stored (a visitor sees them at once); ``"lazy"``:
        computed at the first click and stored; ``False``: not stored, a click fills the inputs and runs ``fn``.
    api_name : str
        Name of the example event's API endpoint.
    labels : list of str | None
        Text shown for each example instead of its values.

    Returns
    -------
    gradio.Examples
    """
    gr = _gr()
    if cache not in (True, False, "lazy"):
        raise ToolkitError(f"cache_examples must be True, False or 'lazy'; got {cache!r}.")
    return gr.Examples(
        rows, inputs=inputs, outputs=outputs, fn=fn, cache_examples=bool(cache),
        cache_mode="lazy" if cache == "lazy" else "eager", run_on_click=not cache, api_name=api_name,
        example_labels=labels, label="Examples" + (" (precomputed)" if cache is True else ""),
    )


def encoder_picker(pipeline: Any) -> Any:
    """Create the encoder dropdown (first encoder) in the current Blocks context. A custom value lets API calls reach
    the handler, whose :func:`check_encoder` names the valid choices."""
    gr = _gr()
    return gr.Dropdown(pipeline.encoders, value=pipeline.encoders[0], label="Encoder", allow_custom_value=True)


def describe_repetition(repetition: int) -> str:
    """``"average of all repetitions"`` for :data:`AVERAGE`, else ``"repetition 3"`` (1-based), for summaries."""
    return "average of all repetitions" if repetition == AVERAGE else f"repetition {repetition + 1}"


def example_label(pipeline: Any, subject: str, condition: int, repetition: int) -> str:
    """``"sub-01 · trial 3: red_plain_star · average"`` (the text of an example button)."""
    concept = pipeline.trials(subject, "test").images.concept_of(condition)
    what = "average" if repetition == AVERAGE else f"repetition {repetition + 1}"
    return f"{subject} · trial {condition}: {concept} · {what}"


def check_encoder(pipeline: Any, encoder: Any) -> str:
    """``encoder`` if the bundle has it, else a ToolkitError listing the encoders."""
    if encoder in (None, ""):
        raise ToolkitError(f"Choose an encoder: {', '.join(pipeline.encoders)}.")
    if encoder not in pipeline.encoders:
        raise ToolkitError(f"Unknown encoder {encoder!r}; this bundle has {', '.join(pipeline.encoders)}.")
    return str(encoder)


def _integer(value: Any, name: str, low: int, high: int) -> int:
    """``value`` as an int in ``[low, high]``, else a ToolkitError naming ``name`` and the range."""
    if value in (None, ""):
        raise ToolkitError(f"Choose a {name}.")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ToolkitError(f"{name} must be a whole number from {low} to {high}; got {value!r}.") from None
    if not number.is_integer() or not low <= number <= high:
        raise ToolkitError(f"{name} must be a whole number from {low} to {high}; got {value!r}.")
    return int(number)


def _number(value: Any, name: str, low: float, high: float) -> float:
    """``value`` as a float in ``[low, high]``, else a ToolkitError naming ``name`` and the range."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ToolkitError(f"{name} must be a number from {low:g} to {high:g}; got {value!r}.") from None
    if not np.isfinite(number) or not low <= number <= high:
        raise ToolkitError(f"{name} must be a number from {low:g} to {high:g}; got {value!r}.")
    return number


class RetrievalTab:
    """Handlers and layout of the "Retrieval" tab.

    Parameters
    ----------
    pipeline : toolkit.pipeline.DecodingPipeline
        The app's pipeline (shared with the other decoding tabs).
    """

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline
        self._lock = threading.Lock()
        self._rankings: OrderedDict[tuple, Any] = OrderedDict()  # see ranking()
        self._figures: dict[str, tuple[Any, str]] = {}  # subject -> (k-way figure, protocol cards)
        self._evaluations: dict[tuple[str, str], Any] = {}  # (subject, encoder) -> RetrievalResult
        self._concepts: list[str] | None = None  # concept of each test-gallery row

    def concepts(self) -> list[str]:
        """Concept of each row of the test image gallery (read once)."""
        if self._concepts is None:
            self._concepts = list(self.pipeline.gallery("image")[1])
        return self._concepts

    # -- cached library calls ---------------------------------------------------------------------------------------
    def ranking(self, subject: str, encoder: str, condition: int, repetition: int) -> tuple:
        """Full-gallery ranking ``(indices, scores)`` of one test trial, from cached library calls.

        Averaged trials are ranked once per subject and encoder (one batch of the subject's test conditions); a
        single repetition is ranked alone, and the last ``_RANKING_CACHE`` of those are kept. (Ranking all the
        repetitions of a condition at once would be cheaper per trial, but concurrent requests would then each hold
        a whole batch's activations at the same time, and the server's memory would grow by their sum.) A trial's
        ranking does not depend on the batch it was computed in.
        """
        n_gallery = len(self.concepts())
        if repetition == AVERAGE:
            key: tuple = (subject, encoder, AVERAGE)
            row = condition
        else:
            key, row = (subject, encoder, condition, repetition), 0
        with self._lock:
            out = self._rankings.get(key)
            if out is not None:
                self._rankings.move_to_end(key)
        if out is None:
            trials = self.pipeline.trials(subject, "test", average=repetition == AVERAGE)
            eeg = trials.data[:, 0] if repetition == AVERAGE else trials.data[condition, repetition][None]
            shared_model(self.pipeline, "encoder", encoder)
            result = self.pipeline.retrieve(eeg, subject, encoder=encoder, k=n_gallery)
            out = (result.indices, result.scores)  # the rest (embeddings, concept names) is not needed again
            with self._lock:
                self._rankings[key] = out
                while len(self._rankings) > _RANKING_CACHE:
                    self._rankings.popitem(last=False)
        return out[0][row], out[1][row]

    def evaluation(self, subject: str, encoder: str) -> Any:
        """``pipeline.evaluate`` of the subject's test split with ``encoder`` (cached)."""
        key = (subject, encoder)
        if key not in self._evaluations:
            # Seconds of work: concurrent first requests for a subject wait for one evaluation instead of each
            # running their own.
            with pipeline_lock(self, f"evaluation:{subject}:{encoder}"):
                if key not in self._evaluations:
                    n_gallery = len(self.concepts())
                    ks = [k for k in ACCURACY_KS if k <= n_gallery]
                    shared_model(self.pipeline, "encoder", encoder)
                    result = self.pipeline.evaluate(subject, encoder=encoder, ks=ks, n_draws=100, seed=0)
                    with self._lock:
                        self._evaluations[key] = result
        return self._evaluations[key]

    # -- handlers -------------------------------------------------------------------------------------------------
    def retrieve(self, subject: str, condition: int, repetition: int, k: int) -> tuple:
        """Top-``k`` test images of one trial for every encoder, the k-way curves and the protocol cards (API
        ``/retrieve``).

        Parameters
        ----------
        subject : str
            Subject label.
        condition : int
            Test trial (image condition), 0-based.
        repetition : int
            Repetition, 0-based, or ``-1`` for the average of all repetitions.
        k : int
            Images shown per encoder (1 to the gallery size).

        Returns
        -------
        tuple
            ``(*one gallery per encoder, accuracy figure, summary Markdown, protocol-card Markdown)``; each gallery
            is a list of ``(image path, caption)``, the caption giving rank, concept and cosine score, led by
            ``✓ true ·`` on the trial's own image.
        """
        try:
            return self._retrieve(subject, condition, repetition, k)
        except ToolkitError as err:
            raise _error(err) from None

    def _retrieve(self, subject: str, condition: Any, repetition: Any, k: Any) -> tuple:
        trials, _, condition, repetition = pick_trial(self.pipeline, subject, condition, repetition)
        concepts = self.concepts()
        k = _integer(k, "k", 1, len(concepts))
        galleries, lines = [], []
        for encoder in self.pipeline.encoders:
            indices, scores = self.ranking(subject, encoder, condition, repetition)
            items = []
            for rank, (row, score) in enumerate(zip(indices[:k], scores[:k], strict=True), start=1):
                # The mark leads the caption so that it stays visible when a narrow gallery truncates the caption.
                mark = "✓ true · " if row == condition else ""
                items.append((str(trials.images.image_path(int(row))), f"{mark}{rank}. {concepts[row]} · {score:.3f}"))
            galleries.append(items)
            true_rank = int(np.flatnonzero(indices == condition)[0]) + 1
            lines.append(f"| {encoder} | {true_rank} of {len(concepts)} | {concepts[indices[0]]} |")
        what = describe_repetition(repetition)
        summary = "\n".join(
            [
                f"**{subject}**, test trial {condition} (*{trials.images.concept_of(condition)}*), {what}. "
                f"Gallery: the {len(concepts)} test images (cosine similarity of the embeddings).",
                "",
                "| Encoder | Rank of the true image | Top-1 |",
                "|---|---|---|",
                *lines,
            ]
        )
        if subject not in self._figures:  # they depend on the subject only
            cards = "\n\n".join(
                f"### {encoder}\n\n{self.evaluation(subject, encoder).to_markdown()}"
                for encoder in self.pipeline.encoders
            )
            figure = self.accuracy_figure(subject)
            with self._lock:
                self._figures[subject] = (figure, cards)
        figure, cards = self._figures[subject]
        return (*galleries, figure, summary, cards)

    def accuracy_figure(self, subject: str) -> Any:
        """Plotly figure: exact k-way top-1 accuracy with 95 % intervals, one line per encoder, and chance."""
        import plotly.graph_objects as go

        fig = go.Figure()
        chance_ks: list[int] = []
        for encoder in self.pipeline.encoders:
            scores = self.evaluation(subject, encoder).kway
            ks = [s.k for s in scores]
            values = np.array([s.exact for s in scores]) * 100
            low = np.array([s.exact_ci[0] for s in scores]) * 100
            high = np.array([s.exact_ci[1] for s in scores]) * 100
            fig.add_trace(
                go.Scatter(
                    x=ks, y=values, mode="lines+markers", name=encoder,
                    error_y={"type": "data", "symmetric": False, "array": high - values, "arrayminus": values - low},
                    hovertemplate="%{x}-way: %{y:.1f} %<extra>" + encoder + "</extra>",
                )
            )
            chance_ks = ks
        fig.add_trace(
            go.Scatter(
                x=chance_ks, y=[100.0 / k for k in chance_ks], mode="lines", name="chance",
                line={"dash": "dash", "color": "grey"},
            )
        )
        fig.update_layout(
            title=f"{subject}: k-way top-1 accuracy (test, repetitions averaged; 95 % intervals)",
            xaxis={"title": "k (candidates)", "type": "log", "tickvals": chance_ks},
            yaxis={"title": "accuracy (%)", "range": [0, 105]},
            height=360, margin={"l": 50, "r": 20, "t": 50, "b": 40}, legend={"orientation": "h", "y": -0.2},
        )
        return fig

    def select_subject(self, subject: str) -> tuple:
        """Refresh the trial and repetition choices for ``subject`` (API ``/retrieval_subject``)."""
        return select_subject(self.pipeline, subject)

    def examples(self) -> list[list]:
        """Example inputs of ``/retrieve``: three trials (see :func:`example_trials`), top 5."""
        k = min(DEFAULT_K, len(self.concepts()))
        rows = example_trials(self.pipeline, 3)
        return [[subject, condition, repetition, k] for subject, condition, repetition in rows]

    # -- layout -----------------------------------------------------------------------------------------------------
    def build(self, *, cache_examples: bool | str = False) -> dict:
        """Create the tab's components in the current Blocks/Tab context and wire the events.

        Parameters
        ----------
        cache_examples : bool | str
            How the examples' outputs are stored (see :func:`add_examples`).

        Returns
        -------
        dict
            The components by name (``"examples"``: the :class:`gradio.Examples`).
        """
        gr = _gr()
        n_gallery = len(self.concepts())
        gr.Markdown(
            "Zero-shot retrieval: the EEG of one test trial is embedded by each encoder and compared with the "
            "embeddings of every test image; the trial's own image is marked **✓ true**. The curves give the k-way "
            "accuracy of the subject's whole test split."
        )
        with gr.Row():
            subject, condition, repetition = picker(self.pipeline)
            k = gr.Slider(1, n_gallery, value=min(DEFAULT_K, n_gallery), step=1, label="Top k")
        run = gr.Button("Retrieve", variant="primary")
        examples_slot = gr.Column()  # filled below, once the outputs exist
        summary = gr.Markdown()
        galleries = []
        with gr.Row(equal_height=False):
            for encoder in self.pipeline.encoders:
                with gr.Column(min_width=260):
                    galleries.append(
                        gr.Gallery(
                            label=f"{encoder}: top k", columns=4, height="auto", object_fit="contain",
                            allow_preview=True, elem_classes=["retrieval-gallery"],
                        )
                    )
        curves = gr.Plot(label="k-way accuracy")
        with gr.Accordion("Protocol cards and metrics", open=False):
            cards = gr.Markdown()
        outputs = [*galleries, curves, summary, cards]
        inputs = [subject, condition, repetition, k]
        subject.input(
            self.select_subject, inputs=[subject], outputs=[condition, repetition], api_name="retrieval_subject"
        )
        gr.on(
            [run.click, condition.input, repetition.input, k.release],
            self.retrieve, inputs=inputs, outputs=outputs, api_name="retrieve", concurrency_limit=RETRIEVE_CONCURRENCY,
            trigger_mode="always_last",
        )
        rows = self.examples()
        with examples_slot:
            examples = add_examples(
                rows, inputs=inputs, outputs=outputs, fn=self.retrieve, cache=cache_examples,
                api_name="retrieval_example", labels=[example_label(self.pipeline, *row[:3]) for row in rows],
            )
        return {
            "subject": subject, "condition": condition, "repetition": repetition, "k": k, "run": run,
            "galleries": galleries, "curves": curves, "summary": summary, "cards": cards, "examples": examples,
        }
