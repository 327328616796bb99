"""Image and text embeddings of stimulus sets: the :class:`Embedder` protocol, open_clip, self-describing caches.

Every function says whether embeddings are L2-normalised through an explicit ``normalize`` argument: normalised
embeddings are compared in retrieval, raw ones feed IP-Adapter generation. Importing this package loads neither
torch nor open_clip; they are imported when an embedder is built or used.

Examples
--------
>>> from toolkit.data import ImageSet
>>> from toolkit.embeddings import ClipEmbedder, embed_image_set
>>> embedder = ClipEmbedder.from_open_clip("ViT-H-14", "laion2b_s32b_b79k", device="cuda")  # doctest: +SKIP
>>> images = ImageSet.from_folder("things-eeg/image_set/test_images")  # doctest: +SKIP
>>> embed_image_set(embedder, images, normalize=True).embeds.shape  # doctest: +SKIP
(200, 1024)
"""

from __future__ import annotations

from .base import (
    DEFAULT_PROMPT,
    Embedder,
    ImageInput,
    check_embeddings,
    encode_images_sharded,
    format_prompts,
    identity_digest,
    l2_normalize,
    load_image,
)
from .cache import (
    CachedEmbeddings,
    concept_cache_path,
    embed_concepts,
    embed_image_set,
    image_cache_path,
    image_set_fingerprint,
    load_embeddings,
    save_embeddings,
)
from .clip import ClipEmbedder, file_checksum
from .demo import DemoEmbedder, DemoVisionConfig

__all__ = [
    "DEFAULT_PROMPT",
    "CachedEmbeddings",
    "ClipEmbedder",
    "DemoEmbedder",
    "DemoVisionConfig",
    "Embedder",
    "ImageInput",
    "check_embeddings",
    "concept_cache_path",
    "embed_concepts",
    "embed_image_set",
    "encode_images_sharded",
    "file_checksum",
    "format_prompts",
    "identity_digest",
    "image_cache_path",
    "image_set_fingerprint",
    "l2_normalize",
    "load_embeddings",
    "load_image",
    "save_embeddings",
]
