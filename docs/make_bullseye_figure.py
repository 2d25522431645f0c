"""Draw the 36-region bullseye parcellation on the MNI152 template.

Writes ``docs/figures/bullseye_template.png``: axial and coronal slices of the template T1 with
the bullseye labels on top (neurological view: the subject's left on the left) (one hue per lobe/side, basal ganglia/thalamus in brown; shells from
dark, next to the ventricles, to light, under the cortex).

Usage::

    python docs/make_bullseye_figure.py [--out docs/figures/bullseye_template.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap, to_rgb  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from wmhkit.preprocess import load_template  # noqa: E402
from wmhkit.regions import load_bullseye_template, read_table  # noqa: E402

HUES = {
    "frontal_left": "#1f77b4", "parietal_left": "#2ca02c", "temporal_left": "#ff7f0e", "occipital_left": "#9467bd",
    "frontal_right": "#17becf", "parietal_right": "#bcbd22", "temporal_right": "#d62728", "occipital_right": "#e377c2",
    "basal_ganglia_thalamus": "#8c564b",
}
AXIAL_MM = (-4, 10, 24, 38)
CORONAL_MM = (10, -20)


def _colours() -> ListedColormap:
    table = read_table("bullseye")
    colours = [(0, 0, 0, 0)]
    for region, shell in zip(table["region"], table["shell"]):
        base = np.array(to_rgb(HUES[region]))
        # shell 1 darkest, shell 4 lightest
        mix = (int(shell) - 1) / 3 * 0.6
        colours.append((*(base * (1 - mix) + mix), 0.85))
    return ListedColormap(colours)


def main(out: Path) -> Path:
    t1_img = load_template("t1")
    t1 = np.asarray(t1_img.dataobj)
    labels = np.asarray(load_bullseye_template().dataobj)
    origin = t1_img.affine[:3, 3]
    cmap = _colours()
    panels = [("axial", z) for z in AXIAL_MM] + [("coronal", y) for y in CORONAL_MM]
    fig, axes = plt.subplots(2, 3, figsize=(12, 9.5), facecolor="black")
    for ax, (view, mm) in zip(axes.ravel(), panels):
        if view == "axial":
            k = int(round(mm - origin[2]))
            background, overlay = t1[:, :, k].T, labels[:, :, k].T
        else:
            j = int(round(mm - origin[1]))
            background, overlay = t1[:, j, :].T, labels[:, j, :].T
        ax.imshow(background, cmap="gray", origin="lower", interpolation="nearest")
        ax.imshow(np.ma.masked_equal(overlay, 0), cmap=cmap, vmin=-0.5, vmax=36.5, origin="lower", interpolation="nearest")
        ax.set_title(f"{view} {'z' if view == 'axial' else 'y'} = {mm} mm (MNI)", color="white", fontsize=11)
        # Voxel x grows to the right (RAS), so the subject's left is on the left (neurological view).
        ax.text(0.03, 0.03, "L", color="white", transform=ax.transAxes, fontsize=11)
        ax.text(0.94, 0.03, "R", color="white", transform=ax.transAxes, fontsize=11)
        ax.axis("off")
    handles = [Patch(color=colour, label=name.replace("_", " ")) for name, colour in HUES.items()]
    handles += [Patch(color=str(0.25 + 0.2 * s), label=f"shell {s + 1}" + (" (ventricle)" if s == 0 else " (cortex)" if s == 3 else ""))
                for s in range(4)]
    fig.legend(handles=handles, loc="lower center", ncol=5, fontsize=9, frameon=False, labelcolor="white")
    fig.suptitle("wmhkit bullseye: 4 lobes x 2 hemispheres + basal ganglia/thalamus, x 4 depth shells (36 regions)",
                 color="white", fontsize=12)
    fig.subplots_adjust(left=0.01, right=0.99, top=0.93, bottom=0.1, wspace=0.02, hspace=0.08)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100, facecolor="black")
    plt.close(fig)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "figures" / "bullseye_template.png")
    print(main(parser.parse_args().out))
