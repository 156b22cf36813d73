"""Train the reference 64-64-10 MLP on scikit-learn's digits data set (it ships with the package).

Writes, next to this file (or into ``--out``):

* ``weights.npz`` -- ``w1`` (64, 64), ``b1`` (64), ``w2`` (64, 10), ``b2`` (10): ``y = relu(x w1 + b1) w2 + b2``
  on raw pixel values 0..16;
* ``test.npz`` -- the held-out test split: ``x`` (n, 64) raw pixels, ``y`` the labels from the data set;
* ``all.npz`` -- all 1,797 images and labels (benchmarks).

Deterministic: a fixed split (``random_state=0``, 30 % test) and a fixed seed for the network.
Run: ``python examples/digits/train.py``.
"""
from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np


def train(out: Path, seed: int = 0) -> dict:
    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier

    digits = load_digits()
    x, y = digits.data.astype(float), digits.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)
    clf = MLPClassifier(hidden_layer_sizes=(64,), activation="relu", alpha=1e-3, max_iter=400,
                        random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(x_tr / 16.0, y_tr)          # trained on [0, 1]; folded back to raw pixels below
    w1, b1 = clf.coefs_[0] / 16.0, clf.intercepts_[0]
    w2, b2 = clf.coefs_[1], clf.intercepts_[1]
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "weights.npz", w1=w1, b1=b1, w2=w2, b2=b2)
    np.savez(out / "test.npz", x=x_te, y=y_te)
    np.savez(out / "all.npz", x=x, y=y)
    h = np.maximum(x_te @ w1 + b1, 0)
    acc = float(np.mean(np.argmax(h @ w2 + b2, axis=1) == y_te))
    return {"train": len(y_tr), "test": len(y_te), "float_test_accuracy": acc}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    info = train(args.out, args.seed)
    print(f"trained on {info['train']} images; float test accuracy {info['float_test_accuracy']:.4f} "
          f"on {info['test']} held-out images")


if __name__ == "__main__":
    main()
