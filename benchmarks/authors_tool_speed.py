"""Wall time of ``wmhkit segment`` beside the authors' tool (deep-T1-WMH) on its own example image.

Target (issue 24): on the authors' example image (the 1.75 mm head, ``head_t1_1p75mm`` in
``../shared/data/real_t1``, or ``$WMHKIT_REAL_T1_DIR``), ``wmhkit segment`` takes <= 0.25 x the
wall time of deep-T1-WMH (Thyreau et al., MIT licence) run beside it on the same machine.

This script holds none of the authors' code: it runs the checkout it is given (``--authors-tool
DIR``) the way its README says, ``DIR/deepwmh.sh IMAGE``, in a fresh process whose outputs go into a
temporary folder (the tool writes beside its input, so the image is linked there). Each repeat
runs, alternating, the authors' tool and ``python -m wmhkit segment IMAGE --out DIR`` (fresh
process), each under ``/usr/bin/time -v``, with the 1-minute load average recorded before each run.
Neither command is given a thread count: both use PyTorch's default (one thread per core) and the
table says what each used (the authors' tool prints it).

Where the authors' weights cannot be had, a checkout with random weights of the same shapes does
the same compute; a text file describing what the checkout substitutes (``--stand-ins``, default
``DIR/STAND-INS.md`` when present) is quoted into the results.

Usage::

    python benchmarks/authors_tool_speed.py --authors-tool PATH/deep-T1-WMH [--image PATH] [--repeats 3]
        [--authors-command "bash {tool}/deepwmh.sh {image}"] [--stand-ins FILE]
        [--out benchmarks/results/authors_tool_speed.md]

Run it on an idle machine (2.0 load average = both cores busy on a 2-core machine).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_environment import environment_line

ROOT = Path(__file__).resolve().parents[1]
REAL = Path(os.environ.get("WMHKIT_REAL_T1_DIR", ROOT.parent / "shared" / "data" / "real_t1"))
IMAGE = REAL / "head_t1_1p75mm.nii.gz"
RESULTS = ROOT / "benchmarks" / "results" / "authors_tool_speed.md"
#: The README's way of running deep-T1-WMH; {tool} is the checkout, {image} the input's file name.
AUTHORS_COMMAND = "bash {tool}/deepwmh.sh {image}"
#: Issue 24: wmhkit's fastest wall time over the authors' fastest, at most this.
TARGET_RATIO = 0.25
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def parse_time_v(stderr: str) -> dict:
    """CPU seconds and peak memory from the report of GNU ``/usr/bin/time -v``.

    Parameters
    ----------
    stderr : str
        The standard error of the timed process; ``/usr/bin/time -v`` appends its report there.

    Returns
    -------
    dict
        ``cpu_s`` (user + system seconds of the process and its children), ``wall_s`` (the
        report's "Elapsed (wall clock)" line, seconds) and ``peak_rss_gb`` (maximum resident set
        size of the largest process, GiB).
    """
    def field(pattern: str) -> str:
        match = re.search(pattern, stderr)
        if match is None:
            raise ValueError(f"no '{pattern}' line in the /usr/bin/time -v report")
        return match.group(1)

    cpu = float(field(r"User time \(seconds\): ([\d.]+)")) + float(field(r"System time \(seconds\): ([\d.]+)"))
    # h:mm:ss or m:ss.ss
    clock = [float(part) for part in field(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)").split(":")]
    wall = sum(value * 60 ** power for power, value in enumerate(reversed(clock)))
    rss_kb = int(field(r"Maximum resident set size \(kbytes\): (\d+)"))
    return {"cpu_s": cpu, "wall_s": wall, "peak_rss_gb": rss_kb / 1024 ** 2}


def parse_authors_log(stdout: str) -> dict:
    """What deep-T1-WMH prints about itself: threads, in-process seconds and peak memory.

    Parameters
    ----------
    stdout : str
        Standard output of one run of the authors' tool.

    Returns
    -------
    dict
        ``threads`` ("Using N CPU threads"), ``subject_s`` ("Elapsed time for subject", seconds
        from loading the image to the written outputs: no interpreter start, imports or model
        loading) and ``peak_gb`` ("Peak memory used (Gb)"); None where a line is missing.
    """
    patterns = {"threads": r"Using (\d+) CPU threads", "subject_s": r"Elapsed time for subject ([\d.]+)s",
                "peak_gb": r"Peak memory used \(Gb\) ([\d.eE+-]+)"}
    found = {key: re.search(pattern, stdout) for key, pattern in patterns.items()}
    return {key: (None if match is None else (int if key == "threads" else float)(match.group(1)))
            for key, match in found.items()}


def timed(command: list[str], cwd: Path, env: dict) -> dict:
    """One fresh process under ``/usr/bin/time -v``: wall, CPU, peak RSS, load average before, output."""
    load = os.getloadavg()[0]
    start = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-v", *command], cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed (exit {proc.returncode}):\n{proc.stdout[-2000:]}\n"
                           f"{proc.stderr[-3000:]}")
    return {**parse_time_v(proc.stderr), "wall_s": wall, "load_avg_before": load, "stdout": proc.stdout}


def run_authors(tool: Path, image: Path, template: str, work: Path, env: dict) -> dict:
    """The authors' tool end to end on a link to ``image`` in the fresh folder ``work``."""
    work.mkdir(parents=True)
    link = work / image.name
    link.symlink_to(image.resolve())
    command = shlex.split(template.format(tool=shlex.quote(str(tool)), image=shlex.quote(link.name)))
    run = timed(command, work, env)
    return {**run, **parse_authors_log(run["stdout"]), "outputs": sorted(p.name for p in work.iterdir() if p != link)}


