"""Decoding your own EEG: :func:`toolkit.pipeline.decode_trialset` on the tiny bundle (consistency with the pipeline,
the amplitude match, zero-filled channels, the montage checks, bad input), the "Your EEG" tab's Decode handler on the
bundled real N170 recording, and ``/your_eeg_decode`` through gradio_client against a live server."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.pipeline._tiny import GROUP
from toolkit import ToolkitError

gr = pytest.importorskip("gradio")

pytestmark = [
    pytest.mark.xdist_group(GROUP),
    # Gradio's queue uses pandas options that pandas 3 deprecates; not ours to fix.
    pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting' is deprecated"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
    # gr.Warning outside a server is a Python warning (the import's zero-fill warning).
    pytest.mark.filterwarnings("ignore::UserWarning"),
]

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "demos" / "examples" / "eegexpy-visual-n170" / "subject0001_session001_data_2017-09-13-15.30.01.csv"
MUSE = ["AF7", "AF8", "TP9", "TP10"]  # in THINGS-63 order
# The example's documented analysis on the encoders' montage: 1-30 Hz, ±100 µV, the target's window.
THINGS_FORM = ("things-eeg-63", "house=1, face=2", None, None, 1.0, 30.0, 100.0)


def _imported(pipeline, *, volts: float = 1e-5, mask=None, subject: str = "sub-01"):
    """The bundle's own test trials dressed as an import (scaled to volt-like values, dataset "imported")."""
    from dataclasses import replace

    trials = pipeline.trials(subject, "test")
    extra = {} if mask is None else {"channel_mask": np.asarray(mask, dtype=bool)}
    data = np.asarray(trials.data, dtype=np.float32) * np.float32(volts)
    if mask is not None:
        data[:, :, ~np.asarray(mask, dtype=bool)] = 0.0  # as the import's zero fill
    return replace(trials, data=data, dataset="imported", images=None, extra=extra)


# -- the library ------------------------------------------------------------------------------------------------------
def test_model_target_is_the_things_montage(tiny_pipeline):
    from toolkit.data.importing import TARGETS
    from toolkit.pipeline import model_target

    assert model_target(tiny_pipeline) == model_target(tiny_pipeline, "nice") == "things-eeg-63"
    assert list(TARGETS["things-eeg-63"].ch_names) == tiny_pipeline.store.entry("sub-01", "test").ch_names
    with pytest.raises(ToolkitError, match="Unknown encoder 'clip'"):
        model_target(tiny_pipeline, "clip")


def test_retrieval_is_the_pipelines_on_rescaled_averages(tiny_pipeline):
    from toolkit.pipeline import decode_trialset
    from toolkit.pipeline.your_eeg import reference_rms

    trials = _imported(tiny_pipeline)
    out = decode_trialset(tiny_pipeline, trials, encoder="nice", condition=2, k=3, reconstruct=False, saliency=False)
    # One amplitude factor: the RMS of the single trials becomes the training trials' RMS.
    rms = np.sqrt(np.mean(np.square(trials.data, dtype=np.float64)))
    assert out.scale == pytest.approx(reference_rms(tiny_pipeline) / rms, rel=1e-5)
    assert 1e4 < out.scale < 1e6  # undoes the 1e-5 of the "volts"
    # The queries are the condition averages; the chosen trial (an average) is its condition's row.
    n, n_rep = trials.n_conditions, trials.n_repetitions
    assert out.queries == [f"condition-{c} (average of {n_rep})" for c in range(n)] and out.chosen == 2
    expected = tiny_pipeline.retrieve(trials.data.mean(axis=1) * out.scale, None, encoder="nice", k=3)
    np.testing.assert_array_equal(out.retrieval.indices, expected.indices)
    np.testing.assert_allclose(out.retrieval.scores, expected.scores, rtol=1e-5, atol=1e-6)
    # Gallery row i is test image i: the paths follow the retrieved rows.
    images = tiny_pipeline.trials("sub-01", "test").images
    assert out.image_paths[2] == [str(images.image_path(int(j))) for j in out.retrieval.indices[2]]
    assert all(Path(p).is_file() for p in out.image_paths[2])
    # The bundle's own trials, amplitude restored: at least twice chance for this encoder (the tiny bundle's 8
    # test images: 4 of 8 right).
    assert (out.retrieval.indices[:, 0] == np.arange(n)).mean() >= 2 / n
    sim = out.embedding_similarity
    assert sim.shape == (n, n) and np.allclose(np.diag(sim), 1.0, atol=1e-4)
    assert out.attribution is None and out.reconstruction is None and out.captions == []
    assert out.target == "things-eeg-63" and out.zero_filled == [] and len(out.signal_channels) == 63
    assert any("never saw this person" in n and "adapt_encoder" in n for n in out.notes)
    assert any("All 63 channels carry signal" in n for n in out.notes)


