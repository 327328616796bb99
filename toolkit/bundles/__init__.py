"""Bundles: named sets of components (data, encoders, prior, generators) and where their weights come from.

Two bundles ship: ``demo`` (simulated THINGS-like data and small models, built locally on first use, offline)
and ``atm-things-eeg`` (real THINGS-EEG files supplied by the user plus hub weights). See ``DESIGN.md``.
"""

from __future__ import annotations

from ._registry import BUNDLES, BundleSpec, bundle_dir, bundle_status, get_bundle

__all__ = ["BUNDLES", "BundleSpec", "bundle_dir", "bundle_status", "get_bundle"]