def run_wmhkit(image: Path, out: Path, env: dict) -> dict:
    """``python -m wmhkit segment IMAGE --out DIR`` in a fresh process (defaults otherwise)."""
    return timed([sys.executable, "-m", "wmhkit", "segment", str(image), "--out", str(out)], ROOT, env)


def run_table(runs: list[dict], extra: tuple[str, str] | None = None) -> list[str]:
    """Markdown rows: run, wall s, CPU s, peak RSS GB, load average before (and one extra column)."""
    head = "| run | wall (s) | CPU (s) | peak RSS (GB) | load avg before |"
    rule = "|---|---|---|---|---|"
    if extra:
        head, rule = head + f" {extra[1]} |", rule + "---|"
    rows = [head, rule]
    for i, run in enumerate(runs):
        row = (f"| {i + 1} | {run['wall_s']:.2f} | {run['cpu_s']:.2f} | {run['peak_rss_gb']:.2f} | "
               f"{run['load_avg_before']:.1f} |")
        if extra:
            value = run.get(extra[0])
            row += f" {'' if value is None else f'{value:.2f}'} |"
        rows.append(row)
    return rows


def ratio_line(wmhkit_s: float, authors_s: float, target: float = TARGET_RATIO) -> str:
    """The fastest-run ratio wmhkit / authors' tool and whether it meets ``<= target``."""
    ratio = wmhkit_s / authors_s
    verdict = "meets" if ratio <= target else "misses"
    return (f"Fastest runs: wmhkit {wmhkit_s:.2f} s, authors' tool {authors_s:.2f} s; ratio wmhkit / authors' tool"
            f" = {ratio:.3f} ({verdict} <= {target:g}; {authors_s / wmhkit_s:.1f} x faster).")


def default_threads(env: dict) -> int:
    """Threads PyTorch uses by default in a fresh process with this environment."""
    out = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"], env=env,
                         capture_output=True, text=True, check=True).stdout
    return int(out.strip())


