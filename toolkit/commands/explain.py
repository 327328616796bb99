"""``python -m toolkit explain attribute|ablate|retrain|sanity``: attribution over electrodes and time.

- ``attribute`` — attribution maps (captum) of a trained encoder on one subject's trials, summarised per channel,
  region and window (optionally saved as ``.npz``, drawn as PNG figures, and scored against a simulator's ground
  truth);
- ``ablate`` — ATM's temporal/spatial analyses at test time (growing and sliding windows, keep/drop a region);
- ``retrain`` — the same analyses by retraining one model per window/region with the common trainer (long;
  resumable: finished conditions are skipped, each result is written atomically);
- ``sanity`` — Adebayo et al.'s checks: cascading layer randomisation, and label randomisation against a model
  trained on shuffled labels (given, or trained here).

``--model`` is a training run directory (``python -m toolkit train --out RUN_DIR``: the ``best`` checkpoint is
used, and the run's data, subject and test-image embeddings are the defaults) or an encoder folder written by
``save_pretrained`` (then pass ``--data`` and ``--image-embeds``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

_METHODS = ("ig", "saliency", "deeplift", "deeplift_shap", "occlusion", "feature_ablation")
_TARGETS = ("similarity", "margin", "logit")
_ANALYSES = ("growing", "sliding", "region_keep", "region_drop")


# ----------------------------------------------------------------------------------------------------- parsers
def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, metavar="RUN_DIR_OR_ENCODER_DIR",
                   help="training run directory (its best checkpoint) or an encoder folder saved with save_pretrained")
    p.add_argument("--data", default=None, metavar="STORE_OR_ROOT",
                   help="memory-mapped store or official THINGS-EEG root (default: the run's data)")
    p.add_argument("--subject", default=None, help="subject, e.g. sub-01 (default: the run's subject)")
    p.add_argument("--split", default="test", help="split of the trials (default: %(default)s)")
    p.add_argument("--image-embeds", default=None, metavar="FILE",
                   help="embeddings of the split's images, one row per condition (.safetensors/.npz/.npy; default: "
                   "the run's test/train image embeddings)")
    p.add_argument("--normalize", action=argparse.BooleanOptionalAction, default=True,
                   help="compare embeddings by cosine similarity (--normalize, the retrieval convention; default) or "
                   "by raw dot product (--no-normalize)")
    p.add_argument("--average", action=argparse.BooleanOptionalAction, default=None,
                   help="average the repetitions of each condition (default: yes for the test split, no otherwise)")
    p.add_argument("--conditions", type=int, nargs="+", default=None, metavar="C",
                   help="condition indices to use (default: all)")
    p.add_argument("--max-trials", type=int, default=None, metavar="N", help="use at most N trials (the first N)")
    p.add_argument("--subject-id", type=int, default=None,
                   help="subject index fed to the encoder (default: from the run, or the subject's number)")
    p.add_argument("--batch-size", type=int, default=16, help="trials per call (default: %(default)s)")
    p.add_argument("--device", default="cpu", help="torch device (default: %(default)s)")


def _add_windows(p: argparse.ArgumentParser) -> None:
    p.add_argument("--analyses", nargs="+", choices=_ANALYSES, default=list(_ANALYSES),
                   help="analyses to run (default: all)")
    p.add_argument("--growing-ends", type=float, nargs="+", default=None, metavar="T",
                   help="ends of the growing windows [0, T) in seconds (default: ATM's 0.05 ... 1.0)")
    p.add_argument("--sliding-width", type=float, default=0.1, help="sliding window length, s (default: 0.1)")
    p.add_argument("--sliding-step", type=float, default=None,
                   help="distance between sliding windows, s (default: the width: adjacent windows)")
    p.add_argument("--groups", default=None, metavar="JSON",
                   help="channel groups as a JSON object {name: [channels]} or a .json file (default: ATM's regions)")


def register(sub: argparse._SubParsersAction) -> None:
    """Register the ``explain`` command family."""
    from ..cli import add_json_flag

    parser = sub.add_parser(
        "explain",
        help="attribution maps, window/region analyses and sanity checks of a trained encoder",
        description=(
            "Attribution over electrodes and time of a trained encoder: captum attribution maps (attribute), ATM's "
            "window/region analyses at test time (ablate) or by retraining (retrain), and sanity checks (sanity)."
        ),
    )
    esub = parser.add_subparsers(dest="explain_command", metavar="ANALYSIS")
    esub.required = True

    p = esub.add_parser("attribute", help="attribution maps over channels and time (captum)",
                        description="Attribution maps of a trained encoder, summarised per channel, region, window.")
    _add_common(p)
    p.add_argument("--method", choices=_METHODS, default="ig", help="attribution method (default: %(default)s)")
    p.add_argument("--target", choices=_TARGETS, default="similarity",
                   help="what is explained: similarity to the true image, rank margin, or a class logit "
                   "(default: %(default)s)")
    p.add_argument("--margin-reduce", choices=("max", "logsumexp"), default="max",
                   help="competitor of the margin target (default: %(default)s)")
    p.add_argument("--temperature", type=float, default=0.07, help="softness of --margin-reduce logsumexp")
    p.add_argument("--baseline", choices=("zeros", "mean"), default="zeros",
                   help="reference signal for ig/deeplift/occlusion/feature_ablation (default: %(default)s)")
    p.add_argument("--n-steps", type=int, default=32, help="integrated-gradients steps (default: %(default)s)")
    p.add_argument("--n-baselines", type=int, default=16,
                   help="deeplift_shap: reference trials drawn from the data (default: %(default)s)")
    p.add_argument("--window-samples", type=int, default=None, help="occlusion window length in samples")
    p.add_argument("--stride", type=int, default=None, help="occlusion stride in samples")
    p.add_argument("--windows", nargs="+", default=None, metavar="TMIN:TMAX",
                   help="time windows in seconds (feature_ablation cells, summary windows), e.g. 0.1:0.2")
    p.add_argument("--groups", default=None, metavar="JSON",
                   help="channel groups {name: [channels]} (JSON or .json file; default: ATM's regions)")
    p.add_argument("--strict", action=argparse.BooleanOptionalAction, default=True,
                   help="deeplift: refuse models with non-linearities captum cannot handle (default: yes)")
    p.add_argument("--ground-truth", default=None, metavar="SIM_ROOT",
                   help="a simulated dataset's folder: score the maps against its ground truth")
    p.add_argument("--out", default=None, metavar="FILE.npz", help="save the maps (float32) with their axes")
    p.add_argument("--plot", default=None, metavar="DIR", help="write PNG figures into DIR")
    add_json_flag(p)
    p.set_defaults(func=run_attribute)

    p = esub.add_parser("ablate", help="test-time window and region ablation (ATM's analyses, fast)",
                        description="Retrieval accuracy with samples/channels replaced by a baseline.")
    _add_common(p)
    _add_windows(p)
    p.add_argument("--baseline", choices=("mean", "zeros"), default="mean",
                   help="what replaces the removed signal: the mean trial or zeros (default: %(default)s)")
    p.add_argument("--ks", type=int, nargs="+", default=None, help="k of the exact k-way accuracies")
    p.add_argument("--out", default=None, metavar="FILE.json", help="also write the result as JSON")
    add_json_flag(p)
    p.set_defaults(func=run_ablate, batch_size=200)

    p = esub.add_parser("retrain", help="retrain one model per window/region (ATM's protocol; long, resumable)",
                        description="Train and test one encoder per window/region with the common trainer.")
    p.add_argument("--model", default=None, metavar="RUN_DIR", help="run whose training configuration is reused")
    p.add_argument("--config", default=None, metavar="FILE", help="training configuration JSON (instead of --model)")
    p.add_argument("--out", required=True, metavar="DIR", help="results folder (one JSON per condition)")
    _add_windows(p)
    p.add_argument("--epochs", type=int, default=None, help="override the training epochs")
    p.add_argument("--device", default=None, help="override the training device (cpu, cuda, auto)")
    p.add_argument("--overwrite", action="store_true", help="run conditions again even if their result exists")
    add_json_flag(p)
    p.set_defaults(func=run_retrain)

    p = esub.add_parser("sanity", help="sanity checks of attribution maps (layer and label randomisation)",
                        description="Cascading model-parameter randomisation and label randomisation.")
    _add_common(p)
    p.add_argument("--method", choices=_METHODS, default="ig", help="attribution method (default: %(default)s)")
    p.add_argument("--target", choices=("similarity", "margin"), default="similarity", help="explained target")
    p.add_argument("--n-steps", type=int, default=32, help="integrated-gradients steps (default: %(default)s)")
    p.add_argument("--layers", nargs="+", default=None, help="module names to randomise, output side first")
    p.add_argument("--label-model", default=None, metavar="DIR",
                   help="a model of the same architecture trained on shuffled labels (run or encoder folder)")
    p.add_argument("--train-shuffled", action="store_true",
                   help="train that model here with the run's configuration and shuffled labels (needs --out)")
    p.add_argument("--epochs", type=int, default=None, help="epochs of --train-shuffled (default: the run's)")
    p.add_argument("--out", default=None, metavar="DIR", help="folder for the result and the shuffled-label run")
    add_json_flag(p)
    p.set_defaults(func=run_sanity, max_trials=16)


# ----------------------------------------------------------------------------------------------------- loading
def _json_arg(text: str | None, flag: str) -> Any:
    from ..errors import ToolkitError

    if text is None:
        return None
    source = text
    if not text.lstrip().startswith(("{", "[")) and Path(text).is_file():
        source = Path(text).read_text(encoding="utf-8")
    try:
        return json.loads(source)
    except json.JSONDecodeError as err:
        raise ToolkitError(f"{flag} {text!r} is neither JSON nor a .json file ({err.msg}).") from None


def _windows_arg(values: list[str] | None) -> list[tuple[float, float]] | None:
    from ..errors import ToolkitError

    if values is None:
        return None
    out = []
    for value in values:
        try:
            tmin, tmax = (float(v) for v in value.split(":"))
        except ValueError:
            raise ToolkitError(f"--windows {value!r} must be TMIN:TMAX in seconds, e.g. 0.1:0.2.") from None
        out.append((tmin, tmax))
    return out


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def open_model(path: str) -> tuple[Any, dict | None]:
    """The encoder of a run directory (``best``, else ``last``) or an encoder folder, and the run's ``config.json``."""
    from ..encoders import EEGEncoder
    from ..errors import ToolkitError

    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise ToolkitError(f"--model '{folder}' is not a folder; pass a training run directory or an encoder folder.")
    meta = _read_json(folder / "config.json")
    if meta is not None and "train" in meta:
        for name in ("best", "last"):
            if (folder / name / "config.json").is_file():
                return EEGEncoder.from_pretrained(folder / name), meta
        raise ToolkitError(f"--model '{folder}' is a run directory without a 'best' or 'last' checkpoint yet.")
    if meta is not None and "encoder" in meta:
        return EEGEncoder.from_pretrained(folder), None
    raise ToolkitError(
        f"--model '{folder}' holds neither a training run (config.json with 'train') nor an encoder saved with "
        "save_pretrained (config.json + model.safetensors)."
    )


