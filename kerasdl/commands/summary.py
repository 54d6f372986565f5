"""``kerasdl summary NAME``: model.summary and the three parameter counts.

Every flag is checked, and the parameters counted without allocating
them, before the model is built: a size this machine cannot hold (such as
``--classes 1000000000000``) is refused in one line. The model shown is
built the same way, its weights never allocated (Keras' deferred
initialisation): the counts and the summary need only their shapes.

NAME is a builder of kerasdl or a pretrained backbone by name
(``resnet50``, ``convnext_tiny`` ...), built as keras.applications builds
it (the 1000-class ImageNet classifier, random weights) with kerasdl's
preprocessing layer inside.
"""

from kerasdl import _validate
from kerasdl import registry
from kerasdl.commands import check_memory
from kerasdl.commands import parse_shape
from kerasdl.commands import print_json
from kerasdl.commands import printing

#: Bytes per parameter of a float32 model.
PARAM_BYTES = 4


def add_parser(sub):
    p = sub.add_parser(
        "summary", help="print a model's summary and parameter counts",
        description="Build a model by name (random weights) and print "
                    "model.summary() and its total, trainable and "
                    "non-trainable parameter counts. The backbones "
                    "(resnet50, convnext_tiny ...) are built with their "
                    "ImageNet classifier, as keras.applications builds "
                    "them. For the recommenders (dot, dot_bias) the input "
                    "shape is USERS,ITEMS,FACTORS.",
    )
    p.add_argument("name", metavar="NAME",
                   help=f"one of: {', '.join(registry.names())}")
    p.add_argument("--input-shape", metavar="H,W,C",
                   help="input shape, channels last (default: the "
                        "model's own, e.g. 224,224,3)")
    p.add_argument("--classes", type=int, metavar="N",
                   help="number of classes (default 1000 for VGG and "
                        "the other backbones, else 10; image models only)")
    p.add_argument("--head", type=int, metavar="N",
                   help="replace the last layer by a new N-class Dense and "
                        "freeze the rest (the course's ft; image models "
                        "only)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON line instead of the summary")
    p.set_defaults(func=run)
    return p


def _plan(args):
    """Checks the flags; returns ``(builder, shape, classes)``."""
    from kerasdl.cli import UsageError

    try:
        builder, shape, classes = registry.lookup(args.name)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if registry.is_recommender(args.name):
        for flag, value in (("--classes", args.classes),
                            ("--head", args.head)):
            if value is not None:
                raise UsageError(
                    f"{flag} does not apply to {args.name}, a recommender "
                    f"(it predicts ratings, not classes); leave {flag} out")
    if args.input_shape:
        shape = parse_shape(args.input_shape)
    if args.classes is not None:
        classes = _validate.integer(args.classes, "--classes", low=2)
    if args.head is not None:
        _validate.integer(args.head, "--head", low=2)
    return builder, shape, classes


def _build(builder, shape, classes, head):
    model = builder(shape, classes)
    if head is not None:
        from kerasdl.models import replace_head

        model = replace_head(model, head, freeze=True)
    return model


def _check_size(args, builder, shape, classes):
    from kerasdl.cli import UsageError

    flags = " ".join(
        f"{flag} {value}" for flag, value in (
            ("--input-shape", args.input_shape), ("--classes", args.classes),
            ("--head", args.head)) if value is not None)
    name = f"{args.name}{' with ' + flags if flags else ''}"
    try:
        total = registry.count_params(
            lambda: _build(builder, shape, classes, args.head))
    except ValueError as e:
        keras_says = _keras_reason(str(e))
        if keras_says is None:
            raise
        raise UsageError(f"{name} cannot be built: {keras_says}; use a "
                         f"larger --input-shape") from None
    if registry.is_recommender(args.name):
        advice = "pass a smaller --input-shape USERS,ITEMS,FACTORS"
    else:
        advice = "choose fewer --classes, a smaller --head or a smaller " \
                 "--input-shape"
    check_memory(total * PARAM_BYTES, f"{name} ({total:,} parameters)",
                 advice)


def _keras_reason(message):
    """The reason in a Keras layer's error, or None for other errors."""
    head = "Exception encountered when calling "
    if head not in message:
        return None
    layer = message.split(head, 1)[1].split(".call()", 1)[0]
    rest = message.split(".call()", 1)[1].split("Arguments received")[0]
    reason = " ".join(rest.replace("\x1b[1m", "").replace(
        "\x1b[0m", "").split()).strip(" .")
    return f"its {layer} layer says: {reason}"


def run(args):
    builder, shape, classes = _plan(args)
    _check_size(args, builder, shape, classes)

    import keras

    from kerasdl.models import param_counts

    try:
        with keras.StatelessScope(initialize_variables=False):
            model = _build(builder, shape, classes, args.head)
            total, trainable, non_trainable = param_counts(model)
            if args.json:
                print_json({
                    "model": args.name, "input_shape": list(shape),
                    "classes": classes, "head": args.head, "total": total,
                    "trainable": trainable, "non_trainable": non_trainable,
                })
            else:
                with printing():
                    model.summary()
                    print(f"total: {total:,}  trainable: {trainable:,}  "
                          f"non-trainable: {non_trainable:,}", flush=True)
    finally:
        keras.backend.clear_session()  # the weights are never initialised
    return 0
