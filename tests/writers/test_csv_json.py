"""csv and json files checked with the standard library readers."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import polars as pl
import pytest

from assets.writers import csvfile, jsonfile, write_csv, write_json, write_report
from tests.writers.conftest import ROWS, numbered


def _read_csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh))


def test_csv_header_values_and_injection_guard(tmp_path: Path, frame, columns) -> None:
    path = tmp_path / "r.csv"
    write_csv(frame, columns, path)
    rows = _read_csv(path)
    assert rows[0] == [
        "Nome do usuário",
        "Fórmula?",
        "Curtidas",
        "Nota",
        "Ativo",
        "Data de nascimento",
        "Último acesso",
    ]
    assert rows[1] == [
        "João Gonçalves Araújo",
        '\'=HYPERLINK("http://x","y")',
        "3",
        "1.5",
        "true",
        "29/02/2024",
        "01/03/2024 08:05",
    ]
    assert rows[2] == ["Márcia Conceição", "'+55 11 9999-0000", "", "", "false", "", ""]
    assert rows[3] == ["", "'-10", "-7", "-0.25", "", "31/12/1999", "31/12/2023 23:59"]
    assert rows[4][:2] == ["  Íris <Sá> & Cia  ", "'@SUM(A1)"]
    assert rows[5][0] == "tab\tand\nnewline\x01ctrl"
    assert len(rows) == len(ROWS) + 1


def test_csv_never_writes_none_or_null(tmp_path: Path, frame, columns) -> None:
    path = tmp_path / "r.csv"
    write_csv(frame, columns, path)
    text = path.read_text(encoding="utf-8")
    assert "None" not in text and "null" not in text


def test_csv_chunks_join_seamlessly(tmp_path: Path, columns, monkeypatch) -> None:
    frame = numbered(23)
    whole, chunked = tmp_path / "whole.csv", tmp_path / "chunked.csv"
    write_csv(frame, columns, whole)
    monkeypatch.setattr(csvfile, "CHUNK_ROWS", 4)
    write_csv(frame, columns, chunked)
    assert whole.read_bytes() == chunked.read_bytes()
    assert [r[2] for r in _read_csv(chunked)[1:]] == [str(i) for i in range(23)]


def test_csv_empty_frame_is_just_the_header(tmp_path: Path, frame, columns) -> None:
    path = tmp_path / "e.csv"
    result = write_csv(frame.clear(), columns, path)
    assert result.rows == 0
    assert _read_csv(path) == [[c.csv_header or c.header for c in columns]]


def test_json_objects_keys_types_and_nulls(tmp_path: Path, frame, columns) -> None:
    path = tmp_path / "r.json"
    write_json(frame, columns, path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert len(data) == len(ROWS)
    assert all(list(obj) == [c.key for c in columns] for obj in data)
    assert data[0] == {
        "name": "João Gonçalves Araújo",
        "formula": '=HYPERLINK("http://x","y")',
        "likes": 3,
        "score": 1.5,
        "active": True,
        "born": "2024-02-29",
        "seen": "2024-03-01T08:05:59",
    }
    assert data[1] == {
        "name": "Márcia Conceição",
        "formula": "+55 11 9999-0000",
        "likes": None,
        "score": None,
        "active": False,
        "born": None,
        "seen": None,
    }
    assert data[4]["name"] == "tab\tand\nnewline\x01ctrl"


def test_json_non_finite_floats_become_null(tmp_path: Path) -> None:
    from assets.spec import Column

    path = tmp_path / "f.json"
    write_json(pl.DataFrame({"x": [float("nan"), float("inf"), 2.5]}), [Column("x", "X", "float")], path)
    assert json.loads(path.read_text()) == [{"x": None}, {"x": None}, {"x": 2.5}]


def test_json_chunks_join_seamlessly(tmp_path: Path, columns, monkeypatch) -> None:
    frame = numbered(23)
    whole, chunked = tmp_path / "whole.json", tmp_path / "chunked.json"
    write_json(frame, columns, whole)
    monkeypatch.setattr(jsonfile, "CHUNK_ROWS", 4)
    write_json(frame, columns, chunked)
    assert whole.read_bytes() == chunked.read_bytes()
    assert [o["likes"] for o in json.loads(chunked.read_text())] == list(range(23))


def test_json_empty_frame_is_an_empty_array(tmp_path: Path, frame, columns) -> None:
    path = tmp_path / "e.json"
    assert write_json(frame.clear(), columns, path).rows == 0
    assert json.loads(path.read_text()) == []


@pytest.mark.parametrize("fmt", ["xlsx", "csv", "json"])
def test_write_report_dispatches_and_describes_the_file(tmp_path: Path, frame, columns, fmt: str) -> None:
    path = tmp_path / f"r.{fmt}"
    result = write_report(frame, columns, path, fmt)  # type: ignore[arg-type]
    data = path.read_bytes()
    assert (result.rows, result.sheets, result.bytes) == (len(ROWS), 1, len(data))
    assert result.sha256 == hashlib.sha256(data).hexdigest()


def test_write_report_rejects_unknown_formats(tmp_path: Path, frame, columns) -> None:
    with pytest.raises(ValueError, match="unknown report format"):
        write_report(frame, columns, tmp_path / "r.pdf", "pdf")  # type: ignore[arg-type]


def test_json_nulls_can_be_written_as_empty_strings(tmp_path) -> None:
    """Seed 002 shows absent ratings/booleans as "" while the frame stays typed."""
    import json as _json

    import polars as _pl

    from assets.spec import Column as _Column
    from assets.writers import write_report

    cols = [
        _Column("id", "id"),
        _Column("rating", "rating", "float"),
        _Column("seen", "seen", "bool"),
        _Column("note", "note"),
    ]
    frame = _pl.DataFrame(
        {"id": ["a", "b"], "rating": [4.5, None], "seen": [None, False], "note": ['x,"rating":null}', None]},
        schema={"id": _pl.String, "rating": _pl.Float64, "seen": _pl.Boolean, "note": _pl.String},
    )
    path = tmp_path / "r.json"
    write_report(frame, cols, path, "json", json_null="")
    assert _json.loads(path.read_text(encoding="utf-8")) == [
        {"id": "a", "rating": 4.5, "seen": "", "note": 'x,"rating":null}'},
        {"id": "b", "rating": "", "seen": False, "note": ""},
    ]
    write_report(frame, cols, path, "json")
    assert _json.loads(path.read_text(encoding="utf-8"))[1] == {"id": "b", "rating": None, "seen": False, "note": None}


@pytest.mark.parametrize(
    "note", ["plain", 'x,"rating":null}', "ends with a backslash\\", 'quote" then :null,', ":null,", None]
)
def test_json_null_replacement_matches_the_member_rule(tmp_path: Path, note: str | None) -> None:
    """The replacer's fast path (bytes.replace when no escaped quote precedes ``:null``) writes the bytes
    the member-matching regex writes, and never touches text inside a string value."""
    import re

    from assets.spec import Column

    cols = [Column("rating", "rating", "float"), Column("note", "note"), Column("n", "n", "int")]
    frame = pl.DataFrame(
        {"rating": [None, 1.5, None], "note": [note, None, note], "n": [None, None, 3]},
        schema={"rating": pl.Float64, "note": pl.String, "n": pl.Int64},
    )
    path = tmp_path / "r.json"
    write_json(frame, cols, path, null_as="")
    plain = tmp_path / "plain.json"
    write_json(frame, cols, plain)
    members = re.compile(rb'(?<=[{,])("rating"|"note"|"n"):null(?=[,}])')
    assert path.read_bytes() == members.sub(rb'\1:""', plain.read_bytes())
    rows = json.loads(path.read_text(encoding="utf-8"))
    assert [r["note"] for r in rows] == [note if note is not None else "", "", note if note is not None else ""]
    assert [r["rating"] for r in rows] == ["", 1.5, ""]
