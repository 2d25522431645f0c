"""Cohort statistics for lesion burden: transforms, harmonisation, trajectories, centiles, risk, agreement.

Every function takes a DataFrame and column names and returns a tidy DataFrame or a small
result object with a ``summary`` table; rows with missing values are reported (``dropped``
and the log), never dropped silently; bad input raises :class:`wmhkit.errors.TableError`
naming the column or subject.

| task | functions |
|---|---|
| transforms | :func:`transform_column`, :func:`log1p_ml`, :func:`percent_of_etiv`, :func:`logit_wm_fraction`, :func:`per_sd` |
| harmonisation | :class:`ComBat`, :func:`harmonize`, :func:`combat_arrays` |
| age trajectories | :func:`fit_trajectory` |
| progression over repeated scans | :func:`fit_progression` |
| normative centiles | :func:`fit_centiles` |
| dementia risk | :func:`logistic_risk`, :func:`cox_risk`, :func:`kaplan_meier`, :func:`region_analysis`, :func:`fdr_bh` |
| agreement (tables) | :func:`compare_measurements`, :func:`icc`, :func:`bland_altman`, :func:`lins_ccc` |
| agreement (images) | :func:`evaluate_segmentation`, :func:`dice`, :func:`hausdorff95`, :func:`lesion_detection`, :func:`absolute_volume_difference` |
| reporting | :func:`table_one` |

Submodules load on first use, so ``from wmhkit.stats import dice`` does not import
statsmodels. Nothing here imports torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "transforms": ["TransformResult", "log1p_ml", "logit_wm_fraction", "per_sd", "percent_of_etiv", "transform_column"],
    "combat": ["ComBat", "HarmonizationResult", "combat_arrays", "harmonize"],
    "trajectories": ["TrajectoryResult", "fit_trajectory"],
    "progression": ["ProgressionResult", "fit_progression"],
    "centiles": ["CentileResult", "fit_centiles"],
    "risk": ["RiskResult", "cox_risk", "fdr_bh", "logistic_risk", "region_analysis", "schoenfeld_test"],
    "survival": ["KaplanMeierResult", "kaplan_meier", "km_curve"],
    "agreement": ["AgreementResult", "compare_measurements", "bland_altman", "icc", "lins_ccc"],
    "overlap": ["absolute_volume_difference", "dice", "evaluate_segmentation", "hausdorff95", "lesion_detection"],
    "table1": ["Table1", "table_one"],
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'wmhkit.stats' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"wmhkit.stats.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
