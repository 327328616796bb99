"""The simulated zero-shot benchmark: several encoders trained with one protocol, reported as k-way tables.

This is a long job, not a timing benchmark, so it is not registered in the ``bench`` suites; run it as a module::

    python -m toolkit simulate SIM --preset full --subjects 1 --dtype float32
    python -m toolkit.bench.kway_table SIM OUT --encoders atm-s nice eegnet --epochs 3

Protocol (the same for every encoder, written into each result's protocol card and into ``OUT/kway_table.json``):

1. **Stimulus embeddings.** The simulated images have no CLIP embeddings offline, so the demo bundle's vision
   model (:func:`toolkit.bundles._demo_vision.train_demo_vision`: a small autoencoder whose encoder is the image
   embedder) is trained on the dataset's TRAINING images only and embeds the training and test images
   (L2-normalised, the retrieval targets).
2. **Encoders.** Each encoder, with its reference configuration (no demo shrinking), is trained with the toolkit
   trainer on one subject's training trials (every repetition a sample, as ATM does): CLIP InfoNCE, AdamW, the
   same epochs, batch size, learning rate and seed for all; 10 % of the TRAINING concepts are held out for
   validation and the checkpoint is chosen on validation top-1 only.
3. **Test.** The selected checkpoint is evaluated once on the test concepts (never seen in training: unseen
   colour x texture x shape combinations), repetitions averaged: exact k-way top-1/top-5 for k = 2, 4, 10, 50,
   100, 200 with bootstrap intervals, sampled k-way with seeded distractors, full-gallery top-1/top-5.

The CPU schedule is reduced (a few epochs instead of ATM's 40 at batch 1024 on a GPU); the table says so. Each step
is resumable: finished parts (vision model, embeddings, a finished run) are reused, an interrupted run resumes
from its last checkpoint.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import ToolkitError

#: The encoders of the issue's benchmark: ATM-S, NICE and the braindecode EEGNetv4 baseline.
DEFAULT_ENCODERS = ("atm-s", "nice", "eegnet")


@dataclass(frozen=True)
class KWaySchedule:
    """The shared training schedule of the benchmark (one per table; every encoder gets the same).

    Parameters
    ----------
    epochs : int
        Training epochs of each encoder.
    batch_size : int
        Training batch size.
    lr : float
        AdamW learning rate (ATM: 3e-4).
    val_fraction : float
        Fraction of the training concepts held out for validation (checkpoint selection).
    seed : int
        Seed of initialisation, shuffling, the validation split and the evaluation draws.
    vision_epochs : int
        Epochs of the stimulus embedder (step 1).
    vision_image_size : int
        Side in pixels the embedder sees the stimuli at.
    threads : int | None
        torch intra-op threads (``None``: torch's default).
    device : str
        Where the encoders train: ``"cpu"``, ``"cuda"`` or ``"auto"`` (the stimulus embedder trains on the CPU).
    average_train_repetitions : bool
        Train on each training image's repetition average (one sample per image, four times the single-trial SNR
        and a quarter of the samples per epoch) instead of every repetition (ATM). A CPU shortcut; the test side is
        unchanged (test repetitions are always averaged).
    """

    epochs: int = 3
    batch_size: int = 256
    lr: float = 3e-4
    val_fraction: float = 0.1
    seed: int = 0
    vision_epochs: int = 4
    vision_image_size: int = 64
    threads: int | None = None
    device: str = "cpu"
    average_train_repetitions: bool = False


def _stimulus_embeddings(root: Path, store: Path, out: Path, subject: str, schedule: KWaySchedule) -> dict[str, str]:
    """Train the image embedder on the training images (once) and export the embedding files (once)."""
    from ..bundles._demo_models import _export_embeddings
    from ..bundles._demo_vision import load_demo_vision, train_demo_vision

    vision_dir = out / "vision"
    if not (vision_dir / "config.json").is_file():
        train_demo_vision(
            root, vision_dir, seed=schedule.seed, epochs=schedule.vision_epochs, decoder_epochs=0,
            image_size=schedule.vision_image_size,
        )
    embed_dir = out / "embeddings"
    files = {key: str(embed_dir / f"{key}.safetensors") for key in ("train_image_norm", "test_image_norm")}
    if not all(Path(f).is_file() for f in files.values()):
        files = _export_embeddings(store, root, load_demo_vision(vision_dir).embedder, embed_dir, subject)
    return files


def _averaged_store(store: Path, averaged: Path, subject: str) -> Path:
    """A store whose training split holds each image's repetition average (the test split copied as is)."""
    from ..data.store import open_store, write_store

    if not (averaged / "store.json").is_file():
        source = open_store(store)
        write_store(averaged, (source.load(subject, "train").average(), source.load(subject, "test")), overwrite=True)
    return averaged


