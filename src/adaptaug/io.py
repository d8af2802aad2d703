"""Result files are replaced atomically (temp file + os.replace): never half-written."""
from __future__ import annotations

import csv
import gzip
import io
import json
import os
import tempfile
import zlib
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from adaptaug.errors import ConfigError, DataError


_UMASK = os.umask(0)
os.umask(_UMASK)


def write_atomic(path: str | os.PathLike, text: str | bytes) -> None:
    """Write ``text`` (UTF-8) or raw ``bytes`` (a PNG) to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode("utf-8") if isinstance(text, str) else text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are ordinary files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_run_config(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The raw ``config.json`` of a run directory, or a ConfigError saying why it is not a run."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise ConfigError(f"{run_dir} is not a run directory: config.json is missing")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise ConfigError(f"{path} is not valid JSON: {err}") from None


def text_lines(path: str | os.PathLike) -> Iterator[tuple[int, str]]:
    """(line number from 1, line without its end) of a UTF-8 text file, gzip'd or not (told by content, so a
    ``.gz`` that is not gzip is named as such); a DataError names the file, and the line where it can, when the
    file is missing, unreadable, corrupt or not UTF-8."""
    path = Path(path)
    lineno = 0
    try:
        with open(path, "rb") as fh:
            gzipped = fh.read(2) == b"\x1f\x8b"
        if path.name.endswith(".gz") and not gzipped:
            raise DataError(f"{path} is named .gz but is not a gzip file")
        with (gzip.open(path, "rb") if gzipped else open(path, "rb")) as fh:
            for lineno, raw in enumerate(fh, start=1):
                try:
                    yield lineno, raw.decode("utf-8").rstrip("\r\n")
                except UnicodeDecodeError as err:
                    raise DataError(f"{path}, line {lineno}: not UTF-8 text ({err.reason})") from None
    except FileNotFoundError:
        raise DataError(f"{path} does not exist") from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as err:
        raise DataError(f"{path}: corrupt gzip data after line {lineno} ({err or type(err).__name__})") from None
    except OSError as err:
        raise DataError(f"cannot read {path}: {err}") from None


def write_json(path: str | os.PathLike, data: Any) -> None:
    write_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def write_csv(path: str | os.PathLike, rows: Iterable[Mapping[str, Any]]) -> None:
    rows = list(rows)
    fields: list[str] = []
    for row in rows:  # union of keys, first-seen order
        fields += [k for k in row if k not in fields]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(path, buf.getvalue())


class CsvText:
    """``write_csv``'s text for rows that only grow at the end (a policy's trace), formatting only the rows added
    since the last call: reformatting a long run's trace every epoch, for trace.csv and again for the checkpoint,
    cost time that grew with the run (0.4 s an epoch each at 8,000 AugNet rounds)."""

    def __init__(self) -> None:
        self._fields: list[str] = []
        self._body = ""  # the formatted rows so far
        self._rows = 0

    def of(self, rows: Sequence[Mapping[str, Any]]) -> str:
        """The CSV text of ``rows``, whose first rows are those of the last call, unchanged."""
        new = rows[self._rows:]
        fields = self._fields + [k for k in dict.fromkeys(k for row in new for k in row) if k not in self._fields]
        if len(fields) > len(self._fields) or len(rows) < self._rows:  # a new column changes every line
            self._fields, self._body, new = fields, "", rows
        body = io.StringIO()
        csv.DictWriter(body, fieldnames=self._fields).writerows(new)
        self._body += body.getvalue()
        self._rows = len(rows)
        header = io.StringIO()
        csv.DictWriter(header, fieldnames=self._fields).writeheader()
        return header.getvalue() + self._body


def numeric_rows(saved: str | Sequence[Mapping[str, Any]]) -> list[dict[str, int | float]]:
    """Rows of numbers from their CSV text (``CsvText``), exactly: ints stay ints, floats come back bit for bit
    (CSV holds their shortest round-trip form), empty cells are missing keys. A list of rows (checkpoints written
    before traces were kept as text) comes back as a list."""
    if not isinstance(saved, str):
        return [dict(row) for row in saved]

    def number(text: str) -> int | float:
        try:
            return int(text)
        except ValueError:
            return float(text)

    return [{k: number(v) for k, v in row.items() if v != ""} for row in csv.DictReader(io.StringIO(saved))]