def report(args, command_line: str, authors: list[dict], ours: list[dict], threads: int, stand_ins: str) -> list[str]:
    """The results file: machine, environment, command, threads, stand-ins, both tables, the ratio."""
    import nibabel as nib

    img = nib.load(str(args.image))
    sizes = " x ".join(f"{z:g}" for z in img.header.get_zooms()[:3])
    variables = ", ".join(f"{v}={os.environ[v]}" for v in THREAD_VARIABLES if v in os.environ) or "none set"
    best_a, best_w = min(r["wall_s"] for r in authors), min(r["wall_s"] for r in ours)
    printed = sorted({r["threads"] for r in authors if r["threads"] is not None})
    lines = [
        "# deep-T1-WMH beside `wmhkit segment` on the authors' example image",
        "",
        f"Machine: {os.cpu_count()} CPU cores, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 1024**3:.0f} GB"
        f" RAM, no GPU; {platform.python_implementation()} {platform.python_version()}. The 1-minute load average"
        " before each run is given (2.0 = both cores busy).",
        "",
        environment_line(),
        "",
        f"Command: `{command_line}`. Per repeat, alternating: the authors' tool as its README runs it"
        f" (`{args.authors_command}`, a fresh process in a fresh temporary folder holding a link to the image,"
        " its outputs written there), then `python -m wmhkit segment IMAGE --out DIR` (fresh process, defaults);"
        " each under `/usr/bin/time -v` (wall: the parent's clock; CPU: user + system; GB: GiB of maximum"
        " resident set size).",
        "",
        f"Image: `{args.image.name}`, {' x '.join(map(str, img.shape[:3]))} voxels of {sizes} mm.",
        "",
        f"Threads: neither command is given a thread count (thread variables: {variables}). The authors' tool"
        f" printed `Using {'/'.join(map(str, printed)) or '?'} CPU threads` (`torch.get_num_threads()`); wmhkit runs"
        f" with PyTorch's default, {threads} threads here.",
        "",
        f"Substitutions in the authors' checkout: {stand_ins}",
        "",
        "## deep-T1-WMH (authors' tool)",
        "",
        *run_table(authors, ("subject_s", "its own 'Elapsed time for subject' (s)")),
        "",
        "The tool's own line times loading the image to the written outputs; the rest of the wall time is the"
        " interpreter, `import torch`, building the four networks and loading their weights.",
        "",
        "## wmhkit segment",
        "",
        *run_table(ours),
        "",
        "## Ratio",
        "",
        ratio_line(best_w, best_a) + " Target (issue 24): wmhkit <= 0.25 x the authors' tool on its example image.",
        "",
    ]
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--authors-tool", type=Path, required=True, help="a checkout of deep-T1-WMH")
    parser.add_argument("--authors-command", default=AUTHORS_COMMAND,
                        help="how to run it; {tool} is the checkout, {image} the input (default: %(default)s)")
    parser.add_argument("--image", type=Path, default=IMAGE, help="input T1 (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--stand-ins", type=Path, default=None,
                        help="text file saying what the checkout substitutes (default: TOOL/STAND-INS.md if present)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results file (default %(default)s)")
    args = parser.parse_args(argv)
    if not args.image.exists():
        print(f"Image {args.image} is absent (../shared not beside the checkout?); nothing to measure.")
        return 0
    entry = args.authors_tool / "deepwmh.sh"
    if "{tool}/deepwmh.sh" in args.authors_command and not entry.exists():
        print(f"No {entry}: pass --authors-tool the folder of a deep-T1-WMH checkout.")
        return 1
    stand_ins_file = args.stand_ins or args.authors_tool / "STAND-INS.md"
    stand_ins = (" ".join(stand_ins_file.read_text().split()) if stand_ins_file.exists()
                 else "none stated (the checkout's own weights and files).")
    # deepwmh.sh calls plain `python`: make it this interpreter, whose environment has torch.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    threads = default_threads(env)
    authors, ours = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            authors.append(run_authors(args.authors_tool.resolve(), args.image, args.authors_command,
                                       Path(tmp) / f"authors-{i}", env))
            ours.append(run_wmhkit(args.image, Path(tmp) / f"wmhkit-{i}", env))
            print(f"repeat {i + 1}: authors {authors[-1]['wall_s']:.1f} s ({authors[-1]['cpu_s']:.1f} s CPU, "
                  f"{authors[-1]['peak_rss_gb']:.2f} GB), wmhkit {ours[-1]['wall_s']:.1f} s "
                  f"({ours[-1]['cpu_s']:.1f} s CPU, {ours[-1]['peak_rss_gb']:.2f} GB)", flush=True)
    print("authors' outputs:", ", ".join(authors[0]["outputs"]))
    command_line = " ".join(["python benchmarks/authors_tool_speed.py", *(argv if argv is not None else sys.argv[1:])])
    lines = report(args, command_line, authors, ours, threads, stand_ins)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
