"""The groups-usage workbook: a summary sheet plus one sheet per list.

The report is a nested document (see ``assets/reports/groups_usage.py``), so
it does not go through the tabular xlsx writer. Every text is written with
``write_string`` (a name starting with ``=`` stays text, never a formula),
dates as real Excel dates (DD/MM/YYYY), absent values as empty cells; headers
are bold and frozen, list sheets get an autofilter.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import xlsxwriter

SUMMARY_SHEET = "Resumo"
_BAD_SHEET_CHARS = re.compile(r"[\[\]:*?/\\]")

_SUMMARY_ROWS: tuple[tuple[str, str], ...] = (
    ("start_date", "Data inicial"),
    ("end_date", "Data final"),
    ("total_questions", "Total de perguntas"),
    ("average_adjusted_response_time_in_minutes", "Tempo médio de resposta ajustado (min)"),
    ("active_users_percentage", "Alunos ativos (%)"),
    ("average_answer_rating", "Avaliação média das respostas"),
    ("average_nps", "NPS médio"),
    ("average_response_time_nps", "Tempo médio de resposta do NPS (min)"),
)


def _yes_no(value: Any) -> str | None:
    return None if value is None else ("Sim" if value else "Não")


def _joined(values: Sequence[str] | None) -> str:
    return ", ".join(values or [])


def _question_pairs(questions: Sequence[Mapping[str, Any]] | None) -> str:
    """ "Matemática / Álgebra (2); Física / Óptica (1)" — a student's questions, grouped."""
    counts: dict[str, int] = {}
    for q in questions or []:
        discipline = (q.get("discipline") or {}).get("name") or "Sem disciplina"
        subject = (q.get("subject") or {}).get("name") or "Sem assunto"
        key = f"{discipline} / {subject}"
        counts[key] = counts.get(key, 0) + 1
    return "; ".join(f"{k} ({v})" for k, v in counts.items())


def _top_subjects(top: Mapping[str, int] | None) -> str:
    return "; ".join(f"{k} ({v})" for k, v in (top or {}).items())


# (sheet title, summary key, [(header, value getter, kind)])
Getter = Callable[[Mapping[str, Any]], Any]
_LISTS: tuple[tuple[str, str, tuple[tuple[str, Getter, str], ...]], ...] = (
    (
        "Alunos",
        "students",
        (
            ("Nome", lambda r: r.get("name"), "text"),
            ("Turmas", lambda r: _joined(r.get("groups")), "text"),
            ("E-mail", lambda r: r.get("email"), "text"),
            ("Ativo", lambda r: _yes_no(r.get("active")), "text"),
            ("Criado em", lambda r: r.get("created_at"), "date"),
            ("Bloqueado em", lambda r: r.get("blocked_at"), "date"),
            ("Excluído em", lambda r: r.get("deleted_at"), "date"),
            ("Quantidade de perguntas", lambda r: r.get("questions_count"), "number"),
            ("Perguntas (disciplina / assunto)", lambda r: _question_pairs(r.get("questions")), "text"),
        ),
    ),
    (
        "Professores",
        "teachers",
        (
            ("Nome", lambda r: r.get("first_name"), "text"),
            ("Sobrenome", lambda r: r.get("last_name"), "text"),
            ("E-mail", lambda r: r.get("email"), "text"),
            ("Turmas", lambda r: _joined(r.get("groups")), "text"),
            ("Disciplinas", lambda r: _joined(r.get("disciplines")), "text"),
            ("Ativo", lambda r: _yes_no(r.get("active")), "text"),
            ("Perguntas respondidas", lambda r: r.get("answered_questions_count"), "number"),
            ("Tempo médio de resposta (min)", lambda r: r.get("average_response_time_in_minutes"), "number"),
            ("Criado em", lambda r: r.get("created_at"), "date"),
            ("Bloqueado em", lambda r: r.get("blocked_at"), "date"),
            ("Excluído em", lambda r: r.get("deleted_at"), "date"),
        ),
    ),
    (
        "Disciplinas",
        "disciplines",
        (
            ("Disciplina", lambda r: r.get("name"), "text"),
            ("Total de perguntas", lambda r: r.get("total_questions"), "number"),
            ("Tempo médio de resposta (min)", lambda r: r.get("average_response_time_in_minutes"), "number"),
            ("Principais assuntos", lambda r: _top_subjects(r.get("top_subjects")), "text"),
        ),
    ),
    (
        "Respostas NPS",
        "nps_answers",
        (
            ("Nome", lambda r: r.get("name"), "text"),
            ("E-mail", lambda r: r.get("email"), "text"),
            ("Turma", lambda r: r.get("group"), "text"),
            ("Nota", lambda r: r.get("score"), "number"),
            ("Comentário", lambda r: r.get("comment"), "text"),
            ("Respondida em", lambda r: r.get("answered_at"), "date"),
            ("Tempo de resposta (min)", lambda r: r.get("response_time_in_minutes"), "number"),
        ),
    ),
    (
        "Avaliações",
        "answer_ratings",
        (
            ("Pergunta", lambda r: r.get("question_id"), "text"),
            ("Disciplina", lambda r: r.get("discipline"), "text"),
            ("Assunto", lambda r: r.get("subject"), "text"),
            ("Nota", lambda r: r.get("rating"), "number"),
            ("Entendeu", lambda r: _yes_no(r.get("understood")), "text"),
            ("Comentário", lambda r: r.get("comment"), "text"),
        ),
    ),
)

