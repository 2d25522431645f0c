"""Affine (12-parameter) alignment of a 3D T1 image to the MNI152 template.

Method
------
1. The subject is block-averaged and resampled onto a world-axis-aligned 2 mm grid (any
   voxel order, obliquity or voxel size 0.7-3 mm gives the same working image).
2. Initialisation: the centre of the upper 100 mm of the head (head top found from the
   foreground) is matched to the same point of the template brain. Six candidates (brain top
   0 or 12 mm below the head top, for skull-stripped or skull-on heads, with the template
   width scaled to the head width accordingly; pitch -20/0/+20 degrees) each get a short
   similarity registration at 8 mm; the best one goes on.
3. Similarity (rotation, translation, one scale) at 4 mm, then full affine at 4 and 2 mm,
   with SimpleITK: Pearson correlation (same-modality T1; unlike mutual information it
   penalises a scalp squeezed into the brain outline), regular-step gradient descent. The
   metric is evaluated only inside the template brain mask dilated by 2 mm, so scalp, neck
   and face of skull-on heads do not drive it, while the dark CSF/skull rim around the brain
   still anchors its outline.
4. Quality: Pearson correlation (clipped to 0..1) between the template T1 and the aligned
   subject inside the template brain mask, both smoothed by 3 mm, on the 2 mm grid. Values
   below :data:`QUALITY_THRESHOLD` are flagged with a warning.

All transforms are 4x4 matrices between world (scanner RAS) mm and MNI mm.
"""

from __future__ import annotations

import dataclasses
import logging
import warnings

import nibabel as nib
import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from wmhkit.io import ImgLike, check_img, new_img_like, voxel_sizes_mm
from wmhkit.io.arrays import otsu_threshold
from wmhkit.preprocess.resampling import axis_aligned_grid, block_mean, resample_array
from wmhkit.preprocess.template_work import smoothed_template, template_work
from wmhkit.preprocess.template_work import to_sitk as _to_sitk
from wmhkit.preprocess.templates import TEMPLATE_AFFINE, TEMPLATE_SHAPE, template_data

__all__ = ["MNIAlignment", "align_to_mni", "QUALITY_THRESHOLD", "alignment_quality", "alignment_distance_mm",
           "transform_matrix"]

logger = logging.getLogger(__name__)

#: Alignment quality (template/subject correlation in the brain after 3 mm smoothing, 0..1)
#: below which an alignment is flagged as likely failed. The two real heads score 0.74 and
#: 0.85 when aligned, phantoms 0.9-1.0; shifting the real heads' alignment by 10 mm drops
#: them to 0.33-0.50 and by 15 mm to 0.16-0.36 (benchmarks/results/alignment_accuracy.md).
QUALITY_THRESHOLD = 0.5
#: Gaussian smoothing (sigma, mm) applied to both images before scoring alignment quality.
QUALITY_SIGMA_MM = 3.0
#: Working grid of the registration (mm).
WORK_MM = 2.0
#: Dilation of the template brain mask that limits the metric (mm).
MASK_DILATION_MM = 2.0
#: Height of the top-of-head slab used to initialise (mm).
SLAB_MM = 100.0
_PITCHES_DEG = (0.0, -20.0, 20.0)
_SKULL_OFFSETS_MM = (0.0, 12.0)
# One thread: the registration's answer changes in the 6th decimal with its thread count (a
# voxel can flip), and a worker capped to one core must not run two. Costs ~0.15 s on a 1 mm head.
_THREADS = 1
#: Fraction of the masked template voxels (on each level's grid, mm) at which the metric is
#: evaluated.
SAMPLING = {8.0: 0.15, 4.0: 0.15, 2.0: 0.1}
#: Similarity metric: "correlation" (same-modality T1, penalises bright scalp inside the
#: template's brain rim) or "mi" (Mattes mutual information).
METRIC = "correlation"
#: Registration stages: (transform, ((pyramid level in mm, iterations), ...)).
STAGES = (
    ("similarity", ((4.0, 25),)),
    ("affine", ((4.0, 30), (2.0, 15))),
)
#: Short similarity run that decides between the skull-thickness hypotheses.
SCREEN_STAGE = ("similarity", ((8.0, 30),))
#: Grids (mm) of the registration pyramid (Gaussian-smoothed copies of the 2 mm working images).
LEVELS_MM = (2.0, 4.0, 8.0)


