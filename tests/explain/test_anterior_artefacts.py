"""The simulator's anterior-artefact option, which the discriminating attribution validation relies on.

Off by default (every default output byte-identical: tests/data/test_simulate.py); switched on, the highest-amplitude
channels are frontal and carry no stimulus information, so ranking channels by amplitude ranks the informative
(posterior) channels last.
"""

from __future__ import annotations

import numpy as np
import pytest

from toolkit import ToolkitError
from toolkit.data.simulate import NoiseConfig, SimulationConfig, load_ground_truth, simulate
from toolkit.explain import channel_auroc

SIZES = dict(
    n_subjects=1, n_train_concepts=12, n_train_images=1, n_train_reps=1, n_test_concepts=8, n_test_images=1,
    n_test_reps=2, n_shapes=4, n_colours=4, n_textures=3, image_size=32, snr=0.3, chunk_trials=32,
)


def test_the_option_is_validated_and_recorded_only_when_used():
    with pytest.raises(ToolkitError, match=r"noise\.anterior_artefact_power"):
        NoiseConfig(anterior_artefact_power=-1.0)
    with pytest.raises(ToolkitError, match=r"noise\.anterior_artefact_exponent"):
        NoiseConfig(anterior_artefact_exponent=float("nan"))
    plain = SimulationConfig(name="x", **SIZES).to_dict()["noise"]
    assert not any(k.startswith("anterior") for k in plain)  # datasets without it keep their simulation.json
    used = SimulationConfig(name="x", **SIZES, noise=NoiseConfig(anterior_artefact_power=5.0)).to_dict()["noise"]
    assert used["anterior_artefact_power"] == 5.0 and "anterior_artefact_exponent" not in used


def test_anterior_artefacts_make_amplitude_anti_informative(tmp_path):
    config = SimulationConfig(name="x", **SIZES, noise=NoiseConfig(anterior_artefact_power=30.0))
    result = simulate(tmp_path / "sim", config, seed=0, show_progress=False)
    truth = load_ground_truth(result.root)
    profile, informative = truth["anterior_artefact_profile"], truth["informative_channels_mask"]
    names = list(truth["ch_names"])
    assert profile.shape == (63,) and profile[names.index("Fp1")] > 0.99 and profile[names.index("Oz")] < 1e-3
    assert profile[informative].max() < 0.25  # the stimulus-driven sources are posterior
    assert truth["noise"]["anterior_artefact_power"] == 30.0
    assert "anterior" in truth["subjects"]["sub-01"]["noise_part_gains"]
    noise = truth["noise_variance"]
    assert noise[profile > 0.9].mean() > 10 * noise[profile < 0.01].mean()
    data = np.load(result.eeg_file(1, "test"), allow_pickle=True)["preprocessed_eeg_data"]
    rms = np.sqrt(np.mean(data[:, 0] ** 2, axis=(0, 2)))  # first repetition of every test image
    assert channel_auroc(rms, informative) < 0.5
    assert result.snr["sub-01"]["test"] == pytest.approx(0.3, rel=0.3)
