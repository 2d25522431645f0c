"""The 36-region bullseye table of a synthetic cohort (what ``wmhkit.regions`` reports per subject).

:func:`bullseye_regions` splits each subject's lesion volume of a
:func:`wmhkit.synth.cohort.make_cohort` table over the 36 bullseye regions of Sudre et al.
(2018): four lobes in each hemisphere and the basal ganglia/thalamus, each in four depth
shells (names as ``wmhkit/regions/tables/bullseye.tsv``). A subject's lobar and depth shares
are the ones the cohort drew (``wmh_<lobe>_true_ml`` and ``wmh_depth<k>_true_ml`` over
``wmh_true_ml``); each lobe is split between hemispheres with a Beta(8, 8) share, and a
share of the load (Beta with mean ``bg_share``, mostly in the inner shells) lies in the basal
ganglia and thalamus. The 36 volumes of a subject add up to its total exactly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from wmhkit.errors import OptionError, TableError

__all__ = ["BULLSEYE_REGION_NAMES", "bullseye_regions"]

LOBES = ("frontal", "parietal", "temporal", "occipital")
#: The 36 region names in label order 1..36 (as :func:`wmhkit.regions.bullseye_names`).
BULLSEYE_REGION_NAMES = tuple(
    [f"{lobe}_{side}_shell{k}" for side in ("left", "right") for lobe in LOBES for k in range(1, 5)]
    + [f"basal_ganglia_thalamus_shell{k}" for k in range(1, 5)]
)
#: Mean split of the basal ganglia/thalamus load over shells 1-4 (deep grey lies near the ventricles).
BG_SHELL_SHARES = (0.40, 0.35, 0.20, 0.05)


def bullseye_regions(table: pd.DataFrame, *, value: str = "wmh_ml", carry=("age", "sex", "site", "dementia"),
                     bg_share: float = 0.04, seed: int = 0) -> pd.DataFrame:
    """Split each subject's lesion volume over the 36 bullseye regions.

    Parameters
    ----------
    table : pandas.DataFrame
        A :func:`~wmhkit.synth.cohort.make_cohort` table (needs ``subject_id``,
        ``wmh_true_ml``, ``wmh_<lobe>_true_ml``, ``wmh_depth<k>_true_ml`` and ``value``).
    value : str, default "wmh_ml"
        Volume to split (mL): the measured or the true total.
    carry : sequence of str, default ("age", "sex", "site", "dementia")
        Subject columns copied onto every region row (those present).
    bg_share : float, default 0.04
        Mean share of the load in the basal ganglia and thalamus (fraction).
    seed : int, default 0
        Seed of the hemisphere and basal-ganglia draws.

    Returns
    -------
    pandas.DataFrame
        One row per subject and region: ``subject``, ``scheme`` ("bullseye"), ``region``,
        ``lesion_ml``, then the carried columns.

    Examples
    --------
    >>> from wmhkit.synth.cohort import make_cohort
    >>> regions = bullseye_regions(make_cohort(5, seed=0).table)
    >>> len(regions), regions["region"].nunique()
    (180, 36)
    """
    if not 0 <= bg_share < 1:
        raise OptionError(f"bg_share={bg_share} must be a fraction in [0, 1).")
    needed = ["subject_id", "wmh_true_ml", value] + [f"wmh_{lobe}_true_ml" for lobe in LOBES] + [
        f"wmh_depth{k}_true_ml" for k in range(1, 5)]
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise TableError(f"Column {missing[0]!r} is missing; pass a table from wmhkit.synth.make_cohort.")
    rng = np.random.default_rng(seed)
    n = len(table)
    total = table["wmh_true_ml"].to_numpy(float)
    safe = np.where(total > 0, total, 1.0)
    lobe = np.column_stack([table[f"wmh_{lobe}_true_ml"].to_numpy(float) / safe for lobe in LOBES])
    depth = np.column_stack([table[f"wmh_depth{k}_true_ml"].to_numpy(float) / safe for k in range(1, 5)])
    left = rng.beta(8.0, 8.0, size=(n, len(LOBES)))
    concentration = 40.0
    bg = rng.beta(concentration * bg_share, concentration * (1 - bg_share), size=n) if bg_share > 0 else np.zeros(n)
    bg_depth = rng.dirichlet(20.0 * np.asarray(BG_SHELL_SHARES), size=n)
    white = (1.0 - bg)[:, None, None] * lobe[:, :, None] * depth[:, None, :]  # (subject, lobe, shell)
    shares = np.concatenate([(white * left[:, :, None]).reshape(n, -1), (white * (1 - left)[:, :, None]).reshape(n, -1),
                             bg[:, None] * bg_depth], axis=1)
    volumes = shares * table[value].to_numpy(float)[:, None]
    out = pd.DataFrame({
        "subject": np.repeat(table["subject_id"].to_numpy(), len(BULLSEYE_REGION_NAMES)),
        "scheme": "bullseye",
        "region": np.tile(BULLSEYE_REGION_NAMES, n),
        "lesion_ml": volumes.ravel(),
    })
    for column in carry:
        if column in table.columns:
            out[column] = np.repeat(table[column].to_numpy(), len(BULLSEYE_REGION_NAMES))
    return out