@dataclasses.dataclass
class MNIAlignment:
    """An affine map between a subject's world space and MNI152 space.

    Attributes
    ----------
    subject_to_mni : numpy.ndarray
        4x4 affine mapping subject world mm (the input's scanner RAS) to MNI mm.
    quality : float
        Correlation (0..1) of the aligned subject with the template inside the template brain
        mask; below :data:`QUALITY_THRESHOLD` the alignment is flagged.
    method : str
        How the alignment was made (e.g. ``"sitk-affine-corr"``, ``"given"``).
    """

    subject_to_mni: np.ndarray
    quality: float = float("nan")
    method: str = "given"

    def __post_init__(self) -> None:
        self.subject_to_mni = np.asarray(self.subject_to_mni, dtype=np.float64)

    @property
    def mni_to_subject(self) -> np.ndarray:
        """4x4 inverse map, MNI mm -> subject world mm."""
        return np.linalg.inv(self.subject_to_mni)

    @property
    def flagged(self) -> bool:
        """True when :attr:`quality` is below :data:`QUALITY_THRESHOLD` (or unknown)."""
        return not (self.quality >= QUALITY_THRESHOLD)

    def resample_to_mni(
        self, img: ImgLike, *, order: int = 1, shape: tuple[int, int, int] | None = None, affine: np.ndarray | None = None
    ) -> nib.Nifti1Image:
        """Bring a subject-space image onto an MNI grid.

        Parameters
        ----------
        img : str, os.PathLike or nibabel image
            Image on any subject grid (T1, mask, probability map).
        order : {0, 1, 3}, default 1
            Interpolation: 0 nearest (labels, keeps the dtype), 1 trilinear, 3 cubic (float32).
        shape, affine : optional
            Output MNI grid; default the template's 1 mm grid (197 x 233 x 189).

        Returns
        -------
        nibabel.Nifti1Image
            On the MNI grid; zero outside the subject's field of view. Cost grows with the
            output size only.
        """
        checked = check_img(img, check_voxels=False)
        out_shape = TEMPLATE_SHAPE if shape is None else tuple(shape)
        out_affine = TEMPLATE_AFFINE if affine is None else np.asarray(affine, float)
        data = resample_array(
            np.asanyarray(checked.dataobj), checked.affine, out_shape, out_affine, self.mni_to_subject, order=order
        )
        out = nib.Nifti1Image(data, out_affine)
        out.set_sform(out_affine, 4)
        out.set_qform(out_affine, 4)
        return out

    def resample_to_subject(self, mni_img: ImgLike, reference: ImgLike, *, order: int = 1) -> nib.Nifti1Image:
        """Bring an MNI-space image (template, atlas, network output) onto a subject grid.

        Parameters
        ----------
        mni_img : str, os.PathLike or nibabel image
            Image on any MNI grid.
        reference : str, os.PathLike or nibabel image
            Subject image whose grid (shape, affine, voxel order) the output takes.
        order : {0, 1, 3}, default 1
            Interpolation: 0 nearest (labels, keeps the dtype), 1 trilinear, 3 cubic (float32).

        Returns
        -------
        nibabel.Nifti1Image
            On ``reference``'s grid with its affine and qform/sform codes.
        """
        source = check_img(mni_img, check_voxels=False)
        ref = check_img(reference, check_voxels=False)
        data = resample_array(
            np.asanyarray(source.dataobj), source.affine, ref.shape[:3], ref.affine, self.subject_to_mni, order=order
        )
        return new_img_like(ref, data)


