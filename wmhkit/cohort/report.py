"""A static, single-page HTML QC report of a cohort run (no server, no external URL).

One row per subject: overlay thumbnail (embedded PNG data URI), status, lesion volume and its
centile in the cohort, eTIV, alignment quality, white/grey contrast ratio, participant
columns and QC flags. Clicking a column header sorts by it (a few lines of inline
JavaScript); flagged rows are highlighted.
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path

import pandas as pd

from wmhkit import __version__
from wmhkit.cohort.table import lesion_column
from wmhkit.io import atomic_path

__all__ = ["REPORT_NAME", "write_report", "report_html"]

REPORT_NAME = "wmhkit_report.html"
_PARTICIPANT_COLUMNS = ("age", "sex", "site")

_STYLE = """
body{font-family:sans-serif;margin:1em;background:#fafafa;color:#222}
table{border-collapse:collapse;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:right;vertical-align:middle}
th{background:#eee;cursor:pointer;position:sticky;top:0}
th.sorted-asc::after{content:" \\25B2"} th.sorted-desc::after{content:" \\25BC"}
td.text{text-align:left} tr.flagged td{background:#fff3cd} tr.failed td{background:#f8d7da}
img.thumb{height:90px;display:block}
"""

# Sort on header click: numbers numerically (data-value), text alphabetically, blanks last.
_SCRIPT = """
function sortTable(th){
  var table=th.closest('table'), body=table.tBodies[0], col=th.cellIndex;
  var asc=!th.classList.contains('sorted-asc');
  Array.prototype.forEach.call(table.tHead.rows[0].cells,function(c){c.classList.remove('sorted-asc','sorted-desc');});
  th.classList.add(asc?'sorted-asc':'sorted-desc');
  var rows=Array.prototype.slice.call(body.rows);
  function key(r){var c=r.cells[col], v=c.getAttribute('data-value'); return v===null?c.textContent.trim():v;}
  rows.sort(function(a,b){
    var x=key(a), y=key(b);
    if(x===''&&y==='') return 0; if(x==='') return 1; if(y==='') return -1;
    var nx=Number(x), ny=Number(y);
    var r=(!isNaN(nx)&&!isNaN(ny))?nx-ny:x.localeCompare(y);
    return asc?r:-r;
  });
  rows.forEach(function(r){body.appendChild(r);});
}
window.addEventListener('load',function(){
  var images=document.querySelectorAll('img.thumb'), loaded=0;
  images.forEach(function(i){if(i.complete&&i.naturalWidth>0) loaded++;});
  document.body.setAttribute('data-thumbnails-loaded',loaded+'/'+images.length);
});
"""


def _data_uri(path: Path) -> str | None:
    if not path.is_file():
        return None
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _cell(value, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return '<td data-value=""></td>'
    if isinstance(value, bool):
        return f'<td class="text" data-value="{int(value)}">{"yes" if value else ""}</td>'
    if isinstance(value, (int, float)):
        return f'<td data-value="{value!r}">{value:.{digits}f}</td>' if isinstance(value, float) else f'<td data-value="{value}">{value}</td>'
    return f'<td class="text">{html.escape(str(value))}</td>'


def _columns(table: pd.DataFrame) -> list[tuple[str, str]]:
    lesion = lesion_column(table)
    wanted = [("subject", "subject"), ("session", "session"), ("status", "status")]
    wanted += [(c, c) for c in _PARTICIPANT_COLUMNS if c in table.columns]
    wanted += [(lesion, "lesion (mL)")] if lesion else []
    wanted += [("lesion_centile", "lesion centile"), ("etiv_ml", "eTIV (mL)"),
               ("qc_alignment_quality", "alignment quality"), ("qc_wm_gm_ratio", "WM/GM ratio"),
               ("qc_flags", "flags"), ("error", "error")]
    return [(column, title) for column, title in wanted if column in table.columns]


def report_html(table: pd.DataFrame, out_dir: str | Path, *, title: str = "wmhkit cohort QC", group_figure: Path | None = None) -> str:
    """The report page as a string (thumbnails read from ``out_dir`` and embedded)."""
    out_dir = Path(out_dir)
    columns = _columns(table)
    head = "".join(f'<th onclick="sortTable(this)">{html.escape(title)}</th>' for _, title in [("", "overlay")] + columns)
    rows = []
    for _, row in table.iterrows():
        thumbnail = row.get("qc_thumbnail")
        uri = _data_uri(out_dir / thumbnail) if isinstance(thumbnail, str) else None
        image = f'<img class="thumb" alt="{html.escape(str(row["stem"]))}" src="{uri}">' if uri else ""
        cells = [f'<td class="text">{image}</td>'] + [_cell(row.get(column)) for column, _ in columns]
        css = "failed" if row["status"] == "failed" else ("flagged" if row.get("qc_flags") else "")
        rows.append(f'<tr class="{css}" data-stem="{html.escape(str(row["stem"]))}">{"".join(cells)}</tr>')
    counts = table["status"].value_counts()
    flagged = int((table.get("qc_flags", pd.Series(dtype=str)).fillna("") != "").sum())
    summary = (f"{len(table)} inputs: {int(counts.get('ok', 0))} ok, {int(counts.get('failed', 0))} failed, "
               f"{int(counts.get('not run', 0))} not run; {flagged} flagged. wmhkit {__version__}.")
    figure = ""
    if group_figure is not None and Path(group_figure).is_file():
        figure = f'<h2>Lesion frequency (MNI)</h2><img alt="lesion frequency" src="{_data_uri(Path(group_figure))}">'
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_STYLE}</style><script>{_SCRIPT}</script></head><body>"
        f"<h1>{html.escape(title)}</h1><p id=\"summary\">{html.escape(summary)}</p>"
        f"<p>Click a column header to sort. Flags: alignment (MNI alignment quality below threshold), etiv "
        f"(implausible eTIV), lesion_extreme (lesion volume extreme for the cohort), contrast (white matter not "
        f"brighter than grey matter: probably not a T1), forced (segmented with --force although it did not "
        f"look like a brain T1). A failed row's error says why, e.g. an image refused as not a brain T1.</p>{figure}"
        f'<table id="subjects"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
        "</body></html>\n"
    )


def write_report(table: pd.DataFrame, out_dir: str | Path, *, path: str | Path | None = None) -> Path:
    """Write the QC report beside the combined table (atomically).

    Parameters
    ----------
    table : pandas.DataFrame
        The combined table (:func:`wmhkit.cohort.table.build_table`).
    out_dir : str or path
        The derivatives folder (thumbnails are read from it).
    path : str or path, optional
        Where to write; default ``out_dir / "wmhkit_report.html"``.

    Returns
    -------
    pathlib.Path
    """
    from wmhkit.cohort.groupmaps import FIGURE_NAME

    out_dir = Path(out_dir)
    path = Path(path) if path is not None else out_dir / REPORT_NAME
    text = report_html(table, out_dir, group_figure=out_dir / FIGURE_NAME)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
