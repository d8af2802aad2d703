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
from typing import Any, Iterable, Iterator, Mapping

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
