"""``python -m toolkit reconstruct``: images from a subject's averaged test trials, with controls, captions, metrics.

For the first ``--n`` test conditions of ``--subject`` (``--n all``: the whole test set), the bundle's pipeline
(:mod:`toolkit.pipeline`) encodes the averaged EEG, samples an image embedding from the diffusion prior and decodes
it; the same seeds give the two controls: **shuffled EEG** (the prior conditioned on another condition's embedding)
and **prior only** (no EEG). The output folder holds::

    reconstruct.json                                  the settings of the folder (resuming needs the same ones)
    stimulus/ reconstruction/ shuffled/ prior_only/   one PNG per condition (NNN_<concept>.png)
    semantic/reconstruction/ semantic/shuffled/       demo bundle: the semantic path, each image embedding's
    semantic/prior_only/                              caption drawn by the simulator's renderer (one PNG each)
    records/NNN.json                                  per condition: concept, captions, shuffled-control source
    grid.png                                          rows: stimulus, reconstruction, shuffled EEG, prior only
                                                      (+ semantic reconstruction; the first 50 conditions)
    captions.json                                     the captioner's captions of each image embedding
    metrics.json                                      PixCorr, SSIM, two-way identification and caption accuracy
                                                      for the reconstructions and both controls (``metrics``), and
                                                      PixCorr, SSIM, two-way of their semantic path
                                                      (``semantic_metrics``, demo bundle), with the protocol

**Semantic path.** ATM also decodes through text: caption the predicted image embedding, then generate an image
from the caption. The demo bundle's text-to-image "model" is the simulator's stimulus renderer
(:meth:`toolkit.pipeline.DemoBackend.render_captions`: the caption's shape, colour and texture at a canonical pose on
grey), so ``semantic/`` shows what the captions alone recover. The real bundle's semantic path (GIT → SDXL) is
``python -m toolkit caption`` (:mod:`toolkit.generation.semantic`); no ``semantic/`` folder is written for it.

**Batches.** The conditions are cut into contiguous batches of ``--batch-size`` (a trailing batch of one joins the
one before, so every shuffled control has another condition of its batch to borrow from); condition ``i`` is always
sampled with seed ``seed + i``, so the reconstructions and the prior-only controls do not depend on the batch size,
and the shuffled control depends on it only through which condition of the batch is borrowed.

**Processes.** Under ``accelerate launch -m toolkit reconstruct ...`` the batches are split between the processes
with accelerate's ``PartialState.split_between_processes`` (contiguous shares; the same batches whatever the
number of processes, so the outputs are identical); the main process prepares the folder first, and once every
process is done it reads the records back and writes the captions, the grid and the metrics. Without accelerate
(or with one process) everything runs in this process.

**Resuming.** Every file is written atomically, and a condition's record is written after its images, so an
interrupted run leaves only complete conditions; running the same command again skips them. A folder made with
other settings is cleared (only the files this command writes) and filled again.

Two-way identification uses the bundle's own image embedder as the feature network (L2-normalised embeddings of
the generated and stimulus images; 0.5 is chance).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

_KINDS = ("reconstruction", "shuffled", "prior_only")
_FOLDERS = ("stimulus", *_KINDS)
_SETTINGS_FILE = "reconstruct.json"
_RECORDS = "records"
_SEMANTIC = "semantic"
_OUTPUTS = (*_FOLDERS, _SEMANTIC, _RECORDS, "grid.png", "captions.json", "metrics.json", _SETTINGS_FILE)
_FORMAT = "eeg-visual-toolkit/reconstruct"
_GRID_MAX = 50


def register(sub: argparse._SubParsersAction) -> None:
    """Register the ``reconstruct`` command."""
    from ..cli import add_json_flag

    parser = sub.add_parser(
        "reconstruct",
        help="images from test EEG with shuffled-EEG and prior-only controls, captions and metrics",
        description=(
            "Reconstruct the first --n test conditions of --subject (or all of them) from their averaged EEG with a "
            "bundle's encoder, diffusion prior and decoder, in batches; write the images, the controls, captions "
            "and metrics to --out. Resumable (finished conditions are skipped); `accelerate launch -m toolkit "
            "reconstruct ...` splits the batches between processes (GPUs)."
        ),
    )
    parser.add_argument("--bundle", default="demo", help="bundle (default: demo)")
    parser.add_argument("--subject", default=None, help="subject (default: the bundle's first)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (resumed, or cleared when made "
                        "with other settings)")
    parser.add_argument("--n", default="10", metavar="N",
                        help="test conditions to reconstruct, or 'all' (default: 10)")
    parser.add_argument("--batch-size", default="16", metavar="N", help="conditions per pipeline call (default: 16)")
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


# ==================================================================================================== batches
def make_batches(n: int, batch_size: int) -> list[tuple[int, int]]:
    """Contiguous ``(start, stop)`` batches over ``n`` conditions; a trailing batch of one joins the one before.

    Parameters
    ----------
    n : int
        Number of conditions.
    batch_size : int
        Conditions per batch.

    Returns
    -------
    list of (int, int)
        Half-open ranges covering ``range(n)`` in order.
    """
    batches = [(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]
    if len(batches) > 1 and batches[-1][1] - batches[-1][0] == 1:
        batches[-2:] = [(batches[-2][0], n)]
    return batches


def shard(items: list, *, process_index: int | None = None, num_processes: int | None = None) -> list:
    """This process's contiguous share of ``items``: accelerate's ``PartialState.split_between_processes``.

    Parameters
    ----------
    items : list
        What to split (here: the batches).
    process_index, num_processes : int | None
        Which share of how many; ``None``: this process's, from :class:`accelerate.PartialState` (the whole list
        when accelerate is not installed or runs one process).

    Returns
    -------
    list
        The share (the first ``len(items) % num_processes`` processes get one item more).
    """
    from types import SimpleNamespace

    from ..errors import ToolkitError

    items = list(items)
    try:
        from accelerate import PartialState
    except ImportError:  # accelerate is optional: one process
        if num_processes not in (None, 1):
            raise ToolkitError("Sharding over several processes needs accelerate (pip install accelerate).") from None
        return items
    if process_index is None and num_processes is None:
        state: Any = PartialState()
    else:
        if num_processes is None or process_index is None or not 0 <= process_index < num_processes:
            raise ToolkitError(
                f"shard needs 0 <= process_index < num_processes; got {process_index!r} of {num_processes!r}."
            )
        # split_between_processes reads only these two attributes of the state.
        state = SimpleNamespace(process_index=int(process_index), num_processes=int(num_processes))
    with PartialState.split_between_processes(state, items) as mine:
        return list(mine)


def _state() -> Any:
    """accelerate's process state, or a one-process stand-in when accelerate is not installed."""
    try:
        from accelerate import PartialState
    except ImportError:
        from types import SimpleNamespace

        return SimpleNamespace(num_processes=1, process_index=0, is_main_process=True, device=None,
                               wait_for_everyone=lambda: None)
    import torch

    # Without CUDA, processes started by torchrun / accelerate launch talk through gloo on the CPU.
    return PartialState(cpu=not torch.cuda.is_available())


