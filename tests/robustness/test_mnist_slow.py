"""The acceptance bar on real data (trains a CNN, so marked slow): an undefended MNIST CNN falls
below 10% robust accuracy at L-inf eps=0.3 under PGD-40."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from audit import datasets
from audit.models import train
from audit.robustness import apgd, domain_for, pgd


@pytest.mark.slow
def test_undefended_mnist_cnn_breaks_at_eps_03():
    data = datasets.load("mnist")
    model = train("cnn", data, epochs=4, progress=False, seed=0)
    test = data.test
    x, y = test.X[:256], test.y[:256]
    assert model.accuracy(x, y) > 0.94
    dom = domain_for(data)
    adv = np.concatenate([np.asarray(pgd(model.apply, model.params, x[i:i + 64], y[i:i + 64], eps=0.3, steps=40,
                                         step_size=0.01, domain=dom, key=jax.random.key(i)))
                          for i in range(0, 256, 64)])
    robust = model.accuracy(adv, y)
    assert robust < 0.10
    adv_apgd = np.concatenate([np.asarray(apgd(model.apply, model.params, x[i:i + 64], y[i:i + 64], eps=0.3,
                                               steps=40, domain=dom, key=jax.random.key(i)))
                               for i in range(0, 256, 64)])
    assert model.accuracy(adv_apgd, y) <= robust + 1 / 256
