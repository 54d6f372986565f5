"""The course's State Farm pipeline on the real images, as one script.

    python recipes/statefarm.py --data ../shared/data/statefarm-80x60 --out statefarm-out

Driver split (5 whole drivers held out), BN-first linear model on a sample
(low rate first), conv_bn without and with augmentation, a convolutional
base whose features are computed once, dense heads on them with augmented
passes, pseudo-labels (a quarter of each batch) and clipped predictions.
The report (markdown, JSON, PNG plots) lands in --out. Copy and change the
steps in kerasdl/statefarm.py to try your own.
"""

import argparse

import kerasdl.report
from kerasdl.statefarm import run_statefarm


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True,
                        help="folder with driver_imgs_list.csv and train/")
    parser.add_argument("--out", default="statefarm-out")
    parser.add_argument("--base", choices=("scratch", "vgg16"),
                        default="scratch")
    parser.add_argument("--weights", default=None,
                        help="VGG16 weights file for --base vgg16")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    report = run_statefarm(args.data, args.out, base=args.base,
                           weights=args.weights, seed=args.seed,
                           log=lambda row: print(row["step"],
                                                 row["val_accuracy"],
                                                 flush=True))
    print("\n".join(report["summary"]))
    print(kerasdl.report.markdown_table(report["rows"]))


if __name__ == "__main__":
    main()
