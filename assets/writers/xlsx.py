"""Streaming xlsx writer: sheet XML built by vectorized Polars string ops.

Why hand-written OOXML: the libraries either hold every cell as a Python or
Rust object (polars ``write_excel`` ~4 GB for 1M rows), or stream but spend
most of their time in per-cell calls and single-threaded zlib, and none of
them continues on a new sheet at Excel's row limit (XlsxWriter
``constant_memory`` even drops the excess rows silently). Here each chunk of
rows becomes one XML byte string through a single Polars ``concat_str`` (runs
in Rust, off the GIL), and chunks are built and deflated (ISA-L) in parallel on
the worker threads of ``assets.writers.zipstream``. Memory is the frame plus a few chunks, whatever
the row count. See docs/benchmarks.md for the numbers.

The package is deliberately small: inline strings (no shared-string table to
hold in memory), one styles part (bold header, ``DD/MM/YYYY`` and
``DD/MM/YYYY HH:mm`` date formats), a frozen header row, an autofilter with its
hidden ``_xlnm._FilterDatabase`` name (as Excel writes it) and column widths.
Text is always written as an inline string, so values starting with
``= + - @`` are never formulas. Nulls are omitted cells (truly empty).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path

import polars as pl
import pyarrow as pa

from assets.spec import Column
from assets.writers.result import WriteResult, atomic_output, check_columns, normalized
from assets.writers.zipstream import Chunk, ZipStream

MAX_ROWS_PER_SHEET = 1_048_575
"""Excel's 1,048,576 rows per sheet minus the header row."""

CHUNK_ROWS = 8_192
"""Rows per deflate chunk: ~5 MB of XML for a 12-column report; larger chunks cost memory and gain nothing."""

_EXCEL_EPOCH_OFFSET_DAYS = 25_569  # 1970-01-01 as an Excel (1900 system) serial
_US_PER_DAY = 86_400_000_000
_MAX_COLUMNS = 16_384
_ZIP64_GUARD = 0xFFFFFFFF - (1 << 20)

_STYLE = {"date": 1, "datetime": 2}
_HEADER_STYLE = 3

# XML 1.0 forbids most C0 controls even escaped; they are dropped. A raw CR would
# be normalized to LF by every XML parser, so it is written as a character reference.
_CONTROL = [chr(c) for c in (*range(0, 9), 11, 12, *range(14, 32))] + ["\ufffe", "\uffff"]
_XML_FIND = ["&", "<", ">", "\r", *_CONTROL]
_XML_REPLACE = ["&amp;", "&lt;", "&gt;", "&#13;"] + [""] * len(_CONTROL)

_NS = (
    'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'
)
_XML_DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_CT = "application/vnd.openxmlformats-officedocument.spreadsheetml"

_STYLES_XML = (
    _XML_DECL + '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    '<numFmts count="2"><numFmt numFmtId="164" formatCode="DD/MM/YYYY"/>'
    '<numFmt numFmtId="165" formatCode="DD/MM/YYYY HH:mm"/></numFmts>'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/><family val="2"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/><family val="2"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="4"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)


