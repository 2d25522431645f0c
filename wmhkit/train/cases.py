"""Training cases: a normalised T1 (MNI brain box or subject grid) plus a thick-slice label and its geometry.

Each case is computed once (T1 preparation, FLAIR registration, phantom generation) and cached
as a folder of ``.npy`` files plus ``case.json``. Workers open the arrays memory-mapped, so many
processes share one copy in the page cache.

Geometry chain: network voxel (cropped MNI grid) -> MNI mm -> subject T1 mm (inverse of the
T1's MNI alignment) -> FLAIR mm (the T1-to-FLAIR transform, identity when the label was drawn in
the T1's world) -> label voxel. Its product is stored as ``net_to_label``. Subject-space cases
(for models run with ``segment(space="subject")``) start from the subject's own 1 mm grid, so the
first two steps are the identity.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wmhkit.io import atomic_path, code_fingerprint, voxel_sizes_mm, write_json
from wmhkit.segmentation.network import MNI_BRAIN_BOX
from wmhkit.train.geometry import LabelGeometry

__all__ = ["Case", "MNI_AFFINE", "box_affine", "make_case", "save_case", "load_case", "label_lesion_points"]

logger = logging.getLogger(__name__)

#: Voxel-to-MNI-mm affine of the MNI152 2009 1 mm grid.
MNI_AFFINE = np.array([[1.0, 0, 0, -98.0], [0, 1.0, 0, -134.0], [0, 0, 1.0, -72.0], [0, 0, 0, 1.0]])
#: How many brain voxel positions a case keeps for sampling patch centres.
_BRAIN_POINTS = 4000


def box_affine(box=MNI_BRAIN_BOX) -> np.ndarray:
    """Voxel-to-MNI-mm affine of the cropped brain box."""
    shift = np.eye(4)
    shift[:3, 3] = [s.start for s in box]
    return MNI_AFFINE @ shift


@dataclass
class Case:
    """One training or validation case.

    Attributes
    ----------
    case_id : str
        Unique name (also the cache folder name).
    t1 : numpy.ndarray
        float32 normalised T1 on the MNI brain box (:data:`MNI_BRAIN_BOX`), or on the subject's
        own 1 mm grid for a subject-space case (``meta["space"] == "subject"``).
    label : numpy.ndarray
        float32 label (0-1) on its own thick-slice grid.
    geometry : LabelGeometry
        Maps brain-box voxels to label voxels.
    lesion_mni : numpy.ndarray or None
        uint8 exact lesion mask on the case's grid (the brain box, or the subject grid of a
        subject-space case; phantoms), for validation at 1 mm.
    lesion_points : numpy.ndarray
        (n, 3) brain-box voxel positions of labelled lesion voxels (patch centres).
    brain_points : numpy.ndarray
        (n, 3) brain-box voxel positions inside the head (random patch centres).
    meta : dict
        Provenance: kind, source files, generating parameters, registration quality.
    """

    case_id: str
    t1: np.ndarray
    label: np.ndarray
    geometry: LabelGeometry
    lesion_mni: np.ndarray | None = None
    lesion_points: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    brain_points: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    meta: dict = field(default_factory=dict)


def label_lesion_points(geometry: LabelGeometry, label: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Brain-box voxel positions (float, (n, 3)) of the centres of labelled lesion voxels."""
    idx = np.argwhere(np.asarray(label) > threshold).astype(np.float64)
    if not len(idx):
        return np.zeros((0, 3))
    label_to_net = np.linalg.inv(geometry.net_to_label)
    return idx @ label_to_net[:3, :3].T + label_to_net[:3, 3]


