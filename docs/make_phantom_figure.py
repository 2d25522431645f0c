"""Draw docs/figures/phantom.png: what the synthetic phantoms look like.

Rows: axial and coronal slices of a skull-stripped and a skull-on phantom. Columns: the 3D
T1, the 2D FLAIR (thick axial slices, shown on the T1 grid so the slice thickness is visible),
the FLAIR label (the thick-slice label, red) and the exact 1 mm lesion mask (yellow) over the T1.

Run from the repository root::

    python docs/make_phantom_figure.py [--out docs/figures/phantom.png] [--voxel-size 1.0]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402

from wmhkit.io import reorient_to_ras  # noqa: E402
from wmhkit.synth import make_phantom  # noqa: E402


def _on_t1_grid(img, t1_ras, order=0):
    """Resample ``img`` onto the RAS T1 grid (nearest by default)."""
    to_img = np.linalg.inv(img.affine) @ t1_ras.affine
    return ndimage.affine_transform(
        np.asarray(img.dataobj, dtype=np.float32), to_img[:3, :3], offset=to_img[:3, 3],
        output_shape=t1_ras.shape, order=order, mode="constant", cval=0.0,
    )


def _views(volume, centre):
    """Axial (x-y) and coronal (x-z) slices through ``centre``, oriented for display."""
    return {"axial": volume[:, :, centre[2]].T, "coronal": volume[:, centre[1], :].T}


def _panel_row(axes, phantom, title):
    t1_ras = reorient_to_ras(phantom.t1)
    t1 = np.asarray(t1_ras.dataobj, dtype=np.float32)
    flair = _on_t1_grid(phantom.flair, t1_ras)
    label = _on_t1_grid(phantom.flair_label, t1_ras) > 0.5
    mask = np.asarray(reorient_to_ras(phantom.lesion_mask).dataobj) > 0
    index = np.array(np.nonzero(mask))
    centre = index.mean(axis=1).astype(int) if index.size else np.array(t1.shape) // 2
    centre[1] = int(np.median(index[1])) if index.size else centre[1]
    t1_max = np.percentile(t1[t1 > 0], 99.5)
    flair_max = np.percentile(flair[flair > 0], 99.5)
    for row, view in enumerate(("axial", "coronal")):
        slices = {name: _views(v, centre)[view] for name, v in
                  (("t1", t1), ("flair", flair), ("label", label), ("mask", mask))}
        images = [
            (slices["t1"], "gray", t1_max, None, "T1 (3D, ~1 mm)"),
            (slices["flair"], "gray", flair_max, None, "FLAIR (2D, thick slices)"),
            (slices["t1"], "gray", t1_max, ("label", "Reds"), "FLAIR label on T1"),
            (slices["t1"], "gray", t1_max, ("mask", "autumn"), "exact lesion mask on T1"),
        ]
        for column, (image, cmap, vmax, overlay, name) in enumerate(images):
            ax = axes[row, column]
            ax.imshow(image, cmap=cmap, vmin=0, vmax=vmax, origin="lower", interpolation="nearest")
            if overlay:
                shown = np.ma.masked_where(~slices[overlay[0]], slices[overlay[0]].astype(float))
                ax.imshow(shown, cmap=overlay[1], vmin=0, vmax=1.2, origin="lower", alpha=0.75,
                          interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(name, fontsize=9)
            if column == 0:
                ax.set_ylabel(f"{title}\n{view}", fontsize=9)


def main(argv=None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(Path(__file__).parent / "figures" / "phantom.png"))
    parser.add_argument("--voxel-size", type=float, default=1.0)
    args = parser.parse_args(argv)
    phantoms = [
        ("skull-stripped, burden 2", make_phantom(1, lesion_burden=2.0, voxel_size_mm=args.voxel_size, age_years=78)),
        ("skull-on, burden 1", make_phantom(2, lesion_burden=1.0, voxel_size_mm=args.voxel_size, skull=True,
                                             flair_slice_mm=4.0, age_years=70)),
    ]
    fig, axes = plt.subplots(4, 4, figsize=(11, 12.5))
    for block, (title, phantom) in enumerate(phantoms):
        _panel_row(axes[2 * block: 2 * block + 2], phantom, title)
    fig.suptitle("wmhkit synthetic phantoms (make_phantom): T1, thick-slice FLAIR, label and exact mask", fontsize=11)
    fig.tight_layout()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    print(out)
    return out


if __name__ == "__main__":
    main()
