"""xlsx files checked with an independent reader (openpyxl, zipfile)."""

from __future__ import annotations

import hashlib
import inspect
import re
import zipfile
from datetime import date, datetime
from pathlib import Path

import openpyxl
import polars as pl
import pytest

from assets.spec import Column
from assets.writers import MAX_ROWS_PER_SHEET, write_xlsx
from assets.writers import xlsx as xlsx_module
from tests.writers.conftest import ROWS, numbered


def _sheet_rows(ws) -> list[tuple]:
    return [tuple(c.value for c in row) for row in ws.iter_rows()]


def test_header_is_exact_bold_frozen_and_filtered(tmp_path: Path, frame, columns) -> None:
    path = tmp_path / "r.xlsx"
    write_xlsx(frame, columns, path)
    ws = openpyxl.load_workbook(path).active
    assert ws.title == "Relatório"
    assert [c.value for c in ws[1]] == [c.header for c in columns]
    assert all(c.font.b for c in ws[1])
    assert not any(c.font.b for c in ws[2])
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == f"A1:G{len(ROWS) + 1}"
    assert ws.column_dimensions["G"].width == pytest.approx(21)  # Column.width wins
    assert ws.column_dimensions["A"].width >= len("Nome Completo (Usuário)")


def test_values_types_and_formats_round_trip(tmp_path: Path, frame, columns) -> None:
    path = tmp_path / "r.xlsx"
    write_xlsx(frame, columns, path)
    ws = openpyxl.load_workbook(path).active
    first = ws[2]
    assert [c.value for c in first[:5]] == ["João Gonçalves Araújo", '=HYPERLINK("http://x","y")', 3, 1.5, True]
    born, seen = first[5], first[6]
    assert born.is_date and born.number_format == "DD/MM/YYYY"
    assert born.value == datetime(2024, 2, 29)
    assert seen.is_date and seen.number_format == "DD/MM/YYYY HH:mm"
    assert seen.value == datetime(2024, 3, 1, 8, 5, 59)
    assert ws["B5"].value == "@SUM(A1)" and ws["D5"].value == 1e20
    assert ws["F4"].value == datetime(1999, 12, 31)
    assert ws["G6"].value == datetime(1970, 1, 1, 12, 30)


def test_nulls_are_empty_cells_not_text(tmp_path: Path, frame, columns) -> None:
    path = tmp_path / "r.xlsx"
    write_xlsx(frame, columns, path)
    ws = openpyxl.load_workbook(path).active
    assert [c.value for c in ws[3]] == ["Márcia Conceição", "+55 11 9999-0000", None, None, False, None, None]
    assert ws["A4"].value is None
    xml = zipfile.ZipFile(path).read("xl/worksheets/sheet1.xml").decode()
    assert 'r="C3"' not in xml and 'r="F3"' not in xml  # omitted, not written blank
    assert "None" not in xml and "null" not in xml


def test_formula_like_text_is_never_a_formula(tmp_path: Path, frame, columns) -> None:
    path = tmp_path / "r.xlsx"
    write_xlsx(frame, columns, path)
    ws = openpyxl.load_workbook(path).active
    for row, expected in zip(
        range(2, 6), ['=HYPERLINK("http://x","y")', "+55 11 9999-0000", "-10", "@SUM(A1)"], strict=True
    ):
        cell = ws.cell(row, 2)
        assert cell.value == expected and cell.data_type == "s"
    xml = zipfile.ZipFile(path).read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in xml and "<f " not in xml


def test_xml_special_characters_whitespace_and_controls(tmp_path: Path, frame, columns) -> None:
    path = tmp_path / "r.xlsx"
    write_xlsx(frame, columns, path)
    ws = openpyxl.load_workbook(path).active
    assert ws["A5"].value == "  Íris <Sá> & Cia  "
    assert ws["A6"].value == "tab\tand\nnewlinectrl"  # \x01 is not representable in XML
    assert ws["B6"].value == ""


def test_carriage_returns_survive(tmp_path: Path) -> None:
    path = tmp_path / "cr.xlsx"
    write_xlsx(pl.DataFrame({"a": ["linha 1\r\nlinha 2\rfim"]}), [Column("a", "Texto")], path)
    assert openpyxl.load_workbook(path).active["A2"].value == "linha 1\r\nlinha 2\rfim"


