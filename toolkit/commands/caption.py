"""``python -m toolkit caption EMBEDDINGS``: captions of precomputed embeddings (PixelProjector → GIT), as JSON.

The embeddings file is an ``embed --out`` export or any file written by :func:`toolkit.embeddings.save_embeddings`
(``.safetensors`` / ``.npz`` with toolkit metadata), or a plain ``.npy`` array (n, dim) — e.g. the diffusion prior's
predictions for test trials. The output JSON holds the captions in row order, the ids of the rows when the file
names its images, a protocol card (inputs with checksums, models with revisions, decoding settings, software
versions) and, with ``--references``, the caption metrics of :func:`toolkit.metrics.evaluate_captions`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

_TEXT_METRICS = ("bleu1", "bleu4", "meteor", "rouge_l")


def register(sub: argparse._SubParsersAction) -> None:
    """Register the ``caption`` command."""
    from ..cli import add_json_flag

    parser = sub.add_parser(
        "caption",
        help="captions of precomputed embeddings (PixelProjector → GIT), with metrics against references",
        description=(
            "Project every embedding of EMBEDDINGS to GIT vision tokens with a PixelProjector, caption them with a "
            "GIT model (microsoft/git-large-coco by default; greedy decoding unless --num-beams > 1) and write the "
            "captions, a protocol card and, with --references, caption metrics to a JSON file (atomically)."
        ),
    )
    parser.add_argument(
        "embeddings",
        metavar="EMBEDDINGS",
        help="embeddings file: .safetensors/.npz written by the toolkit (e.g. `embed --out`), or a (n, dim) .npy",
    )
    parser.add_argument("--projector", required=True, metavar="DIR|ID", help="PixelProjector folder or Hub id")
    parser.add_argument(
        "--git",
        default="microsoft/git-large-coco",
        metavar="DIR|ID",
        help="GIT model folder or Hub id (default: %(default)s, as in ATM)",
    )
    parser.add_argument("--out", required=True, metavar="FILE", help="captions JSON file to write (.json)")
    parser.add_argument("--key", default=None, help="array to caption in EMBEDDINGS (default: the only one, or "
                        "'image_embeds')")
    parser.add_argument("--revision", default=None, help="Hub revision of --git (pin a commit to reproduce)")
    parser.add_argument("--projector-revision", default=None, help="Hub revision of --projector")
    parser.add_argument("--cache-dir", default=None, help="Hugging Face cache folder (default: huggingface_hub's)")
    parser.add_argument(
        "--local-files-only", action="store_true", help="never use the network; Hub ids must be in the cache"
    )
    # Numbers are parsed in `run`, so a bad value gets the toolkit's one-line error instead of argparse's usage.
    parser.add_argument("--max-new-tokens", default="25", metavar="N", help="longest caption (default: 25, ATM)")
    parser.add_argument(
        "--num-beams", default="1", metavar="N", help="1: greedy decoding (default, ATM); more: beam search"
    )
    parser.add_argument("--batch-size", default="16", metavar="N", help="embeddings per batch (default: 16)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:N or mps (default: CUDA if available)")
    parser.add_argument(
        "--dtype", default=None, help="float32, float16 or bfloat16 (default: float16 on CUDA, float32 on the CPU)"
    )
    parser.add_argument(
        "--references",
        default=None,
        metavar="FILE",
        help="reference captions, one per row: .txt (one per line) or .json (a list of captions or of lists of "
        "captions, or {'captions': [...]})",
    )
    parser.add_argument(
        "--metrics",
        default=",".join(_TEXT_METRICS),
        help="comma-separated caption metrics with --references (default: %(default)s; also sentence, clip_text)",
    )
    add_json_flag(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> dict:
    """Caption the embeddings, write the JSON file and return its summary."""
    import torch

    from .._version import __version__
    from ..captions import EmbeddingCaptioner, GitCaptioner, PixelProjector
    from ..errors import ToolkitError
    from ..utils import atomic_write_json

    # Cheap checks first, so a typo fails before a multi-GB model is loaded.
    max_new_tokens = _integer("--max-new-tokens", args.max_new_tokens, minimum=1)
    num_beams = _integer("--num-beams", args.num_beams, minimum=1)
    batch_size = _integer("--batch-size", args.batch_size, minimum=1)
    out = Path(args.out)
    if out.suffix.lower() != ".json":
        raise ToolkitError(f"--out '{out}' must be a .json file name.")
    embeds, meta, key = _read_embeddings(Path(args.embeddings), args.key)
    references = None if args.references is None else _read_references(Path(args.references), embeds.shape[0])
    metrics = _check_metric_names(args.metrics) if references is not None else None
    if metrics:
        from ..metrics import evaluate_captions

        # A dry run of the text metrics on one pair: a missing dependency fails now, not after the captioning.
        text_metrics = [m for m in metrics if m in _TEXT_METRICS]
        if text_metrics:
            evaluate_captions(["a cat"], ["a cat"], metrics=text_metrics)

    captioner = GitCaptioner.from_pretrained(
        args.git,
        revision=args.revision,
        device=args.device,
        dtype=args.dtype,
        cache_dir=args.cache_dir,
        local_files_only=args.local_files_only,
    )
    projector = PixelProjector.from_pretrained(
        args.projector,
        revision=args.projector_revision,
        cache_dir=args.cache_dir,
        local_files_only=args.local_files_only,
    ).to(captioner.device)
    if embeds.shape[1] != projector.config.embed_dim:
        raise ToolkitError(
            f"The embeddings in {args.embeddings} (key {key!r}) have dimension {embeds.shape[1]} but the projector "
            f"{args.projector} takes {projector.config.embed_dim}; caption embeddings of the model it was trained on."
        )
    normalized = meta.get("normalize")
    wanted = projector.config.normalized_inputs
    if isinstance(normalized, bool) and wanted is not None and normalized != wanted:
        state = {True: "L2-normalised", False: "raw (unnormalised)"}
        raise ToolkitError(
            f"The embeddings in {args.embeddings} are {state[normalized]} but the projector {args.projector} was "
            f"trained on {state[wanted]} embeddings; export them with --{'' if wanted else 'no-'}normalize."
        )
    model = EmbeddingCaptioner(
        projector, captioner, max_new_tokens=max_new_tokens, num_beams=num_beams, batch_size=batch_size
    )
    captions = model(torch.from_numpy(embeds), progress_bar=True)

    scores = None
    if references is not None:
        from ..metrics import evaluate_captions

        scores = evaluate_captions(captions, references, metrics=metrics, device=str(captioner.device))
    ids = meta.get("image_files")
    ids = list(ids) if isinstance(ids, list) and len(ids) == len(captions) else None
    protocol = {
        "task": "captions of embeddings: PixelProjector -> GIT vision tokens -> GIT text decoder",
        "embeddings": {
            "file": str(args.embeddings),
            "sha256": _sha256(Path(args.embeddings)),
            "key": key,
            "n": int(embeds.shape[0]),
            "dim": int(embeds.shape[1]),
            "normalize": normalized,
            "identity": meta.get("identity"),
        },
        "projector": {
            "source": str(args.projector),
            "revision": args.projector_revision,
            "config": projector.config.to_dict(),
            "state_sha256": _state_digest(projector),
        },
        "captioner": captioner.identity,
        "decoding": {**model.settings, "do_sample": False},
        "device": str(captioner.device),
        "references": None
        if references is None
        else {"file": str(args.references), "sha256": _sha256(Path(args.references)), "metrics": metrics},
        "software": _versions(__version__),
    }
    record = {"captions": captions, "ids": ids, "metrics": scores, "protocol": protocol}
    atomic_write_json(out, record)

    summary = {"out": str(out), "n": len(captions), "metrics": scores, "protocol": protocol}
    if not getattr(args, "json", False):
        print(f"wrote {len(captions)} captions to {out}")
        for i, caption in enumerate(captions[:3]):
            print(f"  {ids[i] if ids else i}: {caption}")
        if scores is not None:
            shown = ", ".join(f"{k}={v:.4f}" for k, v in scores.items() if isinstance(v, float))
            print(f"metrics ({scores['n_pairs']} pairs): {shown}")
    return summary


def _integer(option: str, value: str, *, minimum: int) -> int:
    from ..errors import ToolkitError

    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ToolkitError(f"{option} is {value!r}; it must be an integer ≥ {minimum}.") from None
    if number < minimum:
        raise ToolkitError(f"{option} must be an integer ≥ {minimum}, got {number}.")
    return number


def _read_embeddings(path: Path, key: str | None) -> tuple[Any, dict[str, Any], str]:
    """The (n, dim) float32 array to caption, the file's metadata and the key it was stored under."""
    import numpy as np

    from ..embeddings import load_embeddings
    from ..errors import ToolkitError

    if not path.is_file():
        raise ToolkitError(f"The embeddings file {path} does not exist.")
    if path.suffix.lower() == ".npy":
        try:
            arrays = {"embeddings": np.load(path, allow_pickle=False)}
        except (OSError, ValueError) as err:
            raise ToolkitError(f"Could not read {path} as a .npy array without pickles ({err}).") from None
        meta: dict[str, Any] = {}
    else:
        arrays, meta = load_embeddings(path)
    if key is None:
        if len(arrays) == 1:
            key = next(iter(arrays))
        elif "image_embeds" in arrays:
            key = "image_embeds"
        else:
            raise ToolkitError(f"{path} holds several arrays ({', '.join(sorted(arrays))}); choose one with --key.")
    if key not in arrays:
        raise ToolkitError(f"{path} has no array {key!r}; it holds {', '.join(sorted(arrays))}.")
    embeds = arrays[key]
    if embeds.ndim != 2 or embeds.shape[0] < 1 or not np.issubdtype(embeds.dtype, np.floating):
        raise ToolkitError(
            f"The array {key!r} in {path} has shape {embeds.shape} and dtype {embeds.dtype}; captions need a "
            "floating-point (n, dim) array with n ≥ 1."
        )
    if not np.isfinite(embeds).all():
        raise ToolkitError(f"The array {key!r} in {path} holds NaN or infinite values; recompute the embeddings.")
    return np.ascontiguousarray(embeds, dtype=np.float32), meta, key