# ==================================================================================================== the folder
def _prepare(out: Path, settings: dict, semantic: bool = False) -> int:
    """Check ``out``, clear it when it holds another run's outputs, write the settings; return the files kept."""
    from ..errors import ToolkitError
    from ..utils import atomic_write_json

    if out.exists() and not out.is_dir():
        raise ToolkitError(f"--out '{out}' is a file; pass a folder.")
    if out.is_dir() and any(out.iterdir()):
        marker = out / _SETTINGS_FILE
        if not marker.is_file() and not (out / "metrics.json").is_file():
            raise ToolkitError(
                f"--out '{out}' exists and is not an earlier reconstruct folder; it would be replaced, so pass a new "
                "or empty folder."
            )
        previous = None
        if marker.is_file():
            try:
                previous = json.loads(marker.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                previous = None
        if previous != settings:
            for name in _OUTPUTS:  # only what this command writes
                target = out / name
                if target.is_dir():
                    shutil.rmtree(target)
                elif target.exists():
                    target.unlink()
    out.mkdir(parents=True, exist_ok=True)
    for name in (*_FOLDERS, _RECORDS):
        (out / name).mkdir(exist_ok=True)
    if semantic:
        for kind in _KINDS:
            (out / _SEMANTIC / kind).mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / _SETTINGS_FILE, settings)
    return sum(1 for _ in (out / _RECORDS).glob("*.json"))


