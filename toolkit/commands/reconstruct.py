"""``python -m toolkit reconstruct``: images from a subject's averaged test trials, with controls, captions, metrics.

For the first ``--n`` test conditions of ``--subject``, the bundle's pipeline (:mod:`toolkit.pipeline`) encodes the
averaged EEG, samples an image embedding from the diffusion prior and decodes it; the same seeds give the two
controls: **shuffled EEG** (the prior conditioned on another trial's embedding) and **prior only** (no EEG). The
output folder (written atomically, replaced as a whole) holds::

    stimulus/ reconstruction/ shuffled/ prior_only/   one PNG per condition (NNN_<concept>.png)
    grid.png                                          rows: stimulus, reconstruction, shuffled EEG, prior only
    captions.json                                     the captioner's captions of each image embedding
    metrics.json                                      PixCorr, SSIM, two-way identification and caption accuracy
                                                      for the reconstructions and both controls, with the protocol

Two-way identification uses the demo's own image embedder as the feature network (L2-normalised embeddings of the
generated and stimulus images; 0.5 is chance).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

_KINDS = ("reconstruction", "shuffled", "prior_only")


def register(sub: argparse._SubParsersAction) -> None:
    """Register the ``reconstruct`` command."""
    from ..cli import add_json_flag

    parser = sub.add_parser(
        "reconstruct",
        help="images from test EEG with shuffled-EEG and prior-only controls, captions and metrics",
        description=(
            "Reconstruct the first --n test conditions of --subject from their averaged EEG with a bundle's encoder, "
            "diffusion prior and decoder; write the images, the controls, captions and metrics to --out."
        ),
    )
    parser.add_argument("--bundle", default="demo", help="bundle (default: demo)")
    parser.add_argument("--subject", default=None, help="subject (default: the bundle's first)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (replaced as a whole)")
    parser.add_argument("--n", default="10", metavar="N", help="test conditions to reconstruct (default: 10)")
    parser.add_argument("--encoder", default=None, help="encoder of the bundle (default: its first)")
    parser.add_argument("--seed", default="0", metavar="N", help="seed of the prior's samples (default: 0)")
    parser.add_argument("--steps", default="50", metavar="N", help="denoising steps of the prior (default: 50)")
    parser.add_argument("--guidance", default="5.0", metavar="W", help="classifier-free guidance (default: 5.0)")
    add_json_flag(parser)
    parser.set_defaults(func=run)


def _number(value: Any, name: str, kind: type, minimum: float) -> Any:
    from ..errors import ToolkitError

    try:
        out = kind(str(value))
    except ValueError:
        raise ToolkitError(f"{name} must be a{'n integer' if kind is int else ' number'}; got {value!r}.") from None
    if not out >= minimum:
        raise ToolkitError(f"{name} must be at least {minimum}; got {value!r}.")
    return out


def run(args: argparse.Namespace) -> dict:
    """Reconstruct, write the folder and return the metrics."""
    from ..errors import ToolkitError
    from ..pipeline import load_pipeline
    from ..utils import atomic_path

    n = _number(args.n, "--n", int, 1)
    seed = _number(args.seed, "--seed", int, 0)
    steps = _number(args.steps, "--steps", int, 1)
    guidance = _number(args.guidance, "--guidance", float, 0.0)
    out = Path(args.out).expanduser()
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "metrics.json").is_file())):
        raise ToolkitError(
            f"--out '{out}' exists and is not an earlier reconstruct folder; it would be replaced, so pass a new or "
            "empty folder."
        )
    pipe = load_pipeline(args.bundle)
    subject = args.subject or pipe.subjects[0]
    trials = pipe.trials(subject, "test", average=True)
    if n > trials.n_conditions:
        raise ToolkitError(f"--n is {n} but {subject} has {trials.n_conditions} test conditions; pass a smaller --n.")
    rec = pipe.reconstruct(
        trials.data[:n, 0], subject, encoder=args.encoder, seed=seed, num_inference_steps=steps,
        guidance_scale=guidance,
    )
    size = rec.images[0].size
    concepts = [trials.images.concept_of(i) for i in range(n)]
    stimuli = [_open(trials.images.image_path(i), size) for i in range(n)]
    images = {"stimulus": stimuli, "reconstruction": rec.images, "shuffled": rec.shuffled_images,
              "prior_only": rec.prior_only_images}
    embeds = {"reconstruction": rec.image_embeds, "shuffled": rec.shuffled_embeds, "prior_only": rec.prior_only_embeds}
    captioner = pipe.vision.captioner
    captions = {kind: captioner(value) for kind, value in embeds.items()}
    truth = [_caption_of(c) for c in concepts]
    metrics = {kind: _metrics(pipe, stimuli, images[kind], captions[kind], truth) for kind in _KINDS}
    protocol = {
        "bundle": pipe.bundle,
        "dataset": "simulated THINGS-like (toolkit simulator)",
        "subject": subject,
        "split": "test (concepts unseen in training)",
        "conditions": f"the first {n} test conditions",
        "repetitions_averaged": int(trials.n_repetitions),
        **rec.settings,
        "prior": {k: v for k, v in pipe._prior_entry.items() if k in ("condition", "target", "epochs", "n_pairs")},
        "generator": "demo autoencoder decoder (toolkit.generation.demo)",
        "captioner": "demo attribute heads (toolkit.captions.demo)",
        "controls": {
            "shuffled": "prior conditioned on another test trial's EEG embedding (batch derangement), same seeds",
            "prior_only": "unconditional prior sample, same seeds",
        },
        "metrics": {
            "pixcorr": "pixel Pearson correlation at 64 px (toolkit.metrics.pixcorr)",
            "ssim": "grey SSIM at 64 px (toolkit.metrics.ssim)",
            "two_way_demo": "two-way identification with the demo image embedder's normalised embeddings as features",
            "caption_accuracy": "fraction of captions naming the stimulus's colour, texture and shape exactly",
        },
        "selection": "no selection on test: the models were chosen on validation concepts from the training split",
    }
    from PIL import Image

    with atomic_path(out, is_dir=True) as tmp:
        files = {}
        for kind, items in images.items():
            (tmp / kind).mkdir()
            files[kind] = []
            for i, (img, concept) in enumerate(zip(items, concepts)):
                name = f"{kind}/{i:03d}_{concept}.png"
                img.save(tmp / name)
                files[kind].append(name)
        width, height = size
        grid = Image.new("RGB", (width * n, height * 4), "white")
        for row, kind in enumerate(("stimulus", *_KINDS)):
            for i, img in enumerate(images[kind]):
                grid.paste(img, (i * width, row * height))
        grid.save(tmp / "grid.png")
        (tmp / "captions.json").write_text(
            json.dumps({"concepts": concepts, "truth": truth, **captions}, indent=2) + "\n", encoding="utf-8"
        )
        result = {"out": str(out), "n": n, "metrics": metrics, "protocol": protocol, "files": files,
                  "grid": "grid.png"}
        (tmp / "metrics.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if not args.json:
        print(f"wrote {n} reconstructions and controls to {out}")
        for kind in _KINDS:
            print(f"  {kind:15s} " + "  ".join(f"{k} {v:.3f}" for k, v in metrics[kind].items()))
    return result


def _open(path: Any, size: tuple[int, int]) -> Any:
    from PIL import Image

    with Image.open(path) as img:
        rgb = img.convert("RGB")
    return rgb if rgb.size == size else rgb.resize(size, Image.Resampling.BICUBIC)


def _caption_of(concept: str) -> str:
    from ..captions.demo import CAPTION_TEMPLATE

    colour, texture, shape = concept.split("_")
    return CAPTION_TEMPLATE.format(colour=colour, texture=texture, shape=shape)


def _metrics(pipe: Any, stimuli: list, images: list, captions: list[str], truth: list[str]) -> dict[str, float]:
    import numpy as np

    from ..metrics import pixcorr, ssim
    from ..metrics.identification import two_way_identification

    embedder = pipe.vision.embedder
    gt = embedder.encode_images(stimuli, normalize=True)
    rec = embedder.encode_images(images, normalize=True)
    out = {
        "pixcorr": float(pixcorr(images, stimuli, image_size=64, resize=64)),
        "ssim": float(ssim(images, stimuli, image_size=64, resize=64)),
        "two_way_demo": float(two_way_identification(gt, rec)) if len(images) > 1 else float("nan"),
        "caption_accuracy": float(np.mean([c == t for c, t in zip(captions, truth)])),
    }
    return {k: round(v, 4) for k, v in out.items()}
