"""``kerasdl summary NAME``: model.summary and the three parameter counts."""

from kerasdl.commands import parse_shape
from kerasdl.commands import print_json
from kerasdl import registry


def add_parser(sub):
    p = sub.add_parser(
        "summary", help="print a model's summary and parameter counts",
        description="Build a model by name (random weights) and print "
                    "model.summary() and its total, trainable and "
                    "non-trainable parameter counts.",
    )
    p.add_argument("name", metavar="NAME",
                   help=f"one of: {', '.join(registry.names())}")
    p.add_argument("--input-shape", metavar="H,W,C",
                   help="input shape, channels last (default: the "
                        "model's own, e.g. 224,224,3)")
    p.add_argument("--classes", type=int, metavar="N",
                   help="number of classes (default 1000 for VGG, else 10)")
    p.add_argument("--head", type=int, metavar="N",
                   help="replace the last layer by a new N-class Dense and "
                        "freeze the rest (the course's ft)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON line instead of the summary")
    p.set_defaults(func=run)


def run(args):
    from kerasdl.cli import UsageError

    try:
        builder, shape, classes = registry.lookup(args.name)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if args.input_shape:
        shape = parse_shape(args.input_shape)
    if args.classes is not None:
        classes = args.classes
    if args.classes is not None and args.classes < 2:
        raise UsageError(f"--classes must be at least 2; got {args.classes}")
    if args.head is not None and args.head < 2:
        raise UsageError(f"--head must be at least 2; got {args.head}")

    from kerasdl.models import param_counts
    from kerasdl.models import replace_head

    model = builder(shape, classes)
    if args.head is not None:
        model = replace_head(model, args.head, freeze=True)
    total, trainable, non_trainable = param_counts(model)
    if args.json:
        print_json({
            "model": args.name, "input_shape": list(shape),
            "classes": classes, "head": args.head, "total": total,
            "trainable": trainable, "non_trainable": non_trainable,
        })
    else:
        model.summary()
        print(f"total: {total:,}  trainable: {trainable:,}  "
              f"non-trainable: {non_trainable:,}")
    return 0