def _name(index: int, concept: str) -> str:
    return f"{index:03d}_{concept}.png"


def _folders(semantic: bool) -> tuple[str, ...]:
    """The image folders of a condition (relative to ``--out``), the semantic path's when the bundle has one."""
    return (*_FOLDERS, *(f"{_SEMANTIC}/{kind}" for kind in _KINDS)) if semantic else _FOLDERS


def _done(out: Path, index: int, concept: str, semantic: bool = False) -> bool:
    if not (out / _RECORDS / f"{index:03d}.json").is_file():
        return False
    return all((out / kind / _name(index, concept)).is_file() for kind in _folders(semantic))


def _save_png(image: Any, path: Path) -> None:
    from ..utils import atomic_path

    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


# ==================================================================================================== run
def run(args: argparse.Namespace) -> dict:
    """Reconstruct in batches (this process's share), then gather the folder's metrics on the main process."""
    from ..errors import ToolkitError
    from ..pipeline import load_pipeline
    from ..utils import atomic_write_json, progress

    seed = _number(args.seed, "--seed", int, 0)
    steps = _number(args.steps, "--steps", int, 1)
    guidance = _number(args.guidance, "--guidance", float, 0.0)
    batch_size = _number(args.batch_size, "--batch-size", int, 1)
    n_all = str(args.n).strip().lower() == "all"
    n = None if n_all else _number(args.n, "--n", int, 1)
    out = Path(args.out).expanduser()
    if out.exists() and not out.is_dir():
        raise ToolkitError(f"--out '{out}' is a file; pass a folder.")
    if out.is_dir() and any(out.iterdir()) and not (
        (out / _SETTINGS_FILE).is_file() or (out / "metrics.json").is_file()
    ):
        raise ToolkitError(
            f"--out '{out}' exists and is not an earlier reconstruct folder; it would be replaced, so pass a new or "
            "empty folder."
        )
    state = _state()
    kwargs: dict[str, Any] = {}
    if state.num_processes > 1 and args.bundle != "demo":
        kwargs["device"] = state.device  # one GPU per process
    pipe = load_pipeline(args.bundle, **kwargs)
    subject = args.subject or pipe.subjects[0]
    trials = pipe.trials(subject, "test", average=True)
    n = trials.n_conditions if n_all else n
    if n > trials.n_conditions:
        raise ToolkitError(f"--n is {n} but {subject} has {trials.n_conditions} test conditions; pass a smaller --n.")
    encoder = args.encoder or pipe.encoders[0]
    settings = {
        "format": _FORMAT, "bundle": pipe.bundle, "subject": subject, "n": n, "encoder": encoder, "seed": seed,
        "num_inference_steps": steps, "guidance_scale": guidance, "batch_size": batch_size,
    }  # fmt: skip
    concepts = [trials.images.concept_of(i) for i in range(n)]
    semantic = bool(getattr(pipe, "has_semantic_path", False))
    kept = _prepare(out, settings, semantic) if state.is_main_process else 0
    state.wait_for_everyone()  # the folder is ready before any process writes into it

    batches = make_batches(n, batch_size)
    mine = shard(batches, process_index=state.process_index, num_processes=state.num_processes)
    todo = [b for b in mine if not all(_done(out, i, concepts[i], semantic) for i in range(*b))]
    written = 0
    bar = progress(todo, desc=f"reconstruct [{state.process_index}]", unit="batch",
                   disable=None if not args.json else True)
    for start, stop in bar:
        rec = pipe.reconstruct(
            trials.data[start:stop, 0], subject, encoder=encoder, seed=seed + start, num_inference_steps=steps,
            guidance_scale=guidance,
        )
        size = rec.images[0].size
        embeds = {"reconstruction": rec.image_embeds, "shuffled": rec.shuffled_embeds,
                  "prior_only": rec.prior_only_embeds}
        captions = {kind: pipe.vision.captioner(value) for kind, value in embeds.items()}
        images = {"reconstruction": rec.images, "shuffled": rec.shuffled_images, "prior_only": rec.prior_only_images}
        if semantic:
            images.update({
                f"{_SEMANTIC}/reconstruction": rec.semantic_images,
                f"{_SEMANTIC}/shuffled": rec.shuffled_semantic_images,
                f"{_SEMANTIC}/prior_only": rec.prior_only_semantic_images,
            })
        for row, index in enumerate(range(start, stop)):
            name = _name(index, concepts[index])
            _save_png(_open(trials.images.image_path(index), size), out / "stimulus" / name)
            for kind in images:
                _save_png(images[kind][row], out / kind / name)
            source = int(rec.shuffled_from[row])
            atomic_write_json(out / _RECORDS / f"{index:03d}.json", {
                "index": index,
                "concept": concepts[index],
                "captions": {kind: captions[kind][row] for kind in _KINDS},
                "shuffled_from": start + source if source >= 0 else -1,
            })
            written += 1
    state.wait_for_everyone()  # every share is on disk
    if not state.is_main_process:
        return {"out": str(out), "process_index": state.process_index, "written": written}
    missing = [i for i in range(n) if not _done(out, i, concepts[i], semantic)]
    if missing:
        raise ToolkitError(
            f"{len(missing)} conditions of '{out}' are missing after every process finished (first: {missing[0]}); "
            "run the command again to complete them."
        )
    return _gather(args, pipe, trials, out, subject, n, concepts, settings, state, written, kept, semantic)


