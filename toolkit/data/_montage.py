"""Standard montages and channel mapping: montage names across MNE versions, 10-05 name matching, and the rule that
decides which missing target channels are interpolated and which are zero-filled."""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ToolkitError

if TYPE_CHECKING:  # pragma: no cover
    import mne

logger = logging.getLogger(__name__)

DEFAULT_MONTAGE = "standard_1005"

# MNE 1.13 renamed the template montages after the head they were digitised on and deprecated the old names
# (removed in 1.14); older MNE releases (the toolkit supports >= 1.8) only know the old names. Both spellings are
# accepted and resolved to whichever the installed MNE provides.
_MONTAGE_ALIASES = {
    "standard_1005": "colin27_1005",
    "standard_1020": "colin27_1020",
    "standard_alphabetic": "colin27_alphabetic",
    "standard_postfixed": "colin27_postfixed",
    "standard_prefixed": "colin27_prefixed",
    "standard_primed": "colin27_primed",
}

# Old 10-20 names of four temporal/parietal sites and their 10-10 equivalents (same scalp positions).
_OLD_1020 = {"T3": "T7", "T4": "T8", "T5": "P7", "T6": "P8"}

# Prefixes/suffixes that EDF/BDF/BrainVision exports put around electrode names ("EEG Fp1-REF", "Fp1-A1").
_NAME_PREFIX = re.compile(r"^(eeg)[\s:_-]+", re.IGNORECASE)
_NAME_SUFFIX = re.compile(r"[-_ ](ref|avg|ar|le|a1|a2|m1|m2|a1a2|m1m2|cz)$", re.IGNORECASE)


def resolve_montage_name(name: str) -> str:
    """Return the name under which the installed MNE knows a built-in montage.

    ``"standard_1005"`` and ``"colin27_1005"`` (its MNE 1.13 name) are interchangeable; the deprecated spelling is
    translated so that no deprecation warning is raised.

    Parameters
    ----------
    name : str
        A built-in montage name, e.g. ``"standard_1005"``, ``"biosemi64"``, ``"GSN-HydroCel-128"``.

    Returns
    -------
    str
        The name to pass to :func:`mne.channels.make_standard_montage`.
    """
    import mne

    builtin = set(mne.channels.get_builtin_montages())
    new = _MONTAGE_ALIASES.get(name)
    if new is not None and new in builtin:
        return new
    if name in builtin:
        return name
    old = {v: k for k, v in _MONTAGE_ALIASES.items()}.get(name)
    if old is not None:  # a new name on an MNE that predates it
        return old
    raise ToolkitError(
        f"Unknown montage {name!r}; use a built-in MNE montage such as 'standard_1005', 'biosemi64' or "
        f"'GSN-HydroCel-128' (available: {', '.join(sorted(builtin))})."
    )


@functools.lru_cache(maxsize=8)
def _montage_positions(name: str) -> tuple[tuple[str, ...], np.ndarray]:
    import mne

    montage = mne.channels.make_standard_montage(resolve_montage_name(name))
    pos = montage.get_positions()["ch_pos"]
    names = tuple(pos)
    return names, np.array([pos[n] for n in names], dtype=np.float64)


def make_montage(name: str = DEFAULT_MONTAGE) -> mne.channels.DigMontage:
    """Build a built-in MNE montage, accepting old and new MNE names (see :func:`resolve_montage_name`)."""
    import mne

    return mne.channels.make_standard_montage(resolve_montage_name(name))


def montage_positions(names: Sequence[str], montage: str = DEFAULT_MONTAGE) -> dict[str, np.ndarray]:
    """Head-frame positions (metres) of those ``names`` that the montage knows (exact names)."""
    all_names, pos = _montage_positions(montage)
    index = {n: i for i, n in enumerate(all_names)}
    return {n: pos[index[n]].copy() for n in names if n in index}


