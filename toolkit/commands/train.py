"""``python -m toolkit train``: train an EEG encoder (or, with ``--task``, the diffusion prior, the low-level encoder
or the caption projector) from a configuration file and/or flags.

Every field of :class:`toolkit.training.TrainConfig` has exactly one flag (``batch_size`` → ``--batch-size``; booleans
as ``--x`` / ``--no-x``); flags override ``--config FILE``. ``--resume --out RUN_DIR`` alone continues a run with the
configuration recorded in ``RUN_DIR/config.json``. Ctrl-C leaves ``RUN_DIR/last`` at the last completed epoch.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

_DESCRIPTION = (
    "Train an EEG encoder (ATM-S, NICE, ...) with one objective (CLIP InfoNCE, ATM's 0.99/0.01 image/text mix, ATM's "
    "9 MSE + 1 CLIP reconstruction mix, MSE, classification or the model's own loss) on one subject (intra), all "
    "other subjects (loso) or all subjects (joint). A validation split is carved from the training concepts; the "
    "best checkpoint is chosen on it and the test set is evaluated once at the end. Writes RUN_DIR/config.json, "
    "history.json, best/, last/ and results.json (test retrieval with its protocol card). --task prior trains the "
    "diffusion prior on (EEG embedding, raw image embedding) pairs (--eeg-embeds FILE --image-embeds FILE; "
    "ε-prediction with condition dropout --cond-drop-prob); --task low-level regresses VAE latents (--targets FILE) "
    "from the EEG of --data; --task projector regresses GIT vision tokens (--targets FILE) from embeddings "
    "(--inputs FILE). These write the selected model, ready to load, to RUN_DIR/model."
)
#: Extra option strings of some fields.
_ALIASES = {"inputs": ("--eeg-embeds",)}
#: Fields holding a JSON object (given inline or as a .json file).
_DICT_FIELDS = ("encoder_config", "model_config")


def _json_value(text: str, flag: str = "--encoder-config") -> dict:
    """A JSON object given inline or as the path of a .json file."""
    from pathlib import Path

    from ..errors import ToolkitError

    source = text
    if not text.lstrip().startswith("{") and Path(text).is_file():
        source = Path(text).read_text(encoding="utf-8")
    try:
        value = json.loads(source)
    except json.JSONDecodeError as err:
        raise ToolkitError(f"{flag} {text!r} is neither a JSON object nor a .json file ({err.msg}).") from None
    if not isinstance(value, dict):
        raise ToolkitError(f"{flag} must be a JSON object of configuration fields; got {type(value).__name__}.")
    return value


def _add_field_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field, from the field metadata (help, choices), defaults suppressed."""
    import dataclasses

    from ..training.config import TrainConfig

    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        meta = f.metadata
        kind = str(f.type).replace(" ", "")
        default = f.default if f.default is not dataclasses.MISSING else "{}"
        help_text = f"{meta.get('help', '')} (default: {default})"
        kwargs: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": help_text}
        if meta.get("metavar"):
            kwargs["metavar"] = meta["metavar"]
        if kind.startswith("bool"):
            kwargs.pop("metavar", None)
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, **kwargs)
            continue
        if kind.startswith("tuple"):
            kwargs.update(nargs="+", metavar="SUBJECT")
        elif kind == "dict":
            pass  # parsed in _build_config: a ToolkitError raised inside argparse would lose its message
        elif kind.startswith("int"):
            kwargs["type"] = int
        elif kind.startswith("float"):
            kwargs["type"] = float
        if meta.get("choices"):
            kwargs["choices"] = meta["choices"]
        parser.add_argument(flag, *_ALIASES.get(f.name, ()), **kwargs)


def register(sub: argparse._SubParsersAction) -> None:
    """Register the ``train`` command."""
    from ..cli import add_json_flag

    parser = sub.add_parser("train", help="train an EEG encoder, the diffusion prior, the low-level encoder or the "
                            "caption projector (one trainer for all)",
                            description=_DESCRIPTION)
    parser.add_argument(
        "--config", default=None, metavar="FILE", help="training configuration JSON (a run's config.json works too)"
    )
    parser.add_argument(
        "--folds",
        action="store_true",
        help="with --setting loso: run every leave-one-subject-out fold (each into RUN_DIR/<subject>, each with a "
        "freshly initialised encoder)",
    )
    _add_field_flags(parser)
    add_json_flag(parser)
    parser.set_defaults(func=run)


def _build_config(args: argparse.Namespace):
    import dataclasses
    from pathlib import Path

    from ..training.config import TrainConfig

    names = [f.name for f in dataclasses.fields(TrainConfig)]
    given = {name: getattr(args, name) for name in names if hasattr(args, name)}
    for name in _DICT_FIELDS:
        if isinstance(given.get(name), str):
            given[name] = _json_value(given[name], "--" + name.replace("_", "-"))
    base: dict[str, Any] = {}
    if args.config is not None:
        base = TrainConfig.from_json_file(args.config).to_dict()
    elif given.get("resume") and given.get("out"):
        recorded = Path(given["out"]).expanduser() / "config.json"
        if recorded.is_file():
            base = TrainConfig.from_json_file(recorded).to_dict()
    return TrainConfig.from_dict({**base, **given}, source="the train command's configuration")