def _gather(args: argparse.Namespace, pipe: Any, trials: Any, out: Path, subject: str, n: int, concepts: list[str],
            settings: dict, state: Any, written: int, kept: int, semantic: bool = False) -> dict:
    """Read the conditions back, write captions.json, grid.png and metrics.json (main process)."""
    from PIL import Image

    from ..utils import atomic_path, atomic_write_json

    files = {kind: [f"{kind}/{_name(i, c)}" for i, c in enumerate(concepts)] for kind in _folders(semantic)}
    images = {kind: [_load(out / name) for name in names] for kind, names in files.items()}
    records = [json.loads((out / _RECORDS / f"{i:03d}.json").read_text(encoding="utf-8")) for i in range(n)]
    captions = {kind: [r["captions"][kind] for r in records] for kind in _KINDS}
    truth = [_caption_of(c, pipe.bundle) for c in concepts]
    metrics = {kind: _metrics(pipe, images["stimulus"], images[kind], captions[kind], truth) for kind in _KINDS}
    semantic_metrics = None
    if semantic:
        # caption_accuracy is left out: the semantic images are drawn from the very captions scored above.
        semantic_metrics = {
            kind: {k: v for k, v in _metrics(pipe, images["stimulus"], images[f"{_SEMANTIC}/{kind}"], captions[kind],
                                             truth).items() if k != "caption_accuracy"}
            for kind in _KINDS
        }
    backend = getattr(pipe, "backend", None)
    described = backend.describe() if backend is not None and hasattr(backend, "describe") else {}
    demo = pipe.bundle == "demo"
    protocol = {
        "bundle": pipe.bundle,
        "dataset": "simulated THINGS-like (toolkit simulator)" if demo else "THINGS-EEG (the bundle's store)",
        "subject": subject,
        "split": "test (concepts unseen in training)",
        "conditions": f"the first {n} test conditions" if n < trials.n_conditions else f"all {n} test conditions",
        "repetitions_averaged": int(trials.n_repetitions),
        "encoder": settings["encoder"],
        "seed": settings["seed"],
        "num_inference_steps": settings["num_inference_steps"],
        "guidance_scale": settings["guidance_scale"],
        "prior_condition": pipe._prior_entry.get("condition"),
        "batch_size": settings["batch_size"],
        "processes": int(state.num_processes),
        "seeds": "condition i sampled with seed + i (independent of batches and processes)",
        "prior": {k: v for k, v in pipe._prior_entry.items() if k in ("condition", "target", "epochs", "n_pairs")},
        "generator": described.get("generator", "demo autoencoder decoder (toolkit.generation.demo)"),
        "captioner": described.get("captioner", "demo attribute heads (toolkit.captions.demo)"),
        "controls": {
            "shuffled": "prior conditioned on another condition of the same batch (batch derangement), same seeds",
            "prior_only": "unconditional prior sample, same seeds",
        },
        "metrics": {
            "pixcorr": "pixel Pearson correlation at 64 px (toolkit.metrics.pixcorr)",
            "ssim": "grey SSIM at 64 px (toolkit.metrics.ssim)",
            _two_way_key(pipe): "two-way identification with the bundle's image embedder's normalised embeddings "
                                "as features",
            "caption_accuracy": "fraction of captions naming the stimulus's colour, texture and shape exactly"
            if demo else "not computed (no reference captions for THINGS concepts)",
        },
        "semantic_path": described.get("semantic") if semantic else (
            "not written here; the real bundle's semantic path (caption -> SDXL) is `python -m toolkit caption`"
        ),
        "selection": "no selection on test: the models were chosen on validation concepts from the training split",
    }
    shown = min(n, _GRID_MAX)
    width, height = images["stimulus"][0].size
    rows = (*_FOLDERS, f"{_SEMANTIC}/reconstruction") if semantic else _FOLDERS
    grid = Image.new("RGB", (width * shown, height * len(rows)), "white")
    for row, kind in enumerate(rows):
        for i, img in enumerate(images[kind][:shown]):
            grid.paste(img if img.size == (width, height) else img.resize((width, height)), (i * width, row * height))
    with atomic_path(out / "grid.png") as tmp:
        grid.save(tmp, format="PNG")
    atomic_write_json(out / "captions.json", {"concepts": concepts, "truth": truth, **captions})
    result = {"out": str(out), "n": n, "metrics": metrics, "protocol": protocol, "files": files, "grid": "grid.png"}
    if semantic:
        result["semantic_metrics"] = semantic_metrics
    atomic_write_json(out / "metrics.json", result)
    result = {**result, "written": written, "resumed": kept}
    if not args.json:
        resumed = f" ({kept} kept from an interrupted run)" if kept else ""
        print(f"wrote {n} reconstructions and controls to {out}{resumed}")
        for kind in _KINDS:
            print(f"  {kind:15s} " + "  ".join(
                f"{k} {v:.3f}" if isinstance(v, float) else f"{k} n/a" for k, v in metrics[kind].items()
            ))
        for kind in _KINDS if semantic_metrics else ():
            print(f"  semantic {kind:15s} " + "  ".join(f"{k} {v:.3f}" for k, v in semantic_metrics[kind].items()))
    return result


