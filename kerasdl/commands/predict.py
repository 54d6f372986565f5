"""``kerasdl predict MODEL PATH...``: one line per image with its label."""

import os

from kerasdl import commands


def add_parser(sub):
    p = sub.add_parser(
        "predict", help="predict image files with a saved model",
        description="Load a model saved by `kerasdl train` (or any .keras "
                    "file with class names, see kerasdl.with_class_names) "
                    "and print one line per image: path, label and "
                    "probability, separated by tabs. Folders are read with "
                    "their sub-folders. Multi-label models print the "
                    "labels above --threshold and their probabilities "
                    "(joined by ';'); regression models the values.",
    )
    p.add_argument("model", metavar="MODEL", help="a .keras file")
    p.add_argument("paths", metavar="PATH", nargs="+",
                   help="image files or folders of images")
    p.add_argument("--tta", action="store_true",
                   help="test-time augmentation: mix in the prediction of "
                        "the mirror image (kerasdl.tta)")
    p.add_argument("--batch-size", type=int, default=64, metavar="N",
                   help="images per batch (default 64)")
    p.add_argument("--threshold", type=float, default=0.5,
                   help="multi-label: a label is given above it "
                        "(default 0.5)")
    p.add_argument("--skip-bad", action="store_true",
                   help="leave out files that are not readable images "
                        "(each named on stderr) instead of stopping")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true",
                     help="one JSON line per image instead of text")
    out.add_argument("--csv", metavar="FILE", default=None,
                     help="write the whole table (one column per class) to "
                          "FILE instead of printing lines")
    p.set_defaults(func=run)
    return p


def run(args):
    commands.check_flags(integers={"--batch-size": (args.batch_size, 1)})
    if not 0 < args.threshold < 1:
        raise ValueError(f"--threshold must be a number in (0, 1). "
                         f"Received: --threshold {args.threshold}.")
    commands.input_file(args.model, "MODEL")
    if args.csv is not None:
        commands.output_path(args.csv, "--csv")
    from kerasdl.predict import list_files

    list_files(args.paths)  # missing paths, before the model is loaded
    model = load(args.model)
    from kerasdl.predict import predict_files

    frame = predict_files(model, args.paths, batch_size=args.batch_size,
                          tta=args.tta, threshold=args.threshold,
                          on_error="skip" if args.skip_bad else "raise")
    import sys

    for path, reason in frame.attrs.get("skipped", []):
        print(f"kerasdl predict: skipped {path}: {reason}", file=sys.stderr)
    if args.csv is not None:
        with commands.writing(args.csv, "--csv"):
            _write_csv(frame, args.csv)
        with commands.printing():
            print(f"{len(frame)} prediction(s) written to {args.csv}")
        return 0
    names = _class_columns(frame)
    task = frame.attrs["task"]
    with commands.printing():
        for row in frame.itertuples(index=False, name=None):
            record = dict(zip(frame.columns, row))
            if args.json:
                commands.print_json(_json_row(record, names, task))
            else:
                print(_text_row(record, names, task, args.threshold))
    return 0


def load(path):
    """Loads a ``.keras`` model with ``safe_mode=True``.

    Raises:
        ValueError: the file is not a Keras model (one line).
    """
    import keras

    import kerasdl  # noqa: F401  (registers kerasdl's layers)

    try:
        return keras.saving.load_model(path, safe_mode=True)
    except (ValueError, OSError, KeyError, TypeError) as e:
        first = " ".join(str(e).split())[:300]
        raise ValueError(
            f"MODEL {path!r} could not be loaded as a Keras model ({first}). "
            f"Pass a .keras file saved by model.save, such as the "
            f"model.keras that `kerasdl train` writes.") from None


def _class_columns(frame):
    fixed = {"path", "label", "probability"}
    return [c for c in frame.columns if c not in fixed]


def _text_row(record, names, task, threshold):
    path = record["path"]
    if task == "single_label":
        return f"{path}\t{record['label']}\t{record['probability']:.4f}"
    if task == "multi_label":
        given = [n for n in names if record[n] > threshold]
        probs = ";".join(f"{record[n]:.4f}" for n in given)
        return f"{path}\t{record['label']}\t{probs}"
    return "\t".join([path] + [f"{record[n]:.6g}" for n in names])


def _json_row(record, names, task):
    out = {"path": record["path"]}
    values = {n: float(record[n]) for n in names}
    if task == "single_label":
        out.update(label=record["label"],
                   probability=float(record["probability"]),
                   probabilities=values)
    elif task == "multi_label":
        out.update(labels=[v for v in record["label"].split(";") if v],
                   probabilities=values)
    else:
        out["values"] = values
    return out


def _write_csv(frame, path):
    from kerasdl import _csv

    header = [str(c) for c in frame.columns]
    rows = [[_cell(v) for v in row]
            for row in frame.itertuples(index=False, name=None)]
    _csv.write_csv(os.fspath(path), header, rows)


def _cell(value):
    if isinstance(value, str):
        return value
    return repr(float(value))
