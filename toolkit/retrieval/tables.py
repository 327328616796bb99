"""Tables of retrieval results: one result as rows, per-subject summaries with mean ± std, text/markdown output.

Numbers are fractions in the DataFrames and dicts; the renderers print accuracies in percent (as papers do) and
ranks as ranks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import ToolkitError
from .kway import RetrievalResult
from .protocol import ProtocolCard

# Card fields allowed to differ between the subjects of one summary (everything else must match).
_PER_SUBJECT_FIELDS = ("subjects", "date", "notes", "toolkit_version", "training_seed", "config_hash")
_RANK_COLUMNS = ("median rank", "mean rank")
_SUMMARY_STATS = ("mean", "std", "ci_low", "ci_high")


# ================================================================================================ one result
def result_table(result: RetrievalResult):
    """One row per metric of a :class:`~toolkit.retrieval.RetrievalResult`.

    Parameters
    ----------
    result : RetrievalResult
        The evaluation.

    Returns
    -------
    pandas.DataFrame
        Indexed by metric label (``"2-way top-1"`` … ``"full top-1"`` … ``"MRR"``, ``"median rank"``,
        ``"mean rank"``) with columns ``kind`` (``k-way``, ``full``, ``rank``), ``k``, ``top``, ``chance``,
        ``value`` (the exact value), ``ci_low``, ``ci_high`` (bootstrap over queries), ``sampled_mean``,
        ``sampled_low``, ``sampled_high`` (over seeded draws; NaN where not sampled). Accuracies are fractions.
    """
    import pandas as pd

    _check_result(result, "result")
    nan = float("nan")
    rows = []
    for item in result.kway:
        rows.append(
            {
                "metric": item.label, "kind": "k-way", "k": item.k, "top": item.top, "chance": item.chance,
                "value": item.exact, "ci_low": item.exact_ci[0], "ci_high": item.exact_ci[1],
                "sampled_mean": item.sampled_mean, "sampled_low": item.sampled_interval[0],
                "sampled_high": item.sampled_interval[1],
            }
        )
    n = result.gallery_size
    for item in result.full_gallery:
        rows.append(
            {
                "metric": item.label, "kind": "full", "k": n, "top": item.top, "chance": min(1.0, item.top / n),
                "value": item.value, "ci_low": item.ci[0], "ci_high": item.ci[1],
                "sampled_mean": nan, "sampled_low": nan, "sampled_high": nan,
            }
        )
    chance_mrr = float(np.mean(1.0 / np.arange(1, n + 1)))  # expected reciprocal rank of a random ranking
    rank_rows = (
        ("MRR", chance_mrr, result.mrr, result.mrr_ci),
        ("median rank", (n + 1) / 2, result.median_rank, (nan, nan)),
        ("mean rank", (n + 1) / 2, result.mean_rank, (nan, nan)),
    )
    for label, chance, value, ci in rank_rows:
        rows.append(
            {
                "metric": label, "kind": "rank", "k": n, "top": 0, "chance": chance, "value": value,
                "ci_low": ci[0], "ci_high": ci[1], "sampled_mean": nan, "sampled_low": nan, "sampled_high": nan,
            }
        )
    frame = pd.DataFrame(rows).set_index("metric")
    frame.attrs["protocol"] = result.protocol.to_dict()
    return frame


def render_result(result: RetrievalResult, *, fmt: str = "markdown") -> str:
    """The protocol card (with any test-selection warning) and the metrics of one result.

    Parameters
    ----------
    result : RetrievalResult
        The evaluation.
    fmt : str
        ``"markdown"`` or ``"text"``.

    Returns
    -------
    str
        Accuracies in percent with their intervals.
    """
    _check_result(result, "result")
    _check_fmt(fmt)
    card = result.protocol
    level = f"{round(result.confidence * 100):d}%"
    header = [
        "Metric",
        "Chance",
        f"Exact [{level} CI over {'queries' if result.n_targets == result.n_queries else 'targets'}]",
        f"Sampled mean [{level} over {result.n_draws} draws]",
    ]
    rows = []
    for item in result.kway:
        rows.append(
            [
                item.label,
                _pct(item.chance),
                f"{_pct(item.exact)} [{_pct(item.exact_ci[0])}, {_pct(item.exact_ci[1])}]",
                f"{_pct(item.sampled_mean)} [{_pct(item.sampled_interval[0])}, {_pct(item.sampled_interval[1])}]",
            ]
        )
    n = result.gallery_size
    for item in result.full_gallery:
        rows.append([item.label, _pct(min(1.0, item.top / n)), f"{_pct(item.value)} [{_pct(item.ci[0])}, "
                     f"{_pct(item.ci[1])}]", "deterministic"])
    rows.append(["MRR", _pct(float(np.mean(1.0 / np.arange(1, n + 1)))),
                 f"{_pct(result.mrr)} [{_pct(result.mrr_ci[0])}, {_pct(result.mrr_ci[1])}]", "deterministic"])
    rows.append(["median rank (1 = best)", f"{(n + 1) / 2:g}", f"{result.median_rank:g}", "deterministic"])
    title = (
        f"Zero-shot {result.task}: {result.n_queries} queries, {result.n_targets} targets, gallery of {n} "
        f"({card.gallery}); scores: {'cosine' if result.normalize else 'raw dot product'}; "
        f"accuracies in %."
    )
    card_block = card.to_markdown() if fmt == "markdown" else card.to_text()
    return "\n".join([_title(title, fmt), "", card_block, "", _format_table(header, rows, fmt)])


# ========================================================================================= per-subject tables
def summarize_subjects(
    results: Mapping[str, RetrievalResult], *, value: str = "exact", confidence: float = 0.95
):
    """Per-subject table with mean, standard deviation and a confidence interval across subjects.

    Parameters
    ----------
    results : Mapping of str to RetrievalResult
        ``{subject: result}``; every result's card must list that subject and all cards must describe the same
        protocol (they may differ only in subjects, date, notes, toolkit version, training seed and config hash).
    value : str
        ``"exact"`` (the exact expected k-way accuracies; recommended) or ``"sampled"`` (mean over the seeded
        draws). Full-gallery and rank metrics are deterministic either way.
    confidence : float
        Level of the across-subject t interval of the mean.

    Returns
    -------
    pandas.DataFrame
        One row per subject, then the rows ``"mean"``, ``"std"`` (sample standard deviation, ``ddof=1``, as in
        "mean ± std over subjects"), ``"ci_low"`` and ``"ci_high"`` (Student-t interval of the mean; NaN for a
        single subject). Columns are metric labels (``"2-way top-1"`` …, ``"full top-1"`` …, ``"MRR"``,
        ``"median rank"``, ``"mean rank"``). ``attrs`` holds the merged protocol card (``"protocol"``), ``"value"``,
        ``"confidence"``, ``"n_subjects"`` and ``"warning"``.
    """
    import pandas as pd
    from scipy import stats

    if value not in ("exact", "sampled"):
        raise ToolkitError(f"'value' is {value!r}; use 'exact' or 'sampled'.")
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
        raise ToolkitError(f"'confidence' must be a number strictly between 0 and 1, got {confidence!r}.")
    if not isinstance(results, Mapping) or not results:
        raise ToolkitError("'results' must be a non-empty mapping {subject: RetrievalResult}.")
    subjects = list(results)
    for subject in subjects:
        _check_result(results[subject], f"results[{subject!r}]")
        if subject not in results[subject].protocol.subjects:
            raise ToolkitError(
                f"results[{subject!r}] has a protocol card for subjects {results[subject].protocol.subjects}; "
                "key each result by the subject it was evaluated on."
            )
    first = subjects[0]
    reference = results[first]
    for subject in subjects[1:]:
        _check_same_protocol(reference, first, results[subject], subject)

    rows = {subject: _metric_values(results[subject], value) for subject in subjects}
    frame = pd.DataFrame.from_dict(rows, orient="index")
    n = len(subjects)
    mean = frame.mean(axis=0)
    std = frame.std(axis=0, ddof=1) if n > 1 else frame.mean(axis=0) * np.nan
    if n > 1:
        half = stats.t.ppf(0.5 + confidence / 2.0, n - 1) * std / math.sqrt(n)
        low, high = mean - half, mean + half
    else:
        low = high = mean * np.nan
    stats_frame = pd.DataFrame([mean, std, low, high], index=list(_SUMMARY_STATS))
    table = pd.concat([frame, stats_frame])
    table.index.name = "subject"

    merged = _merged_card([results[s].protocol for s in subjects])
    table.attrs.update(
        {
            "protocol": merged.to_dict(),
            "value": value,
            "confidence": float(confidence),
            "n_subjects": n,
            "warning": merged.warning,
        }
    )
    return table


def summary_to_dict(summary) -> dict[str, Any]:
    """JSON-serialisable form of :func:`summarize_subjects` output (NaN becomes ``None``)."""
    _check_summary(summary)
    subjects = [s for s in summary.index if s not in _SUMMARY_STATS]

    def row(name: str) -> dict[str, float | None]:
        return {col: _json_float(summary.at[name, col]) for col in summary.columns}

    return {
        "protocol": summary.attrs["protocol"],
        "warning": summary.attrs.get("warning"),
        "value": summary.attrs["value"],
        "confidence": summary.attrs["confidence"],
        "n_subjects": len(subjects),
        "subjects": {str(s): row(s) for s in subjects},
        "mean": row("mean"),
        "std": row("std"),
        "ci": {
            col: [_json_float(summary.at["ci_low", col]), _json_float(summary.at["ci_high", col])]
            for col in summary.columns
        },
    }


def render_summary(summary, *, fmt: str = "markdown") -> str:
    """The merged protocol card and the per-subject table with a ``mean ± std`` row and a CI row.

    Parameters
    ----------
    summary : pandas.DataFrame
        Output of :func:`summarize_subjects`.
    fmt : str
        ``"markdown"`` or ``"text"``.

    Returns
    -------
    str
        Accuracies in percent (two decimals), ranks as ranks.
    """
    _check_summary(summary)
    _check_fmt(fmt)
    card = ProtocolCard.from_dict(summary.attrs["protocol"], source="the summary's protocol card")
    subjects = [s for s in summary.index if s not in _SUMMARY_STATS]
    columns = list(summary.columns)

    def cell(col: str, val: float) -> str:
        if isinstance(val, float) and math.isnan(val):
            return "–"
        return f"{val:.1f}" if col in _RANK_COLUMNS else f"{100 * val:.2f}"

    header = ["Subject", *columns]
    rows = [[str(s), *(cell(c, summary.at[s, c]) for c in columns)] for s in subjects]
    rows.append(
        ["mean ± std", *(f"{cell(c, summary.at['mean', c])} ± {cell(c, summary.at['std', c])}" for c in columns)]
    )
    level = f"{round(summary.attrs['confidence'] * 100):d}%"
    rows.append(
        [f"{level} CI (t)", *(f"[{cell(c, summary.at['ci_low', c])}, {cell(c, summary.at['ci_high', c])}]"
                              for c in columns)]
    )
    title = (
        f"Zero-shot {card.task} over {len(subjects)} subject(s); {summary.attrs['value']} k-way values; "
        "accuracies in %, std over subjects (ddof=1)."
    )
    card_block = card.to_markdown() if fmt == "markdown" else card.to_text()
    return "\n".join([_title(title, fmt), "", card_block, "", _format_table(header, rows, fmt)])


# ================================================================================================= helpers
def _metric_values(result: RetrievalResult, value: str) -> dict[str, float]:
    out = {item.label: (item.exact if value == "exact" else item.sampled_mean) for item in result.kway}
    out.update({item.label: item.value for item in result.full_gallery})
    out["MRR"] = result.mrr
    out["median rank"] = result.median_rank
    out["mean rank"] = result.mean_rank
    return out


def _check_same_protocol(ref: RetrievalResult, ref_name: str, other: RetrievalResult, name: str) -> None:
    a, b = ref.protocol.to_dict(), other.protocol.to_dict()
    for field in a:
        if field in _PER_SUBJECT_FIELDS:
            continue
        if a[field] != b[field]:
            raise ToolkitError(
                f"The results for {ref_name!r} and {name!r} were made under different protocols ({field}: "
                f"{a[field]!r} versus {b[field]!r}); summarise only results of one protocol."
            )
    labels_a = [item.label for item in ref.kway] + [item.label for item in ref.full_gallery]
    labels_b = [item.label for item in other.kway] + [item.label for item in other.full_gallery]
    if labels_a != labels_b:
        raise ToolkitError(
            f"The results for {ref_name!r} and {name!r} report different metrics ({labels_a} versus {labels_b}); "
            "evaluate every subject with the same ks and top."
        )


def _merged_card(cards: Sequence[ProtocolCard]) -> ProtocolCard:
    subjects: list[str] = []
    for card in cards:
        subjects += [s for s in card.subjects if s not in subjects]
    hashes = list(dict.fromkeys(card.config_hash for card in cards))
    seeds = list(dict.fromkeys(card.training_seed for card in cards))
    notes = list(dict.fromkeys(card.notes for card in cards if card.notes))
    if len(seeds) > 1:
        notes.append("training seeds per subject: " + ", ".join(
            f"{'/'.join(card.subjects)}={card.training_seed}" for card in cards))
    return cards[0].replace(
        subjects=tuple(subjects),
        config_hash=", ".join(hashes),
        training_seed=seeds[0] if len(seeds) == 1 else None,
        notes="; ".join(notes),
    )


def _check_result(result: Any, name: str) -> None:
    if not isinstance(result, RetrievalResult):
        raise ToolkitError(
            f"'{name}' must be a RetrievalResult (from evaluate_retrieval or RetrievalResult.from_dict), "
            f"got {type(result).__name__}."
        )


def _check_summary(summary: Any) -> None:
    attrs = getattr(summary, "attrs", None)
    if not isinstance(attrs, dict) or "protocol" not in attrs or "value" not in attrs:
        raise ToolkitError("'summary' must be the DataFrame returned by summarize_subjects (with its attrs).")


def _check_fmt(fmt: str) -> None:
    if fmt not in ("markdown", "text"):
        raise ToolkitError(f"'fmt' is {fmt!r}; use 'markdown' or 'text'.")


def _pct(value: float) -> str:
    return f"{100 * value:.2f}"


def _json_float(value: Any) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value


def _title(text: str, fmt: str) -> str:
    return f"**{text}**" if fmt == "markdown" else text


def _format_table(header: list[str], rows: list[list[str]], fmt: str) -> str:
    # Hand-written (a dozen lines) rather than DataFrame.to_markdown, which needs the undeclared `tabulate`.
    if fmt == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(f"{h:<{w}}" for h, w in zip(header, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(f"{c:<{w}}" for c, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)


__all__ = ["render_result", "render_summary", "result_table", "summarize_subjects", "summary_to_dict"]