def column_letter(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def xml_escape(text: str, *, attribute: bool = False) -> str:
    """Python-side twin of the vectorized escaping, for headers and names."""
    for find, repl in zip(_XML_FIND, _XML_REPLACE, strict=True):
        text = text.replace(find, repl)
    return text.replace('"', "&quot;") if attribute else text


def sheet_names(base: str, count: int) -> list[str]:
    """ "Relatório", "Relatório (2)", ... valid as Excel sheet names (<= 31 chars)."""
    clean = "".join(ch for ch in base if ch not in "[]:*?/\\").strip("'").strip() or "Sheet"
    names = []
    for i in range(1, count + 1):
        suffix = "" if i == 1 else f" ({i})"
        names.append(clean[: 31 - len(suffix)] + suffix)
    return names


_LEADING_OR_TRAILING_SPACE = r"^\s|\s$"
#: A value that needs escaping (``_XML_FIND``, all single characters) or ``xml:space``.
_NEEDS_CARE = "[" + "".join(f"\\x{{{ord(c):X}}}" for c in _XML_FIND) + "]|" + _LEADING_OR_TRAILING_SPACE


#: A piece of XML per row: a literal (the same in every row) or an expression.
_Piece = str | pl.Expr


def _exprs(pieces: Sequence[_Piece]) -> list[pl.Expr]:
    """``pieces`` for ``concat_str``, adjacent literals merged into one: its cost is per piece
    and row, and a cell's closing tag and the next cell's opening one are always adjacent
    (66 -> 44 pieces a row for the big month, ≈ 8 % of the XML building)."""
    out: list[pl.Expr] = []
    literal = ""
    for piece in pieces:
        if isinstance(piece, str):
            literal += piece
            continue
        if literal:
            out.append(pl.lit(literal))
            literal = ""
        out.append(piece)
    if literal:
        out.append(pl.lit(literal))
    return out


def _text_xml(value: pl.Expr, ref: list[_Piece], plain: bool = False) -> list[_Piece]:
    """A text cell; ``plain``: no value of the column needs escaping or ``xml:space`` (decided
    once per sheet by ``_row_pieces``: testing and escaping every value was most of a text
    cell's cost, and hardly any value has ``&``, ``<`` or an edge space)."""
    # xml:space="preserve" only where leading/trailing whitespace would be lost.
    t_open: _Piece = "<t>"
    if not plain:
        t_open = (
            pl.when(value.str.contains(_LEADING_OR_TRAILING_SPACE))
            .then(pl.lit('<t xml:space="preserve">'))
            .otherwise(pl.lit("<t>"))
        )
    text = value if plain else value.str.replace_many(_XML_FIND, _XML_REPLACE)
    return [*ref, ' t="inlineStr"><is>', t_open, text, "</t></is></c>"]


def _cell_pieces(
    frame: pl.DataFrame, column: Column, index: int, row_ref: pl.Expr, plain: bool = False
) -> list[_Piece]:
    """One cell's XML per row as the pieces to concatenate; a piece is null where the value
    is null (or a non-finite float), so their ``concat_str`` is null there: no cell at all."""
    value = normalized(frame, column)
    ref: list[_Piece] = [f'<c r="{column_letter(index)}', row_ref, '"']
    if column.kind == "text":
        return _text_xml(value, ref, plain)
    if column.kind == "bool":
        return [*ref, ' t="b"><v>', value.cast(pl.UInt8).cast(pl.String), "</v></c>"]
    style = ""
    if column.kind == "int":
        number = value.cast(pl.String)
    elif column.kind == "float":
        number = pl.when(value.is_finite()).then(value.cast(pl.String))
    elif column.kind == "date":
        number = (value.cast(pl.Int32) + _EXCEL_EPOCH_OFFSET_DAYS).cast(pl.String)
        style = f' s="{_STYLE["date"]}"'
    else:
        serial = value.dt.epoch("us").cast(pl.Float64) / _US_PER_DAY + _EXCEL_EPOCH_OFFSET_DAYS
        number = serial.cast(pl.String)
        style = f' s="{_STYLE["datetime"]}"'
    return [*ref, f"{style}><v>", number, "</v></c>"]


def _row_pieces(frame: pl.DataFrame, columns: Sequence[Column], row_ref: pl.Expr) -> list[_Piece]:
    """Every cell's pieces for one ``concat_str(..., ignore_nulls=True)`` per row.

    A column without nulls in ``frame`` gives its pieces to the row's ``concat_str`` directly
    instead of through a ``concat_str`` of its own (which exists only to turn the whole cell
    into a null that the row drops): that intermediate string per cell was another copy of
    most of the sheet's XML. Floats keep it (a non-finite value is no cell either). Which text
    columns need escaping or ``xml:space`` is decided here over the whole ``frame`` (one regex
    scan each), so the bytes are the same as per-row escaping, only cheaper. Both together took
    writing the big institution's month (1.2M rows, 733 MB of XML; its frame read from Parquet)
    from 3.6 to 2.6 CPU-s."""
    text = [(i, c) for i, c in enumerate(columns) if c.kind == "text"]
    checks = [pl.col(c.key).null_count().alias(f"n{i}") for i, c in enumerate(columns)]
    checks += [normalized(frame, c).str.contains(_NEEDS_CARE).any().alias(f"t{i}") for i, c in text]
    found = frame.select(checks).row(0, named=True) if frame.height else {}
    pieces: list[_Piece] = []
    for i, column in enumerate(columns):
        cell = _cell_pieces(frame, column, i, row_ref, plain=not found.get(f"t{i}", True))
        if column.kind != "float" and found.get(f"n{i}", 1) == 0:
            pieces += cell
        else:
            pieces.append(pl.concat_str(_exprs(cell)))
    return pieces


def _estimate_widths(frame: pl.DataFrame, columns: Sequence[Column], sample: int = 2_000) -> list[float]:
    """column.width, else from header and the first rows (room for the filter button)."""
    head = frame.head(sample)
    widths = []
    for column in columns:
        if column.width is not None:
            widths.append(float(column.width))
            continue
        if column.kind == "date":
            data = 10
        elif column.kind == "datetime":
            data = 16
        elif head.height:
            data = head.select(normalized(head, column).cast(pl.String).str.len_chars().max()).item() or 0
        else:
            data = 0
        widths.append(float(min(max(len(column.header) + 4, data + 2, 8), 60)))
    return widths


def _sheet_head(columns: Sequence[Column], widths: list[float], rows: int, first: bool) -> bytes:
    last = f"{column_letter(len(columns) - 1)}{rows + 1}"
    cols = "".join(f'<col min="{i}" max="{i}" width="{w:.2f}" customWidth="1"/>' for i, w in enumerate(widths, 1))
    header = "".join(
        f'<c r="{column_letter(i)}1" t="inlineStr" s="{_HEADER_STYLE}"><is><t>{xml_escape(c.header)}</t></is></c>'
        for i, c in enumerate(columns)
    )
    selected = ' tabSelected="1"' if first else ""
    return (
        f'{_XML_DECL}<worksheet {_NS}><dimension ref="A1:{last}"/>'
        f'<sheetViews><sheetView{selected} workbookViewId="0">'
        '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
        '<selection pane="bottomLeft" activeCell="A2" sqref="A2"/></sheetView></sheetViews>'
        f'<sheetFormatPr defaultRowHeight="15"/><cols>{cols}</cols>'
        f'<sheetData><row r="1">{header}</row>'
    ).encode()


def _sheet_tail(columns: Sequence[Column], rows: int) -> bytes:
    last = f"{column_letter(len(columns) - 1)}{rows + 1}"
    return (
        f'</sheetData><autoFilter ref="A1:{last}"/>'
        '<pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" footer="0.3"/>'
        "</worksheet>"
    ).encode()


def _concatenated(rows: pl.Series) -> memoryview:
    """The UTF-8 bytes of ``rows`` end to end, copied once: as an Arrow ``large_string`` they are
    already one contiguous buffer, where ``str.join`` and then ``bytes`` copied them twice (≈ 0.4
    against ≈ 0.12 CPU-s for the big month's 733 MB of XML)."""
    array = rows.to_arrow(compat_level=pl.CompatLevel.oldest())
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    _, offsets, data = array.buffers()
    if data is None or not len(array):
        return memoryview(b"")
    bounds = memoryview(offsets)[: 8 * (array.offset + len(array) + 1)].cast("q")  # large_string: int64
    return memoryview(data)[bounds[array.offset] : bounds[array.offset + len(array)]]


_ROW_COLUMN = "\x00row"


def _rows_xml(chunk: pl.DataFrame, first_row: int, row_xml: pl.Expr) -> memoryview:
    """The XML of ``chunk``'s rows, the first being sheet row ``first_row``."""
    numbered = chunk.with_columns(
        (pl.int_range(pl.len(), dtype=pl.Int64) + first_row).cast(pl.String).alias(_ROW_COLUMN)
    )
    return _concatenated(numbered.select(row_xml).to_series())


def _sheet_chunks(
    frame: pl.DataFrame, columns: Sequence[Column], widths: list[float], first: bool, chunk_rows: int
) -> Iterator[Chunk]:
    """The sheet's XML as chunks; the rows' as functions that build them, so that the deflate
    workers build them too: on 2 cores the writer's main thread building every chunk alone
    kept one core waiting for it (``assets.writers.zipstream.Chunk``). Only the chunks in
    flight exist as strings."""
    yield _sheet_head(columns, widths, frame.height, first)
    row_ref = pl.col(_ROW_COLUMN)
    row_xml = pl.concat_str(
        _exprs(['<row r="', row_ref, '">', *_row_pieces(frame, columns, row_ref), "</row>"]), ignore_nulls=True
    )
    for start in range(0, frame.height, chunk_rows):
        yield partial(_rows_xml, frame.slice(start, chunk_rows), start + 2, row_xml)
    yield _sheet_tail(columns, frame.height)


def _xml_upper_bound(frame: pl.DataFrame, columns: Sequence[Column]) -> int:
    """A safe over-estimate of a sheet's XML size, to decide on ZIP64 up front."""
    text = [pl.col(c.key).cast(pl.String).str.len_bytes().sum() for c in columns if c.kind == "text"]
    text_bytes = int(sum(frame.select(text).row(0))) if text and frame.height else 0
    per_row = 32 + len(columns) * 80
    return 5 * text_bytes + per_row * (frame.height + 1) + 4096 + sum(len(c.header) * 5 for c in columns)


def _workbook_parts(names: list[str], sheet_rows: list[int], columns: Sequence[Column]) -> dict[str, bytes]:
    n = len(names)
    last_col = column_letter(len(columns) - 1)
    sheets = "".join(
        f'<sheet name="{xml_escape(name, attribute=True)}" sheetId="{i}" r:id="rId{i}"/>'
        for i, name in enumerate(names, 1)
    )
    defined = "".join(
        f'<definedName name="_xlnm._FilterDatabase" localSheetId="{i}" hidden="1">'
        f"{xml_escape(repr_sheet(name))}!$A$1:${last_col}${rows + 1}</definedName>"
        for i, (name, rows) in enumerate(zip(names, sheet_rows, strict=True))
    )
    rels = "".join(
        f'<Relationship Id="rId{i}" Type="{_REL}/worksheet" Target="worksheets/sheet{i}.xml"/>' for i in range(1, n + 1)
    )
    overrides = "".join(
        f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="{_CT}.worksheet+xml"/>' for i in range(1, n + 1)
    )
    parts = {
        "[Content_Types].xml": (
            f'{_XML_DECL}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{_CT}.sheet.main+xml"/>'
            f'<Override PartName="/xl/styles.xml" ContentType="{_CT}.styles+xml"/>{overrides}</Types>'
        ),
        "_rels/.rels": (
            f'{_XML_DECL}<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{_REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
        ),
        "xl/workbook.xml": (
            f'{_XML_DECL}<workbook {_NS}><bookViews><workbookView activeTab="0"/></bookViews>'
            f"<sheets>{sheets}</sheets><definedNames>{defined}</definedNames></workbook>"
        ),
        "xl/_rels/workbook.xml.rels": (
            f'{_XML_DECL}<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'{rels}<Relationship Id="rId{n + 1}" Type="{_REL}/styles" Target="styles.xml"/></Relationships>'
        ),
        "xl/styles.xml": _STYLES_XML,
    }
    return {name: xml.encode() for name, xml in parts.items()}


def repr_sheet(name: str) -> str:
    """A sheet name as a formula reference: always quoted, quotes doubled."""
    return "'" + name.replace("'", "''") + "'"


def write_xlsx(
    frame: pl.DataFrame,
    columns: Sequence[Column],
    path: str | Path,
    *,
    sheet_name: str = "Relatório",
    max_rows_per_sheet: int = MAX_ROWS_PER_SHEET,
    level: int = 1,
    chunk_rows: int = CHUNK_ROWS,
    workers: int | None = None,
) -> WriteResult:
    """Write ``frame`` (columns named by ``column.key``) as an xlsx workbook.

    Rows beyond ``max_rows_per_sheet`` continue on "<sheet_name> (2)", ... with
    the header repeated. ``level`` is the ISA-L deflate level (0-3); ``workers``
    the deflate threads (default: CPU count).
    """
    check_columns(frame, columns)
    if len(columns) > _MAX_COLUMNS:
        raise ValueError(f"xlsx sheets hold at most {_MAX_COLUMNS} columns, got {len(columns)}")
    if not 1 <= max_rows_per_sheet <= MAX_ROWS_PER_SHEET:
        raise ValueError(f"max_rows_per_sheet must be in 1..{MAX_ROWS_PER_SHEET}")
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be positive")
    frame = frame.select([c.key for c in columns])
    sheet_count = max(1, math.ceil(frame.height / max_rows_per_sheet))
    names = sheet_names(sheet_name, sheet_count)
    slices = [frame.slice(i * max_rows_per_sheet, max_rows_per_sheet) for i in range(sheet_count)]
    widths = _estimate_widths(frame, columns)
    threads = workers or os.cpu_count() or 1
    with atomic_output(path) as out:
        archive = ZipStream(out, level=level, workers=threads, max_pending=threads + 1)
        try:
            for name, data in _workbook_parts(names, [s.height for s in slices], columns).items():
                archive.write_member(name, [data])
            for i, part in enumerate(slices, 1):
                archive.write_member(
                    f"xl/worksheets/sheet{i}.xml",
                    _sheet_chunks(part, columns, widths, i == 1, chunk_rows),
                    zip64=_xml_upper_bound(part, columns) > _ZIP64_GUARD,
                )
        except BaseException:
            archive.abort()
            raise
        archive.close()
    return WriteResult(Path(path), frame.height, out.bytes, out.sha256.hexdigest(), sheet_count)
