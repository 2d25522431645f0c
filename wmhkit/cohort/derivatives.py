"""The BIDS-derivatives frame of a cohort folder, so that it passes the BIDS validator.

* ``dataset_description.json`` (``DatasetType`` "derivative", ``GeneratedBy`` wmhkit and its
  version, the source dataset; a BIDS source is linked as ``raw`` so that sidecars can name
  their source as ``bids:raw:sub-01/anat/sub-01_T1w.nii.gz``);
* ``README.md`` saying what the files are;
* ``.bidsignore`` for the files BIDS has no name for (wmhkit's summary JSON, regional and
  lesion tables, QC and error files, the cohort-level table, report and map);
* a JSON sidecar beside every image (``Description``, ``Sources``, ``SpatialReference`` and,
  for masks, ``Type``). Images in the T1's space carry no ``space-`` entity; MNI images carry
  ``space-MNI152NLin2009aSym``, the template nilearn ships (:mod:`wmhkit.preprocess.templates`).

Every file is written atomically; concurrent participant runs write the same root files with
the same content, so the last rename wins harmlessly.
"""

from __future__ import annotations

from pathlib import Path

from wmhkit import __version__
from wmhkit.io import OutputPaths, atomic_path, sidecar_path, write_json

__all__ = ["BIDS_VERSION", "BIDSIGNORE", "MNI_SPACE", "write_dataset_description", "write_sidecars", "source_uri"]

BIDS_VERSION = "1.9.0"
#: The ``space-`` label of wmhkit's MNI grid (ICBM 2009a nonlinear symmetric, 1 mm).
MNI_SPACE = "MNI152NLin2009aSym"
_MNI_REFERENCE = "https://www.bic.mni.mcgill.ca/ServicesAtlases/ICBM152NLin2009"
#: Patterns (``.bidsignore``, gitignore syntax) of the files BIDS has no name for.
BIDSIGNORE = ("*_wmh.json", "*_regions.tsv", "*_lesions.tsv", "*_qc.json", "*_qc.png", "*_error.json", "wmhkit_*")

_README = """# wmhkit derivatives

White-matter hyperintensity (WMH) segmentation of 3D T1 images by wmhkit {version}.

Per subject and session, in `sub-<label>/[ses-<label>/]anat/`:

* `*_desc-wmh_mask.nii.gz`: lesion mask (uint8, 1 = lesion) on the T1's grid;
* `*_desc-wmh_probseg.nii.gz`: lesion probability (0-1) on the T1's grid;
* `*_desc-brain_mask.nii.gz`: brain mask on the T1's grid;
* `*_space-{space}_desc-wmh_mask.nii.gz`: the lesion mask on the MNI152 2009a 1 mm grid;
* `*_wmh.json`: volumes (mL), eTIV, model and software versions, the input's sha256;
* `*_regions.tsv`, `*_lesions.tsv`: regional lesion volumes and one row per lesion;
* `*_qc.json`, `*_desc-overlay_qc.png`: quality-control measures and an overlay thumbnail.

Each image has a JSON sidecar naming its source. At the top: `wmhkit_cohort.tsv` (one row per
T1), `wmhkit_report.html` (QC report) and the cohort's MNI lesion-frequency map, written by the
group step (`wmhkit BIDS_DIR OUTPUT_DIR group` or `wmhkit cohort report`).
"""

#: Per image: description, mask type (None for a probability map), in MNI space.
_IMAGES = {
    "wmh_mask": ("White-matter hyperintensity mask (1 = lesion) on the T1's grid: the probability map at the "
                 "threshold recorded in the subject's *_wmh.json.", "Lesion", False),
    "wmh_probseg": ("White-matter hyperintensity probability (0-1) on the T1's grid.", None, False),
    "brain_mask": ("Brain mask on the T1's grid.", "Brain", False),
    "mni_mask": ("The lesion mask resampled (nearest neighbour) to the MNI152 2009a symmetric 1 mm grid "
                 "through the subject's affine alignment.", "Lesion", True),
    "mni_probseg": ("The lesion probability resampled to the MNI152 2009a symmetric 1 mm grid through the "
                    "subject's affine alignment.", None, True),
}


def source_uri(input_path: str | Path, bids_root: str | Path | None = None) -> str:
    """How a sidecar names its source T1: a BIDS URI inside ``bids_root``, else a file URI.

    >>> source_uri("/data/bids/sub-01/anat/sub-01_T1w.nii.gz", "/data/bids")
    'bids:raw:sub-01/anat/sub-01_T1w.nii.gz'
    >>> source_uri("/scans/t1.nii.gz")
    'file:///scans/t1.nii.gz'
    """
    path = Path(input_path).resolve()
    if bids_root is not None:
        try:
            return f"bids:raw:{path.relative_to(Path(bids_root).resolve()).as_posix()}"
        except ValueError:
            pass
    return path.as_uri()


def write_dataset_description(out_dir: str | Path, source: str, *, bids_root: str | Path | None = None) -> Path:
    """Write ``dataset_description.json``, ``README.md`` and ``.bidsignore`` of a derivatives folder.

    Parameters
    ----------
    out_dir : str or path
        The derivatives folder.
    source : str
        The cohort's input (folder, glob or manifest), recorded under ``SourceDatasets``.
    bids_root : str or path, optional
        The source when it is a BIDS dataset: linked as ``raw`` (``DatasetLinks``).

    Returns
    -------
    pathlib.Path
        ``dataset_description.json``.
    """
    out_dir = Path(out_dir)
    url = Path(source).resolve().as_uri() if Path(source).exists() else str(source)
    description = {
        "Name": "wmhkit white-matter hyperintensity segmentation",
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "wmhkit", "Version": __version__, "Description": "WMH from 3D T1"}],
        "SourceDatasets": [{"URL": url}],
    }
    if bids_root is not None:
        description["DatasetLinks"] = {"raw": Path(bids_root).resolve().as_uri()}
    with atomic_path(out_dir / "README.md") as tmp:
        tmp.write_text(_README.format(version=__version__, space=MNI_SPACE))
    with atomic_path(out_dir / ".bidsignore") as tmp:
        tmp.write_text("\n".join(BIDSIGNORE) + "\n")
    return write_json(description, out_dir / "dataset_description.json")


def write_sidecars(paths: OutputPaths, source: str, subdir: str | None = None) -> list[Path]:
    """Write the JSON sidecar of each of a subject's images that exists.

    Parameters
    ----------
    paths : wmhkit.io.OutputPaths
        The subject's outputs.
    source : str
        The T1 as a URI (:func:`source_uri`): ``Sources`` of the subject-space images and their
        ``SpatialReference``.
    subdir : str, optional
        The subject's folder inside the derivatives (``sub-01/ses-1/anat``): MNI images name
        their subject-space image as ``bids::<subdir>/<name>``. Without it they name the T1.

    Returns
    -------
    list of pathlib.Path
        The sidecars written.
    """
    written = []
    for name, (description, mask_type, in_mni) in _IMAGES.items():
        image = getattr(paths, name)
        if not image.is_file():
            continue
        sidecar = {"Description": description}
        if mask_type:
            sidecar["Type"] = mask_type
        if in_mni:
            origin = paths.wmh_mask if name == "mni_mask" else paths.wmh_probseg
            sidecar["Sources"] = [f"bids::{subdir}/{origin.name}" if subdir else source]
            sidecar["SpatialReference"] = _MNI_REFERENCE
        else:
            sidecar["Sources"] = [source]
            sidecar["SpatialReference"] = source
        written.append(write_json(sidecar, sidecar_path(image)))
    return written