LIST_SHEETS: tuple[str, ...] = tuple(title for title, _, _ in _LISTS)


def summary_sheet_name(title: str | None) -> str:
    """The report name as a valid, unique sheet name (Excel: <= 31 chars, no []:*?/\\)."""
    name = _BAD_SHEET_CHARS.sub(" ", title or "").strip().strip("'")[:31].strip()
    if not name or name.lower() in {s.lower() for s in LIST_SHEETS}:
        return SUMMARY_SHEET if not name else f"{SUMMARY_SHEET} - {name}"[:31]
    return name


def write_groups_usage_xlsx(summary: Mapping[str, Any], path: str | Path, title: str | None = None) -> None:
    """Write ``summary`` (the groups-usage JSON object) to ``path``; ``title`` names the summary sheet."""
    workbook = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False, "strings_to_numbers": False})
    try:
        if title:
            workbook.set_properties({"title": title})
        bold = workbook.add_format({"bold": True})
        day = workbook.add_format({"num_format": "dd/mm/yyyy"})
        percent = workbook.add_format({"num_format": "0.00%"})

        def cell(sheet: Any, row: int, col: int, value: Any, kind: str) -> None:
            if value is None or value == "":
                return
            if kind == "number" and isinstance(value, (int, float)) and not isinstance(value, bool):
                sheet.write_number(row, col, value)
            elif kind == "date" and isinstance(value, str):
                sheet.write_datetime(row, col, datetime.strptime(value[:10], "%Y-%m-%d"), day)
            elif kind == "percent" and isinstance(value, (int, float)):
                sheet.write_number(row, col, value, percent)
            else:
                sheet.write_string(row, col, str(value))

        sheet = workbook.add_worksheet(summary_sheet_name(title))
        sheet.write_string(0, 0, "Indicador", bold)
        sheet.write_string(0, 1, "Valor", bold)
        sheet.freeze_panes(1, 0)
        sheet.set_column(0, 0, 42)
        sheet.set_column(1, 1, 18)
        row = 1
        for key, label in _SUMMARY_ROWS:
            sheet.write_string(row, 0, label)
            kind = "percent" if key == "active_users_percentage" else ("text" if key.endswith("_date") else "number")
            cell(sheet, row, 1, summary.get(key), kind)
            row += 1
        for discipline, count in (summary.get("questions_count_by_discipline") or {}).items():
            sheet.write_string(row, 0, f"Perguntas - {discipline}")
            cell(sheet, row, 1, count, "number")
            row += 1

        for sheet_title, key, columns in _LISTS:
            if key not in summary:
                continue
            rows = summary.get(key) or []
            sheet = workbook.add_worksheet(sheet_title)
            for col, (header, _, kind) in enumerate(columns):
                sheet.write_string(0, col, header, bold)
                sheet.set_column(col, col, 14 if kind in {"date", "number"} else 28)
            for r, item in enumerate(rows, start=1):
                for col, (_, getter, kind) in enumerate(columns):
                    cell(sheet, r, col, getter(item), kind)
            sheet.freeze_panes(1, 0)
            sheet.autofilter(0, 0, max(len(rows), 1), len(columns) - 1)
    finally:
        workbook.close()
