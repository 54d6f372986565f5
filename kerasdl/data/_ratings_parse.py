"""Parsing and checking of MovieLens text files (see ``ratings.py``).

Ids and timestamps are parsed as exact integers, never through floats, so
2**53 and 2**53 + 1 stay two ids and 2**63 is refused rather than wrapped.
Each problem is named by the file's line number.
"""

import decimal
import os

import numpy as np
import pandas as pd

from kerasdl import _csv

COLUMNS = ("user", "item", "rating", "timestamp")
# format -> (ratings separator, titles separator, name of the separator)
SEPARATORS = {
    "ml-latest-small": (",", ",", "comma"),
    "ml-100k": ("\t", "|", "tab"),
    "ml-1m": ("::", "::", "'::'"),
}
_GUESSES = {",": "comma", "\t": "tab", ";": "semicolon", "|": "'|'",
            "::": "'::'", " ": "space"}
_SHOW = 5  # bad lines named in an error message
_INT64 = (-(2 ** 63), 2 ** 63 - 1)
_SKIP_HINT = (" Fix the file or pass on_bad='skip' to leave such lines out "
              "(they are counted).")


def read_ratings(file, fmt, scale, on_bad, duplicates):
    """Reads one ratings file; returns ``(frame, skipped, merged)``."""
    file = os.fspath(file)
    if os.path.getsize(file) == 0:
        raise ValueError(f"{file!r} is empty; expected one rating per "
                         f"line. Download the data set again.")
    text, _ = _csv.read_text(file)
    header = fmt == "ml-latest-small"
    sep = SEPARATORS[fmt][0]
    lines, rows = _csv.read_records(text, sep, quoted=header)
    if header and rows:
        _check_separator(file, fmt, lines[:1], rows[:1])
        columns = _header_columns(file, rows[0])
        lines, rows = lines[1:], rows[1:]
    else:
        columns = None
    if not rows:
        raise ValueError(f"{file!r} holds no ratings (only a header or "
                         f"blank lines). Download the data set again.")
    _check_separator(file, fmt, lines, rows)
    table = _Table(file, lines, rows, columns)
    frame, skipped = table.frame(scale, on_bad)
    frame, merged = _merge(frame, table.kept, file, duplicates)
    return frame, skipped, merged


def _header_columns(file, header):
    """Positions of user, item, rating, timestamp (None) in the header."""
    needed = ("userId", "movieId", "rating")
    missing = [c for c in needed if c not in header]
    if missing:
        raise ValueError(
            f"{file!r} lacks the column(s) {missing}; expected a header "
            f"userId,movieId,rating[,timestamp], found {header}.")
    ts = header.index("timestamp") if "timestamp" in header else None
    return [header.index(c) for c in needed] + [ts], len(header)


def _check_separator(file, fmt, lines, rows):
    """Refuses a file none of whose lines holds the expected separator."""
    if any(len(r) > 1 for r in rows):
        return
    sep, _, sep_name = SEPARATORS[fmt]
    text = rows[0][0]
    found = [name for s, name in _GUESSES.items() if s != sep and s in text]
    looks = f", which looks {found[0]}-separated" if found else ""
    raise ValueError(
        f"{file!r}: the separator looks wrong. {fmt} files are "
        f"{sep_name}-separated, but no line holds a {sep_name}; line "
        f"{lines[0]} reads {text[:60]!r}{looks}. Convert the file to "
        f"{sep_name}-separated fields.")


class _Table:
    """The ratings' text fields by column, the line of each row, and the
    first problem found with each row (``""`` when none)."""

    def __init__(self, file, lines, rows, columns):
        self.file, self.lines, self.rows = file, lines, rows
        self.kept = lines
        n = len(rows)
        lens = np.fromiter(map(len, rows), np.int64, n)
        if columns is None:  # no header: user, item, rating[, timestamp]
            where, expected = [0, 1, 2, 3], 4
            ok = (lens == 3) | (lens == 4)
        else:
            where, expected = columns
            ok = lens == expected
        self.problem = np.full(n, "", object)
        self.problem[~ok] = [
            f"{m} field{'' if m == 1 else 's'}, expected {expected}"
            for m in lens[~ok]]
        good = rows if ok.all() else [rows[j] for j in np.flatnonzero(ok)]
        if (lens[ok] == 3).any():
            good = [r if len(r) > 3 else r + [""] for r in good]
        fields = list(zip(*good))
        self.cols = {}
        for name, at in zip(COLUMNS, where):
            col = np.full(n, "", object)
            if at is not None and good:
                col[ok] = np.array(fields[at], object)
            self.cols[name] = col

    def flag(self, mask, what):
        self.problem[mask & (self.problem == "")] = what

    def frame(self, scale, on_bad):
        """Parses the columns; raises on bad rows or drops them."""
        users = self._ids("user")
        items = self._ids("item")
        ratings = _parse_floats(self.cols["rating"])
        low, high = scale
        nan = ~np.isfinite(ratings)
        self.flag(nan, "rating is not a number")
        self.flag(~nan & ((ratings < low) | (ratings > high)),
                  f"rating outside {low:g}..{high:g}")
        times, wrong = _parse_ints(self.cols["timestamp"], blank=-1)
        self.flag(wrong != "", "timestamp is not an integer")
        bad = self.problem != ""
        if bad.any() and on_bad == "raise":
            raise ValueError(self._message(bad) + _SKIP_HINT)
        if bad.all():
            raise ValueError(self._message(bad) + (
                " No good line is left: this is not a ratings file of "
                "this layout."))
        keep = ~bad
        self.kept = self.lines[keep]
        frame = pd.DataFrame({
            "user": users[keep], "item": items[keep],
            "rating": ratings[keep].astype(np.float32),
            "timestamp": times[keep]})
        return frame, int(bad.sum())

    def _ids(self, col):
        values, wrong = _parse_ints(self.cols[col])
        self.flag(wrong == "range", f"{col} id does not fit in 64 bits")
        self.flag(wrong == "int", f"{col} id is not an integer")
        return values

    def _message(self, bad):
        rows = np.flatnonzero(bad)
        shown = []
        for j in rows[:_SHOW]:
            fields = ", ".join(self.rows[j][:5])
            if len(fields) > 60:
                fields = fields[:57] + "..."
            shown.append(f"line {self.lines[j]}: {self.problem[j]} "
                         f"({fields!r})")
        return (f"{self.file!r}: {len(rows)} bad line(s) of {len(bad)}, "
                f"e.g. {'; '.join(shown)}.")


