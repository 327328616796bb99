"""Simulation settings: the attribute vocabularies, :class:`NoiseConfig`, :class:`SimulationConfig` and the presets.

A preset fixes every size and every knob of the simulator; :func:`resolve_config` applies the few command-line
overrides (subjects, SNR, dtype) and validates the result, raising a :class:`~toolkit.ToolkitError` that names the
bad argument.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, field, replace

from ...errors import ToolkitError

# The attribute vocabularies. A preset uses the first ``n_shapes`` / ``n_colours`` / ``n_textures`` entries, so the
# small presets draw from the most distinct values and every preset's names are a prefix of the full lists.
SHAPES = (
    "circle", "square", "triangle", "star", "cross", "ring", "diamond", "hexagon", "pentagon", "heart", "crescent",
    "arrow",
)  # fmt: skip
COLOURS = {
    "red": (220, 30, 35),
    "blue": (35, 75, 220),
    "green": (30, 160, 60),
    "yellow": (240, 215, 30),
    "orange": (245, 130, 20),
    "purple": (130, 50, 180),
    "pink": (245, 135, 190),
    "cyan": (40, 205, 225),
    "brown": (125, 75, 35),
    "lime": (160, 235, 40),
    "magenta": (225, 30, 200),
    "teal": (20, 125, 125),
    "navy": (20, 30, 110),
    "olive": (120, 125, 30),
    "black": (15, 15, 15),
    "white": (245, 245, 245),
}
TEXTURES = ("plain", "striped", "dotted", "checkered", "hatched", "gridded", "wavy", "zigzag", "speckled", "ringed")

# Names of the feature groups that the components of the EEG model can carry (see ``_eeg.COMPONENTS``).
FEATURE_GROUPS = ("shape", "colour", "texture", "size", "x", "y", "concept")

DTYPES = ("float64", "float32")


@dataclass(frozen=True)
class NoiseConfig:
    """The noise model, as relative powers and rates (the overall noise level follows from the SNR).

    Parameters
    ----------
    background_power : float
        Relative power of the spatially correlated 1/f background (random sources through the head model).
    background_exponent : float
        Spectral exponent of the background: power ∝ 1 / f ** exponent.
    n_background_sources : int
        Number of random dipoles whose leadfields define the background's spatial correlation.
    sensor_power : float
        Relative power of independent white noise per channel (amplifier and electrode noise).
    alpha_power : float
        Mean relative power of posterior alpha (varies from trial to trial, log-normally).
    alpha_hz : float
        Mean alpha frequency across subjects; each subject gets its own peak frequency.
    alpha_trial_sd : float
        Standard deviation of the log of the per-trial alpha amplitude.
    alpha_desync : float
        Fractional drop of alpha amplitude after stimulus onset (event-related desynchronisation, 0 … 1).
    blink_probability : float
        Probability that a trial contains a blink.
    blink_amplitude : float
        Peak of a blink at Fp1/Fp2 in units of the background's standard deviation (averaged over channels).
    line_hz : float
        Mains frequency (50 Hz; 60 Hz also lies below the 125 Hz Nyquist frequency).
    line_power : float
        Relative power of the mains interference (small).
    trial_power_sd : float
        Standard deviation of the log of a per-trial factor on the background (non-stationarity).
    anterior_artefact_power : float
        Relative power (averaged over all 63 channels, like the other parts) of electrode-level artefacts over the
        front of the head: eye movements, frontalis and temporalis muscle tone, forehead skin potentials. Each
        electrode gets its own 1/f series (independent between electrodes, not re-referenced) weighted by a profile
        that is 1 over the frontal channels and fades out towards the vertex (see ``_eeg.anterior_profile``). 0 (the
        default) switches the part off and leaves every output byte-identical to a simulator without it. A large
        value makes the highest-variance channels carry no stimulus information — the stimulus-driven sources are
        posterior — which is how :mod:`toolkit.bench.explain_validation` tells an attribution map that found the
        information from one that merely follows the input's amplitude.
    anterior_artefact_exponent : float
        Spectral exponent of the anterior artefacts (power ∝ 1 / f ** exponent; slow drifts are steeper than 1).
    """

    background_power: float = 1.0
    background_exponent: float = 1.0
    n_background_sources: int = 64
    sensor_power: float = 0.15
    alpha_power: float = 0.35
    alpha_hz: float = 10.0
    alpha_trial_sd: float = 0.5
    alpha_desync: float = 0.5
    blink_probability: float = 0.1
    blink_amplitude: float = 15.0
    line_hz: float = 50.0
    line_power: float = 0.02
    trial_power_sd: float = 0.15
    anterior_artefact_power: float = 0.0
    anterior_artefact_exponent: float = 1.5

    #: Fields added after simulator 1.0: left out of :meth:`SimulationConfig.to_dict` while at their default, so the
    #: ``simulation.json`` and ``ground_truth.json`` of datasets that do not use them stay byte-identical.
    ADDED_FIELDS = ("anterior_artefact_power", "anterior_artefact_exponent")

    def __post_init__(self) -> None:
        for name in (
            "background_power", "background_exponent", "sensor_power", "alpha_power", "alpha_trial_sd",
            "blink_amplitude", "line_power", "trial_power_sd", "anterior_artefact_power", "anterior_artefact_exponent",
        ):  # fmt: skip
            _check_number(f"noise.{name}", getattr(self, name), minimum=0.0)
        _check_number("noise.alpha_hz", self.alpha_hz, minimum=1.0, maximum=40.0)
        _check_number("noise.line_hz", self.line_hz, minimum=1.0, maximum=124.0)
        _check_number("noise.alpha_desync", self.alpha_desync, minimum=0.0, maximum=1.0)
        _check_number("noise.blink_probability", self.blink_probability, minimum=0.0, maximum=1.0)
        _check_int("noise.n_background_sources", self.n_background_sources, minimum=1)
        if self.background_power + self.sensor_power <= 0:
            raise ToolkitError("noise.background_power and noise.sensor_power are both 0; make one of them positive.")


@dataclass(frozen=True)
class SimulationConfig:
    """Everything that defines a simulated THINGS-like dataset (except the seed).

    Parameters
    ----------
    name : str
        Preset name, recorded in ``simulation.json``.
    n_subjects : int
        Number of subjects (``sub-01`` … ``sub-NN``).
    n_train_concepts, n_train_images, n_train_reps : int
        Training concepts, images per concept and repetitions per image (THINGS-EEG: 1654, 10, 4).
    n_test_concepts, n_test_images, n_test_reps : int
        Test concepts, images per concept and repetitions per image (THINGS-EEG: 200, 1, 80).
    n_shapes, n_colours, n_textures : int
        How many values of each attribute are used (a prefix of :data:`SHAPES`, :data:`COLOURS`, :data:`TEXTURES`).
    n_concept_dims : int
        Random per-concept latent dimensions ("category" information that attributes do not predict).
    image_size : int
        Side of the square JPEG stimuli in pixels.
    jpeg_quality : int
        JPEG quality of the stimuli.
    snr : float
        Single-trial signal-to-noise ratio: mean square of the stimulus-evoked signal over mean square of the
        noise, both over all 63 channels and the 250 samples of 0 … 0.996 s (a power ratio, not decibels).
    dtype : str
        ``"float64"`` (the official dtype) or ``"float32"`` (half the size) for ``preprocessed_eeg_data``.
    trial_amplitude_sd : float
        Standard deviation of the log of the per-trial gain of each component.
    trial_latency_sd : float
        Per-trial latency jitter in seconds shared by all components (late components jitter more, in proportion).
    subject_position_sd : float
        Per-subject jitter of every dipole position, in metres per axis.
    subject_orientation_sd : float
        Per-subject jitter of every dipole orientation, in degrees.
    subject_amplitude_sd : float
        Standard deviation of the log of the per-subject gain of each component.
    subject_latency_sd : float
        Per-subject latency shift in seconds (shared by the components, plus a third of it per component).
    subject_weight_sd : float
        Per-subject perturbation of the feature-to-amplitude mapping, relative to the mapping's scale.
    chunk_trials : int
        About how many trials are generated and written at a time (whole conditions; bounds memory to a few
        hundred bytes per sample of a chunk). Part of the random streams' layout: changing it changes the noise.
    noise : NoiseConfig
        The noise model.
    """

    name: str
    n_subjects: int
    n_train_concepts: int
    n_train_images: int
    n_train_reps: int
    n_test_concepts: int
    n_test_images: int
    n_test_reps: int
    n_shapes: int
    n_colours: int
    n_textures: int
    image_size: int
    snr: float
    n_concept_dims: int = 4
    jpeg_quality: int = 90
    dtype: str = "float64"
    trial_amplitude_sd: float = 0.25
    trial_latency_sd: float = 0.006
    subject_position_sd: float = 0.004
    subject_orientation_sd: float = 12.0
    subject_amplitude_sd: float = 0.2
    subject_latency_sd: float = 0.008
    subject_weight_sd: float = 0.15
    chunk_trials: int = 1024
    noise: NoiseConfig = field(default_factory=NoiseConfig)

    def __post_init__(self) -> None:
        for name in (
            "n_subjects", "n_train_concepts", "n_train_images", "n_train_reps", "n_test_concepts", "n_test_images",
            "n_test_reps", "chunk_trials",
        ):  # fmt: skip
            _check_int(name, getattr(self, name), minimum=1)
        if self.n_subjects > 99:
            raise ToolkitError(f"n_subjects is {self.n_subjects}; at most 99 subjects (sub-01 … sub-99) are possible.")
        _check_int("n_shapes", self.n_shapes, minimum=2, maximum=len(SHAPES))
        _check_int("n_colours", self.n_colours, minimum=2, maximum=len(COLOURS))
        _check_int("n_textures", self.n_textures, minimum=2, maximum=len(TEXTURES))
        _check_int("n_concept_dims", self.n_concept_dims, minimum=0, maximum=64)
        _check_int("image_size", self.image_size, minimum=32, maximum=1024)
        _check_int("jpeg_quality", self.jpeg_quality, minimum=1, maximum=100)
        _check_number("snr", self.snr, minimum=0.0, strict=True)
        for name in (
            "trial_amplitude_sd", "trial_latency_sd", "subject_position_sd", "subject_orientation_sd",
            "subject_amplitude_sd", "subject_latency_sd", "subject_weight_sd",
        ):  # fmt: skip
            _check_number(name, getattr(self, name), minimum=0.0)
        if self.dtype not in DTYPES:
            raise ToolkitError(f"dtype is {self.dtype!r}; use one of {', '.join(DTYPES)}.")
        if not isinstance(self.noise, NoiseConfig):
            raise ToolkitError("noise must be a NoiseConfig.")
        n_combos = self.n_shapes * self.n_colours * self.n_textures
        n_concepts = self.n_train_concepts + self.n_test_concepts
        if n_concepts > n_combos:
            raise ToolkitError(
                f"{self.n_train_concepts} training + {self.n_test_concepts} test concepts need {n_concepts} distinct "
                f"(shape, colour, texture) combinations but {self.n_shapes} shapes x {self.n_colours} colours x "
                f"{self.n_textures} textures give only {n_combos}; use fewer concepts or more attribute values."
            )
        widest = max(self.n_shapes, self.n_colours, self.n_textures)
        if self.n_train_concepts < widest:
            raise ToolkitError(
                f"n_train_concepts is {self.n_train_concepts} but every one of the {widest} values of the widest "
                f"attribute must occur in training; use at least {widest} training concepts or fewer values."
            )

    # -- derived sizes ----------------------------------------------------------------------------------------
    @property
    def shapes(self) -> tuple[str, ...]:
        """The shape names used."""
        return SHAPES[: self.n_shapes]

    @property
    def colours(self) -> tuple[str, ...]:
        """The colour names used."""
        return tuple(COLOURS)[: self.n_colours]

    @property
    def textures(self) -> tuple[str, ...]:
        """The texture names used."""
        return TEXTURES[: self.n_textures]

    def n_conditions(self, split: str) -> int:
        """Number of image conditions of ``split`` (``"train"`` or ``"test"``)."""
        if split == "train":
            return self.n_train_concepts * self.n_train_images
        return self.n_test_concepts * self.n_test_images

    def n_reps(self, split: str) -> int:
        """Number of repetitions per condition of ``split``."""
        return self.n_train_reps if split == "train" else self.n_test_reps

    def chunk_conditions(self, split: str) -> int:
        """Conditions per generated chunk of ``split`` (``chunk_trials`` worth of whole conditions, at least 1)."""
        return max(1, self.chunk_trials // self.n_reps(split))

    def eeg_bytes(self) -> int:
        """Size in bytes of all EEG arrays this configuration writes (all subjects, both splits)."""
        item = 8 if self.dtype == "float64" else 4
        trials = sum(self.n_conditions(s) * self.n_reps(s) for s in ("train", "test"))
        return self.n_subjects * trials * 63 * 250 * item

    def to_dict(self) -> dict:
        """JSON-serialisable description (noise fields added after simulator 1.0 only when not at their default)."""
        out = asdict(self)
        defaults = NoiseConfig()
        for name in NoiseConfig.ADDED_FIELDS:
            if out["noise"][name] == getattr(defaults, name):
                del out["noise"][name]
        return out


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_int(name: str, value: object, *, minimum: int, maximum: int | None = None) -> None:
    if not _is_int(value) or value < minimum or (maximum is not None and value > maximum):
        upper = f" and at most {maximum}" if maximum is not None else ""
        raise ToolkitError(f"{name} is {value!r}; it must be an integer of at least {minimum}{upper}.")


def _check_number(
    name: str, value: object, *, minimum: float, maximum: float | None = None, strict: bool = False
) -> None:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(float(value))
    if ok:
        ok = (value > minimum if strict else value >= minimum) and (maximum is None or value <= maximum)
    if not ok:
        bound = f"greater than {minimum}" if strict else f"at least {minimum}"
        upper = f" and at most {maximum}" if maximum is not None else ""
        raise ToolkitError(f"{name} is {value!r}; it must be a finite number {bound}{upper}.")


PRESETS: dict[str, SimulationConfig] = {
    # For tests: seconds on two cores, with a high SNR so that small decoders find the signal reliably.
    "tiny": SimulationConfig(
        name="tiny", n_subjects=2,
        n_train_concepts=20, n_train_images=2, n_train_reps=2,
        n_test_concepts=8, n_test_images=1, n_test_reps=4,
        n_shapes=4, n_colours=4, n_textures=3, image_size=64, snr=2.0, chunk_trials=32,
    ),
    # Feeds the demo bundle: an ATM-style encoder trains on it on a CPU in a minute or two.
    "demo": SimulationConfig(
        name="demo", n_subjects=2,
        n_train_concepts=200, n_train_images=6, n_train_reps=2,
        n_test_concepts=50, n_test_images=1, n_test_reps=40,
        n_shapes=8, n_colours=10, n_textures=6, image_size=128, snr=0.3,
    ),
    # The real THINGS-EEG sizes (1654 x 10 x 4 training, 200 x 1 x 80 test, 10 subjects).
    "full": SimulationConfig(
        name="full", n_subjects=10,
        n_train_concepts=1654, n_train_images=10, n_train_reps=4,
        n_test_concepts=200, n_test_images=1, n_test_reps=80,
        n_shapes=12, n_colours=16, n_textures=10, image_size=256, snr=0.1,
    ),
}  # fmt: skip


def resolve_config(
    preset: str | SimulationConfig,
    *,
    n_subjects: int | None = None,
    snr: float | None = None,
    dtype: str | None = None,
) -> SimulationConfig:
    """Return the configuration of ``preset`` with the given overrides applied and validated.

    Parameters
    ----------
    preset : str | SimulationConfig
        A name in :data:`PRESETS` or a configuration.
    n_subjects : int | None
        Number of subjects instead of the preset's.
    snr : float | None
        Single-trial SNR (power ratio, > 0) instead of the preset's.
    dtype : str | None
        ``"float64"`` or ``"float32"`` instead of the preset's.

    Returns
    -------
    SimulationConfig
        The configuration.
    """
    if isinstance(preset, SimulationConfig):
        config = preset
    elif isinstance(preset, str) and preset in PRESETS:
        config = PRESETS[preset]
    else:
        raise ToolkitError(f"Unknown simulation preset {preset!r}; use one of: {', '.join(PRESETS)}.")
    changes: dict = {}
    if n_subjects is not None:
        _check_int("n_subjects (--subjects)", n_subjects, minimum=1, maximum=99)
        changes["n_subjects"] = n_subjects
    if snr is not None:
        _check_number("snr (--snr)", snr, minimum=0.0, strict=True)
        changes["snr"] = float(snr)
    if dtype is not None:
        if dtype not in DTYPES:
            raise ToolkitError(f"dtype (--dtype) is {dtype!r}; use one of {', '.join(DTYPES)}.")
        changes["dtype"] = dtype
    return replace(config, **changes) if changes else config
