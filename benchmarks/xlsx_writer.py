"""Benchmark: our xlsx writer vs polars write_excel, XlsxWriter, xlsxturbo, rustpy-xlsxwriter.

    PYTHONPATH=. .venv/bin/python benchmarks/xlsx_writer.py [--rows 1000000] [--only ours,xlsxwriter]

The parent builds a storyboard-usage-shaped frame (12 columns, pt-BR text, three
datetime columns, nullable CNPJ / Data de Término) once and saves it as Parquet.
Each writer then runs in its own child process that loads the frame and writes
one workbook with the same features where the library offers them (bold frozen
header, autofilter, DD/MM/YYYY HH:mm datetimes). The child times only the write;
the peak RSS is the child's ``ru_maxrss`` from ``wait4``, so it includes the
loaded frame and whatever the library holds. Output is a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

if TYPE_CHECKING:
    import polars as pl

# The parent imports nothing heavy and builds the frame in a child of its own:
# Linux carries a process's peak RSS across fork+exec into the child's
# ru_maxrss, so a fat parent would inflate every writer's figure.

DATETIME_FORMAT = "DD/MM/YYYY HH:mm"
SHEET = "Relatório"


def _columns():
    from benchmarks.storyboard_data import COLUMNS

    return COLUMNS


def _headed(frame: pl.DataFrame) -> pl.DataFrame:
    COLUMNS = _columns()
    return frame.rename({c.key: c.header for c in COLUMNS})


def run_ours(frame: pl.DataFrame, path: Path) -> None:
    from assets.writers import write_xlsx

    write_xlsx(frame, _columns(), path, sheet_name=SHEET)


def run_polars(frame: pl.DataFrame, path: Path) -> None:
    import polars as pl

    _headed(frame).write_excel(
        path,
        worksheet=SHEET,
        autofilter=True,
        freeze_panes=(1, 0),
        header_format={"bold": True},
        dtype_formats={pl.Datetime: DATETIME_FORMAT},
    )


def run_xlsxwriter(frame: pl.DataFrame, path: Path) -> None:
    import xlsxwriter

    COLUMNS = _columns()
    workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    sheet = workbook.add_worksheet(SHEET)
    bold = workbook.add_format({"bold": True})
    stamp = workbook.add_format({"num_format": DATETIME_FORMAT})
    kinds = [c.kind for c in COLUMNS]
    sheet.freeze_panes(1, 0)
    sheet.autofilter(0, 0, frame.height, len(COLUMNS) - 1)
    sheet.write_row(0, 0, [c.header for c in COLUMNS], bold)
    for r, row in enumerate(frame.iter_rows(), start=1):
        for c, value in enumerate(row):
            if value is None:
                continue
            if kinds[c] == "datetime":
                sheet.write_datetime(r, c, value, stamp)
            else:
                sheet.write(r, c, value)
    workbook.close()


def run_xlsxturbo(frame: pl.DataFrame, path: Path) -> None:
    import xlsxturbo

    COLUMNS = _columns()
    xlsxturbo.df_to_xlsx(
        _headed(frame),
        str(path),
        sheet_name=SHEET,
        freeze_panes=True,
        autofilter=True,
        constant_memory=True,
        header_format={"bold": True},
        column_formats={c.header: {"num_format": DATETIME_FORMAT} for c in COLUMNS if c.kind == "datetime"},
    )


def run_rustpy(frame: pl.DataFrame, path: Path) -> None:
    from rustpy_xlsxwriter import FastExcel

    (
        FastExcel(str(path))
        .format(datetime_format=DATETIME_FORMAT, bold_headers=True)
        .freeze(row=1, col=0)
        .sheet(SHEET, _headed(frame), autofilter=True)
        .save()
    )


WRITERS: dict[str, tuple[str, Callable[[pl.DataFrame, Path], None]]] = {
    "ours": ("ours (assets.writers.write_xlsx)", run_ours),
    "polars": ("polars write_excel", run_polars),
    "xlsxwriter": ("XlsxWriter constant_memory", run_xlsxwriter),
    "xlsxturbo": ("xlsxturbo (constant_memory)", run_xlsxturbo),
    "rustpy": ("rustpy-xlsxwriter", run_rustpy),
}


def make_input(rows: int, parquet: Path) -> None:
    from benchmarks.storyboard_data import storyboard_frame

    storyboard_frame(rows).write_parquet(parquet)


def child(name: str, parquet: Path, out: Path) -> None:
    import polars as pl

    frame = pl.read_parquet(parquet)
    start = time.perf_counter()
    WRITERS[name][1](frame, out)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "bytes": out.stat().st_size, "rows": frame.height}))


def measure(name: str, parquet: Path, workdir: Path) -> dict[str, float]:
    out = workdir / f"{name}.xlsx"
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", name, "--input", str(parquet), "--output", str(out)],
        stdout=subprocess.PIPE,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    stdout = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{name} failed with exit code {proc.returncode}")
    result = json.loads(stdout.decode().strip().splitlines()[-1])
    result["rss_mb"] = usage.ru_maxrss / 1024  # Linux reports KiB
    out.unlink(missing_ok=True)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--only", default=",".join(WRITERS), help=f"comma-separated subset of {','.join(WRITERS)}")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--input", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--make-input", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.make_input is not None:
        make_input(args.make_input, args.output)
        return
    if args.child:
        child(args.child, args.input, args.output)
        return
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = sorted(set(names) - set(WRITERS))
    if unknown:
        parser.error(f"unknown writers {unknown}; choose from {list(WRITERS)}")
    with tempfile.TemporaryDirectory(prefix="xlsx-bench-") as tmp:
        workdir = Path(tmp)
        parquet = workdir / "frame.parquet"
        subprocess.run(
            [sys.executable, __file__, "--make-input", str(args.rows), "--output", str(parquet)], check=True, cwd=ROOT
        )
        print(
            f"# {args.rows:,} rows x 12 columns; load average {os.getloadavg()[0]:.2f}; {os.cpu_count()} CPUs",
            flush=True,
        )
        results = {}
        for name in names:
            results[name] = measure(name, parquet, workdir)
            r = results[name]
            print(f"#   {name}: {r['seconds']:.2f} s, {r['rss_mb']:.0f} MB", file=sys.stderr, flush=True)
    ours = results.get("ours")
    print("| writer | seconds | rows/s | peak RSS MB | file MB | ours rows/s ÷ this | ours RSS ÷ this |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        rate = r["rows"] / r["seconds"]
        speed = f"{(ours['rows'] / ours['seconds']) / rate:.1f}×" if ours else "–"
        mem = f"{ours['rss_mb'] / r['rss_mb']:.2f}" if ours else "–"
        print(
            f"| {WRITERS[name][0]} | {r['seconds']:.2f} | {rate:,.0f} | {r['rss_mb']:.0f} | "
            f"{r['bytes'] / 1e6:.1f} | {speed} | {mem} |"
        )


if __name__ == "__main__":
    main()
