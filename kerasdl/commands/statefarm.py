"""``kerasdl statefarm``: the course's State Farm pipeline on real images."""

from kerasdl import commands
from kerasdl.commands import print_json
from kerasdl.registry import BACKBONES


def add_parser(sub):
    p = sub.add_parser(
        "statefarm", help="run the State Farm pipeline and write a report",
        description="Driver split, BN-first linear model, conv_bn with and "
                    "without augmentation, a convolutional base with "
                    "features computed once, dense heads, augmented passes, "
                    "pseudo-labels and clipped predictions, with each "
                    "step's driver-split validation accuracy.",
    )
    p.add_argument("--data", required=True, metavar="DIR",
                   help="folder with driver_imgs_list.csv and train/c0..c9")
    p.add_argument("--out", default="statefarm-out", metavar="DIR",
                   help="folder for the report, plots and features "
                        "(default: statefarm-out)")
    p.add_argument("--size", default="60x80", metavar="HxW",
                   help="image size fed to the models (default 60x80)")
    p.add_argument("--val-drivers", type=int, default=5, metavar="N",
                   help="whole drivers held out for validation (default 5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--base", choices=("scratch", *BACKBONES),
                   default="scratch", metavar="BASE",
                   help="convolutional base: scratch, trained here on the "
                        "training drivers (default), or a pretrained "
                        f"backbone: {', '.join(BACKBONES)}")
    p.add_argument("--weights", metavar="PATH",
                   help="weights file of the backbone --base (default: "
                        "ImageNet, downloaded once)")
    p.add_argument("--quick", action="store_true",
                   help="at most 600 training and 300 validation images, "
                        "one epoch per step")
    p.add_argument("--skip-bad", action="store_true",
                   help="leave out images that cannot be read (listed in "
                        "the report) instead of stopping at the first")
    p.add_argument("--json", action="store_true",
                   help="print the report as one JSON line")
    p.set_defaults(func=run)
    return p


def _progress(row):
    acc = row.get("val_accuracy")
    acc = "" if acc is None else f"  val accuracy {acc}"
    print(f"[{row['seconds']:>6.1f} s] {row['step']}{acc}", flush=True)


def _size(text):
    from kerasdl.cli import UsageError

    parts = text.lower().split("x")
    if len(parts) != 2 or not all(s.isdigit() and int(s) > 0 for s in parts):
        raise UsageError(f"--size must be HxW such as 60x80; got "
                         f"{text!r}")
    return tuple(int(s) for s in parts)


def _check(args):
    """Checks every flag and file; returns the ``Pipeline`` arguments."""
    from kerasdl import _validate
    from kerasdl.cli import UsageError

    size = _size(args.size)
    if args.weights is not None and args.base == "scratch":
        raise UsageError("--weights goes with --base vgg16 or another "
                         "pretrained backbone, not scratch")
    if args.weights is not None:
        commands.input_file(args.weights, "--weights")
    _validate.integer(args.val_drivers, "--val-drivers", low=1)
    commands.seed(args.seed)
    commands.output_folder(args.out, "--out")
    return dict(size=size, val_drivers=args.val_drivers, seed=args.seed,
                base=args.base, weights=args.weights, quick=args.quick,
                on_error="skip" if args.skip_bad else "raise")


def run(args):
    options = _check(args)

    from kerasdl.statefarm import run_statefarm

    with commands.writing(args.out, "--out"):
        report = run_statefarm(args.data, args.out, verbose=0,
                               log=None if args.json else _progress,
                               **options)
    if args.json:
        print_json(report)
    else:
        from kerasdl.report import markdown_table

        with commands.printing():
            print("\n".join(report["summary"]))
            print(markdown_table(report["rows"]))
            print(f"report: {args.out}/report.md")
    return 0