def _train_one(name: str, store: Path, files: dict[str, str], subject: str, run_dir: Path,
               schedule: KWaySchedule) -> dict[str, Any]:
    """Train (or resume, or reuse) one encoder's run and return its summary with the test result."""
    from ..retrieval import RetrievalResult
    from ..training import TrainConfig, train

    results_file = run_dir / "results.json"
    if results_file.is_file():
        results = json.loads(results_file.read_text(encoding="utf-8"))
        if results.get("test"):
            return {"results": results, "test": RetrievalResult.from_dict(results["test"], source=str(results_file))}
    config = TrainConfig(
        encoder=name,
        data=str(store),
        subject=subject,
        setting="intra",
        image_embeds=files["train_image_norm"],
        test_image_embeds=files["test_image_norm"],
        objective="clip",
        epochs=schedule.epochs,
        batch_size=schedule.batch_size,
        lr=schedule.lr,
        val_fraction=schedule.val_fraction,
        selection="val_top1",
        seed=schedule.seed,
        out=str(run_dir),
        resume=(run_dir / "last").is_dir(),
        device=schedule.device,
    )
    start = time.perf_counter()
    result = train(config)
    seconds = round(time.perf_counter() - start, 1)
    return {"results": result.results, "test": result.test, "seconds": seconds}


def run_kway_benchmark(
    root: str | Path,
    out: str | Path,
    *,
    encoders: Sequence[str] = DEFAULT_ENCODERS,
    subject: str = "sub-01",
    schedule: KWaySchedule | None = None,
) -> dict[str, Any]:
    """Train every encoder with the same protocol on one simulated subject and tabulate the test k-way results.

    Parameters
    ----------
    root : str | Path
        A dataset written by ``python -m toolkit simulate`` (official layout with ``training_images/``).
    out : str | Path
        Output folder: ``store/`` (unless ``root`` already holds one), ``vision/``, ``embeddings/``,
        ``runs/<encoder>/`` (trainer run directories), ``kway_table.md`` and ``kway_table.json``.
    encoders : sequence of str
        Registered encoder names, trained in this order.
    subject : str
        The subject (intra-subject protocol).
    schedule : KWaySchedule | None
        The shared schedule (default: :class:`KWaySchedule`).

    Returns
    -------
    dict
        ``schedule``, per encoder ``seconds``, ``best_epoch``, ``best_val_top1`` and the test ``result``
        (:meth:`toolkit.retrieval.RetrievalResult.to_dict`), and ``markdown`` (the tables).
    """
    import torch

    from ..data.store import convert
    from ..encoders import list_encoders
    from ..utils import atomic_write_json

    schedule = schedule or KWaySchedule()
    root, out = Path(root).expanduser(), Path(out).expanduser()
    if not (root / "training_images").is_dir() or not (root / "ground_truth.json").is_file():
        raise ToolkitError(f"'{root}' is not a simulated dataset; write one with `python -m toolkit simulate`.")
    unknown = [name for name in encoders if name not in list_encoders()]
    if unknown:
        raise ToolkitError(f"Unknown encoder(s) {unknown}; known: {', '.join(list_encoders())}.")
    out.mkdir(parents=True, exist_ok=True)
    if schedule.threads is not None:
        torch.set_num_threads(schedule.threads)
    store = out / "store"
    if not (store / "store.json").is_file():
        convert(root, store, subjects=[subject])
    files = _stimulus_embeddings(root, store, out, subject, schedule)
    if schedule.average_train_repetitions:
        store = _averaged_store(store, out / "store-train-averaged", subject)
    rows: dict[str, Any] = {}
    for name in encoders:
        done = _train_one(name, store, files, subject, out / "runs" / name, schedule)
        results = done["results"]
        rows[name] = {
            "seconds": done.get("seconds", results.get("seconds")),
            "best_epoch": results["selection"]["best_epoch"],
            "best_val_top1": results["selection"]["best_metric"],
            "result": done["test"].to_dict(),
        }
        _write_tables(out, schedule, subject, rows, {n: r["result"] for n, r in rows.items()})
    summary = {"schedule": asdict(schedule), "subject": subject, "encoders": rows}
    summary["markdown"] = (out / "kway_table.md").read_text(encoding="utf-8")
    atomic_write_json(out / "kway_table.json", summary)
    return summary


