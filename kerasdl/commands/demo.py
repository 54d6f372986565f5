"""``kerasdl demo``: the main job on the bundled sample, as a table."""

from kerasdl import commands
from kerasdl.commands import print_json


def add_parser(sub):
    p = sub.add_parser(
        "demo", help="train the baselines on the bundled sample",
        description="Train kerasdl's baselines on the bundled Fashion-MNIST "
                    "sample and print a table of parameters, validation "
                    "scores and seconds. Finishes in minutes on a CPU.",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--quick", action="store_true",
                   help="fewer examples and epochs (a smoke test)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON line per row instead of the table")
    p.set_defaults(func=run)
    return p


def run(args):
    commands.seed(args.seed)

    import keras

    from kerasdl.demo import format_table
    from kerasdl.demo import run_demo

    if not args.json:
        with commands.printing():
            print(f"kerasdl demo on Keras {keras.__version__}, backend "
                  f"{keras.backend.backend()}", flush=True)
    rows = run_demo(seed=args.seed, quick=args.quick)
    if args.json:
        for row in rows:
            print_json(row)
    else:
        with commands.printing():
            print(format_table(rows))
    return 0
