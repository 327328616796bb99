"""Bundles: named sets of components (data, encoders, prior, generators) and where their weights come from.

Two bundles ship: ``demo`` (simulated THINGS-like data and small models, built locally on first use, offline)
and ``atm-things-eeg`` (real THINGS-EEG files supplied by the user plus hub weights). See ``DESIGN.md``.
"""

from __future__ import annotations

from ._demo import (
    add_bundle_component,
    build_demo_data,
    demo_paths,
    load_demo_store,
    read_bundle_manifest,
)
from ._demo_models import DemoModelSettings, build_demo_bundle, demo_models_current
from ._real import load_real_bundle_manifest, write_real_bundle_manifest
from ._registry import BUNDLES, BundleSpec, bundle_dir, bundle_status, get_bundle

__all__ = [
    "BUNDLES",
    "BundleSpec",
    "DemoModelSettings",
    "add_bundle_component",
    "build_demo_bundle",
    "build_demo_data",
    "bundle_dir",
    "bundle_status",
    "demo_models_current",
    "demo_paths",
    "get_bundle",
    "load_demo_store",
    "load_real_bundle_manifest",
    "read_bundle_manifest",
    "write_real_bundle_manifest",
]
