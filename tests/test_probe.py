"""The linear few-shot probe (the paper's Figure 4 measure): perfect on features separable by
construction, near chance on random ones."""

import numpy as np

from vit.engine.probe import least_squares_probe


def test_features_separable_by_construction_are_probed_perfectly_from_one_shot():
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((10, 32)) * 5
    labels = np.arange(10)
    train = centres[labels] + rng.standard_normal((10, 32)) * 0.1  # one image per class
    test_labels = np.repeat(labels, 30)
    test = centres[test_labels] + rng.standard_normal((300, 32)) * 0.1
    assert least_squares_probe(train, labels, test, test_labels, 10) == 1.0


def test_random_features_stay_near_chance():
    rng = np.random.default_rng(1)
    scores = [least_squares_probe(rng.standard_normal((50, 64)), np.repeat(np.arange(10), 5),
                                  rng.standard_normal((500, 64)), rng.integers(0, 10, 500), 10)
              for _ in range(5)]
    assert 0.05 < np.mean(scores) < 0.16  # chance is 0.1
