"""Lesion overlay mosaics: rows of slices of the T1 with the lesion probability or mask on top."""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from wmhkit.errors import OptionError
from wmhkit.io import ImgLike
from wmhkit.plotting.slices import OverlayVolume, axis_index, choose_slices, load_overlay_volume
from wmhkit.plotting.style import PALETTE, PROBABILITY_CMAP, house_style, new_figure

__all__ = ["plot_lesion_mosaic", "plot_overlay_comparison", "draw_mosaic"]

logger = logging.getLogger(__name__)

_AXIS_LETTER = {0: "x", 1: "y", 2: "z"}
_KINDS = ("auto", "probability", "mask")


def draw_mosaic(
    volume: OverlayVolume,
    *,
    axis: int,
    slices: Sequence[int],
    n_columns: int,
    threshold: float,
    display_min: float,
    contour: bool,
    alpha: float,
    as_mask: bool,
    colour: str,
    cmap: str,
    vmax: float,
    colorbar_label: str | None,
    title: str | None,
    width_in: float,
) -> Figure:
    """Draw a prepared :class:`~wmhkit.plotting.slices.OverlayVolume` as a mosaic (internal helper)."""
    n_columns = max(1, min(int(n_columns), len(slices)))
    n_rows = int(np.ceil(len(slices) / n_columns))
    extent = volume.extent_mm(axis)
    panel_aspect = (extent[3] - extent[2]) / max(extent[1] - extent[0], 1e-6)
    colorbar = colorbar_label is not None and volume.overlay is not None and not as_mask
    panel_w = width_in / (n_columns + (0.35 if colorbar else 0.0))
    height_in = n_rows * panel_w * panel_aspect + (0.3 if title else 0.0) + 0.15
    with house_style():
        fig = new_figure(width_in, height_in, facecolor="black")
        fig.get_layout_engine().set(w_pad=0.01, h_pad=0.01, wspace=0.0, hspace=0.0)
        axes = fig.subplots(n_rows, n_columns, squeeze=False)
        norm = Normalize(vmin=display_min, vmax=vmax)
        for ax, index in zip(axes.flat, slices):
            ax.set_facecolor("black")
            ax.imshow(
                volume.slice(axis, index), cmap="gray", vmin=volume.window[0], vmax=volume.window[1],
                origin="lower", extent=extent,
            )
            if volume.overlay is not None:
                _draw_overlay(ax, volume.slice(axis, index, "overlay"), extent, threshold=threshold,
                              display_min=display_min, contour=contour, alpha=alpha, as_mask=as_mask,
                              colour=colour, cmap=cmap, norm=norm)
            position = volume.position_mm(axis, index)
            ax.text(0.03, 0.97, f"{_AXIS_LETTER[axis]} = {position:.0f} mm", transform=ax.transAxes,
                    color="white", fontsize=7, va="top", ha="left")
            ax.set_axis_off()
        for ax in list(axes.flat)[len(slices):]:
            ax.set_axis_off()
        if axis != 0:
            # Neurological convention: the subject's right on the right of each panel.
            first = axes.flat[0]
            first.text(0.97, 0.03, "R", transform=first.transAxes, color="white", fontsize=7, ha="right")
        if colorbar:
            bar = fig.colorbar(ScalarMappable(norm=norm, cmap=_shifted_cmap(cmap)), ax=axes, shrink=0.8,
                               fraction=0.04, pad=0.01)
            bar.set_label(colorbar_label, color="white")
            bar.ax.tick_params(colors="white")
            bar.outline.set_edgecolor("white")
        if title:
            fig.suptitle(title, color="white")
    return fig


def _shifted_cmap(cmap: str):
    # The same colours as compose_rgb: the map's darkest third is skipped (invisible on a dark T1).
    from matplotlib.colors import ListedColormap

    return ListedColormap(colormaps[cmap](np.linspace(0.35, 1.0, 256)))


