"""``wmhkit cache``: where derived atlases and templates are kept, and clearing old builds' copies."""

from __future__ import annotations


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "cache",
        help="show wmhkit's cache folders (derived atlases, templates, masks); clear other builds' copies",
        description="Derived data are cached per build: in <root>/<fingerprint>/, where the fingerprint "
        "hashes wmhkit's code and the library releases that derive them. Lists the folders with their "
        "sizes; --clear deletes those of other builds and of wmhkit versions from before fingerprints.",
    )
    parser.add_argument("--clear", action="store_true", help="delete every cache folder but the current build's")
    parser.set_defaults(func=run)


def run(args) -> int:
    from wmhkit.io.caching import cache_folders, cache_root, clear_other_caches, code_fingerprint, library_versions

    if args.clear:
        removed = clear_other_caches()
        print(f"deleted {len(removed)} folder(s) under {cache_root()}")
        for path in removed:
            print(f"  {path}")
        return 0
    print(f"cache root: {cache_root()}")
    print(f"this build: {code_fingerprint()} ({', '.join(f'{k} {v}' for k, v in library_versions().items())})")
    for entry in cache_folders():
        print(f"  {entry['path'].name:<14} {entry['kind']:<12} {entry['size_mb']:8.1f} MB")
    return 0