# ----------------------------------------------------------------------------- working images
def _working_image(data: np.ndarray, affine: np.ndarray, spacing_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Anti-aliased, world-axis-aligned copy of ``data`` with ``spacing_mm`` voxels."""
    zooms = np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(axis=0))
    factors = tuple(int(max(1, np.floor(spacing_mm / z + 0.25))) for z in zooms)
    reduced, reduced_affine = block_mean(data, affine, factors)
    shape, grid_affine = axis_aligned_grid(reduced.shape, reduced_affine, spacing_mm)
    return resample_array(reduced, reduced_affine, shape, grid_affine, order=1), grid_affine


def _template_work() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Template T1, brain mask and metric mask (brain dilated by :data:`MASK_DILATION_MM`) on
    the 2 mm working grid (block means; cached on disk: :mod:`wmhkit.preprocess.template_work`)."""
    return template_work(WORK_MM, MASK_DILATION_MM)


def _pyramid(work: np.ndarray, work_affine: np.ndarray) -> dict[float, tuple[sitk.Image, sitk.Image, sitk.Image]]:
    """(fixed, moving, fixed mask) SimpleITK images at each level of :data:`LEVELS_MM`.

    Coarser levels are Gaussian-smoothed (sigma = level / 2 mm) copies of the 2 mm working
    images (the fixed template also subsampled), made once per alignment.
    """
    t1, _, metric_mask, t_affine = _template_work()
    fixed = _to_sitk(t1, t_affine)
    moving = _to_sitk(work, work_affine)
    mask = sitk.Cast(_to_sitk(metric_mask.astype(np.float32), t_affine), sitk.sitkUInt8)
    levels = {}
    for level in LEVELS_MM:
        factor = int(round(level / WORK_MM))
        if factor == 1:
            levels[level] = (fixed, moving, mask)
            continue
        sigma = level / 2.0
        smoothed_fixed = sitk.GetImageFromArray(smoothed_template(WORK_MM, sigma, "sitk"))
        smoothed_fixed.CopyInformation(fixed)
        levels[level] = (
            sitk.Shrink(smoothed_fixed, [factor] * 3),
            # Like ITK's own pyramid, the moving image is smoothed but not subsampled: the
            # metric reads it at the coarse fixed points through trilinear interpolation.
            sitk.SmoothingRecursiveGaussian(moving, sigma),
            sitk.Shrink(mask, [factor] * 3),
        )
    return levels


# ----------------------------------------------------------------------------- initialisation
def _top_slab(mask: np.ndarray, affine: np.ndarray, min_area_mm2: float = 400.0) -> tuple[np.ndarray, float, float]:
    """Centroid (world mm), top height (z mm) and left-right width (mm) of the top ``SLAB_MM``
    of a foreground mask.

    ``affine`` must be axis-aligned with positive diagonal (a working grid). The width is the
    1st-99th percentile range of x over the slab.
    """
    spacing = np.diag(affine)[:3]
    area = mask.sum(axis=(0, 1)) * spacing[0] * spacing[1]
    rows = np.nonzero(area >= min_area_mm2)[0]
    top = int(rows.max()) if rows.size else mask.shape[2] - 1
    low = max(0, top - int(round(SLAB_MM / spacing[2])))
    ijk = np.argwhere(mask[:, :, low : top + 1]) + [0, 0, low]
    if len(ijk) < 10:
        return np.asarray(mask.shape) / 2 * spacing + affine[:3, 3], float(top * spacing[2] + affine[2, 3]), 0.0
    centre = ijk.mean(axis=0) * spacing + affine[:3, 3]
    width = float(np.percentile(ijk[:, 0], 99) - np.percentile(ijk[:, 0], 1)) * spacing[0]
    return centre, float(top * spacing[2] + affine[2, 3]), width


def _head_mask(work: np.ndarray) -> np.ndarray:
    positive = work[work > 0]
    # 128 bins: the 2 mm working image has few voxels per bin at 256.
    threshold = otsu_threshold(positive if positive.size > 100 else work.ravel(), bins=128) * 0.5
    mask = work > threshold
    mask = ndimage.binary_opening(mask, iterations=1)
    labels, count = ndimage.label(mask)
    if count > 1:
        sizes = ndimage.sum_labels(mask, labels, index=np.arange(1, count + 1))
        mask = labels == (int(np.argmax(sizes)) + 1)
    return mask


def _rotation_x(degrees: float) -> np.ndarray:
    angle = np.deg2rad(degrees)
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _initial_candidates(work: np.ndarray, work_affine: np.ndarray) -> list[np.ndarray]:
    """MNI -> subject 4x4 starting points (rotation about L-R, isotropic scale, shift) to score.

    For each hypothesis on the scalp-plus-skull thickness (:data:`_SKULL_OFFSETS_MM`), the
    template brain's top is placed that far below the head's top and its width is scaled to
    the head's width minus twice that thickness.
    """
    _, brain, _, t_affine = _template_work()
    mni_centre, mni_top, mni_width = _top_slab(brain, t_affine)
    subject_centre, subject_top, subject_width = _top_slab(_head_mask(work), work_affine)
    candidates = []
    for offset in _SKULL_OFFSETS_MM:
        brain_width = subject_width - 2 * offset
        scale = float(np.clip(brain_width / mni_width, 0.7, 1.3)) if brain_width > 0 else 1.0
        centre = subject_centre.copy()
        centre[2] = subject_top - offset - scale * (mni_top - mni_centre[2])
        for pitch in _PITCHES_DEG:
            matrix = np.eye(4)
            matrix[:3, :3] = scale * _rotation_x(pitch)
            matrix[:3, 3] = centre - matrix[:3, :3] @ mni_centre
            candidates.append(matrix)
    return candidates


# ----------------------------------------------------------------------------- registration
def transform_matrix(transform: sitk.Transform) -> np.ndarray:
    """4x4 matrix of a SimpleITK matrix-offset transform (fixed -> moving point map, SimpleITK's mm).

    The one conversion of a registration's answer into a matrix (MNI alignment here, FLAIR-to-T1
    registration in :mod:`wmhkit.train.manifest`). SimpleITK applies ``A (x - c) + t + c`` with
    matrix ``A``, centre ``c`` and translation ``t``.

    Examples
    --------
    >>> transform = sitk.AffineTransform((0.0, -1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0), (1.0, 2.0, 3.0), (10.0, 0.0, 0.0))
    >>> matrix, point = transform_matrix(transform), np.array([5.0, 6.0, 7.0])
    >>> np.allclose(matrix[:3, :3] @ point + matrix[:3, 3], transform.TransformPoint(point.tolist()))
    True
    """
    matrix = np.eye(4)
    linear = np.asarray(transform.GetMatrix()).reshape(3, 3)
    centre = np.asarray(transform.GetCenter())
    matrix[:3, :3] = linear
    matrix[:3, 3] = np.asarray(transform.GetTranslation()) + centre - linear @ centre
    return matrix


def _affine_transform(matrix: np.ndarray, centre: np.ndarray) -> sitk.AffineTransform:
    transform = sitk.AffineTransform(3)
    transform.SetCenter([float(c) for c in centre])
    transform.SetMatrix([float(v) for v in matrix[:3, :3].ravel()])
    transform.SetTranslation([float(v) for v in matrix[:3, 3] + matrix[:3, :3] @ centre - centre])
    return transform


def _registration(fixed_mask: sitk.Image, iterations: int, level: float, kind: str) -> sitk.ImageRegistrationMethod:
    method = sitk.ImageRegistrationMethod()
    if METRIC == "correlation":
        method.SetMetricAsCorrelation()
    else:
        method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    method.SetMetricSamplingStrategy(method.REGULAR)
    method.SetMetricSamplingPercentage(SAMPLING[level], seed=1)
    method.SetMetricFixedMask(fixed_mask)
    # Image gradients at the sample points only (default: a whole gradient image per run).
    method.SetMetricUseFixedImageGradientFilter(False)
    method.SetMetricUseMovingImageGradientFilter(False)
    method.SetInterpolator(sitk.sitkLinear)
    # Regular-step gradient descent, halving its step whenever the gradient turns back. Rigid
    # and similarity stages take fixed steps (2 units of the physical-shift-scaled parameters:
    # fast, wide capture). Affine stages re-estimate the step every iteration so that no
    # template point moves more than one voxel: a fixed step would throw the nine matrix
    # parameters far off once the translation has converged.
    method.SetOptimizerAsRegularStepGradientDescent(
        learningRate=2.0,
        minStep=1e-3,
        numberOfIterations=iterations,
        relaxationFactor=0.5,
        gradientMagnitudeTolerance=1e-6,
        estimateLearningRate=method.EachIteration if kind == "affine" else method.Never,
    )
    method.SetOptimizerScalesFromPhysicalShift()
    return method


def _similarity_transform(matrix: np.ndarray, centre: np.ndarray) -> sitk.Similarity3DTransform:
    """The closest rotation-times-isotropic-scale transform to a 4x4 MNI -> subject matrix."""
    transform = sitk.Similarity3DTransform()
    transform.SetCenter([float(c) for c in centre])
    u, _, vt = np.linalg.svd(matrix[:3, :3])
    scale = float(np.cbrt(abs(np.linalg.det(matrix[:3, :3]))))
    transform.SetMatrix([float(v) for v in (scale * (u @ vt)).ravel()])
    transform.SetTranslation([float(v) for v in matrix[:3, 3] + matrix[:3, :3] @ centre - centre])
    return transform


def _run_stage(levels, matrix: np.ndarray, centre: np.ndarray, stage) -> tuple[np.ndarray, float]:
    """One registration stage ``(kind, ((level_mm, iterations), ...))`` from ``matrix``.

    Returns the new MNI -> subject matrix and the final metric value (lower is better).
    """
    kind, schedule = stage
    value = np.inf
    for level, iterations in schedule:
        transform = _similarity_transform(matrix, centre) if kind == "similarity" else _affine_transform(matrix, centre)
        fixed, moving, mask = levels[level]
        method = _registration(mask, iterations, level, kind)
        method.SetInitialTransform(transform, inPlace=True)
        method.Execute(fixed, moving)
        value = float(method.GetMetricValue())
        logger.debug("%s at %g mm: %d iterations, metric %.4f", kind, level, method.GetOptimizerIteration(), value)
        matrix = transform_matrix(transform)
    return matrix, value


def _register(levels, candidates: list[np.ndarray], centre: np.ndarray) -> np.ndarray:
    """Pick and refine the best candidate; returns the MNI -> subject 4x4 matrix.

    Every candidate is refined briefly on the coarsest level (:data:`SCREEN_STAGE`); the one
    with the best metric then runs the :data:`STAGES`.
    """
    screened = [_run_stage(levels, matrix, centre, SCREEN_STAGE) for matrix in candidates]
    logger.debug("screened candidates: %s", [round(value, 4) for _, value in screened])
    matrix = min(screened, key=lambda pair: pair[1])[0]
    for stage in STAGES:
        matrix, _ = _run_stage(levels, matrix, centre, stage)
    return matrix


def alignment_quality(work: np.ndarray, work_affine: np.ndarray, mni_to_subject: np.ndarray) -> float:
    """Correlation (clipped to 0..1) of the template T1 and the aligned subject in the template brain.

    Both images are smoothed (Gaussian, sigma :data:`QUALITY_SIGMA_MM`) on the 2 mm template
    grid first, so the score measures gross alignment rather than noise or fine anatomy.

    Parameters
    ----------
    work : numpy.ndarray
        Subject voxels; ``work_affine`` their voxel-to-world affine.
    mni_to_subject : (4, 4) array
        MNI mm -> subject world mm.
    """
    t1, brain, _, t_affine = _template_work()
    sigma = QUALITY_SIGMA_MM / np.diag(t_affine)[:3]
    sampled = ndimage.gaussian_filter(resample_array(work, work_affine, t1.shape, t_affine, mni_to_subject), sigma)
    a = sampled[brain].astype(np.float64)
    b = smoothed_template(WORK_MM, QUALITY_SIGMA_MM, "scipy")[brain].astype(np.float64)
    if a.std() == 0:
        return 0.0
    return float(np.clip(np.corrcoef(a, b)[0, 1], 0.0, 1.0))


def alignment_distance_mm(first: MNIAlignment, second: MNIAlignment, *, step: int = 4) -> float:
    """Mean distance (mm) between where two alignments put the template brain in the subject.

    The template brain mask is sampled every ``step`` voxels per axis; each point is sent to
    subject space by both alignments' ``mni_to_subject``.

    Examples
    --------
    >>> shifted = np.eye(4); shifted[:3, 3] = [3.0, 4.0, 0.0]
    >>> round(alignment_distance_mm(MNIAlignment(np.eye(4)), MNIAlignment(shifted)), 6)
    5.0
    """
    ijk = np.argwhere(template_data("brain_mask")[::step, ::step, ::step] > 0) * step
    points = np.c_[ijk, np.ones(len(ijk))] @ TEMPLATE_AFFINE.T
    difference = points @ (first.mni_to_subject - second.mni_to_subject).T
    return float(np.linalg.norm(difference[:, :3], axis=1).mean())


def align_to_mni(img: ImgLike) -> MNIAlignment:
    """Affine (12-parameter) alignment of a 3D T1 image to the MNI152 2009a template.

    Works on skull-on heads (with face and neck) and skull-stripped brains, in any voxel
    order or obliquity, with voxels of 0.7-3 mm. About 1-2 s on 2 cores.

    Parameters
    ----------
    img : str, os.PathLike or nibabel image
        A 3D T1-weighted image.

    Returns
    -------
    MNIAlignment
        ``subject_to_mni`` (subject world mm -> MNI mm), ``quality`` (0..1) and
        ``method="sitk-affine-corr"``. A quality below :data:`QUALITY_THRESHOLD` logs and
        emits a ``UserWarning``.

    Raises
    ------
    wmhkit.errors.InputImageError
        When ``img`` is not a usable 3D image (see :func:`wmhkit.io.check_img`).
    """
    checked = check_img(img)
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(_THREADS)
    data = np.asanyarray(checked.dataobj)
    work, work_affine = _working_image(data, checked.affine, WORK_MM)
    low = np.percentile(work, 0.5)
    work = np.clip(work - low, 0.0, None)  # magnitude images: background at 0
    levels = _pyramid(work, work_affine)
    centre = TEMPLATE_AFFINE[:3, :3] @ (np.asarray(TEMPLATE_SHAPE) - 1) / 2 + TEMPLATE_AFFINE[:3, 3]
    mni_to_subject = _register(levels, _initial_candidates(work, work_affine), centre)
    quality = alignment_quality(work, work_affine, mni_to_subject)
    alignment = MNIAlignment(np.linalg.inv(mni_to_subject), quality, "sitk-affine-corr")
    if alignment.flagged:
        message = (
            f"MNI alignment of {getattr(checked, '_wmhkit_source', 'the image')} has quality {quality:.2f} "
            f"(below {QUALITY_THRESHOLD}); check that it is a T1-weighted head image and inspect the result."
        )
        logger.warning(message)
        warnings.warn(message, UserWarning, stacklevel=2)
    logger.info("MNI alignment quality %.3f (voxels %s mm)", quality, np.round(voxel_sizes_mm(checked), 2).tolist())
    return alignment
