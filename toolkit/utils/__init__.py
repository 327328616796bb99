"""Small shared helpers: atomic files, cache locations, soft imports, progress bars, validation."""

from ._io import atomic_path, atomic_write_bytes, atomic_write_json, atomic_write_text
from ._paths import cache_dir, data_dir
from ._progress import progress
from ._soft import require

__all__ = [
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "cache_dir",
    "data_dir",
    "progress",
    "require",
]