def _task_summary(result) -> dict[str, Any]:
    history = result.history
    return {
        "run_dir": None if result.run_dir is None else str(result.run_dir),
        "task": result.config.task,
        "model": type(result.model).__name__,
        "objective": result.config.objective,
        "epochs": len(history),
        "selection": result.results["selection"],
        "validation": {"val_loss": result.results["validation"]["val_loss"]},
        "final_train_loss": history[-1]["train_loss"] if history else None,
        "model_dir": None if result.model_dir is None else str(result.model_dir),
        "test_skipped": result.results.get("test_skipped"),
        "train_samples_per_s": (
            round(sum(h["trials_per_s"] for h in history) / len(history), 1) if history else None
        ),
    }


def _summary(result) -> dict[str, Any]:
    if result.config.task != "encoder":
        return _task_summary(result)
    test = result.test
    out: dict[str, Any] = {
        "run_dir": None if result.run_dir is None else str(result.run_dir),
        "encoder": result.config.encoder,
        "setting": result.config.setting,
        "subject": result.config.subject,
        "objective": result.config.objective,
        "epochs": len(result.history),
        "selection": result.results["selection"],
        "validation": result.results["validation"],
        "test": None,
        "test_skipped": result.results.get("test_skipped"),
        "train_trials_per_s": (
            round(sum(h["trials_per_s"] for h in result.history) / len(result.history), 1) if result.history else None
        ),
    }
    if test is not None:
        out["test"] = {
            "task": test.task,
            "gallery_size": test.gallery_size,
            "top1": test.full(1).value,
            "top5": test.full(5).value if test.gallery_size >= 5 else None,
            "kway": {item.label: item.exact for item in test.kway},
            "selected_on_test": test.protocol.selected_on_test,
        }
    return out


def _print(summary: dict[str, Any]) -> None:
    sel = summary["selection"]
    if "task" in summary:
        metric = sel["best_metric"]
        shown = f"{metric:.5f}" if isinstance(metric, float) else "n/a"
        print(f"{summary['task']} ({summary['model']}, {summary['objective']}): {summary['epochs']} epochs, "
              f"~{summary['train_samples_per_s']} samples/s, final training loss {summary['final_train_loss']:.5f}")
        print(f"selected epoch {sel['best_epoch']} by {sel['metric']} = {shown} (validation only)")
        if summary["model_dir"]:
            print(f"model: {summary['model_dir']}")
        if summary["run_dir"]:
            print(f"run directory: {summary['run_dir']}")
        return
    val = summary["validation"]
    print(
        f"{summary['encoder']} {summary['setting']} {summary['subject']} ({summary['objective']}): "
        f"{summary['epochs']} epochs, ~{summary['train_trials_per_s']} trials/s"
    )
    metric = sel["best_metric"]
    shown = f"{metric:.4f}" if isinstance(metric, float) else "n/a"
    print(f"selected epoch {sel['best_epoch']} by {sel['metric']} = {shown} (validation only)")
    if val.get("val_top1") is not None:
        print(f"validation top-1 {100 * val['val_top1']:.1f}%")
    if summary["test"] is not None:
        test = summary["test"]
        top5 = f", top-5 {100 * test['top5']:.1f}%" if test["top5"] is not None else ""
        print(f"test ({test['gallery_size']}-way {test['task']}): top-1 {100 * test['top1']:.1f}%{top5}")
    else:
        print(f"test not evaluated: {summary['test_skipped']}")
    if summary["run_dir"]:
        print(f"run directory: {summary['run_dir']}")


def run(args: argparse.Namespace) -> dict:
    """Train (or resume) and return a summary (selection, validation and test figures, run directory)."""
    from pathlib import Path

    from ..errors import ToolkitError
    from ..training import train, train_loso

    config = _build_config(args)
    if args.folds and config.setting != "loso":
        raise ToolkitError("--folds runs leave-one-subject-out folds; add --setting loso.")
    try:
        if args.folds:
            results = train_loso(config)
            folds = {s: _summary(r) for s, r in results.items()}
            tops = [f["test"]["top1"] for f in folds.values() if f["test"] is not None]
            summary: dict[str, Any] = {
                "folds": folds,
                "mean_test_top1": sum(tops) / len(tops) if len(tops) == len(folds) else None,
                "summary_file": str(Path(config.out) / "summary.json") if config.out and len(tops) > 1 else None,
            }
            if not args.json:
                for s, fold in folds.items():
                    print(f"--- held-out {s}")
                    _print(fold)
                if summary["mean_test_top1"] is not None:
                    print(f"mean test top-1 over {len(folds)} folds: {100 * summary['mean_test_top1']:.1f}%")
            return summary
        result = train(config)
    except KeyboardInterrupt:
        if config.out is not None:
            print(
                f"interrupted: {config.out}/last holds the last completed epoch; continue with "
                f"`python -m toolkit train --out {config.out} --resume`",
                file=sys.stderr,
            )
        raise
    summary = _summary(result)
    if not args.json:
        _print(summary)
    return summary
