"""The generated xlsx opens in LibreOffice (headless) and reads back as written."""

from __future__ import annotations

import csv
import shutil
import subprocess
from pathlib import Path

import pytest

from assets.writers import write_xlsx

SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")

# CSV filter options: comma, double quote, UTF-8 (76), from line 1, default column
# types, language, quote all text=false, detect special numbers=true, save cell
# contents as shown=true (so the DD/MM/YYYY number formats are applied), export
# formulas=false, remove space=false, sheet=-1 (every sheet to "<file>-<sheet>.csv").
CSV_FILTER = "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,true,false,false,-1"


@pytest.mark.soffice
@pytest.mark.skipif(
    SOFFICE is None, reason="LibreOffice (soffice) is not installed: apt-get install libreoffice-calc-nogui"
)
def test_libreoffice_opens_and_reads_the_workbook(tmp_path: Path, frame, columns) -> None:
    path = tmp_path / "relatorio.xlsx"
    write_xlsx(frame, columns, path, max_rows_per_sheet=3)
    profile = tmp_path / "lo-profile"
    proc = subprocess.run(
        [
            SOFFICE,
            f"-env:UserInstallation=file://{profile}",
            "--headless",
            "--norestore",
            "--convert-to",
            CSV_FILTER,
            "--outdir",
            str(tmp_path / "out"),
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = tmp_path / "out"
    sheets = {p.name: p for p in out.glob("*.csv")} if out.exists() else {}
    assert proc.returncode == 0 and sorted(sheets) == ["relatorio-Relatório (2).csv", "relatorio-Relatório.csv"], (
        proc.stdout + proc.stderr
    )

    def read(name: str) -> list[list[str]]:
        with sheets[name].open(encoding="utf-8", newline="") as fh:
            return list(csv.reader(fh))

    header = [c.header for c in columns]
    assert read("relatorio-Relatório.csv") == [
        header,
        ["João Gonçalves Araújo", '=HYPERLINK("http://x","y")', "3", "1.5", "TRUE", "29/02/2024", "01/03/2024 08:05"],
        ["Márcia Conceição", "+55 11 9999-0000", "", "", "FALSE", "", ""],
        ["", "-10", "-7", "-0.25", "", "31/12/1999", "31/12/2023 23:59"],
    ]
    second = read("relatorio-Relatório (2).csv")
    assert second[0] == header
    assert second[1] == ["  Íris <Sá> & Cia  ", "@SUM(A1)", "0", "1E+020", "TRUE", "01/06/2026", "01/06/2026 00:00"]
    assert second[2][:2] == ["tab\tand\nnewlinectrl", ""] and len(second) == 3