def test_scale_none_and_a_number(tiny_pipeline):
    from toolkit.pipeline import decode_trialset

    trials = _imported(tiny_pipeline, volts=1.0)  # already in the model's units
    plain = decode_trialset(tiny_pipeline, trials, k=2, scale=None, reconstruct=False, saliency=False)
    assert plain.scale == 1.0 and not any("Amplitudes were multiplied" in n for n in plain.notes)
    averages = trials.data.mean(axis=1)
    np.testing.assert_array_equal(plain.retrieval.indices, tiny_pipeline.retrieve(averages, k=2).indices)
    doubled = decode_trialset(tiny_pipeline, trials, k=2, scale=2.0, reconstruct=False, saliency=False)
    np.testing.assert_array_equal(doubled.retrieval.indices, tiny_pipeline.retrieve(averages * 2, k=2).indices)
    for bad in ("loud", -1.0, float("nan"), True):
        with pytest.raises(ToolkitError, match="scale must be"):
            decode_trialset(tiny_pipeline, trials, scale=bad, reconstruct=False, saliency=False)


def test_chosen_repetition_is_reconstructed_and_explained(tiny_pipeline):
    from toolkit.explain import attribute
    from toolkit.pipeline import decode_trialset

    trials = _imported(tiny_pipeline)
    out = decode_trialset(
        tiny_pipeline, trials, encoder="atm-s", condition="condition-5", repetition=1, k=4, num_inference_steps=3,
        image_size=64,
    )
    n = trials.n_conditions
    assert len(out.queries) == n + 1 and out.chosen == n and out.queries[n] == "condition-5 (repetition 2)"
    assert out.condition == 5 and out.repetition == 1
    x = trials.data[5, 1] * np.float32(out.scale)
    # The reconstruction is the pipeline's on that trial (same seed and steps), with its two controls and captions.
    _, image = tiny_pipeline.predict_image_embeds(x, encoder="atm-s", seed=0, num_inference_steps=3)
    np.testing.assert_allclose(out.reconstruction.image_embeds, image, rtol=1e-5, atol=1e-6)
    assert out.reconstruction.images[0].size == (64, 64) and len(out.captions) == 3
    # The saliency explains the similarity to the chosen trial's top-1 image, from the recording's mean trial.
    assert out.saliency_target == out.retrieval.indices[n, 0]
    gallery, _ = tiny_pipeline.gallery("image", normalize=True)
    base = (trials.data * np.float32(out.scale)).reshape(-1, 63, 250).mean(axis=0, keepdims=True)
    direct = attribute(
        tiny_pipeline.encoder("atm-s"), x[None], method="ig", target="similarity", index=[out.saliency_target],
        image_embeds=gallery, normalize=True, baselines=base, n_steps=16,
    )[0]
    assert out.attribution.shape == (63, 250) and out.attribution.dtype == np.float32
    np.testing.assert_allclose(out.attribution, direct, rtol=1e-4, atol=1e-7)


