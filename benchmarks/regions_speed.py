"""Time of the regional quantification on the real 1.75 mm head (what it adds to ``wmhkit segment``).

The head (137 x 137 x 93, 1.75 mm, skull on) is aligned to MNI once with
``wmhkit.preprocess.align_to_mni`` (timed, but not part of the regions cost: ``wmhkit segment``
aligns anyway). A lesion mask of 12 spheres (2-6 mm radius, periventricular and deep, both
hemispheres) is drawn at fixed MNI positions. Then ``quantify_subject`` (every scheme, lesion
table, ventricle refinement on the T1) runs ``--repeats`` times with the atlas cache warm, and
once in a fresh process-level state (cold in-memory cache, warm disk cache). The cold
derivation of the atlases into an empty cache folder is timed separately.

Usage::

    python benchmarks/regions_speed.py [--repeats 7] [--write benchmarks/results/regions_speed.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_environment import environment_line

REAL_T1 = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real_t1"
HEAD = REAL_T1 / "head_t1_1p75mm.nii.gz"
HEAD_1MM = REAL_T1 / "head_t1_conformed_1mm.nii.gz"
LESIONS_MNI = [  # (x, y, z) mm, radius mm
    ((-22, -20, 32), 4), ((24, -18, 30), 5), ((-18, 12, 24), 3), ((20, 14, 26), 4), ((-28, -50, 24), 6),
    ((30, -48, 22), 3), ((-30, 20, 40), 2), ((28, -10, 45), 3), ((-24, -70, 10), 3), ((26, 30, 10), 2),
    ((-34, -30, 30), 3), ((34, 0, 30), 4),
]


def _mask(t1, alignment):
    import nibabel as nib

    ijk = np.indices(t1.shape).reshape(3, -1).T
    to_mni = alignment.subject_to_mni @ t1.affine
    mni = ijk @ to_mni[:3, :3].T + to_mni[:3, 3]
    data = np.zeros(len(mni), np.uint8)
    for centre, radius in LESIONS_MNI:
        data[np.linalg.norm(mni - np.array(centre), axis=1) <= radius] = 1
    return nib.Nifti1Image(data.reshape(t1.shape), t1.affine)


def _cold_derivation_s() -> float:
    import subprocess
    import sys

    code = (
        "import time; t = time.perf_counter(); from wmhkit.regions import load_parcels, load_bullseye_template; "
        "load_parcels(); a = time.perf_counter() - t; load_bullseye_template(); print(a, time.perf_counter() - t)"
    )
    with tempfile.TemporaryDirectory() as folder:
        env = dict(os.environ, WMHKIT_CACHE_DIR=folder)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    parcels_s, both_s = map(float, out.split())
    return parcels_s, both_s


def main(repeats: int, write: Path | None) -> str:
    from wmhkit.io import check_img, mask_volume_ml
    from wmhkit.preprocess import align_to_mni
    from wmhkit.regions import quantify_subject
    from wmhkit.regions.anatomy import brain_box, subject_anatomy

    t1 = check_img(HEAD)
    start = time.perf_counter()
    alignment = align_to_mni(t1)
    align_s = time.perf_counter() - start
    mask = _mask(t1, alignment)
    quantify_subject(mask, t1, alignment=alignment)  # warm the disk cache and imports
    times, cpu_times, no_refine, anatomy_times = [], [], [], []
    load_before = os.getloadavg()[0]
    for _ in range(repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        result = quantify_subject(mask, t1, alignment=alignment)
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
        start = time.perf_counter()
        quantify_subject(mask, t1, alignment=alignment, refine_ventricles=False)
        no_refine.append(time.perf_counter() - start)
        start = time.perf_counter()
        subject_anatomy(t1, alignment, t1=np.asarray(t1.dataobj, np.float32), lesion=np.asarray(mask.dataobj) > 0)
        anatomy_times.append(time.perf_counter() - start)
    # The 1 mm conformed head (256^3): how the cost grows with the input grid.
    t1_1mm = check_img(HEAD_1MM)
    alignment_1mm = align_to_mni(t1_1mm)
    mask_1mm = _mask(t1_1mm, alignment_1mm)
    quantify_subject(mask_1mm, t1_1mm, alignment=alignment_1mm)
    wall_1mm, cpu_1mm = [], []
    for _ in range(3):
        start, cpu_start = time.perf_counter(), time.process_time()
        quantify_subject(mask_1mm, t1_1mm, alignment=alignment_1mm)
        wall_1mm.append(time.perf_counter() - start)
        cpu_1mm.append(time.process_time() - cpu_start)
    load_after = os.getloadavg()[0]
    box = brain_box(t1, alignment)
    parcels_s, both_s = _cold_derivation_s()
    s = result.summary
    lines = [
        "# regions_speed: regional quantification on the real 1.75 mm head",
        "",
        environment_line(),
        "",
        f"Machine: {os.cpu_count()} CPU cores (shared), 24 GB RAM, no GPU; {platform.python_implementation()} "
        f"{platform.python_version()}. Command: `python benchmarks/regions_speed.py --repeats {repeats} --write "
        "benchmarks/results/regions_speed.md`.",
        "",
        f"Input: `head_t1_1p75mm.nii.gz` {t1.shape} (1.75 mm, skull on); brain box {tuple(b.stop - b.start for b in box)} "
        f"voxels; synthetic mask of {len(LESIONS_MNI)} spheres, {mask_volume_ml(mask):.2f} mL, "
        f"{s['lesion_count']} lesions. MNI alignment (not part of the regions cost): {align_s:.2f} s, quality "
        f"{alignment.quality:.2f}.",
        "",
        "| step | median s | min s | max s |",
        "|---|---|---|---|",
        f"| quantify_subject, all 7 schemes + lesion table + ventricle refinement | {statistics.median(times):.2f} | "
        f"{min(times):.2f} | {max(times):.2f} |",
        f"| same, CPU time of the process (what wall time is on an idle machine: single-threaded code) | "
        f"{statistics.median(cpu_times):.2f} | {min(cpu_times):.2f} | {max(cpu_times):.2f} |",
        f"| same without ventricle refinement | {statistics.median(no_refine):.2f} | {min(no_refine):.2f} | {max(no_refine):.2f} |",
        f"| of which subject_anatomy (atlas to subject, refinement, 2 distance maps) | "
        f"{statistics.median(anatomy_times):.2f} | {min(anatomy_times):.2f} | {max(anatomy_times):.2f} |",
        f"| 1 mm conformed head {t1_1mm.shape}, quantify_subject wall (3 repeats) | {statistics.median(wall_1mm):.2f} | "
        f"{min(wall_1mm):.2f} | {max(wall_1mm):.2f} |",
        f"| 1 mm conformed head, CPU time | {statistics.median(cpu_1mm):.2f} | {min(cpu_1mm):.2f} | {max(cpu_1mm):.2f} |",
        f"| first use: derive the MNI parcels into an empty cache (once per machine) | {parcels_s:.1f} | | |",
        f"| first use: parcels + bullseye template (once per machine) | {both_s:.1f} | | |",
        "",
        f"Repeats: {repeats}. Ventricles: {s['ventricle_ml']:.1f} mL after refinement (refined: {s['ventricles_refined']}). "
        f"Fazekas-like estimate of the synthetic mask: {s['fazekas_estimate']}.",
        "",
        f"Load average (1 min) on the shared 2-core machine during the runs: {load_before:.1f} before, "
        f"{load_after:.1f} after: other jobs were running, so wall times are inflated by about the ratio of wall to "
        "CPU time; the CPU-time row is the cost of the regions step itself.",
        "",
        "Target (issue 5): regions add no more than 2 s to `wmhkit segment` on this head.",
    ]
    text = "\n".join(lines) + "\n"
    if write:
        write.parent.mkdir(parents=True, exist_ok=True)
        write.write_text(text)
    return text


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--write", type=Path, default=None)
    args = parser.parse_args()
    print(main(args.repeats, args.write))
