"""Input files: rows to ingest (JSONL, CSV, text), query vectors, query texts and qrels.

Every reader reports a bad record by ``file:line`` in an :class:`InvalidInputError`,
so a user can open the file at the line that stopped the run.

Example::

    rows = checked(read_jsonl(Path("notes.jsonl"), Fields()), 256, {})
    qrels = read_qrels(Path("cranqrel"), grades=CRANFIELD_GRADES)
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from semsearch import csv_types
from semsearch.errors import InvalidInputError

FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}

#: relevance judgments: query id -> {doc id (a collection key) -> grade}
Qrels = dict[str, dict[str, float]]

#: Cranfield's ``cranqrel`` grades 1 (complete answer) ... 4 (minimal interest); -1 and 5
#: mean no interest. As gains, higher is more relevant.
CRANFIELD_GRADES: Mapping[int, float] = {1: 4.0, 2: 3.0, 3: 2.0, 4: 1.0, 5: 0.0, -1: 0.0}


def bad(where: str, message: str) -> InvalidInputError:
    """The error for a bad record: ``<file>:<line>: <what was expected, what arrived>``."""
    return InvalidInputError(f"{where}: {message}")


def _no_constants(name: str) -> Any:
    raise ValueError(f"expected finite numbers, got {name}")  # Postgres jsonb has no NaN


def parse_json(text: str, where: str) -> Any:
    """JSON without NaN/Infinity, or an error naming ``where``."""
    try:
        return json.loads(text, parse_constant=_no_constants)
    except ValueError as exc:
        raise bad(where, f"expected JSON, got {exc}") from None


@dataclass(frozen=True)
class Fields:
    """Which fields (JSONL) or columns (CSV) hold what; the rest is metadata.

    ``tenant`` None: a tenant field is metadata like any other. ``infer_types``: CSV
    columns as numbers, booleans and nulls where all their cells look like them; ``types``
    forces a type per CSV column (:mod:`semsearch.csv_types`).

    Example::

        Fields(key="id", text="title", tenant="tenant", types={"year": "int"})
    """

    key: str = "key"
    text: str = "content"
    embedding: str = "embedding"
    tenant: str | None = None
    infer_types: bool = True
    types: Mapping[str, str] = field(default_factory=dict)


# each row reader yields (where, key, content, metadata, embedding, tenant) with where = "file:line"
def read_jsonl(path: Path, fields: Fields) -> Iterator[tuple[Any, ...]]:
    """Rows of a JSONL file; ``fields`` names the key, text, embedding and tenant fields."""
    key_f, text_f, emb_f = fields.key, fields.text, fields.embedding
    with path.open("rb") as f:
        for n, raw in enumerate(f, 1):
            where = f"{path}:{n}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise bad(where, "expected UTF-8 text, got invalid bytes") from None
            if not line.strip():
                continue
            obj = parse_json(line, where)
            if not isinstance(obj, dict):
                raise bad(where, f"expected a JSON object, got {type(obj).__name__}")
            for field in (key_f, text_f):
                if field not in obj:
                    raise bad(where, f"expected a {field!r} field, got fields {sorted(obj)}")
            key, content, emb = obj.pop(key_f), obj.pop(text_f), obj.pop(emb_f, None)
            tenant = obj.pop(fields.tenant, None) if fields.tenant is not None else None
            meta = obj.pop("metadata", {})
            if not isinstance(meta, dict):
                raise bad(where, f"expected 'metadata' to be an object, got {type(meta).__name__}")
            yield where, key, content, {**obj, **meta}, emb, tenant


def read_csv(path: Path, fields: Fields) -> Iterator[tuple[Any, ...]]:
    """Rows of a CSV file with a header; other columns become metadata, typed per ``fields``.

    Inferred types are decided per column (:func:`semsearch.csv_types.column_kind`), so
    the file is read twice: once for the types, once for the rows.
    """
    key_f, text_f, emb_f = fields.key, fields.text, fields.embedding
    header = _csv_header(path)
    if key_f not in header or text_f not in header:
        raise bad(f"{path}:1", f"expected columns {key_f!r} and {text_f!r}, got {header}")
    unknown = sorted(set(fields.types) - set(header))
    if unknown:
        raise bad(f"{path}:1", f"expected --metadata-types columns of the header {header}, got {unknown}")
    special = {key_f, text_f, emb_f, fields.tenant}
    kinds = dict(fields.types)
    if fields.infer_types:
        cells: dict[str, list[str]] = {c: [] for c in header if c not in special and c not in kinds}
        for _, row in _csv_rows(path, len(header)):
            for column, values in cells.items():
                values.append(row[column])
        kinds.update({column: csv_types.column_kind(values) for column, values in cells.items()})
    for where, row in _csv_rows(path, len(header)):
        key, content, emb = row.pop(key_f), row.pop(text_f), row.pop(emb_f, "")
        tenant = row.pop(fields.tenant, "") if fields.tenant is not None else ""
        meta = {name: _cell(cell, name, kinds, fields, where) for name, cell in row.items()}
        yield where, key, content, meta, parse_json(emb, where) if emb.strip() else None, tenant or None


def _csv_header(path: Path) -> list[str]:
    # utf-8-sig: spreadsheets often start their CSV exports with a byte-order mark
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f, strict=True)
        try:
            return list(reader.fieldnames or [])
        except (csv.Error, UnicodeDecodeError) as exc:
            raise bad(f"{path}:1", f"expected UTF-8 CSV, got {exc}") from None


def _csv_rows(path: Path, width: int) -> Iterator[tuple[str, dict[str, str]]]:
    """(``file:line``, row) of each record after the header, each with as many cells as the header."""
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f, strict=True)
        try:
            for row in reader:
                where = f"{path}:{reader.line_num}"
                if None in row or None in row.values():
                    raise bad(where, f"expected {width} cells, as many as the header")
                yield where, row
        except (csv.Error, UnicodeDecodeError) as exc:
            # line_num is where the last good record ended; the bad one starts after it
            raise bad(f"{path}:{reader.line_num + 1}", f"expected UTF-8 CSV, got {exc}") from None


def _cell(cell: str, column: str, kinds: Mapping[str, str], fields: Fields, where: str) -> Any:
    if not fields.infer_types and column not in fields.types:
        return cell
    if column not in fields.types:
        return csv_types.inferred(cell, kinds[column])
    try:
        return csv_types.convert(cell, kinds[column])
    except ValueError as exc:
        raise bad(where, f"column {column!r}: {exc}") from None


def paragraphs(path: Path) -> list[tuple[int, str]]:
    """(first line, text) of each blank-line-separated block of a UTF-8 file."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bad(str(path), f"expected UTF-8 text, got a bad byte at offset {exc.start}") from None
    found, line = [], 1
    for block in re.split(r"(\n(?:[ \t\r\f\v]*\n)+)", text):
        if block.strip():
            found.append((line + len(block) - len(block.lstrip("\n")), block.strip()))
        line += block.count("\n")
    return found