def canonical_name(name: str, montage: str = DEFAULT_MONTAGE) -> str | None:
    """Map a recorded channel name to the montage's spelling, or ``None`` if it is not an electrode name.

    Matching ignores case, a leading ``"EEG "`` and a trailing reference suffix (``"-REF"``, ``"-A1"``, ...), and
    maps the old 10-20 names T3/T4/T5/T6 to T7/T8/P7/P8.

    Parameters
    ----------
    name : str
        Channel name as found in the recording.
    montage : str
        Built-in montage whose names define the electrode vocabulary.

    Returns
    -------
    str | None
        The montage's spelling of the name (``"FP1"`` gives ``"Fp1"``), or ``None``.
    """
    lookup = _lower_lookup(montage)
    stripped = _NAME_SUFFIX.sub("", _NAME_PREFIX.sub("", name.strip())).strip()
    for candidate in (name.strip(), stripped):
        candidate = _OLD_1020.get(candidate.upper(), candidate)
        hit = lookup.get(candidate.lower())
        if hit is not None:
            return hit
    return None


@functools.lru_cache(maxsize=8)
def _lower_lookup(montage: str) -> dict[str, str]:
    all_names, _ = _montage_positions(montage)
    return {n.lower(): n for n in all_names}


@dataclass
class ChannelPlan:
    """How the recorded channels map onto a target channel list.

    Attributes
    ----------
    target : list of str
        Output channel names, in order.
    source : dict
        Recorded channel name -> canonical (montage) name, for every recorded EEG channel with a known name.
    copied : list of str
        Target channels present in the recording (copied).
    interpolated : list of str
        Target channels absent from the recording and interpolated (spherical splines) from the recorded ones.
    zero_filled : list of str
        Target channels absent from the recording that could not be interpolated reliably (set to zero).
    dropped : list of str
        Recorded EEG channels the target does not use (names as recorded).
    rule : dict
        The interpolation rule applied (``min_neighbors`` recorded channels within ``max_distance`` metres).
    """

    target: list[str]
    source: dict[str, str]
    copied: list[str] = field(default_factory=list)
    interpolated: list[str] = field(default_factory=list)
    zero_filled: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    rule: dict = field(default_factory=dict)

    @property
    def mask(self) -> np.ndarray:
        """Boolean ``(n_target,)``: True where the channel carries signal (copied or interpolated)."""
        zero = set(self.zero_filled)
        return np.array([name not in zero for name in self.target], dtype=bool)

    def to_dict(self) -> dict:
        """JSON-serialisable summary for the import report."""
        return {
            "copied": list(self.copied),
            "interpolated": list(self.interpolated),
            "zero_filled": list(self.zero_filled),
            "dropped": list(self.dropped),
            "rule": dict(self.rule),
        }


