"""Quick start: fit a 5-landmark head on 20 bundled faces, predict 20 others, save an overlay.

    python examples/quickstart.py [--model random-r18] [--augment 8] [--out quickstart.png]
"""

from __future__ import annotations

import argparse

import hyperland
from hyperland.assets import faces_dir
from hyperland.data import load_samples, read_csv
from hyperland.head import LandmarkHead
from hyperland.metrics import nme
from hyperland.viz import overlay_grid, save_png

FACES = faces_dir()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=hyperland.DEFAULT_MODEL)
    parser.add_argument("--augment", type=int, default=8, help="warped copies of every training face")
    parser.add_argument("--out", default="quickstart.png")
    args = parser.parse_args()

    model = hyperland.load(args.model)  # a frozen backbone that turns images into hypercolumns
    train_images, train_points = load_samples(read_csv(FACES / "train.csv"))  # PIL images, (N, 5, 2) pixels
    test_images, test_points = load_samples(read_csv(FACES / "test.csv"))

    head = LandmarkHead(n_landmarks=5, n_augment=args.augment, random_state=0)  # the default (ridge) head
    head.fit(model, train_images, train_points)
    predicted = head.predict(test_images)  # (20, 5, 2) (x, y) in each image's pixels

    print(f"NME {100 * nme(predicted, test_points, eyes=(0, 1)):.2f} % on {len(test_images)} faces")
    print("overlay:", save_png(overlay_grid(test_images, predicted, test_points, cols=5), args.out))


if __name__ == "__main__":
    main()
