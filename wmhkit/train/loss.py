"""The super-resolution loss: BCE + soft Dice between A(p) and the thick-slice label (torch).

``A`` is the sparse forward model of :mod:`wmhkit.train.geometry` (a mean of p over each label
voxel's footprint). It is applied with ``index_add`` so the gradient reaches every voxel of p
that lies in a labelled footprint. The naive alternative compares p with the label up-sampled to
the network grid (:func:`naive_loss`).

A thick-slice label is itself a thresholded average: a rater (or ``wmhkit.synth``) marks a thick
voxel when lesion fills enough of its footprint. :func:`sr_threshold_loss` models that rule: it
scores the probability that A(p) crosses the label's threshold, so a lesion too small to be
labelled is not pushed towards 0 (the plain SR loss asks A(p) to equal 0 there, which teaches the
network to erase every lesion shallower than half a slice).
"""

from __future__ import annotations

import numpy as np
import torch

from wmhkit.train.geometry import ForwardPairs

__all__ = ["PairBatch", "apply_forward", "soft_dice_loss", "bce_dice_loss", "sr_loss", "sr_threshold_loss", "naive_loss"]

_EPS = 1e-6


class PairBatch:
    """Forward-model pairs of several patches, concatenated with offsets (one A for the batch).

    Parameters
    ----------
    pairs : list of ForwardPairs
        One per patch, in batch order.
    n_net : int
        Voxels per network patch (all patches share one shape).
    labels : list of numpy.ndarray, optional
        Per patch, the label value of each row (``label_array.flat[pairs.label_index]``).
    case_weights : sequence of float, optional
        Per patch loss weight (two-step re-weighting); default 1.
    """

    def __init__(self, pairs: list[ForwardPairs], n_net: int, labels=None, case_weights=None):
        offsets_net = np.arange(len(pairs)) * n_net
        counts = [p.n_labels for p in pairs]
        offsets_row = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64) if pairs else np.zeros(0, int)
        self.net_index = torch.from_numpy(np.concatenate([p.net_index + o for p, o in zip(pairs, offsets_net)]))
        self.label_row = torch.from_numpy(np.concatenate([p.label_row + o for p, o in zip(pairs, offsets_row)]))
        self.weight = torch.from_numpy(np.concatenate([p.weight for p in pairs]).astype(np.float32))
        self.n_rows = int(sum(counts))
        self.row_patch = torch.from_numpy(np.repeat(np.arange(len(pairs)), counts).astype(np.int64))
        self.target = None if labels is None else torch.from_numpy(np.concatenate(labels).astype(np.float32))
        weights = np.ones(len(pairs)) if case_weights is None else np.asarray(case_weights, dtype=np.float32)
        self.row_weight = torch.from_numpy(np.repeat(weights, counts).astype(np.float32))

    def to(self, device) -> "PairBatch":
        for name in ("net_index", "label_row", "weight", "row_patch", "target", "row_weight"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, value.to(device))
        return self


def apply_forward(prob: torch.Tensor, batch: PairBatch) -> torch.Tensor:
    """A(p): the mean of ``prob`` over each label voxel's footprint, shape ``(n_rows,)``.

    ``prob`` is any tensor whose flattened C-order layout matches the pairs' ``net_index``
    (patches stacked along the first axis).
    """
    values = prob.reshape(-1)[batch.net_index] * batch.weight
    out = torch.zeros(batch.n_rows, dtype=prob.dtype, device=prob.device)
    return out.index_add(0, batch.label_row, values)


def soft_dice_loss(prob: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None,
                   smooth: float = 1.0) -> torch.Tensor:
    """1 - soft Dice over all elements (``smooth`` in voxels keeps empty patches finite)."""
    w = torch.ones_like(prob) if weight is None else weight
    inter = (w * prob * target).sum()
    return 1.0 - (2.0 * inter + smooth) / ((w * prob).sum() + (w * target).sum() + smooth)


def bce_dice_loss(prob: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None,
                  dice_weight: float = 1.0) -> torch.Tensor:
    """Weighted mean binary cross-entropy plus ``dice_weight`` times the soft Dice loss."""
    w = torch.ones_like(prob) if weight is None else weight
    clipped = prob.clamp(_EPS, 1.0 - _EPS)
    bce = -(target * torch.log(clipped) + (1.0 - target) * torch.log1p(-clipped))
    bce = (w * bce).sum() / w.sum().clamp_min(_EPS)
    return bce + dice_weight * soft_dice_loss(prob, target, w)


def sr_loss(prob: torch.Tensor, batch: PairBatch, dice_weight: float = 1.0) -> torch.Tensor:
    """Super-resolution loss: BCE(A(p), y) + soft Dice(A(p), y) on the label's own grid.

    Parameters
    ----------
    prob : torch.Tensor
        Network probabilities on the patches, shape ``(n_patches, ...)``.
    batch : PairBatch
        Forward pairs and targets of the same patches.
    dice_weight : float, default 1.0
        Weight of the soft Dice term.
    """
    if batch.n_rows == 0:
        return prob.sum() * 0.0
    return bce_dice_loss(apply_forward(prob, batch), batch.target, batch.row_weight, dice_weight)


def sr_threshold_loss(prob: torch.Tensor, batch: PairBatch, *, label_threshold: float = 0.5,
                      temperature: float = 0.02, dice_weight: float = 1.0, plain_weight: float = 0.0) -> torch.Tensor:
    """Label-rule SR loss: BCE + soft Dice between sigmoid((A(p) - t) / T) and the label.

    The label is read as ``y = [A(lesion) > t]``; the network is scored on whether its own
    footprint average crosses ``t``, not on the average itself.

    ``prob``, ``batch`` and ``dice_weight`` are as in :func:`sr_loss`.

    Parameters
    ----------
    label_threshold : float, default 0.5
        Share of a thick voxel's footprint that lesion must fill for the voxel to be labelled
        (the synthetic labels use 0.5, :data:`wmhkit.synth.acquisition.LABEL_THRESHOLD`).
    temperature : float, default 0.02
        Softness of the threshold, in units of footprint share: an average 2 x ``temperature``
        below the threshold costs about 0.13 nats (a footprint 0.46 full, 0.04 below 0.5).
    plain_weight : float, default 0.0
        Weight of the plain :func:`sr_loss` added to it: a prior against unlabelled blobs
        (false positives on real heads) that costs some sensitivity to sub-threshold lesions.
    """
    if batch.n_rows == 0:
        return prob.sum() * 0.0
    footprint_mean = apply_forward(prob, batch)  # A(p), shared by both terms
    logits = (footprint_mean - float(label_threshold)) / float(temperature)
    w = batch.row_weight
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, batch.target, reduction="none")
    bce = (w * bce).sum() / w.sum().clamp_min(_EPS)
    loss = bce + dice_weight * soft_dice_loss(torch.sigmoid(logits), batch.target, w)
    if plain_weight:
        loss = loss + float(plain_weight) * bce_dice_loss(footprint_mean, batch.target, w, dice_weight)
    return loss


def naive_loss(prob: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, case_weights=None,
               dice_weight: float = 1.0) -> torch.Tensor:
    """Naive loss: BCE + soft Dice between p and the label up-sampled (nearest) to the network grid."""
    w = valid.to(prob.dtype)
    if case_weights is not None:
        w = w * torch.as_tensor(case_weights, dtype=prob.dtype, device=prob.device).reshape(-1, *[1] * (w.ndim - 1))
    return bce_dice_loss(prob, target, w, dice_weight)