def test_zero_filled_channels_are_reported_and_left_out_of_saliency(tiny_pipeline):
    from toolkit.data.importing import TARGETS
    from toolkit.pipeline import decode_trialset

    names = list(TARGETS["things-eeg-63"].ch_names)
    mask = np.isin(names, ["O1", "Oz", "O2", "PO7", "PO8"])
    trials = _imported(tiny_pipeline, mask=mask)
    out = decode_trialset(tiny_pipeline, trials, condition=0, repetition=0, k=2, reconstruct=False)
    assert out.signal_channels == out.attribution_ch_names == ["PO7", "PO8", "O1", "Oz", "O2"]  # montage order
    assert len(out.zero_filled) == 58 and "Fp1" in out.zero_filled
    assert out.attribution.shape == (5, 250) and np.abs(out.attribution).max() > 0
    note = next(n for n in out.notes if n.startswith("Only 5 of 63 channels carry signal"))
    assert "(PO7, PO8, O1, Oz, O2)" in note and "58 were zero-filled" in note
    assert "saliency views leave them out" in note
    # The amplitude factor is measured on the channels with signal only (zeros would inflate it).
    rms = np.sqrt(np.mean(np.square(trials.data[:, :, mask], dtype=np.float64)))
    from toolkit.pipeline.your_eeg import reference_rms

    assert out.scale == pytest.approx(reference_rms(tiny_pipeline) / rms, rel=1e-5)


def test_montage_problems_name_the_target(tiny_pipeline):
    from dataclasses import replace

    from toolkit.data import TrialSet
    from toolkit.pipeline import check_model_montage, decode_trialset

    rng = np.random.default_rng(0)
    muse = TrialSet(
        data=rng.standard_normal((2, 3, 4, 180)).astype(np.float32) * 1e-6, ch_names=["TP9", "AF7", "AF8", "TP10"],
        sfreq=256.0, times=np.arange(180) / 256.0 - 0.1, subject="you", split="import", dataset="imported",
        extra={"import_report": {"target": "native"}},
    )
    with pytest.raises(ToolkitError, match=r"imported onto 'native' \(4 channels at 256 Hz\); the demo encoders take "
                                           r"the 'things-eeg-63' montage .*choose the target montage 'things-eeg-63'"):
        decode_trialset(tiny_pipeline, muse)
    trials = _imported(tiny_pipeline)
    shuffled = replace(trials, ch_names=trials.ch_names[::-1])
    with pytest.raises(ToolkitError, match="choose the target montage 'things-eeg-63'"):
        check_model_montage(tiny_pipeline, shuffled)
    with pytest.raises(ToolkitError, match=r"sampled at 100 Hz; .*'things-eeg-63'"):
        check_model_montage(tiny_pipeline, replace(trials, sfreq=100.0))
    # A longer window is cropped to the encoders' (through TrialSet.crop) and said so; a shorter one is refused.
    long = replace(
        trials, data=np.concatenate([trials.data[..., :50], trials.data, trials.data[..., :25]], axis=-1),
        times=np.arange(-50, 275) / 250.0,
    )
    cropped, notes = check_model_montage(tiny_pipeline, long)
    np.testing.assert_array_equal(cropped.data, trials.data)
    assert notes == ["The imported window -0.200–1.096 s was cropped to the encoders' 0–0.996 s."]
    short = replace(trials, data=trials.data[..., :200], times=trials.times[:200])
    with pytest.raises(ToolkitError, match=r"window 0.000–0.796 s does not cover the encoders' window 0–0.996 s"):
        check_model_montage(tiny_pipeline, short)


