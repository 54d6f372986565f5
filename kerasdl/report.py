"""Reports of a pipeline run: a markdown table, a JSON file and plots."""

import json
import math
import os

from kerasdl._files import atomic_path

COLUMNS = (("step", "step"), ("model", "model"),
           ("val_accuracy", "val accuracy"), ("val_log_loss", "val log loss"),
           ("seconds", "seconds"), ("note", "note"))


def markdown_table(rows):
    """Rows (dicts) as a markdown table with the report's columns.

    Example:

    >>> print(markdown_table([{"step": "a", "val_accuracy": 0.5}]))
    | step | model | val accuracy | val log loss | seconds | note |
    |---|---|---|---|---|---|
    | a |  | 0.5 |  |  |  |
    """
    head = "| " + " | ".join(title for _, title in COLUMNS) + " |"
    lines = [head, "|" + "---|" * len(COLUMNS)]
    for row in rows:
        cells = ["" if row.get(k) is None else str(row[k])
                 for k, _ in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(out, title, rows, *, summary=None, images=(), extra=None):
    """Writes ``report.md`` and ``report.json`` into ``out``.

    Args:
        out: str. The folder.
        title: str. First heading of the markdown.
        rows: list of dicts (one per step).
        summary: list of str or None. Lines shown above the table.
        images: list of (caption, file name) of PNGs already in ``out``.
        extra: dict or None. More fields for the JSON. NaN and infinite
            numbers are written as ``null`` and their keys listed under
            ``"not_finite"``, so that the file is valid JSON.

    Returns:
        ``(markdown_path, json_path)``.
    """
    md = [f"# {title}", ""]
    md += [f"- {line}" for line in summary or []]
    md += ["", markdown_table(rows), ""]
    md += [f"![{caption}]({name})" for caption, name in images]
    md_path = os.path.join(out, "report.md")
    json_path = os.path.join(out, "report.json")
    record, bad = json_ready({"title": title, "summary": summary or [],
                              "rows": rows, **(extra or {})})
    if bad:
        record["not_finite"] = bad
    _write_text(md_path, "\n".join(md) + "\n")
    _write_text(json_path, json.dumps(record, indent=1, allow_nan=False))
    return md_path, json_path


def json_ready(obj):
    """Replaces NaN and infinite floats by ``None`` for valid JSON.

    NumPy scalars and arrays become Python numbers and lists.

    Example:

    >>> json_ready({"rmse": float("nan"), "rows": [{"loss": 1.5}]})
    ({'rmse': None, 'rows': [{'loss': 1.5}]}, ['rmse'])

    Args:
        obj: dicts, lists, tuples and scalars.

    Returns:
        ``(copy, keys)``: the cleaned copy and the keys (dotted, with
        ``[i]`` for list items) whose numbers were not finite.
    """
    bad = []
    return _clean(obj, "", bad), bad


def _clean(obj, key, bad):
    if isinstance(obj, dict):
        return {k: _clean(v, f"{key}.{k}" if key else str(k), bad)
                for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v, f"{key}[{i}]", bad) for i, v in enumerate(obj)]
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):
        return _clean(obj.tolist(), key, bad)
    if isinstance(obj, float) and not math.isfinite(obj):
        bad.append(key)
        return None
    return obj


def _write_text(path, text):
    """Writes ``text`` so that ``path`` is complete or absent."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())


def plot_curves(curves, ylabel="validation accuracy"):
    """One line per named curve (values per epoch); returns the Figure."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, values in curves.items():
        ax.plot(range(1, len(values) + 1), values, marker="o", label=name)
    ax.set(xlabel="epoch", ylabel=ylabel)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