def _read_references(path: Path, n: int) -> list[Any]:
    """Reference captions, one entry (a string or a list of strings) per embedding."""
    import json

    from ..errors import ToolkitError

    if not path.is_file():
        raise ToolkitError(f"The references file {path} does not exist.")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ToolkitError(f"Could not read the references file {path} as UTF-8 text ({err}).") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ToolkitError(f"The references file {path} is not valid JSON ({err}).") from None
        if isinstance(data, dict):
            data = data.get("captions", data.get("references"))
        if not isinstance(data, list) or not all(
            isinstance(r, str) or (isinstance(r, list) and r and all(isinstance(s, str) for s in r)) for r in data
        ):
            raise ToolkitError(
                f"The references file {path} must hold a list with one caption (or a non-empty list of captions) "
                "per embedding, or an object whose 'captions' entry is such a list."
            )
        refs: list[Any] = data
    elif path.suffix.lower() == ".txt":
        refs = text.splitlines()
        while refs and not refs[-1].strip():
            refs.pop()
    else:
        raise ToolkitError(f"The references file {path} must be a .txt (one caption per line) or a .json file.")
    if len(refs) != n:
        raise ToolkitError(
            f"The references file {path} has {len(refs)} entries but there are {n} embeddings; give one per row, "
            "in the same order."
        )
    return refs


def _check_metric_names(text: str) -> list[str]:
    from ..errors import ToolkitError
    from ..metrics import CAPTION_METRICS

    names = [m.strip() for m in str(text).split(",") if m.strip()]
    unknown = [m for m in names if m not in CAPTION_METRICS]
    if not names or unknown:
        raise ToolkitError(
            f"--metrics {text!r} has unknown or no metric names {unknown}; choose from "
            f"{', '.join(m for m in CAPTION_METRICS if m != 'clip_image')}."
        )
    if "clip_image" in names:
        raise ToolkitError("--metrics clip_image needs the ground-truth images, which this command does not take.")
    return names


def _sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _state_digest(module: Any) -> str:
    """SHA-256 over a module's parameter names, shapes, dtypes and bytes (the same for a folder or a Hub copy)."""
    import hashlib

    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
        digest.update(t.numpy().tobytes())
    return digest.hexdigest()


def _versions(toolkit_version: str) -> dict[str, str]:
    import platform

    import torch
    import transformers

    return {
        "toolkit": toolkit_version,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
    }