def test_bad_values_are_one_clear_error(tiny_pipeline):
    from dataclasses import replace

    from toolkit.pipeline import decode_trialset

    trials = _imported(tiny_pipeline)
    fast = {"reconstruct": False, "saliency": False}
    nan = trials.data.copy()
    nan[3, 1, 7, 100] = np.nan
    with pytest.raises(ToolkitError, match=r"contain 1 NaN or infinite values \(conditions condition-3\)"):
        decode_trialset(tiny_pipeline, replace(trials, data=nan), **fast)
    with pytest.raises(ToolkitError, match="No channel of the imported trials carries signal"):
        decode_trialset(tiny_pipeline, _imported(tiny_pipeline, mask=np.zeros(63, bool)), **fast)
    with pytest.raises(ToolkitError, match="flat"):
        decode_trialset(tiny_pipeline, replace(trials, data=np.zeros_like(trials.data)), **fast)
    n, n_rep, n_gallery = trials.n_conditions, trials.n_repetitions, len(tiny_pipeline.gallery("image")[1])
    cases = [
        ({"condition": "cat"}, "Unknown condition 'cat'; choose one of condition-0, condition-1"),
        ({"condition": ""}, "Choose a condition to decode"),
        ({"condition": n}, f"condition {n} is out of range: give a number from 0 to {n - 1}"),
        ({"condition": 1.5}, "condition 1.5 is out of range"),
        ({"repetition": n_rep}, f"repetition must be a whole number from 0 to {n_rep - 1}"),
        ({"k": 0}, f"k must be an integer from 1 to the gallery size {n_gallery}"),
        ({"k": n_gallery + 1}, f"k must be an integer from 1 to the gallery size {n_gallery}"),
        ({"encoder": "clip"}, "Unknown encoder 'clip'"),
        ({"saliency": True, "saliency_method": "deeplift"}, "Unknown saliency method 'deeplift'"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ToolkitError, match=message):
            decode_trialset(tiny_pipeline, trials, **{**fast, **kwargs})


# -- the tab ----------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tab(tiny_pipeline):
    from demos.your_eeg_tab import YourEEGTab

    return YourEEGTab(pipeline=tiny_pipeline)


@pytest.fixture(scope="module")
def n170_things(tab):
    """The bundled real N170 run imported onto the encoders' montage (once for the module)."""
    if not EXAMPLE.is_file():
        pytest.skip("the bundled N170 example is missing")
    return tab.import_files([str(EXAMPLE)], *THINGS_FORM, 0, "uV", "", 0.17)[0]


def test_decode_choices_say_what_can_be_decoded(tab, n170_things):
    condition, repetition, status = tab.decode_choices(n170_things)
    assert condition["choices"] == ["house", "face"] and condition["value"] == "house"
    n = n170_things.n_repetitions
    assert repetition["value"] == -1 and len(repetition["choices"]) == n + 1
    assert repetition["choices"][0] == (f"Average of {n} repetitions", -1) and repetition["choices"][1][1] == 0
    assert status.startswith(f"Ready to decode: 2 conditions × {n} repetitions") and "4 of 63 channels" in status
    native = tab.import_files([str(EXAMPLE)], "native", "house=1, face=2", -0.1, 0.6, 1, 30, 100, 0, "uV", "", 0.17)
    status = tab.decode_choices(native[0])[2]
    assert status.startswith("⚠ Not decodable as imported") and "'things-eeg-63'" in status
    assert tab.decode_choices(None)[2].startswith("Import a recording onto the `things-eeg-63`")


def test_decode_the_real_n170_recording(tab, n170_things, tiny_pipeline):
    """The bundled Muse recording mapped onto 63 channels: honest notes, gallery, images, saliency on 4 channels."""
    from PIL import Image

    summary, gallery, recon, shuffled, prior_only, recon_md, saliency_md, topomap, heatmap = tab.decode_upload(
        n170_things, "face", 2, "atm-s", 3, 0.17
    )
    # The caveats come first: what the encoders were trained on, how many channels carry signal, what to do.
    assert summary.index("Read this first") < summary.index("| Query |")
    assert "simulated THINGS-like EEG" in summary and "never saw this person" in summary
    assert "Only 4 of 63 channels carry signal (AF7, AF8, TP9, TP10)" in summary and "adapt_encoder" in summary
    assert "notebook 05" in summary
    rows = [line for line in summary.splitlines() if line.startswith("| ") and "Query" not in line]
    assert [r.split(" | ")[0] for r in rows] == [
        f"| house (average of {n170_things.n_repetitions})", f"| face (average of {n170_things.n_repetitions})",
        "| face (repetition 3) ← chosen",
    ]
    # The gallery: the chosen trial's top 3 test images, best first, as the library ranked them.
    assert len(gallery) == 3 and all(Path(path).is_file() for path, _ in gallery)
    scores = [float(caption.rsplit("· ", 1)[1]) for _, caption in gallery]
    assert scores == sorted(scores, reverse=True) and gallery[0][1].startswith("1. ")
    assert all(isinstance(img, Image.Image) and img.size == (256, 256) for img in (recon, shuffled, prior_only))
    assert recon_md.count("- **") == 3 and "face (repetition 3)" in recon_md
    # Saliency: the 4 recorded channels only (the 59 zero-filled ones are left out), a scalp map from 4 electrodes.
    assert sorted(heatmap.data[0].y) == sorted(MUSE) and len(heatmap.data[0].x) == 250
    assert topomap.dtype == np.uint8 and topomap.ndim == 3 and topomap.shape[0] > 150  # a map, not a message
    assert "Zero-filled channels are left out (59)" in saliency_md
    assert "read it as 4 values on a head" in saliency_md


def test_decode_hook_returns_both_kinds_of_views(tab, n170_things):
    from demos.your_eeg_tab import DecodeRequest

    views = tab.decode(n170_things, latency=0.2, request=DecodeRequest("nice", "house", None, 2))
    assert views.erp is not None and views.topomap is not None  # the ERP views as before
    assert set(views.extra) == {"decoding", "retrieval", "reconstruction", "saliency"}
    assert views.extra["decoding"].chosen == 0 and len(views.extra["retrieval"]["items"]) == 2
    assert views.channels == MUSE  # the channels with signal, in the montage's order


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((None, "face", -1, "atm-s", 3), "Nothing imported yet; .* choose the target montage 'things-eeg-63'"),
        (("n170", "", -1, "atm-s", 3), "Choose a condition to decode"),
        (("n170", None, -1, "atm-s", 3), "Choose a condition to decode"),
        (("n170", "cat", -1, "atm-s", 3), "Unknown condition 'cat'; choose one of house, face"),
        (("n170", "face", 999, "atm-s", 3), "repetition must be a whole number from 0 to"),
        (("n170", "face", "first", "atm-s", 3), "The repetition must be a whole number; got 'first'"),
        (("n170", "face", -1, "", 3), "Choose an encoder: atm-s, nice"),
        (("n170", "face", -1, "clip", 3), "Unknown encoder 'clip'"),
        (("n170", "face", -1, "atm-s", 0), "k must be an integer from 1 to the gallery size"),
        (("n170", "face", -1, "atm-s", 2.5), "k must be a whole number; got 2.5"),
    ],
)
def test_decode_bad_input_is_one_message(tab, n170_things, args, message):
    trials = n170_things if args[0] == "n170" else args[0]
    with pytest.raises(gr.Error, match=message):
        tab.decode_upload(trials, *args[1:], 0.17)


