"""``kerasdl lr-find MODEL``: sweep the learning rate, print suggestions,
save the plot."""

import os

from kerasdl import registry
from kerasdl.commands import print_json

OPTIMIZERS = ("adam", "sgd", "adamw", "rmsprop")


def add_parser(sub):
    p = sub.add_parser(
        "lr-find", help="find a learning rate for a model on some data",
        description="Build a named model (random weights), run the "
                    "learning-rate finder on a data source, print fastai's "
                    "suggestions (valley, minimum, steep, slide) and save "
                    "the loss-against-rate plot as a PNG. The model is "
                    "restored afterwards; nothing else is written.",
    )
    p.add_argument("name", metavar="MODEL",
                   help=f"one of: {', '.join(registry.names())}")
    p.add_argument("--data", default="fashion", metavar="SOURCE",
                   help="'fashion' (the bundled Fashion-MNIST sample, the "
                        "default) or a photo folder: train/ and valid/ with "
                        "one subfolder per class (the sweep uses train/), "
                        "or one subfolder of images per class")
    p.add_argument("--image-size", default="60,80", metavar="H,W",
                   help="image size for a folder (default 60,80)")
    p.add_argument("--batch-size", type=int, default=64, metavar="N")
    p.add_argument("--num-it", type=int, default=100, metavar="N",
                   help="steps of the sweep (default 100)")
    p.add_argument("--start-lr", type=float, default=1e-7)
    p.add_argument("--end-lr", type=float, default=10.0)
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="adam")
    p.add_argument("--skip-bad", action="store_true",
                   help="skip unreadable, corrupt or tiny images (counted "
                        "in the output) instead of stopping at the first")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plot", default="lr_find.png", metavar="PATH",
                   help="where to write the plot (default lr_find.png)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON line instead of text")
    p.set_defaults(func=run)


def _image_size(text):
    from kerasdl.cli import UsageError

    try:
        h, w = (int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        raise UsageError(f"--image-size must be H,W such as 60,80; got "
                         f"{text!r}") from None
    if h < 1 or w < 1:
        raise UsageError(f"--image-size must be positive; got {text!r}")
    return h, w


def _data(args):
    """Returns ``(data, input_shape, n_classes, description)``."""
    from kerasdl.cli import UsageError

    if args.data == "fashion":
        from kerasdl.data.datasets import load_fashion_sample

        (x, y), _, names = load_fashion_sample()
        return (x.astype("float32"), y), x.shape[1:], len(names), \
            f"Fashion-MNIST sample ({len(x)} images)"
    if not os.path.isdir(args.data):
        raise UsageError(f"--data must be 'fashion' or an image folder; "
                         f"{args.data!r} is neither")
    from kerasdl.data.images import image_folder
    from kerasdl.data.layouts import images_from_folder

    h, w = _image_size(args.image_size)
    options = dict(image_size=(h, w), batch_size=args.batch_size,
                   on_error="skip" if args.skip_bad else "raise")
    try:
        if all(os.path.isdir(os.path.join(args.data, part))
               for part in ("train", "valid")):
            batches, _ = images_from_folder(args.data, seed=args.seed,
                                            **options)
        else:
            batches = image_folder(args.data, shuffle=True, seed=args.seed,
                                   **options)
    except ValueError as e:
        raise UsageError(" ".join(str(e).split()).replace(
            "on_error='skip'", "--skip-bad")) from None
    skipped = batches.report.n_skipped
    note = f", {skipped} skipped" if skipped else ""
    return batches, (h, w, 3), batches.num_classes, \
        f"{args.data} ({batches.n_images} images{note})"


def run(args):
    from kerasdl.cli import UsageError

    try:
        builder, _, _ = registry.lookup(args.name)
    except ValueError as e:
        raise UsageError(str(e)) from None
    from kerasdl.training._suggest import min_num_it
    from kerasdl.commands import output_path
    from kerasdl.commands import seed

    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1; got "
                         f"{args.batch_size}")
    if args.num_it < min_num_it():
        raise UsageError(f"--num-it must be at least {min_num_it()} (the "
                         f"suggestions need that many points); got "
                         f"{args.num_it}")
    if not 0 < args.start_lr < args.end_lr < float("inf"):
        raise UsageError(f"--start-lr and --end-lr must satisfy 0 < "
                         f"start < end; got {args.start_lr} and "
                         f"{args.end_lr}")
    seed(args.seed)
    output_path(args.plot, "--plot")
    data, shape, n_classes, description = _data(args)

    import keras

    from kerasdl.training.lr_finder import lr_find

    keras.utils.set_random_seed(args.seed)
    model = builder(tuple(shape), n_classes)
    optimizer = {"adam": keras.optimizers.Adam,
                 "sgd": lambda: keras.optimizers.SGD(momentum=0.9),
                 "adamw": keras.optimizers.AdamW,
                 "rmsprop": keras.optimizers.RMSprop}[args.optimizer]()
    model.compile(optimizer, "sparse_categorical_crossentropy")
    batch = {"batch_size": args.batch_size} if isinstance(data, tuple) \
        else {}
    result = lr_find(model, data, start_lr=args.start_lr,
                     end_lr=args.end_lr, num_it=args.num_it, seed=args.seed,
                     verbose=0 if args.json else 1, **batch)
    from kerasdl.commands import printing
    from kerasdl.commands import writing

    with writing(args.plot, "--plot"):
        result.save_plot(args.plot)
    with printing():
        if args.json:
            print_json({"model": args.name, "data": description,
                        "optimizer": args.optimizer,
                        "suggestions": result.suggestions,
                        "stop_reason": result.stop_reason,
                        "points": len(result.lrs), "plot": args.plot})
        else:
            print(f"{args.name} on {description}, {args.optimizer}: "
                  f"{len(result.lrs)} steps ({result.stop_reason})")
            for name, lr in result.suggestions.items():
                default = "  (fastai's default)" if name == "valley" else ""
                print(f"  {name:<8} {lr:.2e}{default}")
            print(f"plot: {args.plot}")
    return 0
