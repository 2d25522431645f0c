"""Where each thick label voxel lies on the network's 1 mm grid (numpy; the forward model's geometry).

A label drawn on 2D FLAIR lives on its own grid: in-plane voxels of about 0.9 mm and slices
3-6 mm thick, possibly with a gap, in any orientation. The network predicts a lesion
probability p on a 1 mm grid (a patch of the MNI grid, possibly rotated by augmentation). The
super-resolution forward model A averages p over each label voxel's footprint (Thyreau et al.,
Hum Brain Mapp 2022). This module computes A as a sparse list of (network voxel, label voxel, weight)
triples:

* every network voxel is split into ``subsamples**3`` points (0.5 mm apart by default);
* each point is mapped through one 4x4 affine into the label's voxel coordinates;
* it falls in label voxel ``round(c)`` when it lies within ``thickness / 2`` of that slice's
  centre along the slice axis (points in a slice gap fall in no voxel);
* the weight of a (network voxel, label voxel) pair is the share of that label voxel's points
  that came from the network voxel, so each row of A sums to 1 (A(p) is a mean of p).

Label voxels only partly covered by the network grid (at patch borders) are dropped: their
footprint would be averaged over the part that happens to be inside.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wmhkit.errors import OptionError

__all__ = ["LabelGeometry", "ForwardPairs", "forward_pairs", "nearest_label"]


@dataclass(frozen=True)
class LabelGeometry:
    """The thick-slice label grid seen from a 1 mm network grid.

    Attributes
    ----------
    shape : tuple of int
        Shape of the label array.
    net_to_label : numpy.ndarray
        4x4 affine from network voxel indices to label voxel indices.
    slice_axis : int
        Axis of the label grid along which slices are thick.
    thickness_fraction : float
        Slice thickness divided by slice spacing (1.0 without a gap; 5 mm slices with a
        1 mm gap give 5/6).
    """

    shape: tuple
    net_to_label: np.ndarray
    slice_axis: int
    thickness_fraction: float = 1.0

    @classmethod
    def from_affines(
        cls,
        label_shape,
        label_affine,
        net_affine,
        *,
        net_world_to_label_world=None,
        slice_axis: int | None = None,
        thickness_mm: float | None = None,
        gap_mm: float = 0.0,
    ) -> "LabelGeometry":
        """Geometry from the two grids' affines (voxel -> world mm).

        Parameters
        ----------
        label_shape : tuple of int
            Shape of the label array.
        label_affine, net_affine : numpy.ndarray
            4x4 voxel-to-world affines of the label grid and of the network grid.
        net_world_to_label_world : numpy.ndarray, optional
            4x4 affine from the network's world space to the label's world space (e.g.
            MNI mm -> subject mm composed with T1 -> FLAIR); identity by default.
        slice_axis : int, optional
            The thick axis; default the label axis with the largest voxel spacing.
        thickness_mm : float, optional
            Slice thickness; default the slice spacing minus ``gap_mm``.
        gap_mm : float, default 0.0
            Gap between slices, used only when ``thickness_mm`` is not given.
        """
        label_affine = np.asarray(label_affine, dtype=np.float64)
        spacing = np.sqrt((label_affine[:3, :3] ** 2).sum(axis=0))
        axis = int(np.argmax(spacing)) if slice_axis is None else int(slice_axis)
        if axis not in (0, 1, 2):
            raise OptionError(f"slice_axis={slice_axis} must be 0, 1 or 2.")
        thickness = float(spacing[axis] - gap_mm) if thickness_mm is None else float(thickness_mm)
        if not 0 < thickness <= spacing[axis] + 1e-6:
            raise OptionError(
                f"Slice thickness {thickness:g} mm must be positive and at most the slice spacing {spacing[axis]:g} mm."
            )
        between = np.eye(4) if net_world_to_label_world is None else np.asarray(net_world_to_label_world, float)
        net_to_label = np.linalg.inv(label_affine) @ between @ np.asarray(net_affine, dtype=np.float64)
        return cls(tuple(int(n) for n in label_shape), net_to_label, axis, min(1.0, thickness / spacing[axis]))

    def with_net_transform(self, patch_to_net: np.ndarray) -> "LabelGeometry":
        """The same label seen from another grid whose voxels map to this network grid by ``patch_to_net``."""
        return LabelGeometry(self.shape, self.net_to_label @ np.asarray(patch_to_net, float), self.slice_axis,
                             self.thickness_fraction)


@dataclass
class ForwardPairs:
    """Sparse forward model of one patch: ``A(p)[label_row] = sum(weight * p[net_index])``.

    Attributes
    ----------
    net_index : numpy.ndarray
        int64 flat index into the network patch (C order) of each pair.
    label_row : numpy.ndarray
        int64 row (0 .. n_labels - 1) of each pair.
    weight : numpy.ndarray
        float32 weight of each pair; the weights of one row sum to 1.
    label_index : numpy.ndarray
        int64 flat index into the label array of each row.
    """

    net_index: np.ndarray
    label_row: np.ndarray
    weight: np.ndarray
    label_index: np.ndarray

    @property
    def n_labels(self) -> int:
        return int(self.label_index.size)

    def matrix(self, n_net: int) -> np.ndarray:
        """Dense A (n_labels x n_net); for tests and small patches only."""
        dense = np.zeros((self.n_labels, n_net), dtype=np.float64)
        np.add.at(dense, (self.label_row, self.net_index), self.weight)
        return dense


def _sub_offsets(subsamples: int) -> np.ndarray:
    steps = (np.arange(subsamples) + 0.5) / subsamples - 0.5
    grid = np.stack(np.meshgrid(steps, steps, steps, indexing="ij"), axis=-1)
    return grid.reshape(-1, 3)


def forward_pairs(
    geometry: LabelGeometry,
    patch_shape,
    *,
    subsamples: int = 2,
    min_coverage: float = 0.9,
    voxel_mask: np.ndarray | None = None,
) -> ForwardPairs:
    """The forward model A of a label on a network patch, as sparse weighted pairs.

    Parameters
    ----------
    geometry : LabelGeometry
        The label grid seen from the patch (``net_to_label`` maps patch voxel indices).
    patch_shape : tuple of int
        Shape of the network patch (3D).
    subsamples : int, default 2
        Points per network voxel and axis (2 gives 8 points 0.5 mm apart on a 1 mm grid).
    min_coverage : float, default 0.9
        Keep a label voxel only when the patch holds at least this share of the points its
        footprint should hold (the expected count follows from the affine's determinant).
    voxel_mask : numpy.ndarray, optional
        Boolean array of ``patch_shape``: only these network voxels are mapped (others count as
        outside the patch).

    Returns
    -------
    ForwardPairs

    Examples
    --------
    A 2 mm thick slab of 1 mm voxels: each label voxel is the mean of two network voxels.

    >>> net_to_label = np.diag([1.0, 1.0, 0.5, 1.0]); net_to_label[2, 3] = -0.25
    >>> geom = LabelGeometry((3, 2, 2), net_to_label, 2)
    >>> pairs = forward_pairs(geom, (3, 2, 4))
    >>> pairs.n_labels, sorted(set(np.round(pairs.weight, 3).tolist()))
    (12, [0.5])
    """
    shape = tuple(int(n) for n in patch_shape)
    if voxel_mask is None:
        net_flat = np.arange(int(np.prod(shape)), dtype=np.int64)
    else:
        net_flat = np.flatnonzero(np.asarray(voxel_mask).reshape(-1)).astype(np.int64)
    centres = np.stack(np.unravel_index(net_flat, shape), axis=-1).astype(np.float32)
    offsets = _sub_offsets(subsamples)
    linear = geometry.net_to_label[:3, :3]
    base = centres @ linear.T.astype(np.float32) + geometry.net_to_label[:3, 3].astype(np.float32)
    coords = base[:, None, :] + (offsets @ linear.T).astype(np.float32)[None, :, :]  # (n_net, n_sub, 3)
    del base, centres
    rounded = np.rint(coords)
    axis = geometry.slice_axis
    inside = np.abs(coords[..., axis] - rounded[..., axis]) <= 0.5 * geometry.thickness_fraction + 1e-6
    del coords
    label_size = int(np.prod(geometry.shape))
    flat = np.zeros(inside.shape, dtype=np.int64)
    for k, n in enumerate(geometry.shape):
        index = rounded[..., k].astype(np.int64)
        inside &= (index >= 0) & (index < n)
        flat = flat * n + index
    flat[~inside] = label_size  # label_size marks "no label voxel"
    # Unique (network voxel, label voxel) pairs with their point counts: sort each voxel's few
    # points and count runs (cheaper than a global np.unique over all points).
    flat.sort(axis=1)
    is_new = np.ones(flat.shape, dtype=bool)
    is_new[:, 1:] = flat[:, 1:] != flat[:, :-1]
    starts = np.flatnonzero(is_new.reshape(-1))
    counts = np.diff(np.append(starts, flat.size))
    pair_label = flat.reshape(-1)[starts]
    pair_net = net_flat[starts // flat.shape[1]]
    valid = pair_label < label_size
    pair_label, pair_net, counts = pair_label[valid], pair_net[valid], counts[valid]
    label_counts = np.bincount(pair_label, weights=counts, minlength=label_size)
    expected = subsamples**3 * geometry.thickness_fraction / abs(np.linalg.det(linear))
    keep_label = label_counts >= min_coverage * expected
    row_of_label = np.cumsum(keep_label) - 1
    keep_pair = keep_label[pair_label]
    pair_label, pair_net, counts = pair_label[keep_pair], pair_net[keep_pair], counts[keep_pair]
    weight = counts / label_counts[pair_label]
    return ForwardPairs(
        net_index=pair_net.astype(np.int64),
        label_row=row_of_label[pair_label].astype(np.int64),
        weight=weight.astype(np.float32),
        label_index=np.flatnonzero(keep_label).astype(np.int64),
    )


def nearest_label(geometry: LabelGeometry, label: np.ndarray, patch_shape) -> tuple[np.ndarray, np.ndarray]:
    """The naive alternative: each network voxel takes the label of the thick voxel nearest its centre.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        float32 label on the patch grid, and a boolean array: True where the voxel centre maps
        inside the label grid (voxels in a slice gap take the nearest slice).
    """
    shape = tuple(int(n) for n in patch_shape)
    idx = np.indices(shape).reshape(3, -1).T.astype(np.float64)
    coords = np.rint(idx @ geometry.net_to_label[:3, :3].T + geometry.net_to_label[:3, 3]).astype(np.int64)
    label_shape = np.asarray(geometry.shape)
    valid = np.all((coords >= 0) & (coords < label_shape), axis=1)
    values = np.zeros(len(idx), dtype=np.float32)
    values[valid] = np.asarray(label, dtype=np.float32)[tuple(coords[valid].T)]
    return values.reshape(shape), valid.reshape(shape)
