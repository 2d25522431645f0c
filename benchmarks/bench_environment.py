"""One line describing where a benchmark ran: CPU, library releases and wmhkit's code fingerprint.

Results on phantoms and real heads depend on the exact code and on library releases (resampling,
registration, convolution kernels); a results table that names them can be checked against a
later run. ``wmhkit.io.code_fingerprint`` names the code exactly, even between releases.
"""

from __future__ import annotations

import platform


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what :mod:`platform` knows."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment_line() -> str:
    """``Environment: CPU ...; Python ...; numpy x, ...; wmhkit code <fingerprint>.`` for a results file."""
    from wmhkit.io import code_fingerprint, library_versions

    libraries = ", ".join(f"{name} {version}" for name, version in library_versions().items())
    return (f"Environment: CPU {cpu_model()}; Python {platform.python_version()}; {libraries}; "
            f"wmhkit code fingerprint {code_fingerprint()} (`wmhkit.io.code_fingerprint`).")


def markdown_table(table) -> str:
    """A pandas DataFrame as a Markdown table (floats as ``%g``), without the tabulate package."""
    lines = ["| " + " | ".join(map(str, table.columns)) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in row) + " |"
              for row in table.itertuples(index=False)]
    return "\n".join(lines)
