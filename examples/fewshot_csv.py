"""Few-shot landmarks on your own keypoint CSV (or JSON / COCO): fit on N labelled images, score the rest.

The CSV needs a header ``image,NAME_x,NAME_y,...`` (see docs/datasets.md); paths are relative to the CSV.

    python examples/fewshot_csv.py --train my_labels.csv [--test my_test.csv] --shots 10 [--eyes 0,1]

Without ``--test``, the images not drawn for training are the test set. Defaults: the bundled faces.
"""

from __future__ import annotations

import argparse

import numpy as np

import hyperland
from hyperland.assets import faces_dir
from hyperland.data import draw, load_samples, read_keypoints
from hyperland.head import LandmarkHead
from hyperland.metrics import nme, pck

FACES = faces_dir()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", default=str(FACES / "train.csv"), help="keypoint CSV/JSON of the labelled pool")
    parser.add_argument("--test", default=str(FACES / "test.csv"), help="keypoint CSV/JSON to score (optional)")
    parser.add_argument("--shots", type=int, default=10, help="labelled images to fit on")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eyes", default="0,1", help="two landmark indices normalising the NME")
    parser.add_argument("--model", default=hyperland.DEFAULT_MODEL)
    parser.add_argument("--method", default="ridge", choices=["ridge", "regressor", "prototype"])
    parser.add_argument("--steps", type=int, default=100, help="training steps of the regressor method")
    parser.add_argument("--size", type=int, default=None, help="resize every crop to SIZE x SIZE first")
    args = parser.parse_args()

    pool = read_keypoints(args.train)
    train = draw(pool, args.shots, seed=args.seed)  # reproducible draw; errors if the pool is too small
    test = read_keypoints(args.test) if args.test else [s for s in pool if s not in train]
    train_images, train_points = load_samples(train, size=args.size)
    test_images, test_points = load_samples(test, size=args.size)

    model = hyperland.load(args.model)
    extra = {"steps": args.steps} if args.method == "regressor" else {}  # the only method that reads it
    head = LandmarkHead(n_landmarks=train_points.shape[1], method=args.method, random_state=args.seed,
                        **extra).fit(model, train_images, train_points)
    pred = head.predict(test_images)
    eyes = tuple(int(v) for v in args.eyes.split(","))
    # the mean-shape baseline: a head that does not beat it has not learned landmarks
    rel = np.nanmean([(p + 0.5) / (im.width, im.height) for p, im in zip(train_points, train_images)], axis=0)
    mean_shape = np.stack([rel * (im.width, im.height) - 0.5 for im in test_images])
    print(f"fit on {len(train)} images, scored on {len(test)}")
    print(f"NME        {100 * nme(pred, test_points, eyes=eyes):.2f} %  (mean shape "
          f"{100 * nme(mean_shape, test_points, eyes=eyes):.2f} %)")
    print(f"PCK@0.1    {100 * pck(pred, test_points, alpha=0.1):.1f} %")


if __name__ == "__main__":
    main()
