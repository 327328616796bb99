"""Loading pipelines from local folders through the Hub code path: device/dtype policy and checked weights."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file, save_file

from toolkit import ToolkitError
from toolkit.generation import BrainVisGenerator, EmbedsToImagePipeline
from toolkit.generation._components import check_source, resolve_device, resolve_dtype, resolve_variant

pytestmark = pytest.mark.xdist_group("generation")


@pytest.fixture
def sdxl_copy(tmp_path, saved_sdxl):
    """A private copy of the saved tiny SDXL folder, to damage."""
    return shutil.copytree(saved_sdxl.pipeline_dir, tmp_path / "sdxl")


def _load(folder, saved_sdxl, **kwargs):
    return EmbedsToImagePipeline.from_pretrained(
        folder, ip_adapter=saved_sdxl.ip_adapter, device="cpu", local_files_only=True, **kwargs
    )


def _rewrite(path, change):
    state = load_file(str(path))
    change(state)
    save_file(state, str(path))


def test_unet_tensor_of_wrong_shape_names_file_and_shapes(sdxl_copy, saved_sdxl):
    weights = sdxl_copy / "unet" / "diffusion_pytorch_model.safetensors"
    _rewrite(weights, lambda s: s.__setitem__("conv_in.weight", torch.zeros(32, 3, 3, 3)))
    with pytest.raises(ToolkitError) as info:
        _load(sdxl_copy, saved_sdxl)
    message = str(info.value)
    assert str(weights) in message
    assert "conv_in.weight expected shape torch.Size([32, 4, 3, 3]), but got torch.Size([32, 3, 3, 3])" in message


def test_unet_missing_tensor_is_not_silently_reinitialised(sdxl_copy, saved_sdxl):
    weights = sdxl_copy / "unet" / "diffusion_pytorch_model.safetensors"
    _rewrite(weights, lambda s: s.pop("conv_in.bias"))
    with pytest.raises(
        ToolkitError, match=r"unet weights in .*diffusion_pytorch_model.safetensors lack 1 tensor.*conv_in.bias \[32\]"
    ):
        _load(sdxl_copy, saved_sdxl)


def test_text_encoder_missing_and_mismatched_tensors(sdxl_copy, saved_sdxl):
    weights = sdxl_copy / "text_encoder" / "model.safetensors"
    backup = load_file(str(weights))
    _rewrite(weights, lambda s: s.pop("embeddings.position_embedding.weight"))
    with pytest.raises(
        ToolkitError,
        match=r"text_encoder weights in .*model.safetensors lack 1 tensor.*position_embedding.weight \[77, 32\]",
    ):
        _load(sdxl_copy, saved_sdxl)
    save_file(backup, str(weights))
    weights_2 = sdxl_copy / "text_encoder_2" / "model.safetensors"
    _rewrite(weights_2, lambda s: s.__setitem__("final_layer_norm.weight", torch.ones(16)))
    with pytest.raises(
        ToolkitError,
        match=r"text_encoder_2 weights .* wrong shapes: (text_model\.)?final_layer_norm\.weight expected \[32\] found "
        r"\[16\]",
    ):
        _load(sdxl_copy, saved_sdxl)


def test_missing_weights_file_names_the_component(sdxl_copy, saved_sdxl):
    (sdxl_copy / "vae" / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(ToolkitError, match=r"Could not load the vae \(AutoencoderKL\) from .*vae.*no file named"):
        _load(sdxl_copy, saved_sdxl)


def test_folder_of_another_pipeline_is_refused(tmp_path, saved_sdxl, brainvis):
    brainvis.pipe.save_pretrained(tmp_path / "sd")
    with pytest.raises(ToolkitError, match="holds a 'StableDiffusionPipeline' but the SDXL pipeline needs"):
        _load(tmp_path / "sd", saved_sdxl)
    with pytest.raises(ToolkitError, match=r"holds a 'StableDiffusionXLPipeline' but the SD 1\.5 pipeline needs"):
        BrainVisGenerator.from_pretrained(saved_sdxl.pipeline_dir, device="cpu", local_files_only=True)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ToolkitError, match=r"has no model_index\.json"):
        _load(tmp_path / "empty", saved_sdxl)


def test_hub_ids_not_in_cache_with_local_files_only(tmp_path):
    with pytest.raises(ToolkitError, match=r"stabilityai/sdxl-turbo/model_index\.json.*local_files_only=True"):
        EmbedsToImagePipeline.from_pretrained(device="cpu", local_files_only=True, cache_dir=tmp_path)
    with pytest.raises(ToolkitError, match=r"stable-diffusion-v1-5/stable-diffusion-v1-5/model_index\.json"):
        BrainVisGenerator.from_pretrained(device="cpu", local_files_only=True, cache_dir=tmp_path)


def test_source_checks(tmp_path):
    with pytest.raises(ToolkitError, match="neither an existing folder nor a Hugging Face Hub id"):
        check_source(str(tmp_path / "no" / "such" / "folder"), what="x", revision=None)
    with pytest.raises(ToolkitError, match="only applies to Hub ids"):
        check_source(tmp_path, what="x", revision="main")
    with pytest.raises(ToolkitError, match="must be a folder or a Hub id"):
        check_source(3, what="x", revision=None)
    assert check_source("owner/name", what="x", revision="v1") == "owner/name"


def test_device_and_dtype_policy():
    cpu = torch.device("cpu")
    assert resolve_device("cpu") == cpu
    assert resolve_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ToolkitError, match="Unknown device"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ToolkitError, match="no CUDA GPU is available"):
            resolve_device("cuda")
    assert resolve_dtype(None, cpu) == torch.float32
    assert resolve_dtype(None, torch.device("cuda")) == torch.float16
    assert resolve_dtype("bf16", cpu) == torch.bfloat16
    assert resolve_dtype(torch.float16, torch.device("cuda")) == torch.float16
    with pytest.warns(UserWarning, match="loading in float32 instead"):
        assert resolve_dtype("fp16", cpu) == torch.float32
    with pytest.raises(ToolkitError, match="not supported"):
        resolve_dtype("int8", cpu)
    with pytest.raises(ToolkitError, match="not supported"):
        resolve_dtype(torch.int8, cpu)


def test_variant_policy(tmp_path):
    assert resolve_variant("auto", "stabilityai/sdxl-turbo", torch.float16) == "fp16"
    assert resolve_variant("auto", "stabilityai/sdxl-turbo", torch.float32) is None
    assert resolve_variant("auto", str(tmp_path), torch.float16) is None
    assert resolve_variant(None, "a/b", torch.float16) is None
    with pytest.raises(ToolkitError, match="variant must be"):
        resolve_variant(16, "a/b", torch.float16)


def test_import_is_light():
    code = (
        "import sys, toolkit, toolkit.generation as g; "
        "assert 'generation' in toolkit.__all__; "
        "assert not {'torch', 'diffusers', 'transformers'} & set(sys.modules), sorted(sys.modules); "
        "assert 'EmbedsToImagePipeline' in dir(g)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
