"""Disk caches keyed by the code and library versions that built them."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from wmhkit.io import cache_dir, cached_array, code_fingerprint
from wmhkit.io import caching


def test_cache_dir_is_a_fingerprint_folder_under_the_chosen_root(tmp_path, monkeypatch):
    monkeypatch.setenv("WMHKIT_CACHE_DIR", str(tmp_path / "c"))
    folder = cache_dir("atlases")
    assert folder == tmp_path / "c" / code_fingerprint() / "atlases"
    assert folder.is_dir()


def _package_copy(tmp_path: Path) -> Path:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "a.py").write_text("x = 1\n")
    (package / "sub" / "table.tsv").write_text("code\tname\n1\tleft\n")
    return package


def test_fingerprint_follows_code_tables_and_library_versions_only(tmp_path):
    package = _package_copy(tmp_path)
    versions = {"numpy": "2.0", "scipy": "1.14"}
    first = caching._fingerprint(package, versions)
    assert caching._fingerprint(package, dict(reversed(versions.items()))) == first
    # Byte code, weights and notes are not what builds cached data.
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\x00\x01")
    (package / "weights.pt").write_bytes(b"\x02")
    assert caching._fingerprint(package, versions) == first
    (package / "sub" / "table.tsv").write_text("code\tname\n1\tright\n")
    edited = caching._fingerprint(package, versions)
    assert edited != first
    assert caching._fingerprint(package, {**versions, "scipy": "1.15"}) not in (first, edited)


def test_only_the_most_recently_used_fingerprint_folders_are_kept(tmp_path):
    root = tmp_path / "cache"
    stale = [root / f"{k:012x}" for k in range(5)]
    for age, folder in enumerate(stale):
        (folder / "atlases").mkdir(parents=True)
        os.utime(folder, (1_000_000 - age * 1000, 1_000_000 - age * 1000))
    (root / "notes").mkdir()  # not a fingerprint: never touched
    current = caching._current_folder(root)
    assert current == root / code_fingerprint() and current.is_dir()
    kept = sorted(p.name for p in root.iterdir())
    # The current folder plus the KEEP_FINGERPRINTS - 1 most recently used others.
    assert kept == sorted([code_fingerprint(), "notes"] + [f.name for f in stale[: caching.KEEP_FINGERPRINTS - 1]])


def test_cached_array_builds_once_and_is_read_only(tmp_path, monkeypatch):
    monkeypatch.setenv("WMHKIT_CACHE_DIR", str(tmp_path))
    calls = []

    def build():
        calls.append(1)
        return np.arange(24, dtype=np.int16).reshape(2, 3, 4)

    first = cached_array("segmentation", "ramp", build)
    again = cached_array("segmentation", "ramp", build)
    assert len(calls) == 1
    np.testing.assert_array_equal(again, first)
    assert again.dtype == np.int16 and not again.flags.writeable
    assert (cache_dir("segmentation") / "ramp.npy").is_file()


def test_cached_array_rebuilds_an_unreadable_file_and_survives_an_unwritable_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("WMHKIT_CACHE_DIR", str(tmp_path))
    (cache_dir("templates") / "mask.npy").write_bytes(b"not an array")
    rebuilt = cached_array("templates", "mask", lambda: np.ones((2, 3, 4), bool))
    assert rebuilt.all() and rebuilt.shape == (2, 3, 4)
    # A cache entry that cannot be written (here a folder squats its name) only costs the rebuild.
    (cache_dir("templates") / "other.npy").mkdir()
    built = cached_array("templates", "other", lambda: np.zeros(3))
    assert built.shape == (3,) and (cache_dir("templates") / "other.npy").is_dir()


def test_listing_and_clearing_keep_the_current_build_and_foreign_folders(tmp_path, monkeypatch, capsys):
    from wmhkit.cli import main
    from wmhkit.io.caching import cache_folders, clear_other_caches

    monkeypatch.setenv("WMHKIT_CACHE_DIR", str(tmp_path))
    (cache_dir("templates") / "kept.npy").write_bytes(b"\0" * 2_000_000)
    other = tmp_path / ("0" * 12) / "atlases"
    other.mkdir(parents=True)
    (other / "old.nii").write_bytes(b"\0" * 1_000_000)
    (tmp_path / "synth").mkdir()  # written by wmhkit before caches had fingerprints
    (tmp_path / "mine").mkdir()  # not wmhkit's
    kinds = {entry["path"].name: (entry["kind"], entry["size_mb"]) for entry in cache_folders()}
    assert kinds == {code_fingerprint(): ("current", 2.0), "0" * 12: ("other build", 1.0), "synth": ("legacy", 0.0)}
    assert main(["cache"]) == 0
    assert code_fingerprint() in capsys.readouterr().out
    assert sorted(p.name for p in clear_other_caches()) == ["0" * 12, "synth"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([code_fingerprint(), "mine"])
    assert (cache_dir("templates") / "kept.npy").is_file()
    assert main(["cache", "--clear"]) == 0 and "deleted 0 folder(s)" in capsys.readouterr().out
