"""DICOM in: series written with pydicom from known NIfTI images, converted back by the real dcm2niix.

The series are real multi-slice MR series (one file per slice, MR Image Storage, oblique
ImageOrientationPatient, int16 with RescaleSlope/Intercept); the conversion must give the
source's voxels and geometry back exactly.
"""

from __future__ import annotations

import json
import sys

import nibabel as nib
import numpy as np
import pytest

from wmhkit.errors import InputImageError
from wmhkit.io import bids_stem, check_img, dicom, read_dicom

pydicom = pytest.importorskip("pydicom", reason='DICOM tests need pip install "wmhkit[dicom]"')
try:
    dicom.dcm2niix_binary()
except InputImageError:
    pytest.skip('DICOM tests need dcm2niix (pip install "wmhkit[dicom]")', allow_module_level=True)

from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid  # noqa: E402

#: RAS (NIfTI) to LPS (DICOM) world coordinates.
_LPS = np.diag([-1.0, -1.0, 1.0])


def write_series(img, folder, *, number=1, description="T1 MPRAGE", slope=1.0, intercept=0.0, prefix="IM"):
    """Write an int16 NIfTI image as a DICOM MR series, one file per slice along its third axis.

    Pixel (column c, row r) of slice k is voxel (c, r, k); the real value is
    ``stored * slope + intercept``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    data = np.asanyarray(img.dataobj)
    assert data.dtype == np.int16
    affine = np.asarray(img.affine, float)
    sizes = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    row_cosine, column_cosine = _LPS @ affine[:3, 0] / sizes[0], _LPS @ affine[:3, 1] / sizes[1]
    normal = np.cross(row_cosine, column_cosine)
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    for k in range(data.shape[2]):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = MRImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.Modality, ds.Manufacturer, ds.PatientName, ds.PatientID = "MR", "SIEMENS", "Phantom^Test", "P001"
        ds.PatientPosition = "HFS"
        ds.StudyDate = ds.SeriesDate = "20240102"
        ds.StudyTime = ds.SeriesTime = ds.AcquisitionTime = "101500"
        ds.SeriesNumber, ds.SeriesDescription, ds.ProtocolName = number, description, description
        ds.InstanceNumber, ds.AcquisitionNumber = k + 1, 1
        ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND"]
        ds.MRAcquisitionType, ds.ScanningSequence, ds.SequenceVariant = "3D", "GR", "SP"
        position = _LPS @ (affine @ [0.0, 0.0, k, 1.0])[:3]
        ds.ImagePositionPatient = [float(v) for v in position]
        ds.ImageOrientationPatient = [float(v) for v in np.concatenate([row_cosine, column_cosine])]
        ds.PixelSpacing = [float(sizes[1]), float(sizes[0])]  # between rows, between columns
        ds.SliceThickness = ds.SpacingBetweenSlices = float(sizes[2])
        ds.SliceLocation = float(position @ normal)
        plane = np.ascontiguousarray(data[:, :, k].T)  # rows along the second axis
        ds.Rows, ds.Columns = plane.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
        ds.PixelData = plane.astype("<i2").tobytes()
        ds.save_as(folder / f"{prefix}{k:04d}.dcm", enforce_file_format=True)
    return folder


def _oblique(affine, degrees=(12.0, -7.0, 20.0)):
    """``affine`` turned about x, y and z by ``degrees``: an oblique acquisition."""
    from scipy.spatial.transform import Rotation

    turn = np.eye(4)
    turn[:3, :3] = Rotation.from_euler("xyz", degrees, degrees=True).as_matrix()
    return turn @ np.asarray(affine, float)


def _crop(img, box):
    """``img`` cut to ``box`` (slices), rounded to int16, with its affine moved so the voxels stay where they were."""
    affine = np.asarray(img.affine, float).copy()
    affine[:3, 3] += affine[:3, :3] @ [s.start or 0 for s in box]
    return nib.Nifti1Image(np.round(np.asanyarray(img.dataobj)[box]).astype(np.int16), affine)


def assert_same_image(converted, source, slope=1.0, intercept=0.0):
    """The same voxels at the same places: equal data and affines (1e-3 mm) in the closest canonical order."""
    a = nib.as_closest_canonical(nib.Nifti1Image(np.asanyarray(converted.dataobj), converted.affine))
    b = nib.as_closest_canonical(
        nib.Nifti1Image(np.asanyarray(source.dataobj) * np.float64(slope) + intercept, source.affine))
    assert a.shape == b.shape
    np.testing.assert_allclose(a.affine, b.affine, atol=1e-3)
    np.testing.assert_array_equal(np.asanyarray(a.dataobj).astype(np.float64), np.asanyarray(b.dataobj))


def _one_sentence(message):
    assert message.endswith(".") and "\n" not in message, message


@pytest.fixture(scope="module")
def phantom_t1():
    """A 2 mm phantom T1 (81x94x88, unequal voxel sizes), seeded."""
    from wmhkit.synth import make_phantom

    return make_phantom(3, voxel_size_mm=2.0, lesion_burden=2.0).t1


@pytest.fixture(scope="module")
def small_oblique(phantom_t1):
    """A 30x35x24 int16 crop of the phantom on an oblique grid."""
    cropped = _crop(phantom_t1, (slice(25, 55), slice(30, 65), slice(30, 54)))
    return nib.Nifti1Image(np.asanyarray(cropped.dataobj), _oblique(cropped.affine))


def test_phantom_series_converts_voxel_for_voxel(tmp_path, small_oblique):
    folder = write_series(small_oblique, tmp_path / "exam", slope=0.5, intercept=-10.0)
    converted = read_dicom(folder)
    assert_same_image(converted, small_oblique, slope=0.5, intercept=-10.0)
    # The same through check_img, the entry point of every public function.
    checked = check_img(folder, min_extent_mm=0)
    assert_same_image(checked, small_oblique, slope=0.5, intercept=-10.0)
    assert checked._wmhkit_source == str(folder)
    sidecar = dicom.converted_sidecar(folder)
    assert sidecar["ConversionSoftware"] == "dcm2niix" and sidecar["SeriesNumber"] == 1
    assert "PatientName" not in sidecar  # anonymised


@pytest.mark.real_data
def test_real_head_series_converts_voxel_for_voxel(tmp_path, real_t1_1p75mm):
    head = nib.load(real_t1_1p75mm)
    box = (slice(30, 70), slice(40, 95), slice(20, 50))  # 40x55x30 of the brain, 1.75 mm
    source = _crop(head, box)
    source = nib.Nifti1Image(np.asanyarray(source.dataobj), _oblique(source.affine, (-9.0, 15.0, 5.0)))
    folder = write_series(source, tmp_path / "head")
    assert len(list(folder.iterdir())) == 30
    assert_same_image(read_dicom(folder), source)


def test_several_series_refused_with_list_then_picked(tmp_path, small_oblique):
    exam = tmp_path / "exam"
    write_series(small_oblique, exam, number=3, description="T1 MPRAGE", prefix="A")
    flipped = nib.Nifti1Image(np.asanyarray(small_oblique.dataobj)[::-1].copy(), small_oblique.affine)
    write_series(flipped, exam / "sub", number=7, description="T1 repeat", prefix="B")
    with pytest.raises(InputImageError) as info:
        check_img(exam, min_extent_mm=0)
    message = str(info.value)
    _one_sentence(message)
    assert "holds 2 series" in message
    assert '3 "T1 MPRAGE" (24 files)' in message and '7 "T1 repeat" (24 files)' in message
    assert f"{exam}@3" in message  # how to pick one
    assert_same_image(check_img(f"{exam}@7", min_extent_mm=0), flipped)
    assert_same_image(read_dicom(f"{exam}@3"), small_oblique)
    with pytest.raises(InputImageError, match="no series numbered 5") as info:
        check_img(f"{exam}@5")
    _one_sentence(str(info.value))


def test_folder_without_dicom_refused(tmp_path, small_oblique):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "readme.txt").write_text("no images here\n")
    nib.save(small_oblique, str(folder / "t1.nii.gz"))
    with pytest.raises(InputImageError, match="holds no DICOM images") as info:
        check_img(folder)
    _one_sentence(str(info.value))
    assert str(folder) in str(info.value)


def test_one_dicom_file_refused_with_its_folder_named(tmp_path, small_oblique):
    folder = write_series(small_oblique, tmp_path / "exam")
    with pytest.raises(InputImageError, match="give the folder") as info:
        check_img(folder / "IM0000.dcm")
    _one_sentence(str(info.value))


def test_missing_converter_says_how_to_install(tmp_path, small_oblique, monkeypatch):
    folder = write_series(small_oblique, tmp_path / "exam")
    monkeypatch.setitem(sys.modules, "dcm2niix", None)  # the PyPI package not installed ...
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # ... and no dcm2niix program either
    with pytest.raises(InputImageError, match=r'pip install "wmhkit\[dicom\]"') as info:
        check_img(folder)
    _one_sentence(str(info.value))


def test_names_of_dicom_inputs(tmp_path):
    exam = tmp_path / "1.3.12.2.1107"
    exam.mkdir()
    assert bids_stem(exam) == "1.3.12.2.1107"  # a UID folder name is no file ending
    assert bids_stem(f"{exam}@5") == "1.3.12.2.1107_series-5"
    assert dicom.dicom_request(f"{exam}@x") is None and dicom.dicom_request(tmp_path / "none@5") is None
    assert bids_stem(tmp_path / "sub-01_T1w.nii.gz") == "sub-01_T1w"


def test_cli_refuses_several_series_in_one_sentence(tmp_path, small_oblique, capsys):
    from wmhkit.cli import main

    exam = tmp_path / "exam"
    write_series(small_oblique, exam, number=2, prefix="A")
    write_series(small_oblique, exam, number=4, prefix="B")
    assert main(["segment", str(exam), "--out", str(tmp_path / "out"), "--method", "baseline"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("wmhkit: error: DICOM folder") and "Traceback" not in error
    assert f"{exam}@2" in error
    assert not (tmp_path / "out").exists()


def test_manifest_reads_dicom_folders(tmp_path, small_oblique):
    from wmhkit.cohort import discover_inputs

    write_series(small_oblique, tmp_path / "p1")
    write_series(small_oblique, tmp_path / "p2", number=6)
    (tmp_path / "cohort.csv").write_text("subject,t1,age\n01,p1,70\n02,p2@6,71\n")
    table = discover_inputs(tmp_path / "cohort.csv")
    assert table["stem"].tolist() == ["p1", "p2_series-6"]
    assert table["input_path"].tolist() == [str((tmp_path / "p1").resolve()), str((tmp_path / "p2@6").resolve())]
    assert_same_image(check_img(table["input_path"][1], min_extent_mm=0), small_oblique)


@pytest.mark.slow
def test_segment_file_on_a_dicom_series_writes_its_t1(tmp_path, phantom_t1):
    from wmhkit.segmentation import segment_file

    source = _crop(phantom_t1, (slice(None),) * 3)  # the whole phantom, int16
    folder = write_series(source, tmp_path / "exam", slope=1.0, intercept=0.0)
    summary = segment_file(folder, tmp_path / "out", method="baseline")
    out = tmp_path / "out"
    t1 = nib.load(out / "exam_T1w.nii.gz")
    assert_same_image(t1, source)
    assert json.loads((out / "exam_T1w.json").read_text())["SeriesDescription"] == "T1 MPRAGE"
    mask = nib.load(out / "exam_desc-wmh_mask.nii.gz")
    assert mask.shape == t1.shape
    np.testing.assert_allclose(mask.affine, t1.affine, atol=1e-5)  # the masks sit on the written T1
    assert summary["input"]["path"] == str(folder) and summary["stem"] == "exam"
    assert summary["lesion_ml"] > 0
    assert not list(out.glob(".*tmp*"))  # nothing half-written
