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

import importlib

#: Where each public name lives; imported on first use, so that reading one constant (the command
#: line's option defaults) does not load scipy, pandas and the pipeline.
_EXPORTS = {
    "baseline_probability": "baseline",
    "DEFAULT_MODEL": "models", "LoadedModel": "models", "available_models": "models",
    "clear_model_cache": "models", "load_model": "models",
    "BASELINE_VERSION": "pipeline", "METHODS": "pipeline", "segment": "pipeline", "segment_file": "pipeline",
    "DEFAULT_MIN_LESION_MM3": "postprocess", "DEFAULT_THRESHOLD": "postprocess",
    "SegmentationResult": "result",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"wmhkit.segmentation.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'wmhkit.segmentation' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


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
