"""Delimited text in and out: one CSV writer and one line reader.

``write_csv`` writes rows with Python's ``csv`` module, quoting any field
that holds a comma, a quote or a line break, so that any CSV reader
(``csv``, pandas) reads back exactly the rows written. The file appears
complete or not at all (``kerasdl._files.atomic_path``: a temporary file
in the same folder, synced to disk, then renamed over the target), with
the mode of the file it replaces or, for a new file, ``0o666`` less the
umask.

``read_text`` decodes a file as UTF-8, or as latin-1 only when the bytes
are not valid UTF-8; ``read_records`` cuts the text into fields, keeping
each record's line number for error messages.

Example:

>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "t.csv")
>>> rows = [["1", "a, b"], ["2", 'say "hi" now']]
>>> _ = write_csv(path, ["id", "name"], rows)
>>> open(path).read().splitlines()
['id,name', '1,"a, b"', '2,"say ""hi"" now"']
>>> read_records(read_text(path)[0])[1]
[['id', 'name'], ['1', 'a, b'], ['2', 'say "hi" now']]
"""

import csv
import gzip
import io
import os

import numpy as np

from kerasdl import _files


class _LineFormatter:
    """Formats one row as a CSV line ending in ``\\n``.

    The ``csv`` module quotes a field that holds a character of the line
    terminator; formatting with ``\\r\\n`` and then ending the line with a
    plain ``\\n`` quotes fields holding either ``\\r`` or ``\\n``.
    """

    def __init__(self):
        self._buf = io.StringIO()
        self._writer = csv.writer(self._buf, lineterminator="\r\n",
                                  quoting=csv.QUOTE_MINIMAL)

    def __call__(self, fields):
        self._buf.seek(0)
        self._buf.truncate()
        self._writer.writerow(fields)
        return self._buf.getvalue()[:-2] + "\n"


def format_csv(header, rows):
    """Returns the UTF-8 bytes of a CSV table (header line, then rows).

    Args:
        header: sequence of str. The first line.
        rows: iterable of sequences of str.

    Returns:
        bytes.

    Raises:
        ValueError: a field that cannot be written as UTF-8 (such as a
            file name holding an undecodable byte), named by its row.
    """
    line = _LineFormatter()
    out = io.BytesIO()
    for n, fields in enumerate(_with_header(header, rows)):
        text = line(fields)
        try:
            out.write(text.encode("utf-8"))
        except UnicodeEncodeError as e:
            where = "the header" if n == 0 else f"row {n - 1}"
            raise ValueError(
                f"{where} holds {text[e.start:e.end]!r}, which cannot be "
                f"written as UTF-8: {text.rstrip()!r}. Rename the file or "
                f"id so that it is valid text.") from None
    return out.getvalue()


def _with_header(header, rows):
    yield list(header)
    yield from rows


def write_csv(path, header, rows, *, compress=False):
    """Writes a CSV table atomically, optionally gzip-compressed.

    Args:
        path: str or path-like. The destination.
        header: sequence of str. Column names.
        rows: iterable of sequences of str, one per line.
        compress: bool. Gzip the file. Defaults to ``False``.

    Returns:
        The path written, as str.

    Raises:
        ValueError: see ``format_csv``.
        OSError: the file could not be written (nothing is left behind).
    """
    data = format_csv(header, rows)
    path = os.fspath(path)
    if compress:
        data = _gzip(data, os.path.basename(path))
    write_bytes(path, data)
    return path


def _gzip(data, name):
    """Gzip bytes naming ``name`` (not the temporary file) in the header;
    the time stamp is 0 so that the same rows give the same bytes. Level 6
    (gzip's own default) is about five times faster than Python's 9 on a
    submission, for files 3% larger."""
    if name.endswith(".gz"):
        name = name[:-3]
    out = io.BytesIO()
    with gzip.GzipFile(filename=name, mode="wb", fileobj=out,
                       compresslevel=6, mtime=0) as f:
        f.write(data)
    return out.getvalue()


def write_bytes(path, data):
    """Writes ``data`` to ``path`` so that it is complete or absent.

    Goes through ``kerasdl._files.atomic_path``: a temporary file beside
    the target, with the mode of the file it replaces (or the one the
    umask gives a new file), synced to disk and renamed over ``path``. On
    any error it is removed and ``path`` is untouched.

    Args:
        path: str. The destination.
        data: bytes.
    """
    with _files.atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)


def read_text(path):
    """Reads a text file as UTF-8, or as latin-1 when it is not UTF-8.

    A UTF-8 byte-order mark is dropped. Latin-1 decodes any bytes, so the
    fallback never fails; it is taken only when the bytes are not valid
    UTF-8 (ml-100k's ``u.item`` is latin-1), so UTF-8 text never turns
    into mojibake.

    Returns:
        ``(text, encoding)``: the text and ``"utf-8"`` or ``"latin-1"``.
    """
    with open(path, "rb") as f:
        data = f.read()
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


def read_records(text, sep=",", *, quoted=True):
    """Cuts text into records of fields, keeping line numbers.

    Blank lines are left out (a line of empty fields such as ``,,`` is
    kept: it is a record); a ``\\r`` before the ``\\n`` is dropped. With
    ``quoted=True`` a field may be quoted as in CSV (holding the separator,
    quotes or line breaks); a record's line number is the line it starts
    on. With ``quoted=False`` quotes are plain characters and ``sep`` may
    be several characters (``"::"``).

    Example:

    >>> lines, rows = read_records('a,b\\n\\n"x\\ny",2\\n')
    >>> lines.tolist(), rows
    ([1, 3], [['a', 'b'], ['x\\ny', '2']])

    Args:
        text: str.
        sep: str. The separator. Defaults to ``","``.
        quoted: bool. Honour CSV quotes. Defaults to ``True``.

    Returns:
        ``(lines, rows)``: an int64 array of line numbers (from 1) and a
        list of lists of str, one per record.

    Raises:
        ValueError: malformed quoting, with the line number.
    """
    if quoted and '"' in text:
        return _quoted_records(text, sep)
    lines = text.split("\n")
    if "\r" in text:
        lines = [x[:-1] if x.endswith("\r") else x for x in lines]
    keep = [j for j, x in enumerate(lines) if x and not x.isspace()]
    rows = [lines[j].split(sep) for j in keep]
    return np.asarray(keep, np.int64) + 1, rows


def _quoted_records(text, sep):
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep,
                        strict=True)
    lines, rows, start = [], [], 1
    try:
        for fields in reader:
            if fields and not (len(fields) == 1 and not fields[0].strip()):
                lines.append(start)
                rows.append(fields)
            start = reader.line_num + 1
    except csv.Error as e:
        raise ValueError(f"line {reader.line_num}: {e}") from None
    return np.asarray(lines, np.int64), rows
