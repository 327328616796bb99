"""The EEG model of the simulator: an MNE forward model on a spherical head, feature-driven ERP components, noise.

Signal
    A handful of dipole locations (early visual, occipito-temporal, temporal, parietal) are placed below standard
    10-05 electrodes inside a three-shell sphere fitted to the montage (:func:`mne.make_sphere_model`). Their
    leadfields come from :func:`mne.make_forward_solution` (a discrete source space, no MRI, no download), are
    re-referenced to Fz (the online reference of THINGS-EEG2, hence absent from its 63 channels) and projected on
    two orientations per location: radial (the classic ERP polarity) and tangential. Each orientation's time
    course is a weighted sum of ``n_bases`` Hermite functions centred on the component's latency (amplitude, latency
    shift, width change, ...). The weights are a fixed, seeded linear function of the image's latent features, and
    each component reads only its own feature groups (P1 = colour/size/position, N170 = shape, P250 = texture,
    P300 = texture and the per-concept dimensions); latencies also shift with some features. Because the mapping
    is additive over attribute values, the response to an unseen (shape, colour, texture) combination is
    predictable from the attributes seen in training.

Variability
    Per subject: dipole positions and orientations, component gains and latencies, and the mapping itself are
    jittered. Per trial: component gains (log-normal) and latencies (late components jitter more).

Noise
    Spatially correlated 1/f background (random dipoles through the same forward model), white sensor noise,
    posterior alpha with trial-varying amplitude and post-stimulus desynchronisation, blinks on the frontal
    channels, 50 Hz mains; optionally (off by default) electrode-level 1/f artefacts over the front of the head
    (:func:`anterior_profile`). Each part is scaled to its relative power in :class:`NoiseConfig`.

Epochs and units
    Trials are generated from -0.2 s to 0.996 s, baseline-corrected on the 50 pre-stimulus samples and cropped to
    the 250 samples from 0 s, as in the official preprocessing. The data are then expressed in noise-standardised
    units: the signal is scaled so that its mean square is ``snr`` and the noise so that its mean square is about
    1 (averaged over channels, samples and trials). This is the scale of whitened data; the spatial structure of
    the noise is kept (no whitening), so artefacts stay visible where they occur.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ...errors import ToolkitError
from ..channels import THINGS_EEG_63
from ._presets import SimulationConfig

if TYPE_CHECKING:  # pragma: no cover
    import mne

SFREQ = 250.0
N_BASELINE = 50  # samples before stimulus onset in the official `times` vector (-0.2 s at 250 Hz)
N_TIMES = 250  # samples kept in the data: 0 ... 0.996 s
REFERENCE = "Fz"
MONTAGE = "standard_1005"
BLINK_LENGTH_M = 0.035  # spatial decay of the blink potential away from Fp1/Fp2 (metres)
_N_FFT = 512  # FFT length of the 1/f background (longer than an epoch, so the epoch is not periodic)
# Anterior artefacts (NoiseConfig.anterior_artefact_power): the profile is a logistic function of the electrode's
# anterior-posterior coordinate relative to the sphere centre, in head radii: 1/2 at ANTERIOR_EDGE (just in front of
# the vertex), rising to 1 over the frontal channels within a few ANTERIOR_WIDTH.
ANTERIOR_EDGE = 0.15
ANTERIOR_WIDTH = 0.1
ANTERIOR_TRIAL_SD = 0.3  # standard deviation of the log of the per-trial amplitude of the anterior artefacts
_CALIBRATION_TRIALS = 128


def official_times() -> np.ndarray:
    """The official ``times`` vector: 300 samples from -0.2 s in steps of 4 ms (the data hold only ``[50:]``)."""
    return (np.arange(N_BASELINE + N_TIMES, dtype=np.float64) - N_BASELINE) / SFREQ


@dataclass(frozen=True)
class Component:
    """One ERP component: where its dipole sits, when it peaks, and which feature groups it carries."""

    name: str
    region: str
    hemisphere: str
    anchors: tuple[str, ...]  # electrodes the dipole lies below
    depth: float  # distance from the sphere centre as a fraction of the brain radius
    latency: float  # seconds
    width: float  # seconds (standard deviation of the Gaussian envelope)
    amplitude: float  # signed amplitude of the mean (feature-independent) radial response
    modulation: float  # RMS over training images of the feature-driven amplitudes (radial source, per basis)
    carries: tuple[str, ...]
    n_bases: int
    latency_sd: float  # seconds: spread of feature-driven latency shifts

    def window(self) -> tuple[float, float]:
        """Interval in seconds where the component has most of its energy (latency ± 2.5 widths, within 0 … 1)."""
        return max(0.0, self.latency - 2.5 * self.width), min(0.996, self.latency + 2.5 * self.width)


COMPONENTS = (
    Component("P1-left", "occipital", "left", ("O1", "PO3"), 0.72, 0.100, 0.018, 1.0, 1.0,
              ("colour", "size", "x", "y"), 4, 0.004),
    Component("P1-right", "occipital", "right", ("O2", "PO4"), 0.72, 0.100, 0.018, 1.0, 1.0,
              ("colour", "size", "x", "y"), 4, 0.004),
    Component("N170-left", "occipito-temporal", "left", ("P7", "PO7"), 0.72, 0.170, 0.022, -1.2, 1.2, ("shape",),
              4, 0.005),
    Component("N170-right", "occipito-temporal", "right", ("P8", "PO8"), 0.72, 0.170, 0.022, -1.2, 1.2, ("shape",),
              4, 0.005),
    Component("P250-left", "temporal", "left", ("TP7", "P7"), 0.68, 0.250, 0.030, 0.6, 0.8, ("texture",), 3,
              0.006),
    Component("P250-right", "temporal", "right", ("TP8", "P8"), 0.68, 0.250, 0.030, 0.6, 0.8, ("texture",), 3,
              0.006),
    Component("P300", "parietal", "midline", ("Pz", "CPz"), 0.60, 0.350, 0.045, 1.0, 0.7, ("texture", "concept"),
              3, 0.008),
)  # fmt: skip
ALPHA_ANCHORS = (("PO3", "O1"), ("PO4", "O2"))
ALPHA_DEPTH = 0.65
# Relative weight of each feature group in the amplitude mapping (the concept weight is shared by its dims).
GROUP_WEIGHTS = {"shape": 1.0, "colour": 1.0, "texture": 1.0, "size": 0.35, "x": 0.35, "y": 0.35, "concept": 0.7}
TANGENTIAL_GAIN = 0.6  # strength of the tangential source relative to the radial one


def _hermite_polys(u: np.ndarray, n: int) -> list[np.ndarray]:
    # Probabilists' Hermite polynomials: with a Gaussian, 0 = peak, 1 = latency shift, 2 = width, 3 = skew, ...
    polys = [np.ones_like(u), u]
    for k in range(2, n):
        polys.append(u * polys[k - 1] - (k - 1) * polys[k - 2])
    return polys[:n]


@functools.cache
def _hermite_norms(n: int) -> tuple[float, ...]:
    u = np.linspace(-8, 8, 16001)
    gauss = np.exp(-0.5 * u**2)
    return tuple(float(np.abs(p * gauss).max()) for p in _hermite_polys(u, n))


def hermite_bases(u: np.ndarray, n: int) -> np.ndarray:
    """Hermite functions ``0 … n-1`` at ``u`` (any shape), each scaled to a peak of 1; shape ``(n, *u.shape)``."""
    norms = _hermite_norms(n)
    gauss = np.exp(-0.5 * u**2)
    return np.stack([p * gauss / norms[k] for k, p in enumerate(_hermite_polys(u, n))])


# -- geometry and forward model ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class HeadModel:
    """Electrode positions and the fitted sphere (head coordinates, metres)."""

    ch_pos: np.ndarray  # (63, 3)
    ref_pos: np.ndarray  # (3,) position of the reference electrode
    r0: np.ndarray  # (3,) sphere centre
    head_radius: float
    brain_radius: float
    info: mne.Info  # the 63 channels plus the reference, with the montage
    sphere: mne.bem.ConductorModel

    def below(self, anchors: tuple[str, ...], depth: float) -> np.ndarray:
        """A point at ``depth`` (fraction of the brain radius) from the centre, towards the anchor electrodes."""
        names = list(THINGS_EEG_63)
        target = np.mean([self.ch_pos[names.index(a)] for a in anchors], axis=0)
        direction = target - self.r0
        return self.r0 + depth * self.brain_radius * direction / np.linalg.norm(direction)


def build_head() -> HeadModel:
    """Build the 63 THINGS channels (+ Fz) on the standard 10-05 montage and fit a three-shell sphere to them."""
    import mne

    from .._montage import make_montage

    names = [*THINGS_EEG_63, REFERENCE]
    info = mne.create_info(names, SFREQ, "eeg")
    info.set_montage(make_montage(MONTAGE), verbose=False)
    radius, r0, _ = mne.bem.fit_sphere_to_headshape(info, dig_kinds=("eeg",), units="m", verbose=False)
    sphere = mne.make_sphere_model(r0, radius, verbose=False)
    pos = np.array([ch["loc"][:3] for ch in info["chs"]])
    return HeadModel(
        ch_pos=pos[:63], ref_pos=pos[63], r0=np.asarray(r0, dtype=np.float64), head_radius=float(radius),
        brain_radius=float(sphere["layers"][0]["rad"]), info=info, sphere=sphere,
    )  # fmt: skip


def leadfields(head: HeadModel, positions: np.ndarray) -> np.ndarray:
    """Free-orientation leadfields of dipoles at ``positions`` (n, 3), re-referenced to Fz: ``(n, 63, 3)``.

    Computed with :func:`mne.make_forward_solution` on the sphere model (a fraction of a second for a few hundred
    dipoles, so the result needs no cache).
    """
    import mne

    info, sphere = head.info, head.sphere
    positions = np.asarray(positions, dtype=np.float64)
    src = mne.setup_volume_source_space(
        pos={"rr": positions, "nn": np.tile([0.0, 0.0, 1.0], (len(positions), 1))},
        sphere=sphere, mindist=0.0, verbose=False,
    )  # fmt: skip
    fwd = mne.make_forward_solution(
        info, trans=None, src=src, bem=sphere, meg=False, eeg=True, mindist=0.0, n_jobs=1, verbose=False
    )
    if fwd["nsource"] != len(positions):  # every position lies well inside the brain sphere by construction
        raise ToolkitError("The forward model dropped simulated dipoles; this is a bug in the simulator.")
    gain = fwd["sol"]["data"]  # (64, 3n), x/y/z columns per dipole, channel order of `info`
    gain = gain[:63] - gain[63:64]  # reference to Fz
    return gain.reshape(63, len(positions), 3).transpose(1, 0, 2).copy()


# -- the seeded model of one simulated world and its subjects ---------------------------------------------------
def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _rotate(v: np.ndarray, axis: np.ndarray, angle: float) -> np.ndarray:
    """Rotate ``v`` about the unit ``axis`` by ``angle`` radians (Rodrigues)."""
    return v * np.cos(angle) + np.cross(axis, v) * np.sin(angle) + axis * np.dot(axis, v) * (1 - np.cos(angle))


@dataclass
class World:
    """What all subjects share: dipole template, feature-to-amplitude mapping, background sources."""

    positions: np.ndarray  # (n_comp, 3)
    radial: np.ndarray  # (n_comp, 3)
    tangential: np.ndarray  # (n_comp, 3)
    base: list[np.ndarray]  # per component (2 * n_bases,) mean amplitudes
    weights: list[np.ndarray]  # per component (n_features, 2 * n_bases)
    weight_scale: list[np.ndarray]  # per component (n_features, 2 * n_bases): scale of the entries (0 = not carried)
    latency_weights: np.ndarray  # (n_features, n_comp) seconds per unit feature
    alpha_positions: np.ndarray  # (2, 3)
    background_positions: np.ndarray  # (n_bg, 3)
    background_orientations: np.ndarray  # (n_bg, 3)
    template_norms: np.ndarray  # (n_comp,) norm of the template radial topography
    alpha_template_norms: np.ndarray  # (2,)


def build_world(
    config: SimulationConfig,
    head: HeadModel,
    groups: dict[str, list[int]],
    train_feats: np.ndarray,
    rng: np.random.Generator,
) -> World:
    """Draw the shared part of the model (dipole template, mapping, background sources).

    The mapping of each component is normalised so that, over the training images, its feature-driven amplitudes
    have the component's ``modulation`` as root mean square: components carrying few or many attribute values get
    comparable, controlled information.
    """
    n_features = sum(len(v) for v in groups.values())
    centred = train_feats - train_feats.mean(axis=0)
    positions = np.array([head.below(c.anchors, c.depth) for c in COMPONENTS])
    radial = _unit(positions - head.r0)
    tangential = _unit(np.cross(radial, rng.normal(size=radial.shape)))
    base, weights, scales = [], [], []
    latency_weights = np.zeros((n_features, len(COMPONENTS)))
    for ci, comp in enumerate(COMPONENTS):
        k = comp.n_bases
        b = np.zeros(2 * k)
        b[0] = comp.amplitude
        scale = np.zeros((n_features, 1))
        for group in comp.carries:
            idx = groups[group]
            if not idx:
                continue
            scale[idx] = GROUP_WEIGHTS[group] / (np.sqrt(len(idx)) if group == "concept" else 1.0)
        w = rng.normal(size=(n_features, 2 * k)) * scale
        if "x" in comp.carries:  # contralateral: a stimulus on the right drives the left hemisphere more
            sign = 1.0 if comp.hemisphere == "left" else -1.0
            w[groups["x"][0], 0] += sign * 0.4 * np.sign(comp.amplitude)
        if "size" in comp.carries:  # larger stimuli give larger and earlier early responses
            w[groups["size"][0], 0] += 0.3 * np.sign(comp.amplitude)
            latency_weights[groups["size"][0], ci] = -comp.latency_sd
        rms = np.sqrt(np.mean((centred @ w[:, :k]) ** 2))
        factor = comp.modulation / rms if rms > 0 else 0.0
        scale = np.repeat(scale * factor, 2 * k, axis=1)
        scale[:, k:] *= TANGENTIAL_GAIN
        w *= factor
        w[:, k:] *= TANGENTIAL_GAIN
        for group in comp.carries:
            if group in ("shape", "texture", "concept"):
                latency_weights[groups[group], ci] = rng.normal(0.0, comp.latency_sd, len(groups[group]))
        base.append(b)
        weights.append(w)
        scales.append(scale)
    alpha_positions = np.array([head.below(a, ALPHA_DEPTH) for a in ALPHA_ANCHORS])
    n_bg = config.noise.n_background_sources
    direction = _unit(rng.normal(size=(n_bg, 3)))
    depth = head.brain_radius * rng.uniform(0.25, 0.85, (n_bg, 1))
    bg_pos = head.r0 + direction * depth
    bg_ori = _unit(rng.normal(size=(n_bg, 3)))
    return World(
        positions=positions, radial=radial, tangential=tangential, base=base, weights=weights, weight_scale=scales,
        latency_weights=latency_weights, alpha_positions=alpha_positions, background_positions=bg_pos,
        background_orientations=bg_ori, template_norms=np.ones(len(COMPONENTS)), alpha_template_norms=np.ones(2),
    )  # fmt: skip


@dataclass
class Subject:
    """Everything specific to one simulated subject."""

    label: str
    positions: np.ndarray  # (n_comp, 3)
    orientations: np.ndarray  # (n_comp, 2, 3) radial-ish and tangential
    topographies: list[np.ndarray]  # per component (63, 2)
    gains: np.ndarray  # (n_comp,)
    latency_shifts: np.ndarray  # (n_comp,) seconds
    base: list[np.ndarray]
    weights: list[np.ndarray]
    latency_weights: np.ndarray
    alpha_topographies: np.ndarray  # (63, 2)
    alpha_hz: float
    background_mix: np.ndarray  # (63, rank): spatial colouring of the background
    sensor_scale: np.ndarray  # (63,)
    line_amplitude: np.ndarray  # (63,)
    line_phase: np.ndarray  # (63,)
    blink_topography: np.ndarray  # (63,)
    part_gains: dict  # relative gain of each noise part (set by calibration)
    signal_scale: float = 1.0
    noise_scale: float = 1.0
    anterior_profile: np.ndarray | None = None  # (63,) weight of the anterior artefacts (None: switched off)


def anterior_profile(head: HeadModel) -> np.ndarray:
    """Weight of the anterior artefacts per channel, ``(63,)`` in 0 … 1: 1 over the frontal channels, ~0 behind C.

    A logistic function of the electrode's anterior-posterior coordinate ``u`` (head coordinates, +y towards the
    nasion) relative to the fitted sphere's centre, in head radii: ``1 / (1 + exp(-(u - ANTERIOR_EDGE) /
    ANTERIOR_WIDTH))``. On the THINGS montage the Fp/AF/F channels get ~1, FC 0.9-1, C 0.3-0.5, T7/T8 ~0.2 and the
    centro-parietal, parietal and occipital channels (where the simulated stimulus-driven sources project) < 0.02.
    """
    u = (head.ch_pos[:, 1] - head.r0[1]) / head.head_radius
    return 1.0 / (1.0 + np.exp(-(u - ANTERIOR_EDGE) / ANTERIOR_WIDTH))


def build_subjects(
    config: SimulationConfig, head: HeadModel, world: World, seed: int, groups: dict[str, list[int]]
) -> list[Subject]:
    """Jitter the template for every subject and compute all leadfields with one forward computation."""
    n_comp = len(COMPONENTS)
    draws = []
    for s in range(config.n_subjects):
        rng = np.random.default_rng([seed, 3, s])
        pos = world.positions + rng.normal(0.0, config.subject_position_sd, world.positions.shape)
        ori = np.empty((n_comp, 2, 3))
        for ci in range(n_comp):
            axis = _unit(rng.normal(size=3))
            angle = np.deg2rad(rng.normal(0.0, config.subject_orientation_sd))
            rad = _unit(_rotate(world.radial[ci], axis, angle))
            tan = _unit(world.tangential[ci] - np.dot(world.tangential[ci], rad) * rad)
            ori[ci] = rad, tan
        alpha_pos = world.alpha_positions + rng.normal(0.0, config.subject_position_sd, (2, 3))
        draws.append((rng, pos, ori, alpha_pos))
    # One forward computation for the template, every subject's dipoles and the background sources.
    all_pos = np.concatenate(
        [world.positions, world.alpha_positions, *[np.concatenate([d[1], d[3]]) for d in draws],
         world.background_positions]
    )  # fmt: skip
    lf = leadfields(head, all_pos)
    n_loc = n_comp + 2
    template = lf[:n_loc]
    world.template_norms = np.linalg.norm(np.einsum("ncj,nj->nc", template[:n_comp], world.radial), axis=1)
    alpha_radial = _unit(world.alpha_positions - head.r0)
    world.alpha_template_norms = np.linalg.norm(np.einsum("ncj,nj->nc", template[n_comp:], alpha_radial), axis=1)
    bg = lf[n_loc * (config.n_subjects + 1) :]
    bg_topo = np.einsum("ncj,nj->cn", bg, world.background_orientations)  # (63, n_bg)
    cov = bg_topo @ bg_topo.T
    cov /= np.mean(np.diag(cov))
    # The background's spatial colouring, truncated to the components holding 99.5 % of its variance (smooth
    # sphere leadfields give a fast-decaying spectrum; fewer 1/f series make generation faster).
    evals, evecs = np.linalg.eigh(cov)
    evals, evecs = evals[::-1].clip(0.0), evecs[:, ::-1]
    rank = int(np.searchsorted(np.cumsum(evals) / evals.sum(), 0.995) + 1)
    mix = evecs[:, :rank] * np.sqrt(evals[:rank])

    names = list(THINGS_EEG_63)
    fp = head.ch_pos[[names.index("Fp1"), names.index("Fp2")]]
    dist = np.linalg.norm(head.ch_pos[:, None, :] - fp[None], axis=2).min(axis=1)
    dist_ref = np.linalg.norm(head.ref_pos[None] - fp, axis=1).min()
    blink = np.exp(-dist / BLINK_LENGTH_M) - np.exp(-dist_ref / BLINK_LENGTH_M)  # referenced to Fz as well
    anterior = anterior_profile(head) if config.noise.anterior_artefact_power > 0 else None

    subjects = []
    for s, (rng, pos, ori, alpha_pos) in enumerate(draws):
        own = lf[n_loc * (s + 1) : n_loc * (s + 2)]
        topos = []
        for ci in range(n_comp):
            topos.append(own[ci] @ ori[ci].T / world.template_norms[ci])  # (63, 2): radial, tangential
        alpha_ori = _unit(alpha_pos - head.r0)
        alpha_topo = np.einsum("ncj,nj->cn", own[n_comp:], alpha_ori) / world.alpha_template_norms
        gains = np.exp(rng.normal(0.0, config.subject_amplitude_sd, n_comp)) * np.exp(
            rng.normal(0.0, 0.75 * config.subject_amplitude_sd)
        )
        shifts = rng.normal(0.0, config.subject_latency_sd) + rng.normal(0.0, config.subject_latency_sd / 3, n_comp)
        weights = [
            w + config.subject_weight_sd * rng.normal(size=w.shape) * sc
            for w, sc in zip(world.weights, world.weight_scale)
        ]
        subjects.append(
            Subject(
                label=f"sub-{s + 1:02d}",
                positions=pos,
                orientations=ori,
                topographies=topos,
                gains=gains,
                latency_shifts=shifts,
                base=world.base,
                weights=weights,
                latency_weights=world.latency_weights,
                alpha_topographies=alpha_topo,
                alpha_hz=float(np.clip(rng.normal(config.noise.alpha_hz, 0.8), 7.5, 13.0)),
                background_mix=mix,
                sensor_scale=np.exp(rng.normal(0.0, 0.2, 63)),
                line_amplitude=np.exp(rng.normal(0.0, 0.4, 63)),
                line_phase=rng.normal(0.0, 0.3, 63),
                blink_topography=blink,
                part_gains={},
                anterior_profile=anterior,
            )
        )
    return subjects


# -- signal ------------------------------------------------------------------------------------------------------
# Internally, trials are laid out channel-major, (63, n, 300), so that every projection through a topography is one
# matrix product over all trials; `generate` transposes once to the official (n, 63, 250) order.


def _project(topo: np.ndarray, courses: np.ndarray) -> np.ndarray:
    """``topo`` (63, k) times ``courses`` (k, n, T) -> (63, n, T), as a single matrix product."""
    k, n, t = courses.shape
    topo = np.asarray(topo, dtype=np.float32).reshape(63, k)
    if k == 1:  # an outer product: broadcasting beats a degenerate matrix product
        return topo[:, :, None] * courses
    return (topo @ courses.reshape(k, n * t)).reshape(63, n, t)


def evoked(
    subject: Subject,
    feats: np.ndarray,
    *,
    latency_jitter: np.ndarray | None = None,
    gain_jitter: np.ndarray | None = None,
    components: list[int] | None = None,
) -> np.ndarray:
    """Stimulus-evoked scalp signal (before scaling) for feature vectors ``feats`` over -0.2 … 0.996 s.

    Parameters
    ----------
    subject : Subject
        The subject's model.
    feats : np.ndarray, shape (n, n_features)
        Latent features of each trial's image.
    latency_jitter, gain_jitter : np.ndarray | None, shape (n, n_comp)
        Per-trial latency shifts (seconds) and gain factors; none for the clean response.
    components : list of int | None
        Indices into :data:`COMPONENTS` to include (all by default).

    Returns
    -------
    np.ndarray
        float32 ``(63, n, 300)`` (channel-major).
    """
    t = official_times().astype(np.float32)
    n = len(feats)
    selected = range(len(COMPONENTS)) if components is None else components
    courses = np.empty((2 * len(selected), n, t.size), dtype=np.float32)
    lat_all = feats @ subject.latency_weights + subject.latency_shifts  # (n, n_comp)
    for j, ci in enumerate(selected):
        comp = COMPONENTS[ci]
        lat = comp.latency + lat_all[:, ci]
        if latency_jitter is not None:
            lat = lat + latency_jitter[:, ci]
        u = ((t[None, :] - lat[:, None]) / comp.width).astype(np.float32)
        bases = hermite_bases(u, comp.n_bases)  # (K, n, T)
        amp = (subject.base[ci] + feats @ subject.weights[ci]) * subject.gains[ci]  # (n, 2K)
        if gain_jitter is not None:
            amp = amp * gain_jitter[:, ci : ci + 1]
        amp = amp.reshape(n, 2, comp.n_bases).astype(np.float32)
        courses[2 * j : 2 * j + 2] = np.einsum("nsk,knt->snt", amp, bases)  # radial, tangential
    topo = np.concatenate([subject.topographies[ci] for ci in selected], axis=1)
    return _project(topo, courses)  # one matrix product for all sources


def trial_jitter(config: SimulationConfig, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per-trial latency shifts (seconds) and gain factors ``(n, n_comp)``; later components jitter more."""
    lat = np.array([c.latency for c in COMPONENTS])
    sd = config.trial_latency_sd * np.sqrt(lat / 0.1)
    common = rng.standard_normal((n, 1))
    own = rng.standard_normal((n, len(COMPONENTS)))
    latency = sd * (0.7 * common + 0.71 * own)
    gains = np.exp(rng.normal(0.0, config.trial_amplitude_sd, (n, len(COMPONENTS))))
    return latency, gains