def test_timezone_aware_datetimes_are_written_as_wall_clock(tmp_path: Path) -> None:
    frame = pl.DataFrame({"at": [datetime(2024, 1, 1, 9, 30)]}).with_columns(
        pl.col("at").dt.replace_time_zone("America/Sao_Paulo")
    )
    path = tmp_path / "tz.xlsx"
    write_xlsx(frame, [Column("at", "Quando", "datetime")], path)
    assert openpyxl.load_workbook(path).active["A2"].value == datetime(2024, 1, 1, 9, 30)


@pytest.mark.parametrize(("rows", "sheets"), [(12, 3), (10, 2), (5, 1), (1, 1)])
def test_sheet_split_repeats_header_and_keeps_order(tmp_path: Path, columns, rows: int, sheets: int) -> None:
    frame = numbered(rows)
    path = tmp_path / "split.xlsx"
    result = write_xlsx(frame, columns, path, max_rows_per_sheet=5)
    assert result.sheets == sheets and result.rows == rows
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["Relatório"] + [f"Relatório ({i})" for i in range(2, sheets + 1)]
    seen: list[tuple] = []
    for ws in wb.worksheets:
        body = _sheet_rows(ws)
        assert body[0] == tuple(c.header for c in columns)
        assert all(c.font.b for c in ws[1]) and ws.freeze_panes == "A2"
        assert 1 <= len(body) - 1 <= 5
        assert ws.auto_filter.ref == f"A1:G{len(body)}"
        seen.extend(body[1:])
    assert [r[0] for r in seen] == [f"Usuário {i}" for i in range(rows)]
    assert [r[1] for r in seen] == [f"={i}" for i in range(rows)]
    assert [r[2] for r in seen] == list(range(rows))


def test_default_sheet_limit_is_excel_rows_minus_header() -> None:
    assert MAX_ROWS_PER_SHEET == 1_048_575
    default = inspect.signature(write_xlsx).parameters["max_rows_per_sheet"].default
    assert default == MAX_ROWS_PER_SHEET


def test_empty_frame_writes_just_the_header(tmp_path: Path, frame, columns) -> None:
    path = tmp_path / "empty.xlsx"
    result = write_xlsx(frame.clear(), columns, path)
    assert result.rows == 0 and result.sheets == 1
    ws = openpyxl.load_workbook(path).active
    assert _sheet_rows(ws) == [tuple(c.header for c in columns)]
    assert ws.auto_filter.ref == "A1:G1"


def test_write_result_describes_the_file(tmp_path: Path, frame, columns) -> None:
    path = tmp_path / "r.xlsx"
    result = write_xlsx(frame, columns, str(path))
    data = path.read_bytes()
    assert result.path == path and result.rows == len(ROWS) and result.sheets == 1
    assert result.bytes == len(data)
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert not list(tmp_path.glob("*.part"))


def test_chunking_does_not_change_content(tmp_path: Path, columns) -> None:
    """Many tiny deflate chunks (CRC combine, sync-flush joins) give the same XML."""
    frame = numbered(50)
    one, many = tmp_path / "one.xlsx", tmp_path / "many.xlsx"
    write_xlsx(frame, columns, one, chunk_rows=1_000)
    write_xlsx(frame, columns, many, chunk_rows=3, workers=2)
    for path in (one, many):
        assert zipfile.ZipFile(path).testzip() is None
    name = "xl/worksheets/sheet1.xml"
    assert zipfile.ZipFile(one).read(name) == zipfile.ZipFile(many).read(name)


def test_zip64_members_still_open(tmp_path: Path, frame, columns, monkeypatch) -> None:
    """A sheet that may exceed 4 GiB gets ZIP64 records; readers must cope."""
    monkeypatch.setattr(xlsx_module, "_ZIP64_GUARD", -1)
    path = tmp_path / "z64.xlsx"
    write_xlsx(frame, columns, path)
    archive = zipfile.ZipFile(path)
    assert archive.testzip() is None
    ws = openpyxl.load_workbook(path).active
    assert ws["A2"].value == "João Gonçalves Araújo"


