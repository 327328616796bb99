"""The simulator: a THINGS-like dataset in the official THINGS-EEG layout, with ground truth.

Stimuli are procedurally rendered objects whose concept is a (shape, colour, texture) combination; test concepts are
unseen combinations. EEG comes from an MNE forward model on a spherical head: ERP components (P1, N170, P250, P300)
whose amplitudes and latencies are a fixed, seeded function of each image's latent features, plus subject and trial
variability and realistic noise (1/f background, alpha, blinks, mains). The ground truth records the features, the
components, and which channels and time windows carry stimulus information.

>>> from toolkit.data.simulate import simulate, load_ground_truth
>>> result = simulate("data/sim-tiny", "tiny", seed=0)  # doctest: +SKIP
>>> truth = load_ground_truth(result.root)  # doctest: +SKIP
"""

from ._presets import COLOURS, PRESETS, SHAPES, TEXTURES, NoiseConfig, SimulationConfig, resolve_config
from ._writer import SimulationResult, load_ground_truth, simulate

# Re-exported by `toolkit.data` under these names: there, `simulate` would clash with this sub-package's own name.
simulate_dataset = simulate
SIMULATION_PRESETS = PRESETS

__all__ = [
    "COLOURS",
    "PRESETS",
    "SHAPES",
    "SIMULATION_PRESETS",
    "TEXTURES",
    "NoiseConfig",
    "SimulationConfig",
    "SimulationResult",
    "load_ground_truth",
    "resolve_config",
    "simulate",
    "simulate_dataset",
]