def test_decode_refuses_other_montages_and_nan(tab, n170_things):
    from dataclasses import replace

    from demos.your_eeg_tab import YourEEGTab

    muse = tab.import_files([str(EXAMPLE)], "native", "house=1, face=2", -0.1, 0.6, 1, 30, 100, 0, "uV", "", 0.17)[0]
    with pytest.raises(gr.Error, match=r"imported onto 'native' \(4 channels at 256 Hz\).*target montage "
                                       r"'things-eeg-63' and import again"):
        tab.decode_upload(muse, "face", -1, "atm-s", 3, 0.17)
    data = np.array(n170_things.data)
    data[1, 0, n170_things.ch_names.index("TP9"), 10] = np.inf
    with pytest.raises(gr.Error, match=r"contain 1 NaN or infinite values \(conditions face\)"):
        tab.decode_upload(replace(n170_things, data=data), "face", -1, "atm-s", 3, 0.17)
    with pytest.raises(gr.Error, match="runs without a decoding pipeline"):
        YourEEGTab(example=False).decode_upload(n170_things, "face", -1, "atm-s", 3, 0.17)


def test_unforeseen_failure_is_one_message(tab, n170_things, monkeypatch):
    import toolkit.pipeline

    def broken(*args, **kwargs):
        raise RuntimeError("model exploded")

    monkeypatch.setattr(toolkit.pipeline, "decode_trialset", broken, raising=False)
    with pytest.raises(gr.Error, match=r"Decoding failed unexpectedly \(RuntimeError: model exploded\)"):
        tab.decode_upload(n170_things, "face", -1, "atm-s", 3, 0.17)


