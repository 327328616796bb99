"""ATM-S against the reference fixtures (reference/ATM.md §13): key mapping, outputs within 1e-5, round trip."""

from __future__ import annotations

import json
import math

import pytest
import torch

from toolkit import ToolkitError
from toolkit.encoders import (
    REFERENCE_IGNORED_KEYS,
    REFERENCE_RECOMPUTED_KEYS,
    ATMSConfig,
    ATMSEncoder,
    EEGEncoder,
    convert_reference_state_dict,
    create_encoder,
    load_reference_atms,
)
from toolkit.encoders._parity import map_reference_key, reference_config_from_state_dict, reference_forward

TOL = 1e-5


@pytest.fixture(scope="module")
def parity_dir(shared_dir):
    folder = shared_dir / "reference" / "atm-parity"
    if not (folder / "atm_reference_weights.safetensors").is_file():
        pytest.skip("the ATM parity fixtures are not present")
    return folder


@pytest.fixture(scope="module")
def reference_io(parity_dir) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(parity_dir / "atm_reference_io.safetensors"))


@pytest.fixture(scope="module")
def reference_state(parity_dir) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(parity_dir / "atm_reference_weights.safetensors"))


@pytest.fixture(scope="module")
def manifest(parity_dir) -> dict[str, list[int]]:
    return json.loads((parity_dir / "state_dict_manifest.json").read_text())["ATMS"]


@pytest.fixture
def encoder(parity_dir) -> ATMSEncoder:
    return load_reference_atms(parity_dir / "atm_reference_weights.safetensors")


def _ignored(key: str) -> bool:
    return key in REFERENCE_RECOMPUTED_KEYS or any(key.startswith(p) for p in REFERENCE_IGNORED_KEYS)


def test_mapping_covers_every_manifest_key(manifest):
    ours = {name: tuple(t.shape) for name, t in ATMSEncoder().state_dict().items()}
    mapped = {}
    for key, shape in manifest.items():
        target = map_reference_key(key)
        if target is None:
            assert _ignored(key), key
            continue
        assert target not in mapped, f"two reference keys map to {target}"
        mapped[target] = key
        expected = tuple(s for s in shape if not (target.endswith(("ffn1.weight", "ffn2.weight")) and s == 1))
        assert ours[target] == expected, (key, target)
    # A bijection between the used reference entries and this encoder's state dict.
    assert set(mapped) == set(ours)
    # Every documented ignore rule really matches something (the constant is not stale).
    for prefix in (*REFERENCE_IGNORED_KEYS, *REFERENCE_RECOMPUTED_KEYS):
        assert any(k.startswith(prefix) for k in manifest), prefix
    assert {k for k in manifest if _ignored(k)} >= {"logit_scale", "encoder.enc_embedding.mask_token"}


def test_parameter_count_is_reference_minus_unused(manifest):
    trainable = {
        k: math.prod(s) for k, s in manifest.items() if not k.endswith(("running_mean", "running_var", "_tracked"))
    }
    trainable.pop("encoder.enc_embedding.position_embedding.pe")
    assert sum(trainable.values()) == 3_202_413
    unused = sum(v for k, v in trainable.items() if _ignored(k))
    assert ATMSEncoder().n_parameters() == 3_202_413 - unused == 3_075_412


def test_config_inferred_from_reference_shapes(reference_state):
    config = reference_config_from_state_dict(reference_state)
    assert config == ATMSConfig()
    assert config.flatten_size == 1440


@pytest.mark.parametrize("path", ["fused", "layers", "literal"])
def test_reference_weights_reproduce_reference_outputs(encoder, reference_io, path):
    assert reference_io["subject_ids"].tolist() == [0, 1, 5, 9]
    encoder.fast_inference = path == "fused"
    with torch.no_grad():
        if path == "literal":
            out = reference_forward(encoder, reference_io["eeg"], reference_io["subject_ids"])
        else:
            out = encoder(reference_io["eeg"], reference_io["subject_ids"])
    assert (encoder._fused_cache is not None) == (path == "fused")
    assert out.shape == (4, 1024) and out.dtype == torch.float32
    err = (out - reference_io["embedding"]).abs().max().item()
    assert err <= TOL, f"{path} path differs from the reference by {err:.2e}"