def plan_channels(
    recorded: Sequence[str],
    target: Sequence[str],
    *,
    min_neighbors: int = 3,
    max_distance: float = 0.06,
    montage: str = DEFAULT_MONTAGE,
    what: str = "the recording",
) -> ChannelPlan:
    """Decide, for each target channel, whether it is copied, interpolated or zero-filled.

    Rule: a target channel missing from the recording is interpolated only when at least ``min_neighbors``
    recorded channels with known positions lie within ``max_distance`` metres of it on the standard head (default
    3 within 6 cm; in a full 10-10 cap every channel has 3 neighbours within 5.3 cm, so single missing channels are
    always interpolated, whereas the 4 far-apart electrodes of a Muse headband never qualify: spherical splines
    from them would be extrapolation, not interpolation). Otherwise it is zero-filled and masked out.

    Parameters
    ----------
    recorded : sequence of str
        Names of the recorded EEG channels.
    target : sequence of str
        Target channel names (montage spelling).
    min_neighbors : int
        Recorded channels needed near a missing channel to interpolate it.
    max_distance : float
        Neighbourhood radius in metres.
    montage : str
        Built-in montage giving the positions.
    what : str
        Description of the recording for error messages (its file name).

    Returns
    -------
    ChannelPlan
        The plan.
    """
    source: dict[str, str] = {}
    seen: dict[str, str] = {}
    for name in recorded:
        canon = canonical_name(name, montage)
        if canon is None:
            continue
        if canon in seen:
            raise ToolkitError(
                f"Channels {seen[canon]!r} and {name!r} of {what} both map to electrode {canon!r}; rename or drop "
                "one of them."
            )
        seen[canon] = name
        source[name] = canon
    present = set(source.values())
    plan = ChannelPlan(
        target=list(target),
        source=source,
        rule={"min_neighbors": int(min_neighbors), "max_distance_m": float(max_distance), "montage": montage},
    )
    plan.copied = [t for t in target if t in present]
    plan.dropped = [name for name in recorded if source.get(name) not in set(target)]
    missing = [t for t in target if t not in present]
    rec_pos = montage_positions(sorted(present), montage)
    tgt_pos = montage_positions(missing, montage)
    rec_xyz = np.array(list(rec_pos.values())) if rec_pos else np.zeros((0, 3))
    for name in missing:
        if name in tgt_pos and len(rec_xyz):
            near = int((np.linalg.norm(rec_xyz - tgt_pos[name], axis=1) <= max_distance).sum())
        else:
            near = 0
        (plan.interpolated if near >= min_neighbors else plan.zero_filled).append(name)
    if not plan.copied and not plan.interpolated:
        raise ToolkitError(
            f"None of the channels of {what} match the target channels ({', '.join(list(target)[:8])}, ...) and "
            f"none can be interpolated; channels found: {list(recorded)}. Rename the channels to 10-10 names or "
            "use --target native."
        )
    return plan


def apply_channel_plan(epochs: mne.BaseEpochs, plan: ChannelPlan, *, montage: str = DEFAULT_MONTAGE) -> np.ndarray:
    """Return ``(n_epochs, n_target, n_times)`` float64 data arranged by ``plan`` (volts).

    Copied channels are taken as recorded; interpolated ones come from
    :meth:`mne.Epochs.interpolate_bads` (spherical splines) over every recorded channel with a known position;
    zero-filled ones are zero.
    """
    import mne

    data = epochs.get_data(picks=list(plan.source), copy=False) if plan.source else None
    by_canon = {canon: i for i, canon in enumerate(plan.source.values())}
    out = np.zeros((len(epochs), len(plan.target), len(epochs.times)), dtype=np.float64)
    for j, name in enumerate(plan.target):
        if name in plan.copied:
            out[:, j] = data[:, by_canon[name]]
    if plan.interpolated:
        src = epochs.copy().pick(list(plan.source)).rename_channels(dict(plan.source))
        src.set_channel_types(dict.fromkeys(src.ch_names, "eeg"), on_unit_change="ignore")
        info = mne.create_info(plan.interpolated, epochs.info["sfreq"], "eeg")
        zeros = mne.EpochsArray(
            np.zeros((len(src), len(plan.interpolated), len(src.times))),
            info,
            events=src.events,
            tmin=src.tmin,
            event_id=src.event_id,
            baseline=None,
            verbose=False,
        )
        src.add_channels([zeros], force_update_info=True)
        src.set_montage(make_montage(montage), on_missing="ignore", verbose=False)
        src.info["bads"] = list(plan.interpolated)
        src.interpolate_bads(reset_bads=True, mode="accurate", verbose=False)
        filled = src.get_data(picks=plan.interpolated, copy=False)
        for k, name in enumerate(plan.interpolated):
            out[:, plan.target.index(name)] = filled[:, k]
    return out


__all__ = [
    "DEFAULT_MONTAGE",
    "ChannelPlan",
    "apply_channel_plan",
    "canonical_name",
    "make_montage",
    "montage_positions",
    "plan_channels",
    "resolve_montage_name",
]
