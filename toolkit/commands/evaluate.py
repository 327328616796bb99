"""``python -m toolkit evaluate``: k-way zero-shot retrieval of a subject's test split, with intervals and a card.

Three sources of an encoder:

- ``--bundle demo`` — the bundle's encoders (all of them, or ``--encoder NAME``), built on first use;
- ``--run RUN_DIR`` — a training run (``python -m toolkit train --out RUN_DIR``): its selected ``best/`` weights,
  its data and embedding files, and its protocol card;
- ``--encoder DIR --data STORE --test-image-embeds FILE`` — any ``save_pretrained`` encoder on a store.

Test repetitions are averaged (one query per test image). The table has the exact and sampled k-way accuracies
with bootstrap / draw intervals and the full-gallery top-1 / top-5.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    """Register the ``evaluate`` command."""
    from ..cli import add_json_flag

    parser = sub.add_parser(
        "evaluate",
        help="k-way zero-shot retrieval of a subject's test split with intervals and a protocol card",
        description=(
            "Evaluate EEG encoders on a subject's averaged test trials: exact and sampled k-way top-1, full-gallery "
            "top-1/top-5, with intervals and the protocol card. Give --bundle, --run or --encoder DIR --data STORE."
        ),
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--bundle", default=None, help="a bundle's encoders (demo)")
    source.add_argument("--run", default=None, metavar="RUN_DIR", help="a training run directory")
    parser.add_argument(
        "--encoder", default=None, metavar="NAME|DIR",
        help="with --bundle: one of its encoders (default: all); otherwise a save_pretrained folder (needs --data)",
    )
    parser.add_argument("--data", default=None, metavar="STORE", help="store of the trials (with --encoder DIR)")
    parser.add_argument(
        "--test-image-embeds", default=None, metavar="FILE", help="test-image embeddings (with --encoder DIR)"
    )
    parser.add_argument("--subject", default=None, help="tested subject (default: the run's, or the bundle's first)")
    parser.add_argument("--gallery", default="image", choices=("image", "text"), help="image (retrieval) or text")
    parser.add_argument("--ks", nargs="+", default=None, metavar="K", help="k values (default: 2 4 10 50 ...)")
    parser.add_argument("--n-draws", default="100", metavar="N", help="sampled distractor draws (default: 100)")
    parser.add_argument("--seed", default="0", metavar="N", help="seed of the draws and bootstrap (default: 0)")
    add_json_flag(parser)
    parser.set_defaults(func=run)


def _int(value: Any, name: str, minimum: int) -> int:
    from ..errors import ToolkitError

    try:
        out = int(str(value))
    except ValueError:
        raise ToolkitError(f"{name} must be an integer; got {value!r}.") from None
    if out < minimum:
        raise ToolkitError(f"{name} must be at least {minimum}; got {out}.")
    return out


def run(args: argparse.Namespace) -> dict:
    """Evaluate, print the tables (unless ``--json``) and return the results."""
    from ..errors import ToolkitError
    from ..retrieval import render_result

    ks = None if args.ks is None else [_int(k, "--ks", 2) for k in args.ks]
    n_draws = _int(args.n_draws, "--n-draws", 1)
    seed = _int(args.seed, "--seed", 0)
    if args.bundle is not None:
        results = _from_bundle(args, ks, n_draws, seed)
    elif args.run is not None:
        results = {"run": _from_run(args, ks, n_draws, seed)}
    elif args.encoder is not None:
        results = {Path(args.encoder).name: _from_folder(args, ks, n_draws, seed)}
    else:
        raise ToolkitError("Nothing to evaluate; pass --bundle demo, --run RUN_DIR or --encoder DIR --data STORE.")
    if not args.json:
        for name, result in results.items():
            print(f"## {name}\n")
            print(render_result(result))
            print()
    first = next(iter(results.values()))
    return {
        "subject": first.protocol.subjects[0],
        "gallery": args.gallery,
        "results": {name: result.to_dict() for name, result in results.items()},
    }


def _from_bundle(args: argparse.Namespace, ks: Any, n_draws: int, seed: int) -> dict:
    from ..errors import ToolkitError
    from ..pipeline import load_pipeline

    if args.data is not None or args.test_image_embeds is not None:
        raise ToolkitError("--data / --test-image-embeds go with --encoder DIR, not with --bundle.")
    pipe = load_pipeline(args.bundle)  # atm-things-eeg: one error listing what is missing on this machine
    subject = args.subject or pipe.subjects[0]
    names = pipe.encoders if args.encoder is None else [args.encoder]
    return {
        name: pipe.evaluate(subject, encoder=name, gallery=args.gallery, ks=ks, n_draws=n_draws, seed=seed)
        for name in names
    }


def _from_run(args: argparse.Namespace, ks: Any, n_draws: int, seed: int) -> Any:
    from ..encoders import EEGEncoder
    from ..errors import ToolkitError
    from ..retrieval import ProtocolCard
    from ..training import TrainConfig
    from ..training.data import load_embedding_file, open_trials, subject_numbers

    run_dir = Path(args.run).expanduser()
    if not (run_dir / "config.json").is_file() or not (run_dir / "best").is_dir():
        raise ToolkitError(f"'{run_dir}' is not a training run (no config.json and best/); pass --run RUN_DIR.")
    if args.gallery != "image":
        raise ToolkitError("--run evaluates the run's image gallery only; drop --gallery text.")
    config = TrainConfig.from_json_file(run_dir / "config.json")
    if config.data is None or config.test_image_embeds is None:
        raise ToolkitError(f"The run in '{run_dir}' names no data or test-image embeddings to evaluate on.")
    try:
        card = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))["test"]["protocol"]
    except (OSError, ValueError, KeyError, TypeError):
        raise ToolkitError(
            f"'{run_dir / 'results.json'}' holds no test protocol card; finish the run first."
        ) from None
    subject = args.subject or config.subject
    for key in ("embedding_normalize", "gallery_size", "distractor_seed", "n_draws", "date", "toolkit_version"):
        card.pop(key, None)
    card["subjects"] = [subject]
    encoder = EEGEncoder.from_pretrained(run_dir / "best")
    subjects = list(config.subjects or [config.subject])
    ids = subject_numbers(sorted(set(subjects) | {subject})) if config.setting == "joint" else None
    return _evaluate(
        encoder, open_trials(config.data, subject, "test"), load_embedding_file(config.test_image_embeds).embeds,
        ProtocolCard.from_dict(card), None if ids is None else ids[subject], ks, n_draws, seed,
    )


def _from_folder(args: argparse.Namespace, ks: Any, n_draws: int, seed: int) -> Any:
    from ..encoders import EEGEncoder
    from ..errors import ToolkitError
    from ..retrieval import ProtocolCard
    from ..training.data import load_embedding_file, open_trials

    if args.data is None or args.test_image_embeds is None:
        raise ToolkitError(
            "--encoder DIR needs --data STORE and --test-image-embeds FILE (the test images' embeddings)."
        )
    if args.gallery != "image":
        raise ToolkitError("--encoder DIR evaluates an image gallery (--test-image-embeds); drop --gallery text.")
    encoder = EEGEncoder.from_pretrained(Path(args.encoder).expanduser())
    subject = args.subject or "sub-01"
    trials = open_trials(args.data, subject, "test")
    table = load_embedding_file(args.test_image_embeds, what="--test-image-embeds")
    card = ProtocolCard(
        dataset=trials.dataset,
        data_variant=f"{trials.dataset} ({trials.n_chans} ch, {trials.n_times} samples at {trials.sfreq:g} Hz)",
        subjects=(subject,),
        split="test",
        gallery=f"test images, {trials.n_conditions} conditions",
        gallery_kind="image",
        n_channels=trials.n_chans,
        channels=f"all {trials.n_chans}",
        time_window=(float(trials.times[0]), float(trials.times[-1])),
        sfreq=float(trials.sfreq),
        repetitions_averaged=trials.n_repetitions,
        training_setting="intra-subject",
        backbone=table.backbone,
        eeg_normalisation="as stored",
        selection_rule="not recorded (an encoder folder evaluated directly)",
        encoder=type(encoder).__name__,
        config_hash="not recorded",
        notes=f"encoder folder {Path(args.encoder).name}",
    )
    return _evaluate(encoder, trials, table.embeds, card, None, ks, n_draws, seed)


def _evaluate(encoder: Any, trials: Any, gallery: Any, card: Any, subject_id: Any, ks: Any, n_draws: int,
              seed: int) -> Any:
    import numpy as np

    from ..errors import ToolkitError
    from ..retrieval import evaluate_retrieval

    cfg = encoder.config
    if (trials.n_chans, trials.n_times) != (cfg.n_chans, cfg.n_times):
        raise ToolkitError(
            f"The encoder takes {cfg.n_chans} channels x {cfg.n_times} samples but the test data have "
            f"{trials.n_chans} x {trials.n_times}; evaluate it on the data it was trained for."
        )
    if gallery.shape[0] != trials.n_conditions:
        raise ToolkitError(
            f"The test-image embeddings have {gallery.shape[0]} rows but the test data {trials.n_conditions} "
            "conditions; embed this store's test images."
        )
    eeg = np.asarray(trials.average().data[:, 0], dtype=np.float32)
    embeds = encoder.encode(eeg, subject_id, normalize=True).numpy()
    if ks is not None:
        ks = [k for k in ks if k <= gallery.shape[0]]
    return evaluate_retrieval(
        embeds, gallery, np.arange(trials.n_conditions), normalize=True, protocol=card, ks=ks, n_draws=n_draws,
        seed=seed,
    )