def _open(path: Any, size: tuple[int, int]) -> Any:
    from PIL import Image

    with Image.open(path) as img:
        rgb = img.convert("RGB")
    return rgb if rgb.size == size else rgb.resize(size, Image.Resampling.BICUBIC)


def _load(path: Path) -> Any:
    from PIL import Image

    with Image.open(path) as img:
        return img.convert("RGB")


def _caption_of(concept: str, bundle: str) -> str | None:
    """The reference caption of a demo concept (``colour_texture_shape``); ``None`` for other bundles."""
    from ..captions.demo import CAPTION_TEMPLATE

    parts = concept.split("_")
    if bundle != "demo" or len(parts) != 3:
        return None
    colour, texture, shape = parts
    return CAPTION_TEMPLATE.format(colour=colour, texture=texture, shape=shape)


def _two_way_key(pipe: Any) -> str:
    return "two_way_demo" if pipe.bundle == "demo" else "two_way_clip"


def _metrics(pipe: Any, stimuli: list, images: list, captions: list[str], truth: list) -> dict[str, float | None]:
    import numpy as np

    from ..metrics import pixcorr, ssim
    from ..metrics.identification import two_way_identification

    embedder = pipe.vision.embedder
    gt = embedder.encode_images(stimuli, normalize=True)
    rec = embedder.encode_images(images, normalize=True)
    out: dict[str, float | None] = {
        "pixcorr": float(pixcorr(images, stimuli, image_size=64, resize=64)),
        "ssim": float(ssim(images, stimuli, image_size=64, resize=64)),
        _two_way_key(pipe): float(two_way_identification(gt, rec)) if len(images) > 1 else float("nan"),
        "caption_accuracy": (
            float(np.mean([c == t for c, t in zip(captions, truth)])) if all(t is not None for t in truth) else None
        ),
    }
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in out.items()}
