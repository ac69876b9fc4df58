"""Models: the `Model` adapter, the NNX zoo, Optax training, safe checkpoints (msgpack or Orbax),
user models from factories, one retraining rule, the jaxpr interval interpreter, and the compile
options the analyzers use per model (`compile_options(model)`, a context manager)."""

from audit.models._batching import padded_batches
from audit.models._factory import from_factory
from audit.models._model import Model, split_nnx
from audit.models._pooling import max_pool
from audit.models._retrain import retrain_unavailable, retrainer
from audit.models._train import History, train
from audit.models._xla import for_model as compile_options
from audit.models import zoo

__all__ = ["History", "Model", "compile_options", "from_factory", "max_pool", "padded_batches", "retrain_unavailable", "retrainer",
           "split_nnx", "train", "zoo"]
