"""The QC table flags and the static HTML report (content, and for real in headless Chromium)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from wmhkit.cohort.report import report_html, write_report
from wmhkit.cohort.table import EXTREME_LESION_ML, add_flags
from wmhkit.plotting.qc import write_thumbnail

CHROMIUM = Path("/usr/bin/chromium")


def _table(n: int = 12) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    table = pd.DataFrame({
        "subject": [f"{i:02d}" for i in range(n)], "session": "", "stem": [f"sub-{i:02d}_T1w" for i in range(n)],
        "status": "ok", "error": "", "lesion_ml": rng.uniform(0.5, 3.0, n).round(3),
        "etiv_ml": rng.uniform(1300, 1700, n).round(1), "alignment_quality": rng.uniform(0.8, 0.95, n),
        "qc_looks_t1": True, "age": np.arange(60, 60 + n),
    })
    table.loc[1, "etiv_ml"] = 400.0             # implausible eTIV
    table.loc[2, "lesion_ml"] = EXTREME_LESION_ML + 5  # extreme lesion volume
    table.loc[3, "alignment_quality"] = 0.2      # failed alignment
    table.loc[4, "qc_looks_t1"] = False          # probably a FLAIR
    table.loc[5, ["status", "error", "lesion_ml"]] = ["failed", "InputImageError: truncated", np.nan]
    return table


def test_flags_and_centiles():
    table = add_flags(_table())
    assert table.loc[1, "qc_flags"] == "etiv"
    assert table.loc[2, "qc_flags"] == "lesion_extreme"
    assert table.loc[3, "qc_flags"] == "alignment"
    assert table.loc[4, "qc_flags"] == "contrast"
    assert (table.loc[[0, 5, 6, 7], "qc_flags"] == "").all()
    ok = table["status"] == "ok"
    assert table.loc[2, "lesion_centile"] == 100.0
    assert table.loc[ok, "lesion_centile"].min() == pytest.approx(100 / ok.sum(), abs=0.05)
    assert np.isnan(table.loc[5, "lesion_centile"])


def test_robust_outlier_flag_without_absolute_threshold():
    table = _table(20)
    table.loc[7, "lesion_ml"] = 60.0  # below the absolute limit, far out for this cohort
    assert "lesion_extreme" in add_flags(table).loc[7, "qc_flags"]


def test_report_content_is_self_contained(tmp_path):
    table = add_flags(_table())
    import nibabel as nib

    t1 = nib.Nifti1Image(np.random.default_rng(0).uniform(0, 1, (20, 24, 18)).astype(np.float32), np.diag([2, 2, 2, 1]))
    mask = nib.Nifti1Image((np.asarray(t1.dataobj) > 0.95).astype(np.uint8), t1.affine)
    write_thumbnail(t1, mask, tmp_path / "sub-00" / "thumb.png")
    table["qc_thumbnail"] = ["sub-00/thumb.png"] + [None] * (len(table) - 1)
    text = report_html(table, tmp_path)
    assert "://" not in text  # no external URL, no server
    assert text.count("<tr class=") == len(table)
    assert text.count('src="data:image/png;base64,') == 1
    assert 'class="failed"' in text and "InputImageError: truncated" in text
    assert re.search(r'<tr class="flagged" data-stem="sub-01_T1w">.*?etiv', text)
    path = write_report(table, tmp_path)
    assert path.read_text(encoding="utf-8") == text


_PROBE = """<script>
window.addEventListener('load', function(){
  var out = {}, images = document.querySelectorAll('img.thumb');
  out.images = images.length;
  out.loaded = Array.prototype.filter.call(images, function(i){return i.complete && i.naturalWidth > 0;}).length;
  var headers = document.querySelectorAll('#subjects th');
  function order(){return Array.prototype.map.call(document.querySelectorAll('#subjects tbody tr'),
                                                  function(r){return r.getAttribute('data-stem');});}
  out.sorted = {};
  Array.prototype.forEach.call(headers, function(h){
    sortTable(h); var asc = order(); sortTable(h); out.sorted[h.textContent] = [asc, order()];
  });
  var pre = document.createElement('pre'); pre.id = 'probe'; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script></body>"""


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed")
def test_report_in_headless_chromium(reference_run, tmp_path):
    table = reference_run.table
    page = tmp_path / "probe.html"
    page.write_text(reference_run.report_path.read_text(encoding="utf-8").replace("</body>", _PROBE), encoding="utf-8")
    command = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000", "--dump-dom", page.as_uri()]
    dom = subprocess.run(command, capture_output=True, text=True, timeout=120).stdout
    shutil.rmtree(tmp_path / "profile", ignore_errors=True)
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom)
    assert found, dom[-2000:]
    probe = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    ok = table[table["status"] == "ok"]
    assert probe["images"] == len(ok) and probe["loaded"] == len(ok)
    ascending, descending = probe["sorted"]["lesion (mL)"]
    by_volume = ok.sort_values("lesion_ml", kind="stable")["stem"].tolist()
    failed = table.loc[table["status"] == "failed", "stem"].tolist()
    if ok["lesion_ml"].is_unique:
        assert ascending == by_volume + failed and descending == by_volume[::-1] + failed
    assert probe["sorted"]["subject"][0] == sorted(table["stem"]) and probe["sorted"]["subject"][1] == sorted(table["stem"])[::-1]
