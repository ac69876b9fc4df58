"""Models: the `Model` adapter, the NNX zoo, Optax training and safe checkpoints."""

from audit.models._batching import padded_batches
from audit.models._model import Model, split_nnx
from audit.models._pooling import max_pool
from audit.models._train import History, train
from audit.models import zoo

__all__ = ["History", "Model", "max_pool", "padded_batches", "split_nnx", "train", "zoo"]