def read_text(path: Path, fields: Fields) -> Iterator[tuple[Any, ...]]:
    """One row per paragraph, keyed ``<file as given>:<n>``."""
    for n, (line, para) in enumerate(paragraphs(path), 1):
        yield f"{path}:{line}", f"{path}:{n}", para, {"file": str(path), "line": line}, None, None


def _document_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bad(str(path), f"expected UTF-8 text, got a bad byte at offset {exc.start}") from None


def read_document(path: Path, fields: Fields) -> Iterator[tuple[Any, ...]]:
    """The whole file as one row (a document, for a collection with passages), keyed ``<file as given>``."""
    yield str(path), str(path), _document_text(path), {}, None, None


def folder_files(folder: Path) -> list[Path]:
    """The ``.txt`` and ``.md`` files under ``folder``, at any depth, in path order (hidden ones left out)."""
    found = (
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in DOCUMENT_SUFFIXES
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def read_folder(folder: Path, fields: Fields) -> Iterator[tuple[Any, ...]]:
    """One row per ``.txt``/``.md`` file of ``folder``: the key its path relative to it, the text the file's.

    Blank files are left out (a folder's empty stubs should not stop a run).
    """
    for path in folder_files(folder):
        text = _document_text(path)
        if text.strip():
            yield str(path), path.relative_to(folder).as_posix(), text, {}, None, None


#: the files a folder's documents are read from
DOCUMENT_SUFFIXES = (".txt", ".md")
READERS = {"jsonl": read_jsonl, "csv": read_csv, "text": read_text, "document": read_document, "folder": read_folder}


def count_rows(path: Path, kind: str) -> int | None:
    """Rows in a file (or files in a folder), for the progress bar; None when it cannot be told cheaply."""
    if kind == "text":
        return len(paragraphs(path))
    if kind == "document":
        return 1
    if kind == "folder":
        return sum(1 for p in folder_files(path) if p.read_bytes().strip())  # blank files are left out
    with path.open("rb") as f:
        lines = sum(1 for raw in f if raw.strip())
    # CSV cells may span lines, so its count is an upper bound; good enough for a bar
    return lines if kind == "jsonl" else max(lines - 1, 0)


def checked(
    rows: Iterator[tuple[Any, ...]], dims: int, seen: dict[str, str], *, required_tenant: tuple[str, str] | None = None
) -> Iterator[dict]:
    """Check each row where it was read, so a bad one is reported by file and line.

    ``required_tenant``: (field, collection) when every row needs a tenant from that field.
    """
    first_has_vec: tuple[str, bool] | None = None
    for where, key, content, meta, emb, tenant in rows:
        if isinstance(key, bool) or not isinstance(key, (str, int)) or key == "":
            raise bad(where, f"expected a non-empty string or integer key, got {key!r}")
        if str(key) in seen:
            raise bad(where, f"expected unique keys, got {str(key)!r} again (first: {seen[str(key)]})")
        seen[str(key)] = where
        if not isinstance(content, str) or not content.strip() or "\x00" in content:
            raise bad(where, f"expected non-empty text without NUL, got {content!r:.60}")
        if first_has_vec is None:
            first_has_vec = (where, emb is not None)
        elif first_has_vec[1] != (emb is not None):
            raise bad(
                where,
                f"expected an embedding on every row of a file or on none, got "
                f"{'one' if emb is not None else 'none'} here, the opposite at {first_has_vec[0]}",
            )
        if emb is not None:
            ok = isinstance(emb, list) and len(emb) == dims and all(_finite(x) for x in emb)
            if not ok or not any(emb):
                raise bad(where, f"expected an embedding of {dims} finite numbers, not all zero")
        if tenant is not None and (not isinstance(tenant, str) or not tenant.strip()):
            raise bad(where, f"expected the tenant to be a non-empty string or null, got {tenant!r:.60}")
        if tenant is None and required_tenant is not None:
            field, collection = required_tenant
            raise bad(where, f"expected a tenant (field {field!r}) on every row of collection {collection!r}, got none")
        yield {"key": key, "content": content, "metadata": meta, "embedding": emb, "tenant": tenant}


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def load_vector(path: Path) -> np.ndarray:
    """A vector (or an (n, d) array of them) from a JSON list or a .npy file."""
    try:
        if path.suffix == ".npy":
            vec = np.load(path, allow_pickle=False)
        else:
            vec = json.loads(path.read_text(encoding="utf-8"))
        arr = np.asarray(vec, dtype=np.float64)
    except (OSError, TypeError, ValueError) as exc:
        raise bad(str(path), f"expected a JSON list of numbers or a .npy vector, got {exc}") from None
    # a (1, d) array from np.save(q[None]) is still one vector
    return arr.ravel() if arr.ndim == 2 and arr.shape[0] == 1 else arr


def read_lines(path: Path) -> list[str]:
    """Query texts, one per line; blank lines are skipped (the n-th text is query id n)."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bad(str(path), f"expected UTF-8 text, got a bad byte at offset {exc.start}") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def read_qrels(path: Path | str, *, grades: Mapping[int, float] | None = None) -> Qrels:
    """Relevance judgments from a TREC, 3-column or JSONL file.

    Accepted lines: TREC ``qid 0 docid grade``, the 3-column ``qid docid grade``
    of Cranfield's ``cranqrel`` and BEIR (a header line is skipped), or JSONL
    ``{"query_id": ..., "doc_id": ..., "relevance": ...}`` (by a .jsonl/.ndjson
    suffix). Grades are gains, higher is more relevant, <= 0 not relevant;
    ``grades`` maps the file's integer grades to gains when its scale differs
    (Cranfield: :data:`CRANFIELD_GRADES`). A pair judged twice keeps its higher gain.

    Example::

        qrels = read_qrels("qrels.trec")                   # {"1": {"184": 3.0, ...}, ...}
        qrels = read_qrels("cranqrel", grades=CRANFIELD_GRADES)
    """
    path = Path(path)
    jsonl = path.suffix.lower() in (".jsonl", ".ndjson")
    found: Qrels = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise bad(str(path), f"expected a readable UTF-8 qrels file, got {exc}") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        if jsonl:
            obj = parse_json(line, where)
            if not isinstance(obj, dict) or not {"query_id", "doc_id", "relevance"} <= set(obj):
                raise bad(where, f'expected {{"query_id", "doc_id", "relevance"}}, got {line!r:.80}')
            qid, doc, grade = str(obj["query_id"]), str(obj["doc_id"]), obj["relevance"]
        else:
            cells = line.split()
            if len(cells) not in (3, 4):
                raise bad(where, f"expected 'qid 0 docid grade' or 'qid docid grade', got {line!r:.80}")
            qid, doc, grade = cells[0], cells[-2], cells[-1]
            if n == 1 and not _is_number(grade):
                continue  # a header such as BEIR's "query-id corpus-id score"
        found.setdefault(qid, {})
        gain = _gain(grade, grades, where)
        found[qid][doc] = max(gain, found[qid].get(doc, gain))
    if not found:
        raise bad(str(path), "expected relevance judgments, got an empty file")
    return found


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _gain(grade: Any, grades: Mapping[int, float] | None, where: str) -> float:
    if isinstance(grade, bool) or not _is_number(str(grade)):
        raise bad(where, f"expected a numeric grade, got {grade!r}")
    value = float(grade)
    if grades is None:
        return value
    if not value.is_integer() or int(value) not in grades:
        raise bad(where, f"expected a grade in {sorted(grades)}, got {grade!r}")
    return float(grades[int(value)])