def _draw_overlay(ax, data, extent, *, threshold, display_min, contour, alpha, as_mask, colour, cmap, norm):
    if as_mask or contour:
        level = threshold
        if contour:
            if (data > level).any():
                ax.contour(data, levels=[level], colors=[colour], linewidths=0.9, origin="lower",
                           extent=extent)
            return
        shown = np.ma.masked_less_equal(data, level)
        ax.imshow(np.ma.masked_where(shown.mask, np.ones_like(data)), cmap=_single(colour), vmin=0, vmax=1,
                  alpha=alpha, origin="lower", extent=extent)
        return
    shown = np.ma.masked_less_equal(data, display_min)
    ax.imshow(shown, cmap=_shifted_cmap(cmap), norm=norm, alpha=alpha, origin="lower", extent=extent)


def _single(colour: str):
    from matplotlib.colors import ListedColormap

    return ListedColormap([colour])


def plot_lesion_mosaic(
    t1: ImgLike,
    overlay: ImgLike | None = None,
    *,
    axis: str = "axial",
    n_slices: int = 12,
    n_columns: int = 6,
    slices: Sequence[int] | None = None,
    kind: str = "auto",
    threshold: float = 0.5,
    display_min: float = 0.1,
    contour: bool = False,
    alpha: float = 0.8,
    colour: str = PALETTE["vermillion"],
    cmap: str = PROBABILITY_CMAP,
    title: str | None = None,
    width_in: float = 7.0,
) -> Figure:
    """Rows of T1 slices with the lesion probability map or mask drawn on top.

    Parameters
    ----------
    t1 : str, os.PathLike or nibabel image
        The 3D T1 shown in grey (any orientation; shown in neurological convention).
    overlay : str, os.PathLike or nibabel image, optional
        Lesion probability (0-1) or 0/1 mask; resampled onto the T1 grid if its grid differs.
    axis : {"axial", "coronal", "sagittal"}, default "axial"
        Direction of the slices.
    n_slices : int, default 12
        Number of slices, spread evenly over the slices that hold lesions (over the head when
        the overlay is empty). Ignored when ``slices`` is given.
    n_columns : int, default 6
        Slices per row.
    slices : sequence of int, optional
        Explicit slice numbers along ``axis`` in RAS voxel order.
    kind : {"auto", "probability", "mask"}, default "auto"
        "mask" paints voxels above ``threshold`` in ``colour``; "probability" colours voxels
        above ``display_min`` by their probability with a colour bar; "auto" picks "mask" for
        0/1 overlays.
    threshold : float, default 0.5
        Probability above which a voxel is lesion (mask fill and contour level).
    display_min : float, default 0.1
        Smallest probability painted in "probability" mode.
    contour : bool, default False
        Draw only the outline of the lesions (voxels above ``threshold``), leaving the T1
        visible underneath.
    alpha : float, default 0.8
        Opacity of the overlay (0-1).
    colour : str, default Okabe-Ito vermillion
        Colour of mask fills and contours.
    cmap : str, default "magma"
        Colour map of probabilities.
    title : str, optional
        Figure title.
    width_in : float, default 7.0
        Figure width in inches (a two-column journal figure).

    Returns
    -------
    matplotlib.figure.Figure
        Save it with :func:`wmhkit.plotting.save_figure`.

    Raises
    ------
    wmhkit.errors.OptionError
        For an unknown ``axis`` or ``kind``, or slice numbers outside the image.
    wmhkit.errors.InputImageError
        For unreadable images.
    """
    if kind not in _KINDS:
        raise OptionError(f"kind={kind!r} is unknown; use one of {', '.join(_KINDS)}.")
    if not 0.0 <= alpha <= 1.0:
        raise OptionError(f"alpha={alpha} must lie between 0 and 1.")
    axis_number = axis_index(axis)
    volume = load_overlay_volume(t1, overlay)
    as_mask = kind == "mask" or (kind == "auto" and volume.is_mask)
    if slices is None:
        slices = choose_slices(volume, axis_number, n_slices, threshold)
    else:
        size = volume.background.shape[axis_number]
        bad = [int(s) for s in slices if not 0 <= int(s) < size]
        if bad:
            raise OptionError(f"Slices {bad} lie outside the image (0 to {size - 1} along {axis}); choose others.")
        slices = [int(s) for s in slices]
    logger.debug("mosaic of %d %s slices", len(slices), axis)
    return draw_mosaic(
        volume, axis=axis_number, slices=slices, n_columns=n_columns, threshold=threshold,
        display_min=0.0 if as_mask else display_min, contour=contour, alpha=alpha, as_mask=as_mask,
        colour=colour, cmap=cmap, vmax=1.0, colorbar_label="Lesion probability", title=title, width_in=width_in,
    )


