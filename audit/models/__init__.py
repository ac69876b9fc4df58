"""Models: the `Model` adapter, the NNX zoo, Optax training and safe checkpoints."""

from audit.models._model import Model, split_nnx
from audit.models._pooling import max_pool
from audit.models._train import History, train
from audit.models import zoo

__all__ = ["History", "Model", "max_pool", "split_nnx", "train", "zoo"]
