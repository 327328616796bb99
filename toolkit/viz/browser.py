"""A cached trial browser: pick subject, split, condition, repetition and latency; get the figures to show.

:class:`TrialBrowser` is what the Gradio app's "Trials" tab calls (and what a notebook can call directly). It keeps
the opened store, the memory-mapped :class:`~toolkit.data.TrialSet` of each (subject, split), the cached MNE Info and
recent condition averages, so changing the trial only reads that trial from disk and redraws two small figures.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ToolkitError
from ._utils import figure_to_array, nearest_sample
from .erp import data_units, plot_butterfly
from .topomap import plot_topomap, symmetric_vlim

_AVERAGE_CACHE = 64  # condition averages kept per browser (a test average reads 80 trials)


def _as_index(value: Any, name: str, size: int) -> int:
    """``value`` as an index in ``0 … size-1`` (integers, integral floats and digit strings are accepted)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ToolkitError(f"{name} must be an integer; got {value!r}.") from None
    if isinstance(value, bool) or not number.is_integer() or not 0 <= number < size:
        raise ToolkitError(f"{name} {value!r} is out of range; choose an integer from 0 to {size - 1}.")
    return int(number)


def _one_blas_thread() -> Any:
    """A context manager limiting BLAS/OpenMP pools to one thread (threadpoolctl), or a no-op without it.

    Measured on a shared 2-core machine: OpenBLAS's second thread spins while the topomap interpolates small
    matrices, so one thread halves the CPU time of a redraw (171 -> 69 ms median) and its wall time.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: it comes with scikit-learn
        return contextlib.nullcontext()
    return threadpool_limits(limits=1)


def _message_figure(text: str, size: float, dpi: float) -> Any:
    """A small blank figure carrying one line of text (shown where a map cannot be drawn)."""
    from ._utils import new_figure

    fig = new_figure(figsize=(size, size * 0.85), dpi=dpi, show=False)
    fig.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize=8)
    return fig


@dataclass
class TrialView:
    """What the browser shows for one selection.

    Parameters
    ----------
    image_path : Path | None
        The condition's stimulus image, or ``None`` when the images are not available.
    erp : plotly.graph_objects.Figure
        Butterfly plot of the trial (or of the repetition average) with a line at the latency.
    topomap : np.ndarray, shape (height, width, 3)
        The rendered MNE topomap at the latency (uint8 RGB).
    metadata : dict
        Subject, split, condition, concept, image, repetition or average, latency, sample, units, ...
    """

    image_path: Path | None
    erp: Any
    topomap: np.ndarray
    metadata: dict = field(default_factory=dict)

    def metadata_markdown(self) -> str:
        """The metadata as a short Markdown text."""
        meta = self.metadata
        shown = (
            f"average of {meta['n_repetitions']} repetitions"
            if meta["average"]
            else f"single trial, repetition {meta['repetition']} (of {meta['n_repetitions']}, numbered from 0)"
        )
        lines = [
            f"**{meta['concept']}** · condition {meta['condition']} · {meta['split']} split · {meta['subject']}",
            f"- shown: {shown}",
            f"- image: `{meta['image'] or 'not available'}`",
            f"- latency: {meta['latency_s']:.3f} s (sample {meta['sample']}; "
            f"requested {meta['requested_latency_s']:.3f} s)",
            f"- {meta['n_chans']} channels ({meta['ch_type']}) at {meta['sfreq']:g} Hz, {meta['n_times']} samples "
            f"from {meta['tmin']:.3f} to {meta['tmax']:.3f} s; values in {meta['units']}",
            f"- dataset: {meta['dataset']}",
        ]
        if meta.get("topomap_note"):
            lines.append(f"- topomap unavailable: {meta['topomap_note']}")
        return "\n".join(lines)


class TrialBrowser:
    """Browse the trials of a store with cached loading and fast rendering.

    Parameters
    ----------
    store : object
        An opened store (:func:`toolkit.data.store.open_store`): it has ``subjects``, ``splits(subject)`` and
        ``load(subject, split, images_root=None)`` returning a memory-mapped TrialSet.
    images_root : str | Path | None
        Passed to ``store.load`` (the folder holding ``training_images/`` and ``test_images/``); ``None`` lets the
        store use the images it recorded.
    topomap_size : float
        Topomap width in inches (small keeps rendering fast).
    topomap_dpi : float
        Topomap resolution.
    """

    def __init__(
        self,
        store: Any,
        *,
        images_root: str | Path | None = None,
        topomap_size: float = 2.8,
        topomap_dpi: float = 80,
    ) -> None:
        for attr in ("subjects", "splits", "load"):
            if not hasattr(store, attr):
                raise ToolkitError(
                    f"store must be an opened store (toolkit.data.store.open_store); {type(store).__name__} has no "
                    f"'{attr}'."
                )
        self.store = store
        self.images_root = Path(images_root) if images_root is not None else None
        self.topomap_size = float(topomap_size)
        self.topomap_dpi = float(topomap_dpi)
        self._sets: dict[tuple[str, str], Any] = {}
        self._concepts: dict[tuple[str, str], dict[str, list[int]]] = {}
        self._averages: OrderedDict[tuple[str, str, int], np.ndarray] = OrderedDict()
        self._lock = threading.RLock()
        self._render_lock = threading.Lock()

    # -- choices ----------------------------------------------------------------------------------------------
    @property
    def subjects(self) -> list[str]:
        """Subjects in the store."""
        return [str(s) for s in self.store.subjects]

    def splits(self, subject: str) -> list[str]:
        """Splits available for ``subject``."""
        self._check_subject(subject)
        return [str(s) for s in self.store.splits(subject)]

    def trials(self, subject: str, split: str) -> Any:
        """The (cached, memory-mapped) TrialSet of ``subject`` and ``split``."""
        key = (str(subject), str(split))
        with self._lock:
            if key not in self._sets:
                if split not in self.splits(subject):
                    raise ToolkitError(
                        f"Split '{split}' is not available for {subject}; choose one of {self.splits(subject)}."
                    )
                kwargs = {"images_root": self.images_root} if self.images_root is not None else {}
                self._sets[key] = self.store.load(subject, split, **kwargs)
            return self._sets[key]

    def concepts(self, subject: str, split: str) -> list[str]:
        """Concept names of the split, in concept order (each listed once)."""
        return list(self._concept_index(subject, split))

    def conditions(self, subject: str, split: str, concept: str) -> list[tuple[str, int]]:
        """``(label, condition)`` for every image of ``concept``; the label is the image's file name."""
        index = self._concept_index(subject, split)
        if concept not in index:
            raise ToolkitError(f"Concept '{concept}' is not in the {split} split of {subject}.")
        ts = self.trials(subject, split)
        out = []
        for cond in index[concept]:
            label = Path(ts.images.image_files[cond]).name if ts.images is not None else f"condition {cond}"
            out.append((label, cond))
        return out

    def concept_of(self, subject: str, split: str, condition: int) -> str:
        """Concept name of a condition."""
        ts = self.trials(subject, split)
        self._check_condition(ts, condition)
        return ts.concept_names()[int(condition)] if ts.images is None else ts.images.concept_of(int(condition))

    def _concept_index(self, subject: str, split: str) -> dict[str, list[int]]:
        key = (str(subject), str(split))
        with self._lock:
            if key not in self._concepts:
                ts = self.trials(subject, split)
                index: dict[str, list[int]] = {}
                for cond, name in enumerate(ts.concept_names()):
                    index.setdefault(name, []).append(cond)
                self._concepts[key] = index
            return self._concepts[key]

    # -- checks -----------------------------------------------------------------------------------------------
    def _check_subject(self, subject: str) -> None:
        if subject not in self.subjects:
            raise ToolkitError(f"Subject '{subject}' is not in this store; choose one of {self.subjects}.")

    @staticmethod
    def _check_condition(ts: Any, condition: Any) -> int:
        return _as_index(condition, "condition", ts.n_conditions)

    @staticmethod
    def _check_repetition(ts: Any, repetition: Any) -> int:
        return _as_index(repetition, "repetition", ts.n_repetitions)

    # -- data -------------------------------------------------------------------------------------------------
    def condition_average(self, subject: str, split: str, condition: int) -> np.ndarray:
        """Average over the repetitions of one condition, float32 ``(n_chans, n_times)`` (cached)."""
        ts = self.trials(subject, split)
        cond = self._check_condition(ts, condition)
        key = (str(subject), str(split), cond)
        with self._lock:
            if key in self._averages:
                self._averages.move_to_end(key)
                return self._averages[key]
        avg = ts.condition_average(cond)
        with self._lock:
            self._averages[key] = avg
            while len(self._averages) > _AVERAGE_CACHE:
                self._averages.popitem(last=False)
        return avg

    def signal(self, subject: str, split: str, condition: int, *, repetition: int = 0, average: bool = False):
        """The ``(n_chans, n_times)`` signal shown: one trial, or the repetition average."""
        ts = self.trials(subject, split)
        cond = self._check_condition(ts, condition)
        if average:
            return self.condition_average(subject, split, cond)
        return ts.trial(cond, self._check_repetition(ts, repetition))

    # -- rendering --------------------------------------------------------------------------------------------
    def render(
        self,
        subject: str,
        split: str,
        condition: int,
        *,
        repetition: int = 0,
        average: bool = False,
        latency: float = 0.2,
    ) -> TrialView:
        """Figures and metadata for one selection.

        Parameters
        ----------
        subject, split : str
            Which trial set.
        condition : int
            Image condition (0-based).
        repetition : int
            Repetition shown when ``average`` is false (0-based).
        average : bool
            Show the average of all repetitions instead of one trial.
        latency : float
            Latency in seconds for the ERP marker and the topomap (nearest sample).

        Returns
        -------
        TrialView
            Stimulus image path, plotly butterfly, topomap pixels and metadata.
        """
        with _one_blas_thread():
            return self._render(subject, split, condition, repetition, average, latency)

    def _render(
        self, subject: str, split: str, condition: int, repetition: int, average: bool, latency: float
    ) -> TrialView:
        self._check_subject(subject)
        ts = self.trials(subject, split)
        cond = self._check_condition(ts, condition)
        rep = self._check_repetition(ts, repetition) if not average else 0
        sample = nearest_sample(ts.times, latency)
        at = float(ts.times[sample])
        units, scale = data_units(ts)
        signal = self.signal(subject, split, cond, repetition=rep, average=average)
        concept = self.concept_of(subject, split, cond)
        what = f"average of {ts.n_repetitions}" if average else f"repetition {rep}"
        erp = plot_butterfly(
            signal,
            times=ts.times,
            ch_names=ts.ch_names,
            ch_type=ts.ch_type,
            highlight=at,
            title=f"{concept} — {what}",
            units=units,
            scale=scale,
            gfp=True,
        )
        if not average and ts.n_repetitions > 1:
            # Single trial versus average: overlay the GFP of the repetition average for comparison.
            avg = self.condition_average(subject, split, cond) * np.float32(scale)
            erp.add_scatter(
                x=ts.times.astype(np.float32),
                y=avg.std(axis=0).astype(np.float32),
                mode="lines",
                name="GFP (average)",
                line={"width": 2, "color": "grey", "dash": "dot"},
                hovertemplate=f"<b>GFP of the average</b><br>%{{x:.3f}} s<br>%{{y:.3g}} {units}<extra></extra>",
            )
        values = signal[:, sample].astype(np.float64) * scale
        # One colour scale per displayed trial (not per latency), so maps at different latencies compare.
        vlim = symmetric_vlim(signal * scale)
        topomap_note = None
        with self._render_lock:  # matplotlib figures are not meant to be drawn from several threads at once
            try:
                fig = plot_topomap(
                    values,
                    ts.ch_names,
                    sfreq=ts.sfreq,
                    ch_type=ts.ch_type,
                    vlim=vlim,
                    title=f"{at:.3f} s",
                    units=units,
                    contours=4,
                    res=48,
                    # Clough-Tocher ("cubic") costs from milliseconds to seconds depending on the map (SciPy 1.17);
                    # linear interpolation keeps every redraw at a few milliseconds and looks nearly the same.
                    image_interp="linear",
                    size=self.topomap_size,
                    dpi=self.topomap_dpi,
                )
            except ToolkitError as err:  # e.g. EEG-ImageNet's unnamed channels: no positions, no map
                topomap_note = str(err)
                fig = _message_figure(
                    "No topomap: the channels have no known positions.", self.topomap_size, self.topomap_dpi
                )
            pixels = figure_to_array(fig)
        image_file = ts.images.image_files[cond] if ts.images is not None else None
        image_path = None
        if ts.images is not None and ts.images.root is not None:
            candidate = Path(ts.images.root) / ts.images.image_files[cond]
            image_path = candidate if candidate.is_file() else None
        metadata = {
            "subject": ts.subject,
            "split": ts.split,
            "dataset": ts.dataset,
            "condition": cond,
            "concept": concept,
            "image": image_file,
            "average": bool(average),
            "repetition": None if average else rep,
            "n_repetitions": ts.n_repetitions,
            "requested_latency_s": float(latency),
            "latency_s": at,
            "sample": sample,
            "sfreq": float(ts.sfreq),
            "n_chans": ts.n_chans,
            "n_times": ts.n_times,
            "tmin": float(ts.times[0]),
            "tmax": float(ts.times[-1]),
            "ch_type": ts.ch_type,
            "units": units,
            "topomap_note": topomap_note,
        }
        return TrialView(image_path=image_path, erp=erp, topomap=pixels, metadata=metadata)
