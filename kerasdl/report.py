"""Reports of a pipeline run: a markdown table, a JSON file and plots."""

import json

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
        extra: dict or None. More fields for the JSON.

    Returns:
        ``(markdown_path, json_path)``.
    """
    import os

    md = [f"# {title}", ""]
    md += [f"- {line}" for line in summary or []]
    md += ["", markdown_table(rows), ""]
    md += [f"![{caption}]({name})" for caption, name in images]
    md_path = os.path.join(out, "report.md")
    json_path = os.path.join(out, "report.json")
    with atomic_path(md_path) as tmp:
        with open(tmp, "w") as f:
            f.write("\n".join(md) + "\n")
    with atomic_path(json_path) as tmp:
        with open(tmp, "w") as f:
            json.dump({"title": title, "summary": summary or [],
                       "rows": rows, **(extra or {})}, f, indent=1)
    return md_path, json_path


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
