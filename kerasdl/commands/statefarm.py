"""``kerasdl statefarm``: the course's State Farm pipeline on real images."""

from kerasdl.commands import print_json


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
    p.add_argument("--base", choices=("scratch", "vgg16"), default="scratch",
                   help="convolutional base: trained here on the training "
                        "drivers (default) or VGG16")
    p.add_argument("--weights", metavar="PATH",
                   help="VGG16 weights file (default: ImageNet, online)")
    p.add_argument("--quick", action="store_true",
                   help="a few hundred images, one epoch per step")
    p.add_argument("--json", action="store_true",
                   help="print the report as one JSON line")
    p.set_defaults(func=run)


def _progress(row):
    acc = row.get("val_accuracy")
    acc = "" if acc is None else f"  val accuracy {acc}"
    print(f"[{row['seconds']:>6.1f} s] {row['step']}{acc}", flush=True)


def run(args):
    from kerasdl.cli import UsageError

    parts = args.size.lower().split("x")
    if len(parts) != 2 or not all(s.isdigit() and int(s) > 0 for s in parts):
        raise UsageError(f"--size must be HxW such as 60x80; got "
                         f"{args.size!r}")
    if args.weights and args.base != "vgg16":
        raise UsageError("--weights goes with --base vgg16")
    if args.val_drivers < 1:
        raise UsageError(f"--val-drivers must be at least 1; got "
                         f"{args.val_drivers}")
    from kerasdl.statefarm import run_statefarm

    report = run_statefarm(args.data, args.out,
                           size=tuple(int(s) for s in parts),
                           val_drivers=args.val_drivers, seed=args.seed,
                           base=args.base, weights=args.weights,
                           quick=args.quick, verbose=0,
                           log=None if args.json else _progress)
    if args.json:
        print_json(report)
    else:
        from kerasdl.report import markdown_table

        print("\n".join(report["summary"]))
        print(markdown_table(report["rows"]))
        print(f"report: {args.out}/report.md")
    return 0