def plot_overlay_comparison(
    t1: ImgLike,
    overlays: dict,
    *,
    axis: str = "coronal",
    n_slices: int = 5,
    slices: Sequence[int] | None = None,
    threshold: float = 0.5,
    contour: bool = False,
    alpha: float = 0.8,
    colour: str = PALETTE["vermillion"],
    title: str | None = None,
    width_in: float = 7.0,
) -> Figure:
    """One row of slices per lesion map, same slices in every row: truth against methods.

    Parameters
    ----------
    t1 : str, os.PathLike or nibabel image
        The T1 shown in grey.
    overlays : dict of str to image-like
        Row name -> lesion mask or probability map (thresholded at ``threshold``), e.g.
        ``{"truth": mask, "super-resolution loss": p1, "naive loss": p2}``. Each is resampled
        onto the T1 grid if needed (a thick-slice label then shows its slabs).
    axis : {"axial", "coronal", "sagittal"}, default "coronal"
        Direction of the slices; "coronal" shows thick-slice artefacts of axial labels best.
    n_slices : int, default 5
        Slices per row, spread over the lesions of the first overlay.
    slices : sequence of int, optional
        Explicit slice numbers (RAS voxel order along ``axis``).
    threshold : float, default 0.5
        Voxels above it are painted (or outlined with ``contour``).
    contour : bool, default False
        Outline the lesions instead of filling them.
    alpha : float, default 0.8
        Fill opacity.
    colour : str, default Okabe-Ito vermillion
        Fill and outline colour.
    title : str, optional
        Figure title.
    width_in : float, default 7.0
        Figure width in inches.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not overlays:
        raise OptionError("plot_overlay_comparison needs at least one overlay in the dict.")
    axis_number = axis_index(axis)
    volumes = {name: load_overlay_volume(t1, img) for name, img in overlays.items()}
    first = next(iter(volumes.values()))
    if slices is None:
        slices = choose_slices(first, axis_number, n_slices, threshold)
    extent = first.extent_mm(axis_number)
    panel_w = (width_in - 0.3) / len(slices)
    panel_h = panel_w * (extent[3] - extent[2]) / max(extent[1] - extent[0], 1e-6)
    with house_style():
        fig = new_figure(width_in, panel_h * len(volumes) + (0.35 if title else 0.1), facecolor="black")
        fig.get_layout_engine().set(w_pad=0.01, h_pad=0.01, wspace=0.0, hspace=0.0)
        axes = fig.subplots(len(volumes), len(slices), squeeze=False)
        for row, (name, volume) in zip(axes, volumes.items()):
            for ax, index in zip(row, slices):
                ax.imshow(volume.slice(axis_number, index), cmap="gray", vmin=first.window[0], vmax=first.window[1],
                          origin="lower", extent=extent)
                _draw_overlay(ax, volume.slice(axis_number, index, "overlay"), extent, threshold=threshold,
                              display_min=threshold, contour=contour, alpha=alpha, as_mask=True, colour=colour,
                              cmap=PROBABILITY_CMAP, norm=None)
                # Hidden ticks and spines rather than set_axis_off, so the row name (a y label)
                # keeps its room in the constrained layout.
                ax.set_xticks([])
                ax.set_yticks([])
                for spine in ax.spines.values():
                    spine.set_visible(False)
            row[0].set_ylabel(name, color="white", fontsize=8)
        for ax, index in zip(axes[0], slices):
            ax.set_title(f"{_AXIS_LETTER[axis_number]} = {first.position_mm(axis_number, index):.0f} mm",
                         color="white", fontsize=7)
        if title:
            fig.suptitle(title, color="white")
    return fig
