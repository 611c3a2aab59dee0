"""Tabular export files, written row by row so memory stays flat whatever the row count."""

from __future__ import annotations

import csv
import io
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import IO

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

Row = list[object]
# A spreadsheet runs a cell starting with one of these as a formula (CSV/formula injection).
_FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_CHUNK = 64 * 1024


def neutralise(text: str) -> str:
    """Prefix a quote so spreadsheets show the text instead of evaluating it (OWASP advice)."""
    return "'" + text if text.startswith(_FORMULA_TRIGGERS) else text


def csv_text(value: object) -> str:
    """ISO dates, exact decimal strings, lower-case booleans, empty for missing; user text
    neutralised."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal | int | uuid.UUID):
        return str(value)
    return neutralise(str(value))


async def csv_chunks(header: list[str], rows: AsyncIterator[Row]) -> AsyncIterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    async for row in rows:
        writer.writerow([csv_text(value) for value in row])
        if buffer.tell() >= _CHUNK:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def _xlsx_cell(sheet: WriteOnlyWorksheet, value: object) -> object:
    """Numbers stay numeric cells; dates as ISO text (Excel has no time zones); text never
    becomes a formula."""
    if value is None or isinstance(value, bool | int | Decimal):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    # XML cannot carry most control characters; openpyxl would refuse the whole file.
    cell = WriteOnlyCell(sheet, value=ILLEGAL_CHARACTERS_RE.sub("", str(value)))
    cell.data_type = "s"  # openpyxl would otherwise store "=..." as a formula
    return cell


async def xlsx_chunks(
    title: str, header: list[str], rows: AsyncIterator[Row]
) -> AsyncIterator[bytes]:
    """openpyxl's write-only mode spools rows to disk; the finished file is then sent in chunks."""
    workbook = Workbook(write_only=True)
    sheet: WriteOnlyWorksheet = workbook.create_sheet(title)
    sheet.append(header)
    async for row in rows:
        sheet.append([_xlsx_cell(sheet, value) for value in row])
    with tempfile.TemporaryFile() as spool:
        workbook.save(spool)
        spool.seek(0)
        for chunk in _read_chunks(spool):
            yield chunk


def _read_chunks(file: IO[bytes]) -> Iterable[bytes]:
    while chunk := file.read(_CHUNK):
        yield chunk