# -- noise -------------------------------------------------------------------------------------------------------
NOISE_PARTS = ("background", "sensor", "alpha", "line", "blink", "anterior")  # "anterior" only when switched on


def _pink(k: int, n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """``k`` x ``n`` independent 1/f^exponent series of 300 samples, ``(k, n, 300)`` float32.

    Made by an inverse FFT of Gaussian spectra shaped by f^(-exponent/2), 512 points long and cropped so that the
    epoch is not periodic. Hand-written because neither numpy, scipy nor MNE offers a vectorised 1/f generator.
    """
    freqs = np.fft.rfftfreq(_N_FFT, 1.0 / SFREQ)
    shape = np.zeros_like(freqs)
    shape[1:] = np.maximum(freqs[1:], 1.0) ** (-exponent / 2.0)
    spec = rng.standard_normal((k, n, freqs.size, 2), dtype=np.float32).view(np.complex64)[..., 0]
    spec *= shape.astype(np.float32)
    return np.fft.irfft(spec, n=_N_FFT, axis=-1)[..., : N_BASELINE + N_TIMES].astype(np.float32)


def noise(
    config: SimulationConfig, subject: Subject, n: int, rng: np.random.Generator, *, parts: bool = False
) -> tuple[np.ndarray | dict[str, np.ndarray], dict]:
    """Noise of ``n`` trials over -0.2 … 0.996 s (before scaling), with each part's calibrated gain applied.

    Returns
    -------
    data : np.ndarray | dict
        float32 ``(63, n, 300)`` (channel-major), or a dict of the parts when ``parts`` is true.
    events : dict
        ``blink`` (bool per trial), ``blink_onset`` (seconds, NaN without blink), ``alpha_amplitude``.
    """
    cfg = config.noise
    t = official_times().astype(np.float32)
    g = subject.part_gains
    # Every part but the sensor noise is sources (rows of `courses`) seen through topographies (columns of `topos`).
    topos: dict[str, np.ndarray] = {}
    courses: dict[str, np.ndarray] = {}

    trial_power = np.exp(rng.normal(0.0, cfg.trial_power_sd, (1, n, 1))).astype(np.float32)
    topos["background"] = subject.background_mix * g.get("background", 1.0)
    courses["background"] = _pink(subject.background_mix.shape[1], n, cfg.background_exponent, rng) * trial_power

    sensor = rng.standard_normal((63, n, t.size), dtype=np.float32)
    sensor *= (subject.sensor_scale * g.get("sensor", 1.0)).astype(np.float32)[:, None, None]

    amp = np.exp(rng.normal(0.0, cfg.alpha_trial_sd, (n, 1))).astype(np.float32)
    freq = subject.alpha_hz + rng.normal(0.0, 0.3, (n, 1))
    phase = rng.uniform(0, 2 * np.pi, (n, 1))
    lag = rng.normal(0.0, 0.6, (n, 1))
    onset = 1.0 / (1.0 + np.exp(-(t - 0.2) / 0.04))
    recovery = 1.0 / (1.0 + np.exp(-(t - 0.8) / 0.08))
    envelope = (1.0 - cfg.alpha_desync * (onset - recovery)).astype(np.float32) * amp  # (n, T)
    left = np.sin(2 * np.pi * freq * t + phase).astype(np.float32) * envelope
    right = np.sin(2 * np.pi * freq * t + phase + lag).astype(np.float32) * envelope
    topos["alpha"] = subject.alpha_topographies * g.get("alpha", 1.0)
    courses["alpha"] = np.stack([left, right])

    # Mains: a common phase per trial and a fixed phase offset per channel, sin(a + b) = sin a cos b + cos a sin b.
    arg = 2 * np.pi * cfg.line_hz * t[None, :] + rng.uniform(0, 2 * np.pi, (n, 1))
    amp_line = subject.line_amplitude * g.get("line", 1.0)
    topos["line"] = np.stack([amp_line * np.cos(subject.line_phase), amp_line * np.sin(subject.line_phase)], axis=1)
    courses["line"] = np.stack([np.sin(arg), np.cos(arg)]).astype(np.float32)

    has_blink = rng.uniform(size=n) < cfg.blink_probability
    blink_onset = np.where(has_blink, rng.uniform(-0.25, 0.95, n), np.nan)
    blink_size = np.exp(rng.normal(0.0, 0.25, n))
    waves = np.zeros((1, n, t.size), dtype=np.float32)
    if has_blink.any():
        # A gamma-like lid movement peaking 100 ms after its onset.
        tau = np.clip((t[None, :] - blink_onset[has_blink, None]) / 0.1, 0.0, None)
        waves[0, has_blink] = blink_size[has_blink, None] * tau**3 * np.exp(3.0 * (1.0 - tau))
    topos["blink"] = subject.blink_topography[:, None] * g.get("blink", 1.0)
    courses["blink"] = waves

    # Anterior artefacts (off by default): their random draws come last, so the other parts' streams and hence
    # every dataset made without them are unchanged. One 1/f series per affected electrode, not re-referenced
    # (electrode-level: skin potentials, muscle tone, eye movements seen as independent drifts).
    anterior = None
    if cfg.anterior_artefact_power > 0 and subject.anterior_profile is not None:
        keep = np.flatnonzero(subject.anterior_profile > 1e-3)
        level = np.exp(rng.normal(0.0, ANTERIOR_TRIAL_SD, (1, n, 1))).astype(np.float32)
        weight = (subject.anterior_profile[keep] * g.get("anterior", 1.0)).astype(np.float32)
        anterior = (keep, _pink(keep.size, n, cfg.anterior_artefact_exponent, rng) * level * weight[:, None, None])

    events = {"blink": has_blink, "blink_onset": blink_onset, "alpha_amplitude": amp[:, 0]}
    if parts:
        out = {name: _project(topos[name], courses[name]) for name in topos}
        out["sensor"] = sensor
        if anterior is not None:
            out["anterior"] = np.zeros_like(sensor)
            out["anterior"][anterior[0]] = anterior[1]
        return out, events
    total = _project(np.concatenate(list(topos.values()), axis=1), np.concatenate(list(courses.values())))
    total += sensor
    if anterior is not None:
        total[anterior[0]] += anterior[1]
    return total, events


def _baseline(x: np.ndarray) -> np.ndarray:
    """Subtract the mean of the 50 pre-stimulus samples and keep the 250 samples from 0 s (official recipe)."""
    return x[..., N_BASELINE:] - x[..., :N_BASELINE].mean(axis=-1, keepdims=True)


def calibrate(config: SimulationConfig, subject: Subject, train_feats: np.ndarray, seed: int) -> dict:
    """Set the subject's noise-part gains, signal and noise scales so that the SNR and units come out right.

    Noise parts are scaled to their relative powers (background = 1; a blink peaks at ``blink_amplitude`` times
    the background's standard deviation, averaged over channels, at Fp1/Fp2); then the signal is scaled to a mean
    square of ``snr`` and the noise to about 1, both measured on calibration trials of their own random stream.

    Returns
    -------
    dict
        The measured raw powers, for the record.
    """
    cfg = config.noise
    rng = np.random.default_rng([seed, 5, int(subject.label[4:])])
    subject.part_gains = {}
    parts, _ = noise(config, subject, _CALIBRATION_TRIALS, rng, parts=True)
    raw = {name: float(np.mean(_baseline(parts[name]) ** 2)) for name in ("background", "sensor", "alpha", "line")}
    targets = {"background": cfg.background_power, "sensor": cfg.sensor_power, "alpha": cfg.alpha_power,
               "line": cfg.line_power}  # fmt: skip
    if "anterior" in parts:  # only when switched on (the record of datasets without it is unchanged)
        raw["anterior"] = float(np.mean(_baseline(parts["anterior"]) ** 2))
        targets["anterior"] = cfg.anterior_artefact_power
    gains = {k: (np.sqrt(targets[k] / raw[k]) if raw[k] > 0 else 0.0) for k in targets}
    fp_idx = [list(THINGS_EEG_63).index("Fp1"), list(THINGS_EEG_63).index("Fp2")]
    bg_sd = float(np.sqrt(cfg.background_power))
    peak = float(np.abs(subject.blink_topography[fp_idx]).max())
    gains["blink"] = cfg.blink_amplitude * bg_sd / peak if peak > 0 else 0.0
    subject.part_gains = {k: float(v) for k, v in gains.items()}

    total, _ = noise(config, subject, _CALIBRATION_TRIALS, rng)
    noise_ms = float(np.mean(_baseline(total) ** 2))
    take = np.linspace(0, len(train_feats) - 1, min(len(train_feats), _CALIBRATION_TRIALS)).astype(int)
    lat, gain = trial_jitter(config, len(take), rng)
    signal = evoked(subject, train_feats[take], latency_jitter=lat, gain_jitter=gain)
    signal_ms = float(np.mean(_baseline(signal) ** 2))
    subject.signal_scale = float(np.sqrt(config.snr / signal_ms))
    subject.noise_scale = float(1.0 / np.sqrt(noise_ms))
    return {"raw_part_power": raw, "raw_noise_power": noise_ms, "raw_signal_power": signal_ms}


@dataclass
class SplitStats:
    """Running sums over the generated trials of one subject and split (for the realised SNR)."""

    signal_ss: float = 0.0
    noise_ss: float = 0.0
    count: int = 0
    blink: np.ndarray | None = None
    blink_onset: np.ndarray | None = None

    @property
    def snr(self) -> float:
        """Realised mean-square ratio of signal to noise."""
        return self.signal_ss / self.noise_ss if self.noise_ss > 0 else float("inf")


def generate(
    config: SimulationConfig,
    subject: Subject,
    feats: np.ndarray,
    n_reps: int,
    key: list[int],
    stats: SplitStats,
) -> Iterator[np.ndarray]:
    """Yield the trials of one split in chunks of conditions, ``(n_chunk, n_reps, 63, 250)`` float32.

    Parameters
    ----------
    config : SimulationConfig
        Sizes and variability.
    subject : Subject
        A calibrated subject (see :func:`calibrate`).
    feats : np.ndarray, shape (n_conditions, n_features)
        Latent features of each condition's image.
    n_reps : int
        Repetitions per condition.
    key : list of int
        Prefix of the per-chunk random streams.
    stats : SplitStats
        Updated with the realised signal and noise powers and the blink events.
    """
    n_cond = len(feats)
    stats.blink = np.zeros((n_cond, n_reps), dtype=bool)
    stats.blink_onset = np.full((n_cond, n_reps), np.nan, dtype=np.float32)
    step = max(1, config.chunk_trials // n_reps)
    for chunk, start in enumerate(range(0, n_cond, step)):
        stop = min(n_cond, start + step)
        rng = np.random.default_rng([*key, chunk])
        n = (stop - start) * n_reps
        trial_feats = np.repeat(feats[start:stop], n_reps, axis=0)
        lat, gain = trial_jitter(config, n, rng)
        sig = _baseline(evoked(subject, trial_feats, latency_jitter=lat, gain_jitter=gain))
        sig *= np.float32(subject.signal_scale)
        noi, events = noise(config, subject, n, rng)
        noi = _baseline(noi)
        noi *= np.float32(subject.noise_scale)
        stats.signal_ss += float(np.einsum("ijk,ijk->", sig, sig, dtype=np.float64))
        stats.noise_ss += float(np.einsum("ijk,ijk->", noi, noi, dtype=np.float64))
        stats.count += sig.size
        stats.blink[start:stop] = events["blink"].reshape(-1, n_reps)
        stats.blink_onset[start:stop] = events["blink_onset"].reshape(-1, n_reps)
        sig += noi
        yield sig.transpose(1, 0, 2).reshape(stop - start, n_reps, 63, N_TIMES)


# -- ground truth: where and when the stimulus information lies --------------------------------------------------
def information_maps(
    config: SimulationConfig,
    subjects: list[Subject],
    feats: np.ndarray,
    groups: dict[str, list[int]],
    seed: int,
    max_images: int = 256,
) -> dict[str, np.ndarray]:
    """Image-dependent variance of the clean (noise-free, jitter-free) response, per channel and sample.

    The variance across training images of the noise-free response is the information a decoder can use; it is
    computed in output units for up to ``max_images`` images per subject, for the whole response, for each
    component and for each feature group (the others held at their mean), and averaged over subjects.

    Returns
    -------
    dict of str to np.ndarray
        ``variance`` (63, 250); ``component_variance`` (n_comp, 63, 250); ``group_variance`` (n_groups, 63, 250);
        ``noise_variance`` (63,) (per channel, in output units, from calibration trials).
    """
    take = np.linspace(0, len(feats) - 1, min(len(feats), max_images)).astype(int)
    f = feats[take]
    names = list(groups)
    total = np.zeros((63, N_TIMES))
    per_comp = np.zeros((len(COMPONENTS), 63, N_TIMES))
    per_group = np.zeros((len(names), 63, N_TIMES))
    noise_var = np.zeros(63)
    for subject in subjects:
        scale = np.float32(subject.signal_scale)
        total += (_baseline(evoked(subject, f)) * scale).var(axis=1)
        for ci in range(len(COMPONENTS)):
            per_comp[ci] += (_baseline(evoked(subject, f, components=[ci])) * scale).var(axis=1)
        for gi, name in enumerate(names):
            held = f.copy()
            others = [i for g, idx in groups.items() if g != name for i in idx]
            held[:, others] = f[:, others].mean(axis=0)
            carriers = [ci for ci, c in enumerate(COMPONENTS) if name in c.carries]
            per_group[gi] += (_baseline(evoked(subject, held, components=carriers)) * scale).var(axis=1)
        rng = np.random.default_rng([seed, 6, int(subject.label[4:])])
        sample, _ = noise(config, subject, 64, rng)
        noise_var += (_baseline(sample) * subject.noise_scale).var(axis=(1, 2))
    k = len(subjects)
    return {
        "variance": total / k,
        "component_variance": per_comp / k,
        "group_variance": per_group / k,
        "noise_variance": noise_var / k,
    }


def windows_from_score(score: np.ndarray, threshold: float, min_samples: int = 3) -> list[tuple[int, int]]:
    """Runs of ``score >= threshold`` at least ``min_samples`` long, as ``(start, stop)`` pairs (stop exclusive)."""
    above = np.concatenate([[False], score >= threshold, [False]])
    edges = np.flatnonzero(np.diff(above.astype(np.int8)))
    runs = list(zip(edges[::2], edges[1::2]))
    return [(int(a), int(b)) for a, b in runs if b - a >= min_samples]
