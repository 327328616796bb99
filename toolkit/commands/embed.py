"""``python -m toolkit embed IMAGES_ROOT``: open_clip embeddings of a stimulus image set, cached and exportable."""

from __future__ import annotations

import argparse

_NORMALIZE_HELP = (
    "REQUIRED, no default on purpose: --normalize stores L2-normalised embeddings (what retrieval compares), "
    "--no-normalize raw ones (what IP-Adapter generation needs); mixing them up silently is the classic ATM "
    "pitfall, so you must choose. The two are cached in separate files."
)


def register(sub: argparse._SubParsersAction) -> None:
    """Register the ``embed`` command."""
    from ..cli import add_json_flag

    parser = sub.add_parser(
        "embed",
        help="CLIP embeddings of a stimulus image set (and its concept texts), cached",
        description=(
            "Embed every image of IMAGES_ROOT (THINGS layout: NNNNN_concept/<image>, sorted) with an open_clip "
            "model, and optionally the concept texts. Results are cached under $EEG_TOOLKIT_HOME/embeddings in "
            "files keyed by model, weights, normalisation and image list; a second run reads them back."
        ),
    )
    parser.add_argument("images_root", metavar="IMAGES_ROOT", help="folder holding the NNNNN_concept sub-folders")
    parser.add_argument("--model", default="ViT-H-14", help="open_clip model name (default: %(default)s, as in ATM)")
    parser.add_argument(
        "--pretrained",
        default="laion2b_s32b_b79k",
        metavar="TAG|PATH",
        help="open_clip pretrained tag (downloaded once to the Hugging Face cache) or a local checkpoint file "
        "(default: %(default)s, as in ATM)",
    )
    parser.add_argument("--normalize", action=argparse.BooleanOptionalAction, required=True, help=_NORMALIZE_HELP)
    parser.add_argument(
        "--concepts", action="store_true", help="also embed the concept texts (one per folder) with --prompt"
    )
    parser.add_argument(
        "--prompt",
        default="This picture is {concept}",
        help="concept text template; '{concept}' is replaced by the folder's concept (default: '%(default)s')",
    )
    parser.add_argument("--batch-size", type=int, default=32, help="images per forward pass (default: %(default)s)")
    parser.add_argument(
        "--device",
        default=None,
        help="cpu, cuda, cuda:N or mps (default: cpu; not allowed with --multi-gpu, where each process uses its "
        "own GPU)",
    )
    parser.add_argument(
        "--precision", choices=("fp32", "fp16", "bf16"), default="fp32", help="model precision (default: %(default)s)"
    )
    parser.add_argument(
        "--num-workers", type=int, default=0, help="image-decoding worker processes (default: %(default)s)"
    )
    parser.add_argument(
        "--images-per-concept",
        type=int,
        default=None,
        help="require exactly this many images per concept folder (THINGS-EEG: 10 training, 1 test)",
    )
    parser.add_argument(
        "--fingerprint",
        choices=("stat", "content"),
        default="stat",
        help="how the image list is keyed: relative path + size + mtime (fast), or file content hashes "
        "(default: %(default)s)",
    )
    parser.add_argument("--cache-dir", default=None, help="cache folder (default: $EEG_TOOLKIT_HOME/embeddings)")
    parser.add_argument(
        "--refresh", action="store_true", help="recompute and replace the cache files even if they exist"
    )
    parser.add_argument(
        "--multi-gpu",
        action="store_true",
        help="shard the images over the processes of `accelerate launch -m toolkit embed ...` and gather them",
    )
    parser.add_argument(
        "--out", default=None, metavar="FILE", help="also export the embeddings to FILE (.safetensors or .npz)"
    )
    add_json_flag(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> dict:
    """Embed the image set (and concepts), print a summary, return it as a dict."""
    import os
    from pathlib import Path

    from ..data import ImageSet
    from ..embeddings import ClipEmbedder, embed_concepts, embed_image_set, format_prompts, save_embeddings
    from ..embeddings.cache import EXPORT_SUFFIXES
    from ..errors import ToolkitError

    # Cheap checks first, so a typo fails before a multi-GB model is loaded.
    if args.batch_size < 1:
        raise ToolkitError(f"--batch-size must be a positive integer, got {args.batch_size}.")
    if args.num_workers < 0:
        raise ToolkitError(f"--num-workers must be 0 or more, got {args.num_workers}.")
    if args.out is not None and Path(args.out).suffix.lower() not in EXPORT_SUFFIXES:
        raise ToolkitError(f"--out '{args.out}' must end in {' or '.join(EXPORT_SUFFIXES)}.")
    if args.concepts:
        format_prompts([], args.prompt)  # validates the template
    if args.multi_gpu and args.device is not None:
        raise ToolkitError("--device cannot be combined with --multi-gpu; accelerate gives each process its GPU.")
    image_set = ImageSet.from_folder(args.images_root, images_per_concept=args.images_per_concept)

    accelerator = None
    device = args.device or "cpu"
    if args.multi_gpu:
        from ..utils import require

        accelerate = require("accelerate", extra="encoders", purpose="--multi-gpu")
        accelerator = accelerate.Accelerator()
        launched = int(os.environ.get("WORLD_SIZE", "1"))
        if launched > 1 and accelerator.num_processes == 1:
            # accelerate falls back to one process per launch on a machine without GPUs; every process would
            # then embed everything.
            raise ToolkitError(
                f"--multi-gpu: the launcher started {launched} processes but accelerate sees only one (no GPUs?); "
                "for a multi-process run on CPUs set ACCELERATE_USE_CPU=1, or drop --multi-gpu."
            )
        device = str(accelerator.device)
    is_main = accelerator is None or accelerator.is_main_process

    embedder = ClipEmbedder.from_open_clip(
        args.model, args.pretrained, device=device, precision=args.precision, num_workers=args.num_workers
    )
    images = embed_image_set(
        embedder,
        image_set,
        normalize=args.normalize,
        cache_dir=args.cache_dir,
        batch_size=args.batch_size,
        accelerator=accelerator,
        refresh=args.refresh,
        fingerprint=args.fingerprint,
    )
    texts = None
    if args.concepts:
        texts = embed_concepts(
            embedder,
            image_set,
            normalize=args.normalize,
            prompt=args.prompt,
            cache_dir=args.cache_dir,
            accelerator=accelerator,
            refresh=args.refresh,
        )

    out = None
    if args.out is not None:
        arrays = {"image_embeds": images.embeds}
        metadata = {
            "kind": "export",
            "normalize": bool(args.normalize),
            "identity": embedder.identity,
            "image_files": list(image_set.image_files),
            "images_key": images.metadata["key"],
        }
        if texts is not None:
            arrays["text_embeds"] = texts.embeds
            metadata.update(concepts=image_set.concepts, prompt=args.prompt, texts_key=texts.metadata["key"])
        if is_main:
            save_embeddings(args.out, arrays, metadata)
        if accelerator is not None:
            accelerator.wait_for_everyone()
        out = str(Path(args.out))

    summary = {
        "images_root": str(image_set.root),
        "model": args.model,
        "pretrained": args.pretrained,
        "weights": embedder.identity["weights"],
        "normalize": bool(args.normalize),
        "n": int(images.embeds.shape[0]),
        "dim": int(images.embeds.shape[1]),
        "cache_file": str(images.path),
        "hit": images.hit,
        "concepts": None
        if texts is None
        else {
            "n": int(texts.embeds.shape[0]),
            "prompt": args.prompt,
            "cache_file": str(texts.path),
            "hit": texts.hit,
        },
        "out": out,
    }
    if not is_main:
        # Only the main process of an `accelerate launch` run reports; the others stay silent.
        args.json = False
        return summary
    if not args.json:
        kind = "normalised" if args.normalize else "raw"
        print(f"images: {summary['n']} x {summary['dim']} ({kind}), {_how(images.hit)} {images.path}")
        if texts is not None:
            n_concepts, dim = texts.embeds.shape
            print(f"concepts: {n_concepts} x {dim} ({kind}), {_how(texts.hit)} {texts.path}")
        if out is not None:
            print(f"exported to {out}")
    return summary


def _how(hit: bool) -> str:
    return "read from cache" if hit else "computed and cached in"