def test_save_pretrained_round_trip_is_identical(encoder, reference_io, tmp_path):
    encoder.save_pretrained(tmp_path / "atm")
    loaded = EEGEncoder.from_pretrained(tmp_path / "atm")
    assert type(loaded) is ATMSEncoder and loaded.config == encoder.config and not loaded.training
    eeg, ids = reference_io["eeg"], reference_io["subject_ids"]
    with torch.no_grad():
        for fast in (True, False):
            encoder.fast_inference = loaded.fast_inference = fast
            assert torch.equal(loaded(eeg, ids), encoder(eeg, ids))
        assert (loaded(eeg, ids) - reference_io["embedding"]).abs().max() <= TOL
    meta = json.loads((tmp_path / "atm" / "config.json").read_text())
    assert meta["encoder"] == "atm-s" and "toolkit_version" in meta
    assert meta["config"]["positional_encoding"] == "sinusoidal" and meta["config"]["token_slice"] == "reference"


def test_torch_checkpoint_with_dataparallel_prefix_loads(reference_state, reference_io, tmp_path):
    path = tmp_path / "atms.pth"
    torch.save({f"module.{k}": v for k, v in reference_state.items()}, path)
    loaded = load_reference_atms(path)
    with torch.no_grad():
        out = loaded(reference_io["eeg"], reference_io["subject_ids"])
    assert (out - reference_io["embedding"]).abs().max() <= TOL


def test_unknown_reference_key_fails(reference_state):
    with pytest.raises(ToolkitError, match=r"'encoder\.extra\.weight'"):
        convert_reference_state_dict({**reference_state, "encoder.extra.weight": torch.zeros(2)})


def test_changed_positional_table_fails(reference_state):
    state = dict(reference_state)
    state["encoder.enc_embedding.position_embedding.pe"] = state["encoder.enc_embedding.position_embedding.pe"] + 1
    with pytest.raises(ToolkitError, match="positional-encoding table"):
        load_reference_atms(state)


def test_missing_and_garbage_checkpoints_fail(tmp_path):
    with pytest.raises(ToolkitError, match="does not exist"):
        load_reference_atms(tmp_path / "nope.safetensors")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ToolkitError, match="could not be read"):
        load_reference_atms(bad)
    with pytest.raises(ToolkitError, match="not a reference ATMS state dict"):
        load_reference_atms({"proj_eeg.0.weight": torch.zeros(4, 4)})


def test_positional_encoding_switch_changes_the_output(reference_state, reference_io):
    config = ATMSConfig(positional_encoding="none")
    no_pe = load_reference_atms(reference_state, config)
    with torch.no_grad():
        out = no_pe(reference_io["eeg"], reference_io["subject_ids"])
    assert (out - reference_io["embedding"]).abs().max() > 1e-3


def test_token_slice_all_does_not_fit_reference_weights(reference_state):
    with pytest.raises(ToolkitError, match=r"tsconv\.spatial\.weight \(checkpoint \(40, 40, 63, 1\) vs model"):
        load_reference_atms(reference_state, ATMSConfig(token_slice="all"))


def test_unknown_subjects_use_the_shared_token(reference_state, reference_io):
    eeg = reference_io["eeg"]
    mixed = torch.tensor([0, 1, 5, 10])
    batch_mode = load_reference_atms(reference_state)
    trial_mode = load_reference_atms(reference_state, ATMSConfig(subject_fallback="trial"))
    with torch.no_grad():
        shared = batch_mode(eeg, None)
        # Reference behaviour: one unknown id switches the whole batch to the shared token.
        torch.testing.assert_close(batch_mode(eeg, mixed), shared, rtol=0, atol=TOL)
        per_trial = trial_mode(eeg, mixed)
    torch.testing.assert_close(per_trial[:3], reference_io["embedding"][:3], rtol=0, atol=TOL)
    torch.testing.assert_close(per_trial[3], shared[3], rtol=0, atol=TOL)
    assert (shared - reference_io["embedding"]).abs().max() > 1e-3


def test_flatten_size_is_derived_for_things_meg():
    torch.manual_seed(0)
    meg = create_encoder("atm-s", n_chans=271, n_times=201, sfreq=200.0).eval()
    assert meg.config.flatten_size == 1040 == meg.tsconv.out_features == meg.projector.linear.in_features
    with torch.no_grad():
        out = meg(torch.randn(2, 271, 201), torch.tensor([1, 2]))
    assert out.shape == (2, 1024)
