"""Slice viewer for a T1 with its lesion overlay: axis, slice, threshold, opacity, lesion-to-lesion jump.

In Jupyter with ipywidgets it shows sliders and buttons; anywhere else (a plain Python
session, a notebook rendered to HTML, a headless test) it shows or writes a static PNG of
the current view. The state lives in the :class:`SliceViewer` object, so scripts can drive
it too (``viewer.next_lesion(); viewer.to_png("lesion.png")``).
"""

from __future__ import annotations

import io
import logging
import os

import numpy as np
from scipy import ndimage

from wmhkit.errors import OptionError
from wmhkit.io import ImgLike, atomic_path
from wmhkit.plotting.slices import AXES, axis_index, compose_rgb, load_overlay_volume
from wmhkit.plotting.style import PALETTE, PROBABILITY_CMAP, house_style, new_figure

__all__ = ["SliceViewer", "view_slices", "widgets_available"]

logger = logging.getLogger(__name__)

_AXIS_NAMES = {number: name for name, number in AXES.items()}


def widgets_available() -> bool:
    """True inside a Jupyter kernel with ipywidgets installed (where sliders can be shown)."""
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class SliceViewer:
    """One subject's T1 with a lesion probability map or mask, one slice at a time.

    Parameters
    ----------
    t1 : str, os.PathLike or nibabel image
        The 3D T1 (any orientation; shown in neurological convention).
    overlay : str, os.PathLike or nibabel image, optional
        Lesion probability (0-1) or 0/1 mask; resampled onto the T1 grid if needed.
    axis : {"axial", "coronal", "sagittal"}, default "axial"
        Viewing direction.
    slice_index : int, optional
        Starting slice along ``axis`` (RAS voxel order); default the slice with the most
        lesion voxels, else the middle slice.
    threshold : float, default 0.5
        Probability above which voxels are shown as lesion and counted as lesions for the jump.
    alpha : float, default 0.6
        Overlay opacity, 0 (hidden) to 1 (opaque).

    Examples
    --------
    >>> import numpy as np, nibabel as nib
    >>> t1 = nib.Nifti1Image(np.random.default_rng(0).random((20, 24, 16)).astype("float32"), np.eye(4))
    >>> mask = np.zeros((20, 24, 16), "uint8"); mask[5:8, 5:8, 3:5] = 1; mask[12:15, 14:18, 10:12] = 1
    >>> viewer = SliceViewer(t1, nib.Nifti1Image(mask, np.eye(4)))
    >>> viewer.n_lesions, viewer.next_lesion(), viewer.slice_index
    (2, 0, 4)
    >>> viewer.render().shape      # rows (anterior-posterior) x columns (left-right) x RGB
    (24, 20, 3)
    """

    def __init__(
        self,
        t1: ImgLike,
        overlay: ImgLike | None = None,
        *,
        axis: str = "axial",
        slice_index: int | None = None,
        threshold: float = 0.5,
        alpha: float = 0.6,
        cmap: str = PROBABILITY_CMAP,
        colour: str = PALETTE["vermillion"],
    ) -> None:
        self.volume = load_overlay_volume(t1, overlay)
        self._axis = axis_index(axis)
        self.threshold = float(threshold)
        self.alpha = float(alpha)
        self.cmap = cmap
        self.colour = colour
        self._lesion_cache: dict[float, np.ndarray] = {}
        self.current_lesion: int | None = None
        self._slice = 0
        self.slice_index = self._default_slice() if slice_index is None else slice_index
        self._controls = None

    # -- state ---------------------------------------------------------------------------
    @property
    def axis(self) -> str:
        """Viewing direction: "axial", "coronal" or "sagittal"."""
        return _AXIS_NAMES[self._axis]

    @axis.setter
    def axis(self, value: str) -> None:
        new_axis = axis_index(value)
        if new_axis != self._axis:
            self._axis = new_axis
            self._slice = self._default_slice()
            self.current_lesion = None
        self._sync_controls()

    @property
    def n_slices(self) -> int:
        """Number of slices along the current axis."""
        return int(self.volume.background.shape[self._axis])

    @property
    def slice_index(self) -> int:
        """Current slice along the axis (RAS voxel order, 0-based)."""
        return self._slice

    @slice_index.setter
    def slice_index(self, value: int) -> None:
        value = int(value)
        if not 0 <= value < self.n_slices:
            raise OptionError(f"Slice {value} lies outside 0 to {self.n_slices - 1} along the {self.axis} axis.")
        self._slice = value
        self._sync_controls()

    @property
    def threshold(self) -> float:
        """Probability above which a voxel is lesion (0-1)."""
        return self._threshold

    @threshold.setter
    def threshold(self, value: float) -> None:
        if not 0.0 <= float(value) < 1.0:
            raise OptionError(f"threshold={value} must lie in [0, 1).")
        self._threshold = float(value)

    @property
    def alpha(self) -> float:
        """Overlay opacity (0-1)."""
        return self._alpha

    @alpha.setter
    def alpha(self, value: float) -> None:
        if not 0.0 <= float(value) <= 1.0:
            raise OptionError(f"alpha={value} must lie between 0 and 1.")
        self._alpha = float(value)

    # -- lesions -------------------------------------------------------------------------
    def _default_slice(self) -> int:
        if self.volume.overlay is not None:
            others = tuple(a for a in range(3) if a != self._axis)
            counts = (self.volume.overlay > getattr(self, "_threshold", 0.5)).sum(axis=others)
            if counts.max() > 0:
                return int(np.argmax(counts))
        return self.n_slices // 2

    def lesion_centres(self) -> np.ndarray:
        """Centre (RAS voxel coordinates) of each connected lesion above the threshold, shape (n, 3).

        Lesions are ordered along the current axis, then by size, so that "next" walks
        through the brain in one direction.
        """
        if self.volume.overlay is None:
            return np.zeros((0, 3))
        if self.threshold not in self._lesion_cache:
            labels, count = ndimage.label(self.volume.overlay > self.threshold)
            if count == 0:
                self._lesion_cache[self.threshold] = np.zeros((0, 3))
            else:
                index = np.arange(1, count + 1)
                centres = np.array(ndimage.center_of_mass(np.ones_like(labels), labels, index))
                sizes = ndimage.sum_labels(np.ones_like(labels), labels, index)
                self._lesion_cache[self.threshold] = np.column_stack([centres, sizes])
        table = self._lesion_cache[self.threshold]
        if len(table) == 0:
            return np.zeros((0, 3))
        order = np.lexsort((-table[:, 3], np.round(table[:, self._axis])))
        return table[order, :3]

    @property
    def n_lesions(self) -> int:
        """Number of connected lesions above the threshold."""
        return int(len(self.lesion_centres()))

    def _jump(self, step: int) -> int | None:
        centres = self.lesion_centres()
        if len(centres) == 0:
            logger.info("no lesion above threshold %.2f to jump to", self.threshold)
            return None
        if self.current_lesion is None or self.current_lesion >= len(centres):
            positions = np.round(centres[:, self._axis])
            later = np.flatnonzero(positions > self._slice) if step > 0 else np.flatnonzero(positions < self._slice)
            target = (later[0] if step > 0 else later[-1]) if later.size else (0 if step > 0 else len(centres) - 1)
        else:
            target = (self.current_lesion + step) % len(centres)
        self.current_lesion = int(target)
        self._slice = int(np.clip(np.round(centres[target, self._axis]), 0, self.n_slices - 1))
        self._sync_controls()
        return self.current_lesion

    def next_lesion(self) -> int | None:
        """Move to the next lesion along the axis (wrapping around); returns its number or None."""
        return self._jump(+1)

    def previous_lesion(self) -> int | None:
        """Move to the previous lesion along the axis (wrapping around); returns its number or None."""
        return self._jump(-1)

    # -- rendering -----------------------------------------------------------------------
    def render(self) -> np.ndarray:
        """The current view as an RGB array (float 0-1): rows run up, columns run right (RAS)."""
        background = self.volume.slice(self._axis, self._slice)
        overlay = None if self.volume.overlay is None else self.volume.slice(self._axis, self._slice, "overlay")
        colour = None
        if self.volume.is_mask:
            from matplotlib.colors import to_rgb

            colour = to_rgb(self.colour)
        return compose_rgb(background, overlay, window=self.volume.window, threshold=self.threshold,
                           alpha=self.alpha, cmap=self.cmap, colour=colour)

    def describe(self) -> str:
        """One line naming the view: axis, slice, position in mm, lesions."""
        position = self.volume.position_mm(self._axis, self._slice)
        text = f"{self.axis} slice {self._slice + 1}/{self.n_slices} ({'xyz'[self._axis]} = {position:.1f} mm)"
        if self.volume.overlay is not None:
            text += f", {self.n_lesions} lesions above p > {self.threshold:.2f}"
            if self.current_lesion is not None:
                text += f", at lesion {self.current_lesion + 1}"
        return text

    def figure(self, width_in: float = 4.0):
        """The current view as a :class:`matplotlib.figure.Figure` (aspect kept in mm)."""
        extent = self.volume.extent_mm(self._axis)
        aspect = (extent[3] - extent[2]) / max(extent[1] - extent[0], 1e-6)
        with house_style():
            fig = new_figure(width_in, width_in * aspect + 0.35, facecolor="black")
            ax = fig.add_subplot()
            ax.imshow(self.render(), origin="lower", extent=extent, interpolation="nearest")
            ax.set_title(self.describe(), color="white", fontsize=7)
            if self._axis != 0:
                ax.text(0.98, 0.02, "R", transform=ax.transAxes, color="white", fontsize=7, ha="right")
            ax.set_axis_off()
        return fig

    def to_png(self, path: str | os.PathLike | None = None, *, dpi: int = 100) -> bytes:
        """PNG bytes of the current view; also written (atomically) to ``path`` when given."""
        buffer = io.BytesIO()
        self.figure().savefig(buffer, format="png", dpi=dpi)
        data = buffer.getvalue()
        if path is not None:
            with atomic_path(path) as tmp:
                tmp.write_bytes(data)
        return data

    # -- widgets -------------------------------------------------------------------------
    def widget(self):
        """The ipywidgets panel (sliders, buttons and the image); built once and kept in sync."""
        if self._controls is None:
            from wmhkit.widgets._controls import build_viewer_controls

            self._controls = build_viewer_controls(self)
        return self._controls.box

    def _sync_controls(self) -> None:
        if getattr(self, "_controls", None) is not None:
            self._controls.refresh()

    def show(self):
        """Display the interactive panel in Jupyter, or a static PNG of the view elsewhere."""
        from IPython.display import Image, display

        if widgets_available():
            display(self.widget())
        else:
            display(Image(data=self.to_png()))

    def _ipython_display_(self) -> None:
        self.show()

    def __repr__(self) -> str:
        return f"SliceViewer({self.describe()})"


def view_slices(t1: ImgLike, overlay: ImgLike | None = None, **options) -> SliceViewer:
    """Open a :class:`SliceViewer` on a T1 and its lesion map (shown when it is a cell's last value).

    Parameters
    ----------
    t1, overlay : image-like
        The T1 and the lesion probability map or mask (e.g. ``result.probseg``).
    **options
        ``axis``, ``slice_index``, ``threshold``, ``alpha`` (see :class:`SliceViewer`).
    """
    return SliceViewer(t1, overlay, **options)