def _write_tables(out: Path, schedule: KWaySchedule, subject: str, rows: dict, results: dict) -> None:
    """Write ``kway_table.md``: one comparison table (top-1, exact k-way with intervals) plus each protocol card."""
    from ..retrieval import RetrievalResult
    from ..utils import atomic_write_text

    parsed = {name: RetrievalResult.from_dict(data) for name, data in results.items()}
    ks = sorted({score.k for result in parsed.values() for score in result.kway})
    samples = "the repetition average of each training image" if schedule.average_train_repetitions else (
        "every training repetition"
    )
    lines = [
        f"# Simulated zero-shot retrieval, {subject} (reduced CPU schedule)",
        "",
        f"Trained on {samples}. Schedule: {schedule.epochs} epochs, batch {schedule.batch_size}, AdamW lr "
        f"{schedule.lr:g}, seed {schedule.seed}, {schedule.val_fraction:.0%} of the training concepts for "
        "validation (checkpoint chosen on validation top-1), CLIP InfoNCE; test repetitions averaged. Exact k-way "
        "top-1 in % with 95% bootstrap intervals; chance is 100/k.",
        "",
        "| encoder | " + " | ".join(f"{k}-way" for k in ks)
        + " | top-1 (full) | top-5 (full) | best epoch | train s |",
        "|---" * (len(ks) + 5) + "|",
    ]
    for name, result in parsed.items():
        cells = []
        for k in ks:
            score = result.score(k, 1)
            low, high = score.exact_ci
            cells.append(f"{100 * score.exact:.1f} [{100 * low:.1f}, {100 * high:.1f}]")
        full1, full5 = result.full(1), result.full(5)
        row = rows[name]
        lines.append(
            f"| {name} | " + " | ".join(cells) + f" | {100 * full1.value:.1f} | {100 * full5.value:.1f} | "
            f"{row['best_epoch']} | {row['seconds']} |"
        )
    lines.append("")
    for name, result in parsed.items():
        lines += [f"## {name}", "", result.to_markdown(), ""]
    atomic_write_text(out / "kway_table.md", "\n".join(lines))


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m toolkit.bench.kway_table ROOT OUT [options]``."""
    parser = argparse.ArgumentParser(prog="python -m toolkit.bench.kway_table", description=__doc__.splitlines()[0])
    parser.add_argument("root", help="simulated dataset (python -m toolkit simulate)")
    parser.add_argument("out", help="output folder (resumable)")
    parser.add_argument("--encoders", nargs="+", default=list(DEFAULT_ENCODERS), help="encoders to train")
    parser.add_argument("--subject", default="sub-01", help="subject (default: sub-01)")
    defaults = KWaySchedule()
    for field_name, value in asdict(defaults).items():
        flag = f"--{field_name.replace('_', '-')}"
        if isinstance(value, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=value)
        else:
            parser.add_argument(flag, type=int if field_name == "threads" else type(value), default=value)
    args = parser.parse_args(argv)
    schedule = KWaySchedule(**{name: getattr(args, name) for name in asdict(defaults)})
    try:
        summary = run_kway_benchmark(args.root, args.out, encoders=args.encoders, subject=args.subject,
                                     schedule=schedule)
    except ToolkitError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(summary["markdown"])
    return 0


if __name__ == "__main__":  # pragma: no cover - command-line entry
    raise SystemExit(main())