def test_concurrent_decodes_match_sequential_ones(tab, n170_things, tiny_pipeline, monkeypatch):
    """Decodes running beside the Reconstruct tab share the app-wide generation lock: same images as one by one."""
    from concurrent.futures import ThreadPoolExecutor

    import demos.your_eeg_tab
    from demos.reconstruct_tab import ReconstructTab

    monkeypatch.setitem(demos.your_eeg_tab.RECONSTRUCTION, "num_inference_steps", 4)  # a quicker prior
    calls = [("face", -1, "atm-s"), ("house", 0, "atm-s")]
    sequential = [tab.decode_upload(n170_things, *call, 3, 0.2) for call in calls]
    reconstruct = ReconstructTab(tiny_pipeline)
    expected = reconstruct.reconstruct("sub-01", 0, -1, "atm-s", 0, 4, 5.0)[1]
    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(tab.decode_upload, n170_things, *call, 3, 0.2) for call in calls]
        other = pool.submit(reconstruct.reconstruct, "sub-01", 0, -1, "atm-s", 0, 4, 5.0)
        concurrent = [f.result() for f in futures]
    assert np.array_equal(np.asarray(other.result()[1]), np.asarray(expected))
    for seq, con in zip(sequential, concurrent, strict=True):
        assert seq[0] == con[0]  # the same retrieval (and notes)
        for a, b in zip(seq[2:5], con[2:5], strict=True):
            assert np.array_equal(np.asarray(a), np.asarray(b))  # the same reconstruction and controls
        np.testing.assert_array_equal(seq[7], con[7])  # the same saliency scalp map


# -- a live server ----------------------------------------------------------------------------------------------------
def test_build_has_the_decode_controls(decoding_app, tiny_pipeline):
    _, app = decoding_app
    limits = {fn.api_name: fn.concurrency_limit for fn in app.fns.values()}
    assert limits["your_eeg_decode"] == 1  # it generates: one at a time, like /reconstruct
    api_names = {dep.get("api_name") for dep in app.config["dependencies"]}
    assert {"your_eeg_decode", "your_eeg_decode_choices"} <= api_names
    labels = {c["props"].get("label") for c in app.config["components"]}
    assert {"Condition", "Trial", "Saliency: channels with signal × time", "Chosen trial: top k test images"} <= labels
    button = next(c for c in app.config["components"] if c["props"].get("value") == "Decode")
    assert button["props"]["interactive"] is not False


def test_decode_through_gradio_client(decoding_app):
    """One session: import the example onto the encoders' montage, decode, then bad input; the server keeps serving."""
    import json

    from gradio_client import Client, handle_file

    url, _ = decoding_app
    client = Client(url, verbose=False)
    out = client.predict([handle_file(str(EXAMPLE))], *THINGS_FORM, 0, "uV", "", 0.17, api_name="/your_eeg_import")
    assert "63 channels × 250 samples at 250 Hz" in out[0]
    condition, _, status = client.predict(api_name="/your_eeg_decode_choices")
    assert status.startswith("Ready to decode") and condition["value"] == "house"
    summary, gallery, recon, shuffled, prior_only, _, saliency_md, topomap, heatmap = client.predict(
        "face", -1, "nice", 4, 0.2, api_name="/your_eeg_decode"
    )
    assert "Only 4 of 63 channels carry signal" in summary and "never saw this person" in summary
    assert len(gallery) == 4 and all(Path(item["image"]).is_file() for item in gallery)
    assert gallery[0]["caption"].startswith("1. ")
    assert all(Path(p).is_file() for p in (recon, shuffled, prior_only))
    assert "Integrated gradients" in saliency_md and Path(topomap).is_file()
    assert sorted(json.loads(heatmap["plot"])["data"][0]["y"]) == sorted(MUSE)
    # bad input: one message each, and the session's import is kept
    with pytest.raises(Exception, match="Unknown condition 'cat'; choose one of house, face"):
        client.predict("cat", -1, "nice", 4, 0.2, api_name="/your_eeg_decode")
    with pytest.raises(Exception, match="Nothing imported yet"):
        Client(url, verbose=False).predict("face", -1, "nice", 4, 0.2, api_name="/your_eeg_decode")
    client.predict([handle_file(str(EXAMPLE))], "native", "house=1, face=2", -0.1, 0.6, 1.0, 30.0, 100.0, 0, "uV",
                   "", 0.17, api_name="/your_eeg_import")
    with pytest.raises(Exception, match="choose the target montage 'things-eeg-63' and import again"):
        client.predict("face", -1, "nice", 4, 0.2, api_name="/your_eeg_decode")
    # ... and the server still serves
    assert client.predict("things-eeg-63", api_name="/your_eeg_target") == (0.0, 0.996)