def _parse_floats(texts):
    try:
        return texts.astype(np.float64)
    except (TypeError, ValueError):
        return pd.to_numeric(pd.Series(texts), errors="coerce").to_numpy(
            np.float64)


def _parse_ints(texts, blank=None):
    """Parses integer text exactly into int64.

    Args:
        texts: object array of str.
        blank: int or None. The value of a blank text; None: blank is
            not an integer.

    Returns:
        ``(values, wrong)``: int64 values (0 where wrong) and an object
        array holding ``""`` (fine), ``"int"`` (not an integer) or
        ``"range"`` (an integer outside the int64 range) for each text.
    """
    wrong = np.full(len(texts), "", object)
    values = np.zeros(len(texts), np.int64)
    todo = np.ones(len(texts), bool)
    if blank is not None:
        todo = texts != ""
        values[~todo] = blank
    try:  # Python's int() on each text: exact, and fast for plain digits
        values[todo] = texts[todo].astype(np.int64)
        return values, wrong
    except (TypeError, ValueError, OverflowError):
        pass
    for j in np.flatnonzero(todo):
        if blank is not None and not texts[j].strip():
            values[j] = blank
        else:
            values[j], wrong[j] = exact_int(texts[j])
    return values, wrong


def exact_int(text):
    """One integer from text such as ``"12"``, ``"1e3"`` or ``"10.0"``,
    without going through a float.

    Returns:
        ``(value, "")``, or ``(0, "int")`` for text that is not an
        integer, ``(0, "range")`` for one outside the int64 range.
    """
    try:
        v = int(text)
    except ValueError:
        try:
            d = decimal.Decimal(text.strip())
        except decimal.InvalidOperation:
            return 0, "int"
        if not d.is_finite() or d != d.to_integral_value():
            return 0, "int"
        if d.adjusted() > 19:
            return 0, "range"
        v = int(d)
    if not _INT64[0] <= v <= _INT64[1]:
        return 0, "range"
    return v, ""


def _merge(frame, lines, file, duplicates):
    """Applies the ``duplicates`` policy; returns ``(frame, merged)``."""
    pairs = ["user", "item"]
    repeated = frame.duplicated(pairs, keep="first").to_numpy()
    if not repeated.any():
        return frame, 0
    if duplicates == "raise":
        j = int(np.flatnonzero(repeated)[0])
        u, i = frame["user"].iat[j], frame["item"].iat[j]
        same = np.flatnonzero(((frame["user"] == u) & (frame["item"] == i))
                              .to_numpy())
        raise ValueError(
            f"{file!r}: user {u} rated item {i} more than once (lines "
            f"{lines[same[0]]} and {lines[same[1]]}); {int(repeated.sum())} "
            f"repeated rating(s) in all. Remove them, or pass "
            f"duplicates='last' (keep each pair's last line) or "
            f"duplicates='mean' (average them).")
    if duplicates == "last":
        kept = frame[~frame.duplicated(pairs, keep="last").to_numpy()]
    else:
        wide = frame.assign(rating=frame["rating"].astype(np.float64))
        kept = wide.groupby(pairs, sort=False, as_index=False).agg(
            rating=("rating", "mean"), timestamp=("timestamp", "max"))
        kept["rating"] = kept["rating"].astype(np.float32)
    kept = kept[list(COLUMNS)].reset_index(drop=True)
    return kept, len(frame) - len(kept)


def read_titles(file, fmt, on_bad):
    """Reads a titles file (absent: none); ``(titles, skipped)``."""
    if not os.path.isfile(file):
        return {}, 0
    text, _ = _csv.read_text(file)
    header = fmt == "ml-latest-small"
    lines, rows = _csv.read_records(text, SEPARATORS[fmt][1],
                                    quoted=header)
    at = (0, 1)
    if header:
        names = rows[0] if rows else []
        if "movieId" not in names or "title" not in names:
            raise ValueError(
                f"{file!r} lacks the columns movieId and title; found "
                f"{names}. Download the data set again.")
        at = (names.index("movieId"), names.index("title"))
        lines, rows = lines[1:], rows[1:]
    titles, first, bad = {}, {}, []
    for line, fields in zip(lines, rows):
        item, why = _title_problem(fields, at, first)
        if why:
            bad.append(f"line {line}: {why}")
            continue
        first[item] = line
        titles[item] = fields[at[1]]
    if bad and on_bad == "raise":
        raise ValueError(f"{file!r}: {len(bad)} bad title line(s), e.g. "
                         f"{'; '.join(bad[:_SHOW])}.{_SKIP_HINT}")
    return titles, len(bad)


def _title_problem(fields, at, first):
    """``(item, "")`` for a good titles line, else ``(None, why)``."""
    if len(fields) <= max(at):
        return None, f"{len(fields)} field(s), expected an id and a title"
    item, why = exact_int(fields[at[0]])
    if why:
        return None, f"item id {fields[at[0]]!r} is not an integer"
    if item in first:
        return None, f"item {item} already has a title (line {first[item]})"
    return item, ""
