"""The atm-things-eeg bundle through toolkit.pipeline, on tiny parts of the real classes (offline, seconds).

The parts (tests/pipeline/_real.py): the simulator's tiny dataset converted to the bundle's store, ATM-S trained for
one epoch (a run directory) and a random NICE (a bare checkpoint), a random diffusion prior, random 16-d CLIP-like
embeddings, a tiny SDXL pipeline with an IP-Adapter file, a tiny GIT and a tiny PixelProjector.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from toolkit import ToolkitError
from toolkit.cli import main

from ._real import EMBED_DIM, use_real

pytestmark = [pytest.mark.xdist_group("real-bundle"), pytest.mark.usefixtures("one_thread")]


def _last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_init_writes_the_manifest_and_check_opens_it(real_parts, monkeypatch, capsys):
    use_real(monkeypatch, real_parts)
    assert main(real_parts.init_args("--json")) == 0
    out = _last_json(capsys)
    comps = out["components"]
    assert comps["dataset"]["store"] == "store"  # inside the bundle directory: relative
    assert comps["dataset"]["subjects"] == ["sub-01", "sub-02"]
    assert list(comps["encoders"]) == ["atm-s", "nice"] and comps["models"]["default_encoder"] == "atm-s"
    atm = comps["encoders"]["atm-s"]
    assert atm["path"].endswith("best") and atm["run"] == str(real_parts.run)  # a run directory was recognised
    assert atm["training_setting"] == "intra-subject" and atm["subject_ids"] == {"sub-01": 1}
    assert comps["encoders"]["nice"]["run"] is None
    assert comps["prior"]["condition"] == "raw"
    assert comps["ip_adapter"]["subfolder"] == "sdxl_models"
    assert comps["captioner"] == {"path": str(real_parts.git)} and comps["projector"] is None
    assert main(["bundle", "check", "atm-things-eeg", "--json"]) == 0
    check = _last_json(capsys)
    assert check["ready"] and check["encoders"] == ["atm-s", "nice"] and check["backend"]["dtype"] == "float32"


def test_trials_galleries_and_retrieval(real_pipe):
    from toolkit.pipeline import DiffusersBackend, GeneratorBackend

    assert isinstance(real_pipe.backend, DiffusersBackend) and isinstance(real_pipe.backend, GeneratorBackend)
    assert real_pipe.vision is real_pipe.backend  # embedder, decoder and captioner, like the demo's vision models
    assert real_pipe.encoders == ["atm-s", "nice"] and real_pipe.subjects == ["sub-01", "sub-02"]
    assert real_pipe.images_root == Path(os.environ["EEG_TOOLKIT_DATA"]) / "things-eeg"
    trials = real_pipe.trials("sub-02", "test", average=True)
    assert trials.data.shape == (8, 1, 63, 250) and trials.images.image_path(0).is_file()
    embeds, concepts = real_pipe.gallery("image")
    assert embeds.shape == (8, EMBED_DIM) and np.allclose(np.linalg.norm(embeds, axis=1), 1, atol=1e-5)
    assert concepts == [trials.images.concept_of(i) for i in range(8)]
    raw, _ = real_pipe.gallery("image", normalize=False)
    assert np.linalg.norm(raw, axis=1).min() > 2  # the file's raw embeddings, not unit vectors
    text, text_concepts = real_pipe.gallery("text")  # from the embeddings file: OpenCLIP is never loaded
    assert text.shape == (8, EMBED_DIM) and text_concepts == concepts and real_pipe.backend._embedder is None
    out = real_pipe.retrieve(trials.data[:, 0], "sub-02", k=3)
    assert out.indices.shape == (8, 3) and np.all(np.diff(out.scores, axis=1) <= 1e-6)
    assert out.eeg_embeds.shape == (8, EMBED_DIM) and out.encoder == "atm-s"
    # ATM-S was trained on sub-01 only: another subject gets the shared token, like its own test evaluation.
    np.testing.assert_allclose(out.eeg_embeds, real_pipe.embed(trials.data[:, 0], None), atol=1e-6)
    one = real_pipe.retrieve(trials.data[0, 0], encoder="nice", k=1, gallery="text")
    assert one.indices.shape == (1, 1) and one.gallery == "text"


def test_evaluate_with_run_card_and_made_card(real_pipe, capsys):
    result = real_pipe.evaluate("sub-02", ks=[2, 4], n_draws=5)
    card = result.protocol
    assert card.subjects == ("sub-02",) and card.training_setting == "intra-subject" and card.training_seed == 0
    assert "validation" in card.selection_rule and not card.selected_on_test
    two = result.score(2)
    assert two.exact_ci[0] <= two.exact <= two.exact_ci[1]
    # A bare checkpoint: the card is made from the bundle's data and says what was not recorded.
    bare = real_pipe.evaluate("sub-01", encoder="nice", gallery="text", ks=[2], n_draws=3).protocol
    assert bare.gallery_kind == "text" and "This picture is {concept}" in bare.gallery
    assert bare.repetitions_averaged == 4 and bare.n_channels == 63 and bare.backbone == "test random-16 none"
    assert "not recorded" in bare.selection_rule and "not recorded" in bare.notes
    # The evaluate command goes through the same pipeline.
    assert main(["evaluate", "--bundle", "atm-things-eeg", "--subject", "sub-02", "--ks", "2", "--n-draws", "3",
                 "--json"]) == 0
    out = _last_json(capsys)
    assert set(out["results"]) == {"atm-s", "nice"} and out["results"]["nice"]["protocol"]["subjects"] == ["sub-02"]


def test_reconstruct_is_seeded_and_has_controls(real_pipe):
    trials = real_pipe.trials("sub-01", "test", average=True)
    eeg = trials.data[:3, 0]
    rec = real_pipe.reconstruct(eeg, "sub-01", seed=2, num_inference_steps=3)
    assert len(rec.images) == len(rec.shuffled_images) == len(rec.prior_only_images) == 3
    assert rec.images[0].size == (32, 32)  # the tiny SDXL's native size
    for embeds in (rec.image_embeds, rec.shuffled_embeds, rec.prior_only_embeds, rec.eeg_embeds):
        assert embeds.shape == (3, EMBED_DIM) and np.isfinite(embeds).all()
    assert np.all(rec.shuffled_from != np.arange(3))
    assert rec.settings["prior_condition"] == "raw" and rec.settings["decoding"]["generator_steps"] == 4
    # The semantic path of the real bundle is toolkit.generation.semantic (`toolkit caption`), not reconstruct.
    assert not real_pipe.has_semantic_path and rec.semantic_images is None and rec.prior_only_semantic_images is None
    again = real_pipe.reconstruct(eeg, "sub-01", seed=2, num_inference_steps=3, size=24)
    np.testing.assert_allclose(again.image_embeds, rec.image_embeds, atol=1e-5)
    assert again.images[0].size == (24, 24)
    assert np.array_equal(np.asarray(again.images[1]), np.asarray(rec.images[1].resize((24, 24), 3)))
    other = real_pipe.reconstruct(eeg[:1], "sub-01", seed=3, num_inference_steps=3)
    assert other.shuffled_from.tolist() == [-1]  # one trial: conditioned on another test trial of the bundle
    assert not np.array_equal(np.asarray(other.images[0]), np.asarray(rec.images[0]))
    # The prior is conditioned on the raw encoder output (the manifest says so), not on the unit embedding.
    _, cond = real_pipe._prior_condition(eeg, "sub-01", "atm-s")
    np.testing.assert_allclose(cond, real_pipe.embed(eeg, "sub-01", normalize=False), atol=1e-6)
    assert not np.allclose(np.linalg.norm(cond, axis=1), 1, atol=1e-3)


def test_captions_of_decoded_images_and_of_projected_tokens(real_pipe, real_parts):
    import torch

    from toolkit.pipeline import DecodingPipeline

    trials = real_pipe.trials("sub-01", "test", average=True)
    eeg = trials.data[:2, 0]
    rec = real_pipe.reconstruct(eeg, "sub-01", seed=0, num_inference_steps=2)
    # Without a projector GIT captions the image each embedding decoded to (reused, not generated again).
    captions = real_pipe.vision.captioner(rec.image_embeds)
    assert captions == real_pipe.backend.git.caption_images(rec.images, progress_bar=False)
    assert all(isinstance(c, str) for c in captions)
    assert len(real_pipe.caption(eeg, "sub-01", num_inference_steps=2)) == 2
    assert len(real_pipe.caption(eeg, "sub-01", via="eeg")) == 2
    # With a projector: ATM's semantic path (embedding -> vision tokens -> GIT).
    manifest = json.loads(json.dumps(real_pipe.manifest))
    manifest["components"]["projector"] = {"path": str(real_parts.projector)}
    pipe = DecodingPipeline(real_pipe.bundle, real_pipe.path, manifest)
    tokens = pipe.backend.projector(torch.from_numpy(rec.image_embeds))
    assert tuple(tokens.shape[1:]) == (pipe.backend.git.n_vision_tokens, pipe.backend.git.vision_hidden_size)
    projected = pipe.caption(eeg, "sub-01", num_inference_steps=2)
    assert len(projected) == 2 and pipe.backend.describe()["captioner"].endswith("on projected vision tokens")
    assert not pipe.backend._recent  # no image was generated to caption


def test_missing_parts_are_listed_in_one_error(real_parts, monkeypatch, tmp_path, capsys):
    from toolkit.pipeline import load_pipeline

    use_real(monkeypatch, real_parts)
    # bundle init refuses parts that are not there, naming all of them at once.
    args = real_parts.init_args("--prior", str(tmp_path / "no-prior"), "--embeddings", str(tmp_path / "no.npz"))
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "no-prior" in err and "no.npz" in err and "toolkit embed" in err
    # A manifest whose parts went away: one error naming the manifest and every missing part.
    home = tmp_path / "home"
    (home / "bundles" / "atm-things-eeg").mkdir(parents=True)
    manifest = json.loads((real_parts.home / "bundles" / "atm-things-eeg" / "bundle.json").read_text())
    manifest["components"]["prior"]["path"] = str(tmp_path / "gone-prior")
    manifest["components"]["generator"] = {"path": str(tmp_path / "gone-sdxl"), "num_inference_steps": 4}
    (home / "bundles" / "atm-things-eeg" / "bundle.json").write_text(json.dumps(manifest))
    monkeypatch.setenv("EEG_TOOLKIT_HOME", str(home))
    with pytest.raises(ToolkitError) as info:
        load_pipeline("atm-things-eeg")
    text = str(info.value)
    assert text.startswith("The atm-things-eeg bundle cannot be opened as a pipeline: missing")
    for part in ("converted store", "gone-prior", "gone-sdxl", "bundle.json", "data convert"):
        assert part in text, part
    with pytest.raises(ToolkitError, match="device and dtype apply to the atm-things-eeg bundle"):
        load_pipeline("demo", device="cpu")


def test_parts_that_do_not_fit_are_refused(real_parts, monkeypatch, tmp_path, capsys):
    from toolkit.encoders import create_encoder

    use_real(monkeypatch, real_parts)
    narrow = create_encoder("nice", n_filters=8, temporal_kernel=13, pool_kernel=25, pool_stride=5, embed_dim=8)
    narrow.save_pretrained(tmp_path / "narrow")
    before = (real_parts.home / "bundles" / "atm-things-eeg" / "bundle.json").read_text()
    assert main(real_parts.init_args("--encoder", f"narrow={tmp_path / 'narrow'}")) == 2
    err = capsys.readouterr().err
    assert "do not fit together" in err and "'narrow' makes 8-dimensional" in err and "prior is conditioned" in err
    assert (real_parts.home / "bundles" / "atm-things-eeg" / "bundle.json").read_text() == before  # untouched
    assert main(real_parts.init_args("--encoder", "atm-s=somewhere")) == 2
    assert "given twice" in capsys.readouterr().err


def test_conventional_layout_needs_no_manifest(real_parts, monkeypatch, tmp_path, capsys):
    from toolkit.data.store import convert
    from toolkit.pipeline import load_pipeline

    use_real(monkeypatch, real_parts)
    home = tmp_path / "home"
    monkeypatch.setenv("EEG_TOOLKIT_HOME", str(home))
    bundle = home / "bundles" / "atm-things-eeg"
    convert(real_parts.data / "things-eeg", bundle / "store")
    (bundle / "encoders").mkdir()
    (bundle / "encoders" / "nice").symlink_to(real_parts.nice, target_is_directory=True)
    (bundle / "prior").symlink_to(real_parts.prior, target_is_directory=True)
    (bundle / "embeddings").mkdir()
    (bundle / "embeddings" / "test_images.safetensors").symlink_to(real_parts.test_embeds)
    pipe = load_pipeline("atm-things-eeg", device="cpu")
    assert pipe.encoders == ["nice"]
    assert pipe.manifest["components"]["generator"]["repo_id"] == "stabilityai/sdxl-turbo"
    trials = pipe.trials("sub-01", "test", average=True)
    assert pipe.retrieve(trials.data[:, 0], "sub-01", k=2).indices.shape == (8, 2)
    shutil.rmtree(bundle / "store")
    assert main(["bundle", "check", "atm-things-eeg"]) == 2
    assert "converted store" in capsys.readouterr().err


def test_app_opens_the_real_bundle_with_every_tab(real_parts, monkeypatch):
    """`python -m toolkit demo --bundle atm-things-eeg` builds the app on the bundle's store and pipeline."""
    gr = pytest.importorskip("gradio")
    from demos.app import build_app, open_bundle

    use_real(monkeypatch, real_parts)
    store, images_root = open_bundle("atm-things-eeg")
    assert store.subjects == ["sub-01", "sub-02"] and (images_root / "test_images").is_dir()
    app = build_app("atm-things-eeg")
    assert isinstance(app, gr.Blocks)
    api_names = {dep.get("api_name") for dep in app.config["dependencies"]}
    assert {"trial", "retrieve", "reconstruct", "saliency", "your_eeg_decode"} <= api_names
    header = next(c for c in app.config["components"] if c.get("type") == "markdown")["props"]["value"]
    assert "atm-things-eeg" in header and "decoding tabs are off" not in header
