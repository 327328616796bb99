"""The bundle registry."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ToolkitError
from ..utils import cache_dir


@dataclass(frozen=True)
class BundleSpec:
    """What a bundle is made of.

    Parameters
    ----------
    name : str
        Registry name.
    description : str
        One line for listings.
    components : dict
        Component name → source: a Hugging Face Hub id with revision (``{"repo_id": ..., "revision": ...}``), a
        local path, or ``{"build": "local"}`` for components built on first use. For ``atm-things-eeg`` these are
        the defaults of the parts not named in its ``bundle.json`` (see :mod:`toolkit.bundles._real`).
    offline : bool
        Whether the bundle can be built with no network.
    """

    name: str
    description: str
    components: dict = field(default_factory=dict)
    offline: bool = False


BUNDLES: dict[str, BundleSpec] = {
    "demo": BundleSpec(
        name="demo",
        description="simulated THINGS-like dataset and small models, built locally on first use (offline, CPU)",
        components={"dataset": {"build": "local", "preset": "demo", "seed": 0}},
        offline=True,
    ),
    "atm-things-eeg": BundleSpec(
        name="atm-things-eeg",
        description=(
            "THINGS-EEG store, encoders, prior and CLIP embeddings you supply (python -m toolkit bundle init "
            "atm-things-eeg), with OpenCLIP ViT-H-14, SDXL-Turbo, IP-Adapter, GIT"
        ),
        components={
            "dataset": {"env": "EEG_TOOLKIT_DATA", "subdir": "things-eeg"},
            "clip": {"open_clip": "ViT-H-14", "pretrained": "laion2b_s32b_b79k"},
            "generator": {"repo_id": "stabilityai/sdxl-turbo", "revision": "main"},
            "ip_adapter": {
                "repo_id": "h94/IP-Adapter",
                "subfolder": "sdxl_models",
                "weight_name": "ip-adapter_sdxl_vit-h.safetensors",
                "revision": "main",
            },
            "captioner": {"repo_id": "microsoft/git-large-coco", "revision": "main"},
        },
        offline=False,
    ),
}


def get_bundle(name: str) -> BundleSpec:
    """Return the bundle ``name`` or fail listing the known ones."""
    try:
        return BUNDLES[name]
    except KeyError:
        raise ToolkitError(f"Unknown bundle '{name}'; known bundles: {', '.join(sorted(BUNDLES))}.") from None


def bundle_dir(name: str) -> Path:
    """Cache directory where the bundle ``name`` is built (not created)."""
    get_bundle(name)
    return cache_dir("bundles", create=False) / name


def bundle_status() -> dict:
    """Per bundle: description, whether it is built (its ``bundle.json`` exists), and where."""
    out = {}
    for name, spec in BUNDLES.items():
        path = bundle_dir(name)
        out[name] = {
            "description": spec.description,
            "built": (path / "bundle.json").is_file(),
            "path": str(path),
            "offline": spec.offline,
        }
    return out