def test_workbook_parts_are_well_formed(tmp_path: Path, frame, columns) -> None:
    path = tmp_path / "r.xlsx"
    write_xlsx(frame, columns, path, max_rows_per_sheet=2)
    archive = zipfile.ZipFile(path)
    workbook = archive.read("xl/workbook.xml").decode()
    assert workbook.count("_xlnm._FilterDatabase") == 3
    assert "'Relatório (2)'!$A$1:$G$3" in workbook
    styles = archive.read("xl/styles.xml").decode()
    assert 'formatCode="DD/MM/YYYY"' in styles and 'formatCode="DD/MM/YYYY HH:mm"' in styles
    sheet = archive.read("xl/worksheets/sheet3.xml").decode()
    assert re.search(r'<dimension ref="A1:G2"/>', sheet)


def test_long_and_invalid_sheet_names_are_made_valid(tmp_path: Path, frame, columns) -> None:
    path = tmp_path / "n.xlsx"
    write_xlsx(
        frame, columns, path, sheet_name="Relatório de uso: [storyboards]/2026 muito longo", max_rows_per_sheet=2
    )
    names = openpyxl.load_workbook(path).sheetnames
    assert all(len(n) <= 31 and not set(n) & set("[]:*?/\\") for n in names)
    assert names[1].endswith(" (2)") and len(set(names)) == 3


def test_bad_arguments_fail_clearly(tmp_path: Path, frame, columns) -> None:
    with pytest.raises(ValueError, match="lacks columns"):
        write_xlsx(frame.drop("likes"), columns, tmp_path / "x.xlsx")
    with pytest.raises(ValueError, match="max_rows_per_sheet"):
        write_xlsx(frame, columns, tmp_path / "x.xlsx", max_rows_per_sheet=MAX_ROWS_PER_SHEET + 1)
    assert not list(tmp_path.iterdir())


def test_date_columns_survive_as_real_dates(tmp_path: Path) -> None:
    frame = pl.DataFrame({"d": [date(1900, 3, 1), date(2100, 12, 31)]})
    path = tmp_path / "d.xlsx"
    write_xlsx(frame, [Column("d", "Dia", "date")], path)
    ws = openpyxl.load_workbook(path).active
    assert [ws["A2"].value, ws["A3"].value] == [datetime(1900, 3, 1), datetime(2100, 12, 31)]


def test_quotes_and_ampersands_in_sheet_names_and_headers(tmp_path: Path) -> None:
    frame = pl.DataFrame({"a": ["x"]})
    path = tmp_path / "q.xlsx"
    write_xlsx(frame, [Column("a", 'Nome "apelido" & <tag>')], path, sheet_name='Uso "R&D" d\'água')
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ['Uso "R&D" d\'água']
    assert wb.active["A1"].value == 'Nome "apelido" & <tag>'
    assert "'Uso \"R&amp;D\" d''água'!$A$1:$A$2" in zipfile.ZipFile(path).read("xl/workbook.xml").decode().replace(
        "&quot;", '"'
    )


