"""Any timm backbone: hypercolumns from ``timm:ARCH`` (random weights offline; add a tag such as
``timm:resnet50.a1_in1k`` to download pretrained ones), then the same head.

    python examples/timm_backbone.py [--arch timm:mobilenetv3_small_100] [--n 8]
"""

from __future__ import annotations

import argparse

import hyperland
from hyperland.assets import faces_dir
from hyperland.data import load_samples, read_csv
from hyperland.head import LandmarkHead
from hyperland.metrics import nme

FACES = faces_dir()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="timm:mobilenetv3_small_100")
    parser.add_argument("--n", type=int, default=8, help="training and test faces each")
    args = parser.parse_args()

    model = hyperland.load(args.arch)
    print(f"{model.name}: layers {model.layers}, {model.num_channels()} hypercolumn channels")
    for info in model.feature_info:
        print(f"  feature {info['index']}: {info['channels']} channels, stride {info['reduction']}")
    train_images, train_points = load_samples(read_csv(FACES / "train.csv")[:args.n])
    test_images, test_points = load_samples(read_csv(FACES / "test.csv")[:args.n])
    head = LandmarkHead(5, augment=False, random_state=0).fit(model, train_images, train_points)
    print(f"NME {100 * nme(head.predict(test_images), test_points, eyes=(0, 1)):.2f} % on {args.n} faces")


if __name__ == "__main__":
    main()