def make_case(
    case_id: str,
    t1_mni: np.ndarray,
    label,
    mni_to_subject: np.ndarray,
    *,
    t1_to_label_world: np.ndarray | None = None,
    slice_axis: int | None = None,
    thickness_mm: float | None = None,
    gap_mm: float = 0.0,
    lesion_mni: np.ndarray | None = None,
    meta: dict | None = None,
    seed: int = 0,
    net_affine: np.ndarray | None = None,
) -> Case:
    """Assemble a case from a normalised T1 (full MNI 1 mm grid, or the subject's own grid) and a label image.

    Parameters
    ----------
    case_id : str
        Unique name.
    t1_mni : numpy.ndarray
        Normalised T1 on the full MNI 1 mm grid (197x233x189), e.g. ``PreparedT1.t1_mni``; with
        ``net_affine``, on the network's own grid instead (used as it is, not cropped).
    label : nibabel image
        The thick-slice label on its own grid (values above 0.5 are lesion).
    mni_to_subject : numpy.ndarray
        4x4 network world mm -> subject T1 mm: ``MNIAlignment.mni_to_subject`` for MNI cases,
        the identity for subject-space cases.
    t1_to_label_world : numpy.ndarray, optional
        4x4 subject T1 mm -> label (FLAIR) mm; identity by default.
    slice_axis, thickness_mm, gap_mm
        Label slice geometry, see :meth:`LabelGeometry.from_affines`.
    lesion_mni : numpy.ndarray, optional
        Exact lesion mask on the full MNI grid (phantoms; for validation).
    meta : dict, optional
        Provenance stored with the case; ``label_voxel_mm`` (the label image's voxel size) is
        added.
    seed : int, default 0
        Seed for the subsample of brain positions kept for patch centres.
    net_affine : numpy.ndarray, optional
        4x4 voxel-to-subject-mm affine of a ``t1_mni`` (and ``lesion_mni``) on the subject's own
        grid (:func:`wmhkit.segmentation.subject_grid.network_grid`): a case for a model that
        runs with ``space="subject"``. Default: the MNI brain box.
    """
    between = np.asarray(mni_to_subject, float)
    if t1_to_label_world is not None:
        between = np.asarray(t1_to_label_world, float) @ between
    label_data = np.asarray(label.dataobj, dtype=np.float32)
    crop = MNI_BRAIN_BOX if net_affine is None else (slice(None),) * 3
    geometry = LabelGeometry.from_affines(
        label_data.shape, label.affine, box_affine() if net_affine is None else net_affine,
        net_world_to_label_world=between, slice_axis=slice_axis, thickness_mm=thickness_mm, gap_mm=gap_mm,
    )
    t1 = np.asarray(t1_mni, dtype=np.float32)[crop]
    meta = dict(meta or {})
    # The label's own voxel size: label volumes (mL) and check distances are read in it.
    meta["label_voxel_mm"] = [float(v) for v in voxel_sizes_mm(label)]
    rng = np.random.default_rng(seed)
    inside = np.argwhere(t1 > 0.2)
    brain_points = inside[rng.choice(len(inside), size=min(_BRAIN_POINTS, len(inside)), replace=False)] if len(
        inside) else np.zeros((0, 3))
    lesion = None if lesion_mni is None else (np.asarray(lesion_mni) > 0.5).astype(np.uint8)[crop]
    return Case(
        case_id=case_id,
        t1=t1,
        label=label_data,
        geometry=geometry,
        lesion_mni=lesion,
        lesion_points=label_lesion_points(geometry, label_data),
        brain_points=brain_points.astype(np.float64),
        meta=meta,
    )


def save_case(case: Case, cache_folder: str | os.PathLike) -> Path:
    """Write a case into ``cache_folder/<case_id>/`` (arrays as .npy, the rest in case.json)."""
    folder = Path(cache_folder) / case.case_id
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {"t1": case.t1.astype(np.float16), "label": case.label.astype(np.float16),
              "lesion_points": case.lesion_points, "brain_points": case.brain_points}
    if case.lesion_mni is not None:
        arrays["lesion_mni"] = case.lesion_mni.astype(np.uint8)
    for name, array in arrays.items():
        with atomic_path(folder / f"{name}.npy") as tmp:
            with open(tmp, "wb") as handle:
                np.save(handle, array)
    geometry = {"shape": list(case.geometry.shape), "net_to_label": case.geometry.net_to_label.tolist(),
                "slice_axis": case.geometry.slice_axis, "thickness_fraction": case.geometry.thickness_fraction}
    # case.json is written last: its presence marks a complete cache entry. The code fingerprint
    # lets a later run notice cases built by other code (wmhkit.train.pipeline.build_cases).
    write_json({"case_id": case.case_id, "geometry": geometry, "meta": case.meta,
                "code_fingerprint": code_fingerprint()}, folder / "case.json")
    return folder


def load_case(folder: str | os.PathLike, *, mmap: bool = True) -> Case:
    """Read a case written by :func:`save_case` (arrays memory-mapped by default)."""
    folder = Path(folder)
    info = json.loads((folder / "case.json").read_text())
    mode = "r" if mmap else None
    geo = info["geometry"]
    lesion_path = folder / "lesion_mni.npy"
    return Case(
        case_id=info["case_id"],
        t1=np.load(folder / "t1.npy", mmap_mode=mode),
        label=np.load(folder / "label.npy", mmap_mode=mode),
        geometry=LabelGeometry(tuple(geo["shape"]), np.asarray(geo["net_to_label"]), int(geo["slice_axis"]),
                               float(geo["thickness_fraction"])),
        lesion_mni=np.load(lesion_path, mmap_mode=mode) if lesion_path.exists() else None,
        lesion_points=np.load(folder / "lesion_points.npy"),
        brain_points=np.load(folder / "brain_points.npy"),
        meta=info.get("meta", {}),
    )