def _classifier_head(model_dir: str, run: dict | None, device: str) -> Any:
    """The linear head of a run trained with the classification objective (kept in its trainer state), or None."""
    import torch

    from ..training import load_checkpoint

    if run is None or run.get("train", {}).get("objective") != "classification":
        return None
    for name in ("best", "last"):
        folder = Path(model_dir) / name
        if folder.is_dir():
            state, _ = load_checkpoint(folder)
            weights = state["objective"]
            head = torch.nn.Linear(weights["head.weight"].shape[1], weights["head.weight"].shape[0])
            head.load_state_dict({"weight": weights["head.weight"], "bias": weights["head.bias"]})
            return head.to(torch.device(device)).eval()
    return None


class _Context:
    """Everything the analyses need, resolved from the arguments (and the run's configuration)."""

    def __init__(self, args: argparse.Namespace) -> None:
        import numpy as np
        import torch

        from ..errors import ToolkitError
        from ..training.data import load_embedding_file, open_trials, subject_numbers

        self.encoder, run = open_model(args.model)
        train_cfg = (run or {}).get("train", {})
        self.data = args.data or train_cfg.get("data")
        if not self.data:
            raise ToolkitError("Pass --data STORE_OR_ROOT (the model is not a run directory that records its data).")
        self.subject = args.subject or train_cfg.get("subject") or "sub-01"
        self.split = args.split
        trials = open_trials(self.data, self.subject, self.split)
        cfg = self.encoder.config
        if (trials.n_chans, trials.n_times) != (cfg.n_chans, cfg.n_times):
            raise ToolkitError(
                f"The {self.subject} {self.split} trials have {trials.n_chans} channels x {trials.n_times} samples "
                f"but the encoder expects {cfg.n_chans} x {cfg.n_times}; use the data the model was trained on."
            )
        run_key = "test_image_embeds" if self.split == "test" else "image_embeds"
        embeds_file = args.image_embeds or train_cfg.get(run_key)
        if not embeds_file:
            raise ToolkitError(
                f"Pass --image-embeds FILE: the embeddings of the {self.split} images, one row per condition (from "
                "`python -m toolkit embed --out FILE`)."
            )
        table = load_embedding_file(embeds_file, what="--image-embeds")
        if table.embeds.shape[0] != trials.n_conditions:
            raise ToolkitError(
                f"--image-embeds '{embeds_file}' has {table.embeds.shape[0]} rows but the {self.split} split has "
                f"{trials.n_conditions} conditions; pass the embeddings of this split's images."
            )
        self.gallery = table.embeds
        self.embeds_file = str(embeds_file)
        self.normalize = bool(args.normalize)
        average = (self.split == "test") if args.average is None else bool(args.average)
        conds = np.arange(trials.n_conditions) if args.conditions is None else np.asarray(args.conditions)
        if conds.size == 0 or conds.min() < 0 or conds.max() >= trials.n_conditions:
            raise ToolkitError(f"--conditions must lie between 0 and {trials.n_conditions - 1}.")
        per_condition = 1 if average else trials.n_repetitions
        if args.max_trials is not None:
            if args.max_trials < 1:
                raise ToolkitError(f"--max-trials must be at least 1; got {args.max_trials}.")
            conds = conds[: -(-args.max_trials // per_condition)]  # read only the conditions needed
        if average:
            eeg = np.stack([trials.condition_average(int(c)) for c in conds])
        else:
            eeg = np.asarray(trials.data[np.sort(conds)], dtype=np.float32).reshape(-1, trials.n_chans, trials.n_times)
            conds = np.sort(conds)
        index = np.repeat(conds, per_condition).astype(np.int64)
        if args.max_trials is not None:
            eeg, index = eeg[: args.max_trials], index[: args.max_trials]
        self.eeg, self.index, self.average = eeg.astype(np.float32), index, average
        self.trials = trials
        if args.subject_id is not None:
            sid = int(args.subject_id)
        else:
            ids = ((run or {}).get("subjects") or {}).get("ids") or {}
            sid = ids.get(self.subject, subject_numbers([self.subject])[self.subject])
        self.subject_id = None if sid is None or sid < 0 else int(sid)
        if args.batch_size < 1:
            raise ToolkitError(f"--batch-size must be at least 1; got {args.batch_size}.")
        try:
            self.encoder.to(torch.device(args.device))
        except (RuntimeError, ValueError) as err:
            raise ToolkitError(f"--device {args.device!r} cannot be used ({err}).") from None
        self.encoder.eval()
        self.run = run
        self.head = _classifier_head(args.model, run, args.device)
        self.labels = np.asarray(trials.labels(), dtype=np.int64)[index]

    def describe(self) -> dict[str, Any]:
        return {
            "encoder": self.encoder.name,
            "data": str(self.data),
            "subject": self.subject,
            "split": self.split,
            "averaged": self.average,
            "n_trials": int(self.eeg.shape[0]),
            "image_embeds": self.embeds_file,
            "normalize": self.normalize,
            "subject_id": self.subject_id,
        }


# ------------------------------------------------------------------------------------------------------ attribute
def _method_kwargs(args: argparse.Namespace, ctx: _Context) -> tuple[dict, Any]:
    """captum options and baselines from the flags."""
    import numpy as np

    from ..errors import ToolkitError

    kwargs: dict[str, Any] = {}
    baselines: Any = None if args.method == "saliency" else args.baseline
    if args.method == "ig":
        if args.n_steps < 1:
            raise ToolkitError(f"--n-steps must be at least 1; got {args.n_steps}.")
        kwargs["n_steps"] = args.n_steps
    elif args.method == "deeplift_shap":
        rng = np.random.default_rng(0)
        n = min(max(2, args.n_baselines), ctx.eeg.shape[0])
        if n < 2:
            raise ToolkitError("deeplift_shap needs at least 2 trials to draw reference trials from.")
        baselines = ctx.eeg[rng.choice(ctx.eeg.shape[0], n, replace=False)]
    elif args.method == "occlusion":
        width = args.window_samples or max(1, ctx.eeg.shape[2] // 10)
        kwargs["sliding_window_shapes"] = (1, width)
        kwargs["strides"] = (1, args.stride or max(1, width // 2))
    elif args.method == "feature_ablation":
        from ..explain import make_feature_mask

        groups = _json_arg(args.groups, "--groups")
        kwargs["feature_mask"] = make_feature_mask(
            ctx.trials.ch_names, ctx.trials.times, groups=groups if groups is not None else "regions",
            windows=_windows_arg(args.windows),
        )
    if args.method in ("deeplift", "deeplift_shap"):
        kwargs["strict"] = args.strict
    return kwargs, baselines


def _save_maps(path: str, attr: Any, ctx: _Context, info: dict) -> str:
    import numpy as np

    from ..errors import ToolkitError
    from ..utils import atomic_path

    out = Path(path)
    if out.suffix.lower() != ".npz":
        raise ToolkitError(f"--out '{out}' must end in .npz.")
    with atomic_path(out) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(
            fh, attributions=attr.astype(np.float32), ch_names=np.array(ctx.trials.ch_names),
            times=ctx.trials.times, index=ctx.index, info=np.array(json.dumps(info)),
        )
    return str(out)


def _write_figures(folder: str, attr: Any, ctx: _Context, windows: Any, signed_title: str) -> list[str]:
    from ..explain import region_scores
    from ..utils import atomic_write_bytes
    from ..viz import figure_to_png
    from ..viz.attribution import (
        plot_attribution_heatmap,
        plot_attribution_time_course,
        plot_attribution_topomaps,
        plot_region_bars,
    )

    out = Path(folder)
    names, times = ctx.trials.ch_names, ctx.trials.times
    figures = {
        "topomaps.png": plot_attribution_topomaps(attr, names, times, windows=windows, title=signed_title,
                                                  ch_type=ctx.trials.ch_type),
        "heatmap.png": plot_attribution_heatmap(attr, names, times, title=signed_title),
        "time_course.png": plot_attribution_time_course(attr, times, ch_names=names, by_group=True,
                                                        windows=windows if windows and len(windows) <= 3 else None),
        "regions.png": plot_region_bars(region_scores(attr, names), title="attribution per region"),
    }
    written = []
    for name, fig in figures.items():
        written.append(str(atomic_write_bytes(out / name, figure_to_png(fig))))
    return written


def run_attribute(args: argparse.Namespace) -> dict:
    """Attribution maps and their summary."""
    from ..errors import ToolkitError
    from ..explain import attribute_batched, compare_with_ground_truth, make_target, summarize

    ctx = _Context(args)
    kwargs, baselines = _method_kwargs(args, ctx)
    options = {"reduce": args.margin_reduce, "temperature": args.temperature} if args.target == "margin" else {}
    index = ctx.index
    if args.target == "logit":
        if ctx.head is None:
            raise ToolkitError(
                "--target logit explains a class logit, but this model is a retrieval encoder without a classifier "
                "head; use a run trained with --objective classification, or --target similarity / margin."
            )
        target = make_target("logit", ctx.encoder, head=ctx.head)
        index = ctx.labels  # each trial's class
    else:
        target = make_target(args.target, ctx.encoder, image_embeds=ctx.gallery, normalize=ctx.normalize, **options)
    attr = attribute_batched(
        ctx.encoder, ctx.eeg, method=args.method, target=target, index=index, baselines=baselines,
        subject_ids=ctx.subject_id, batch_size=args.batch_size, **kwargs,
    )
    windows = _windows_arg(args.windows)
    groups = _json_arg(args.groups, "--groups")
    summary = summarize(attr, ctx.trials.ch_names, ctx.trials.times, groups=groups, windows=windows)
    result: dict[str, Any] = {
        **ctx.describe(),
        "method": args.method,
        "baseline": None if args.method in ("saliency", "deeplift_shap") else args.baseline,
        **({"n_steps": args.n_steps} if args.method == "ig" else {}),
        **target.describe(),
        "summary": summary,
    }
    if args.ground_truth:
        from ..data import load_ground_truth

        result["validation"] = compare_with_ground_truth(
            attr, load_ground_truth(args.ground_truth), ch_names=ctx.trials.ch_names, times=ctx.trials.times
        )
    if args.out:
        result["out"] = _save_maps(args.out, attr, ctx, {k: v for k, v in result.items() if k != "summary"})
    if args.plot:
        result["figures"] = _write_figures(args.plot, attr, ctx, windows, f"{args.method} · {args.target}")
    if not args.json:
        top = ", ".join(f"{c['channel']} {c['score']:.3g}" for c in summary["top_channels"][:5])
        regions = ", ".join(f"{k} {v:.3g}" for k, v in summary["region_scores"].items())
        print(f"{args.method} attributions of {ctx.eeg.shape[0]} {ctx.subject} {ctx.split} trials ({args.target})")
        print(f"  top channels: {top}")
        print(f"  regions: {regions}")
        print(f"  peak latency: {summary['peak_latency_s'] * 1000:.0f} ms")
        if "validation" in result:
            v = result["validation"]
            print(f"  ground truth: channel AUROC {v['channel_auroc']:.3f}, peak {v['peak_latency_s'] * 1000:.0f} ms "
                  f"(truth {v['truth_peak_latency_s'] * 1000:.0f} ms)")
        for key in ("out", "figures"):
            if key in result:
                print(f"  wrote {result[key]}")
    return result


# --------------------------------------------------------------------------------------------------------- ablate
def _window_options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "analyses": tuple(args.analyses),
        "growing_ends": args.growing_ends,
        "sliding_width": args.sliding_width,
        "sliding_step": args.sliding_step,
        "groups": _json_arg(args.groups, "--groups"),
    }


def run_ablate(args: argparse.Namespace) -> dict:
    """Test-time window/region ablation."""
    from ..explain import ablate
    from ..utils import atomic_write_json

    ctx = _Context(args)
    result = ablate(
        ctx.encoder, ctx.eeg, ctx.gallery, normalize=ctx.normalize, times=ctx.trials.times,
        ch_names=ctx.trials.ch_names, index=ctx.index, subject_ids=ctx.subject_id, baseline=args.baseline,
        ks=args.ks, batch_size=args.batch_size, **_window_options(args),
    )
    out = {**ctx.describe(), **result.to_dict()}
    if args.out:
        out["out"] = str(atomic_write_json(args.out, out))
    if not args.json:
        print(f"test-time ablation, {ctx.eeg.shape[0]} trials, {result.gallery_size}-image gallery "
              f"(chance top-1 {result.chance['top1']:.3f}), baseline {result.baseline}")
        for row in result.rows:
            top5 = f"  top-5 {row['top5']:.3f}" if "top5" in row else ""
            print(f"  {row['analysis']:12s} {row['label']:28s} top-1 {row['top1']:.3f}{top5}")
    return out


# -------------------------------------------------------------------------------------------------------- retrain
def _load_train_config(args: argparse.Namespace) -> Any:
    from ..errors import ToolkitError
    from ..training import TrainConfig

    if (args.model is None) == (args.config is None):
        raise ToolkitError("Pass exactly one of --model RUN_DIR (reuse its training configuration) or --config FILE.")
    path = Path(args.config) if args.config else Path(args.model) / "config.json"
    if args.model and not path.is_file():
        raise ToolkitError(f"--model '{args.model}' is not a training run directory (no config.json).")
    config = TrainConfig.from_json_file(path)
    changes: dict[str, Any] = {"out": None, "resume": False, "progress": False}
    if getattr(args, "epochs", None) is not None:
        changes["epochs"] = args.epochs
    if getattr(args, "device", None) is not None:
        changes["device"] = args.device
    return config.replace(**changes)


def _subset(ts: Any, channels: Any, samples: Any, scratch: Path) -> Any:
    """A TrialSet holding only ``channels`` x ``samples``: a view for whole-channel windows, else a memory map
    written chunk by chunk (so a large training set is never copied into memory)."""
    import dataclasses

    import numpy as np

    contiguous = samples.size and np.array_equal(samples, np.arange(samples[0], samples[-1] + 1))
    if channels.size == ts.n_chans and contiguous:
        data = ts.data[..., int(samples[0]) : int(samples[-1]) + 1]
    else:
        scratch.mkdir(parents=True, exist_ok=True)
        path = scratch / f"{ts.subject}_{ts.split}.npy"
        shape = (ts.n_conditions, ts.n_repetitions, channels.size, samples.size)
        out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=shape)
        step = max(1, (64 << 20) // max(1, ts.n_repetitions * ts.n_chans * ts.n_times * 4))
        for start in range(0, ts.n_conditions, step):
            block = np.asarray(ts.data[start : start + step], dtype=np.float32)
            out[start : start + step] = block[:, :, channels][..., samples]
        out.flush()
        del out
        data = np.load(path, mmap_mode="r")
    return dataclasses.replace(
        ts, data=data, ch_names=[ts.ch_names[i] for i in channels], times=np.asarray(ts.times)[samples]
    )


def _encoder_kernels(config: Any, n_times: int) -> dict[str, int]:
    """Shrunk TSConv kernels for short windows (ATM's per-window models), for encoders that have them."""
    from ..encoders import get_encoder_class
    from ..explain.ablation import scaled_tsconv_kernels

    cls = get_encoder_class(config.encoder)
    fields = cls.config_class.field_names()
    if "temporal_kernel" not in fields:
        return {}
    width = config.encoder_config.get("d_model") if "d_model" in fields else None
    kernels = scaled_tsconv_kernels(int(width or n_times))
    return {k: v for k, v in kernels.items() if k not in config.encoder_config}


def _derived_run_data(base: Any, config: Any, train_sets: list, test_set: Any, *, shuffle_seed: int | None = None):
    """A copy of ``base`` (:class:`toolkit.training.RunData`) over other trial sets, optionally with the
    EEG-image pairing of the training conditions shuffled (label randomisation)."""
    import dataclasses

    import numpy as np

    from ..training import PairedTrials

    image, text = base.image_embeds, base.text_embeds
    concept_of, labels = base.train.concept_of, base.train.labels
    if shuffle_seed is not None:
        perm = np.random.default_rng(shuffle_seed).permutation(base.train.n_conditions)
        image = None if image is None else image[perm]
        concept_of, labels = concept_of[perm], labels[perm]
    common = {"image_embeds": image, "text_embeds": text, "concept_of": concept_of, "labels": labels}
    ids = base.train.subject_ids
    split = base.split
    train = PairedTrials(train_sets, ids, conditions=split.train_conditions, in_memory=config.in_memory, **common)
    val = val_queries = None
    if split.n_val:
        val = PairedTrials(train_sets, ids, conditions=split.val_conditions, in_memory=config.in_memory,
                           order_seed=config.seed, **common)
        val_queries = PairedTrials(train_sets, ids, conditions=split.val_conditions, average=True, **common)
    first = train_sets[0]
    info = {**base.info, "n_chans": first.n_chans, "n_times": first.n_times, "ch_names": list(first.ch_names),
            "time_window": [float(first.times[0]), float(first.times[-1])], "in_memory": train.in_memory}
    return dataclasses.replace(base, train=train, val=val, val_queries=val_queries, test_trials=test_set, info=info)


def _test_metrics(result: Any) -> dict[str, Any]:
    test = result.test
    metrics: dict[str, Any] = {"best_epoch": result.best_epoch, "best_val_metric": result.best_metric}
    if test is None:
        metrics["test"] = None
        return metrics
    metrics["test_top1"] = test.full(1).value
    if test.gallery_size > 5:
        metrics["test_top5"] = test.full(5).value
    metrics["kway_top1"] = {str(s.k): s.exact for s in test.kway if s.top == 1}
    metrics["gallery_size"] = test.gallery_size
    return metrics


def run_retrain(args: argparse.Namespace) -> dict:
    """One model per window/region, resumable."""
    import shutil

    from ..explain.ablation import build_conditions, retrain_analysis
    from ..training import Trainer, build_run_data
    from ..training.data import open_trials

    config = _load_train_config(args)
    out = Path(args.out)
    base = build_run_data(config)
    train_sets = [open_trials(config.data, s, "train") for s in base.train_subjects]
    first = train_sets[0]
    conditions = build_conditions(first.ch_names, first.times, **_window_options(args))

    def train_and_evaluate(condition: Any) -> dict:
        scratch = out / ".data" / condition.key
        try:
            sets = [_subset(ts, condition.channels, condition.samples, scratch) for ts in train_sets]
            test = None if base.test_trials is None else _subset(
                base.test_trials, condition.channels, condition.samples, scratch / "test"
            )
            data = _derived_run_data(base, config, sets, test)
            run_dir = out / condition.key / "run"
            enc_cfg = {**config.encoder_config, **_encoder_kernels(config, sets[0].n_times)}
            cfg = config.replace(out=str(run_dir), resume=(run_dir / "last").is_dir(), encoder_config=enc_cfg)
            return _test_metrics(Trainer(cfg, data=data).fit())
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    summary = retrain_analysis(
        out, conditions, train_and_evaluate, overwrite=args.overwrite,
        metadata={"train_config": config.to_dict(), "n_conditions": len(conditions)},
    )
    if not args.json:
        for row in summary["rows"]:
            m = row["metrics"]
            top1 = "—" if m.get("test_top1") is None else f"{m['test_top1']:.3f}"
            print(f"  {row['analysis']:12s} {row['label']:28s} test top-1 {top1}")
        print(f"ran {len(summary['ran'])}, skipped {len(summary['skipped'])} (already done); results in {out}")
    return summary


# --------------------------------------------------------------------------------------------------------- sanity
def _train_shuffled(args: argparse.Namespace, ctx: _Context) -> Any:
    from ..errors import ToolkitError
    from ..training import Trainer, build_run_data
    from ..training.data import open_trials

    if ctx.run is None:
        raise ToolkitError("--train-shuffled needs --model to be a training run directory (its configuration).")
    if not args.out:
        raise ToolkitError("--train-shuffled needs --out DIR for the shuffled-label run.")
    config = _load_train_config(argparse.Namespace(model=args.model, config=None, epochs=args.epochs, device=None))
    base = build_run_data(config)
    sets = [open_trials(config.data, s, "train") for s in base.train_subjects]
    data = _derived_run_data(base, config, sets, base.test_trials, shuffle_seed=config.seed + 1)
    run_dir = Path(args.out) / "shuffled-labels"
    cfg = config.replace(out=str(run_dir), resume=(run_dir / "last").is_dir())
    result = Trainer(cfg, data=data).fit()
    return result.encoder, {"run_dir": str(run_dir), **_test_metrics(result)}


def run_sanity(args: argparse.Namespace) -> dict:
    """Cascading randomisation and (optionally) label randomisation."""
    from ..errors import ToolkitError
    from ..explain import cascading_randomization, label_randomization
    from ..utils import atomic_write_json

    if args.label_model and args.train_shuffled:
        raise ToolkitError("Pass --label-model or --train-shuffled, not both.")
    ctx = _Context(args)
    common = {
        "method": args.method, "target": args.target, "index": ctx.index, "image_embeds": ctx.gallery,
        "normalize": ctx.normalize, "subject_ids": ctx.subject_id, "batch_size": args.batch_size,
    }
    if args.method == "ig":
        common["n_steps"] = args.n_steps
    if args.method == "deeplift_shap":
        raise ToolkitError("sanity: use ig, saliency, deeplift, occlusion or feature_ablation (deeplift_shap needs a "
                           "baseline distribution; run it through the Python API).")
    cascade = cascading_randomization(ctx.encoder, ctx.eeg, layers=args.layers, **common)
    out: dict[str, Any] = {**ctx.describe(), "method": args.method, "target": args.target,
                           "cascading": cascade.to_dict()["steps"]}
    other = None
    if args.label_model:
        other, _ = open_model(args.label_model)
        other.to(next(ctx.encoder.parameters()).device).eval()
        out["label_model"] = str(args.label_model)
    elif args.train_shuffled:
        other, info = _train_shuffled(args, ctx)
        out["label_model"] = info
    if other is not None:
        report = label_randomization(ctx.encoder, other, ctx.eeg, **common)
        report.pop("per_trial", None)
        out["label_randomization"] = report
    if args.out:
        out["out"] = str(atomic_write_json(Path(args.out) / "sanity.json", out))
    if not args.json:
        print(f"cascading randomisation ({args.method}, {ctx.eeg.shape[0]} trials): similarity to the original maps")
        for step in cascade.steps:
            vals = "  ".join(f"{k} {'—' if step[k] is None else format(step[k], '.3f')}"
                             for k in ("spearman", "spearman_abs", "ssim"))
            print(f"  {step['step']:2d} {step['layer']:28s} {vals}")
        if "label_randomization" in out:
            r = out["label_randomization"]
            print(f"label randomisation: spearman {r['spearman']}, spearman_abs {r['spearman_abs']}, ssim {r['ssim']}")
    return out
