"""Training lesion networks from 2D thick-slice FLAIR labels (the paper's method; imports torch).

* :mod:`wmhkit.train.geometry`, :mod:`wmhkit.train.loss`: the super-resolution forward model A
  and the loss BCE(A(p), y) + soft Dice (the naive up-sampled-label loss for comparison).
* :mod:`wmhkit.train.cases`, :mod:`wmhkit.train.manifest`, :mod:`wmhkit.train.recipe`: training
  cases from a user manifest or from phantoms and real-anatomy variants, cached once.
* :mod:`wmhkit.train.sampling`: patches where lesions are, with augmentation.
* :mod:`wmhkit.train.loop`, :mod:`wmhkit.train.cleaning`, :mod:`wmhkit.train.pipeline`: the
  training stages, the two-step label cleaning and ``wmhkit train``.
* :mod:`wmhkit.train.export`, :mod:`wmhkit.train.grow`: shipping, mixing and widening trained
  checkpoints.
"""

from wmhkit.train.config import DEFAULT_TRAIN_CONFIG, load_config
from wmhkit.train.pipeline import TrainResult, train

__all__ = ["DEFAULT_TRAIN_CONFIG", "TrainResult", "load_config", "train"]