def test_the_same_frame_gives_the_same_bytes_whatever_the_clock(
    tmp_path: Path, frame, columns, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A partition rebuilt later (the monthly backfill after a request) must be
    byte-identical, or links and checksums handed out earlier stop matching."""
    import time

    first, second = tmp_path / "a.xlsx", tmp_path / "b.xlsx"
    write_xlsx(frame, columns, first)
    later = time.time() + 86_400 * 40 + 3_723
    with monkeypatch.context() as clock:  # only around the second write: pytest's own timing keeps the real clock
        clock.setattr(time, "time", lambda: later)
        clock.setattr(time, "time_ns", lambda: int(later * 1e9))
        write_xlsx(frame, columns, second)
    assert hashlib.sha256(first.read_bytes()).digest() == hashlib.sha256(second.read_bytes()).digest()
    with zipfile.ZipFile(first) as archive:
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def _every_cell_on_its_slow_path(frame: pl.DataFrame, columns, row_ref: pl.Expr) -> list[pl.Expr]:
    """The row as written before the per-sheet checks: every text value escaped and tested for
    edge whitespace, every cell its own ``concat_str`` (null -> no cell)."""
    return [
        pl.concat_str(xlsx_module._exprs(xlsx_module._cell_pieces(frame, c, i, row_ref))) for i, c in enumerate(columns)
    ]


def _awkward_and_plain() -> pl.DataFrame:
    """Plain rows around the awkward ones: escapes, edge spaces and nulls appear in one
    deflate chunk and one sheet but not the others."""
    awkward = pl.DataFrame(ROWS, schema=numbered(1).schema, orient="row")
    return pl.concat([numbered(40), awkward, numbered(7)])


@pytest.mark.parametrize(
    ("make", "options"),
    [
        (lambda: pl.DataFrame(ROWS, schema=numbered(1).schema, orient="row"), {}),
        (lambda: numbered(50), {}),
        (_awkward_and_plain, {"chunk_rows": 4, "max_rows_per_sheet": 30}),
    ],
)
def test_sheet_level_checks_write_the_same_xml_as_cell_by_cell(
    tmp_path: Path, columns, monkeypatch: pytest.MonkeyPatch, make, options
) -> None:
    """Escaping, ``xml:space`` and null handling are decided once per sheet (for speed);
    the XML must be byte for byte what per-cell handling writes."""
    fast, slow = tmp_path / "fast.xlsx", tmp_path / "slow.xlsx"
    write_xlsx(make(), columns, fast, **options)
    with monkeypatch.context() as patch:
        patch.setattr(xlsx_module, "_row_pieces", _every_cell_on_its_slow_path)
        write_xlsx(make(), columns, slow, **options)
    with zipfile.ZipFile(fast) as a, zipfile.ZipFile(slow) as b:
        assert a.namelist() == b.namelist()
        for name in a.namelist():
            assert a.read(name) == b.read(name), name


#: sha256 (first 16 hex digits) of each sheet's XML for ``_awkward_and_plain`` in 4-row chunks, 30 rows a sheet.
PINNED_SHEETS = {"xl/worksheets/sheet1.xml": "60b391ebeaccac98", "xl/worksheets/sheet2.xml": "de9248325dd20a5c"}


def test_sheet_xml_bytes_are_pinned(tmp_path: Path, columns) -> None:
    """The sheets' XML of a fixed frame, as the writer wrote it before the per-sheet checks
    (commit 1f0b579): a stored report must not change bytes when the writer gets faster."""
    path = tmp_path / "r.xlsx"
    write_xlsx(_awkward_and_plain(), columns, path, chunk_rows=4, max_rows_per_sheet=30)
    with zipfile.ZipFile(path) as archive:
        digests = {
            name: hashlib.sha256(archive.read(name)).hexdigest()[:16]
            for name in archive.namelist()
            if name.startswith("xl/worksheets/")
        }
    assert digests == PINNED_SHEETS


def test_rows_are_concatenated_whole_and_in_order() -> None:
    """The chunk's bytes come straight from Arrow's buffers: slices and multi-chunk series too."""
    concatenated = xlsx_module._concatenated
    assert bytes(concatenated(pl.Series(["<a>", "", "ção", "&"]))) == "<a>ção&".encode()
    assert bytes(concatenated(pl.Series(["x" * 20, "yy", "z" * 30, "w"]).slice(1, 2))) == b"yy" + b"z" * 30
    parts = pl.concat([pl.Series(["a" * 13, "b"]), pl.Series(["c", "d" * 17])], rechunk=False)
    assert parts.n_chunks() == 2
    assert bytes(concatenated(parts)) == b"a" * 13 + b"bc" + b"d" * 17
    assert bytes(concatenated(pl.Series([], dtype=pl.String))) == b""


def test_a_chunk_failing_on_a_worker_leaves_no_file(tmp_path: Path, columns, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows are built on the deflate threads: an error there still fails the write cleanly."""
    real = xlsx_module._rows_xml

    def failing(chunk: pl.DataFrame, first_row: int, row_xml: pl.Expr) -> memoryview:
        if first_row > 2:
            raise RuntimeError("polars failed")
        return real(chunk, first_row, row_xml)

    monkeypatch.setattr(xlsx_module, "_rows_xml", failing)
    path = tmp_path / "r.xlsx"
    with pytest.raises(RuntimeError, match="polars failed"):
        write_xlsx(numbered(50), columns, path, chunk_rows=10)
    assert list(tmp_path.iterdir()) == []
