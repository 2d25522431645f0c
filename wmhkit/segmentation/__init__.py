"""WMH segmentation from a 3D T1: the network, the classical baseline, post-processing, outputs.

The user's one call is :func:`wmhkit.segment` (this package's :func:`segment`)::

    import wmhkit
    result = wmhkit.segment("sub-01_T1w.nii.gz")          # trained network (default model)
    result = wmhkit.segment(img, method="baseline")       # classical, training-free baseline
    result.lesion_ml, result.etiv_ml                      # volumes in mL
    result.save("derivatives/wmhkit")                     # files named as in wmhkit.io.outputs.OutputPaths

Importing this package does not import torch; the network is loaded on first use of
``method="model"`` and kept for the process (:func:`load_model`).
"""

from wmhkit.segmentation.baseline import baseline_probability
from wmhkit.segmentation.models import DEFAULT_MODEL, LoadedModel, available_models, clear_model_cache, load_model
from wmhkit.segmentation.pipeline import BASELINE_VERSION, METHODS, segment, segment_file
from wmhkit.segmentation.postprocess import DEFAULT_MIN_LESION_MM3, DEFAULT_THRESHOLD
from wmhkit.segmentation.result import SegmentationResult

__all__ = [
    "segment",
    "segment_file",
    "SegmentationResult",
    "load_model",
    "available_models",
    "clear_model_cache",
    "LoadedModel",
    "baseline_probability",
    "METHODS",
    "DEFAULT_MODEL",
    "DEFAULT_THRESHOLD",
    "DEFAULT_MIN_LESION_MM3",
    "BASELINE_VERSION",
]
