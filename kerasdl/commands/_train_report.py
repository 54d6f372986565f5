"""The report of ``kerasdl train``: the per-epoch table (text and
markdown), ``report.md`` and ``report.json``, and the curves plot."""

import json
import os

COLUMNS = (("epoch", "epoch", "{}"), ("phase", "phase", "{}"),
           ("train_loss", "train loss", "{:.4f}"),
           ("train_accuracy", "train acc", "{:.4f}"),
           ("valid_loss", "valid loss", "{:.4f}"),
           ("valid_accuracy", "valid acc", "{:.4f}"),
           ("seconds", "seconds", "{:.1f}"))


def summary_table(rows):
    """The per-epoch rows as a fixed-width text table."""
    cells = [[title for _, title, _ in COLUMNS]]
    for row in rows:
        cells.append([_fmt(fmt, row.get(key)) for key, _, fmt in COLUMNS])
    widths = [max(len(r[j]) for r in cells) for j in range(len(COLUMNS))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths))
                     for r in cells)


def write_report(out, result, plots):
    """Writes ``report.md`` and ``report.json`` (complete or absent)."""
    from kerasdl._csv import write_bytes
    from kerasdl.report import json_ready

    data, model, lr = result["data"], result["model"], result["lr"]
    final, training = result["final"], result["training"]
    skipped = f"; {data['skipped']} bad file(s) skipped" if \
        data["skipped"] else ""
    lines = [f"# kerasdl train: {data['path']}", "",
             f"- data: {data['train']} training and {data['valid']} "
             f"validation images ({data['split']}; layout "
             f"{data['layout']}){skipped}",
             f"- classes ({len(data['classes'])}): "
             f"{', '.join(data['classes'])}",
             f"- model: {model['description']}; input "
             f"{model['input_size'][0]}x{model['input_size'][1]}; "
             f"{model['parameters']:,} parameters",
             f"- backbone: {model['why']}",
             f"- learning rate: {lr['value']:.2e} ({lr['source']})" + (
                 "; suggestions " + ", ".join(
                     f"{k} {v:.2e}" for k, v in lr["suggestions"].items())
                 if lr.get("suggestions") else ""),
             f"- training: {training['method']}; batch size "
             f"{training['batch_size']}, seed {training['seed']}, backend "
             f"{training['backend']}, {result['seconds']:.0f} s in all",
             "", "| " + " | ".join(t for _, t, _ in COLUMNS) + " |",
             "|" + "---|" * len(COLUMNS)]
    for row in result["epochs"]:
        lines.append("| " + " | ".join(_fmt(fmt, row.get(key))
                                       for key, _, fmt in COLUMNS) + " |")
    confused = "; ".join(f"{a} taken for {b}: {n}" for a, b, n in
                         final["most_confused"]) or "none"
    per_label = " (per label, threshold 0.5)" if data["task"] == \
        "multi_label" else ""
    lines += ["", f"Validation accuracy{per_label} "
                  f"**{final['valid_accuracy']:.4f}**, "
                  f"with test-time augmentation (mirror images, beta 0.25) "
                  f"{final['valid_accuracy_tta']:.4f}; validation loss "
                  f"{final['valid_loss']:.4f}.", "",
              f"Most confused: {confused}.", "",
              f"Model: `{os.path.basename(result['files']['model'])}` "
              f"(class names inside; `kerasdl predict "
              f"{result['files']['model']} PHOTOS...`).", ""]
    for caption, name in plots:
        if name in result["files"]:
            lines += [f"![{caption}]({name})", ""]
    record, bad = json_ready(result)
    if bad:
        record["not_finite"] = bad
    write_bytes(os.path.join(out, "report.md"),
                "\n".join(lines).encode("utf-8"))
    write_bytes(os.path.join(out, "report.json"), json.dumps(
        record, indent=1, allow_nan=False).encode("utf-8"))


def plot_curves(rows, path):
    """Loss and accuracy per epoch, training and validation, as a PNG."""
    from kerasdl import _plot

    fig, axes = _plot.figure(1, 2, figsize=(10, 4))
    epochs = [r["epoch"] for r in rows]
    for ax, what in zip(axes[0], ("loss", "accuracy")):
        ax.plot(epochs, [r[f"train_{what}"] for r in rows], marker="o",
                label="training")
        ax.plot(epochs, [r[f"valid_{what}"] for r in rows], marker="o",
                label="validation")
        ax.set(xlabel="epoch", ylabel=what)
        ax.legend()
    fig.tight_layout()
    _plot.save(fig, path)


def _fmt(fmt, value):
    return "" if value is None else fmt.format(value)
