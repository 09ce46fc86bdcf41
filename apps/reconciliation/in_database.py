"""The in-database strategy: both sides in one PostgreSQL database, compared by the database.

:func:`compare_in_database` sends one statement that does what
:class:`~apps.reconciliation.compare.StreamedComparison` does in Python, the way an expert
would write it by hand, and reads its rows as the database finds them (binary COPY)::

    WITH source_rows (c0, c1, …) AS (<source SELECT>),
         target_rows (c0, c1, …) AS (<target SELECT>),
         source_keys AS (SELECT DISTINCT ON (j0, z0, …) *,
                                count(*) OVER (PARTITION BY j0, z0, …) AS n
                         FROM (SELECT <each key part k as j = coalesce(k, <zero>) and
                                       z = k IS NULL, each column as v, normalised as
                                       compare.normaliser does> FROM source_rows) AS normal
                         ORDER BY j0, z0, …),
         target_keys …
    SELECT false, s.n, t.n, <key>, s.v0 IS DISTINCT FROM t.v0, …, <each side's values as text>
    FROM source_keys AS s FULL JOIN target_keys AS t ON s.j0 = t.j0 AND s.z0 = t.z0 AND …
    WHERE s.n IS NULL OR t.n IS NULL OR s.n + t.n > 2 OR <a column differs>
    UNION ALL
    SELECT true, (SELECT count(*) FROM (<source SELECT>) or source_rows), (… target …), …

Each side is sorted once by key: the count per key and one row per key come out of that
order, and the sides meet in a merge join. Each key part joins on two equalities (its value
with NULL replaced by a zero of its type, and whether it is NULL), so a NULL key part matches
a NULL key part without ``IS NOT DISTINCT FROM``; columns that are integers on both sides
compare as ``bigint``. Duplicates are counted, never compared, so any row of a duplicated key
may stand for it. A tolerance compares ``abs(s.v - t.v) <= tolerance``, NULL-safely. A text
column with a text rule on both sides is compared as stored first and normalised only where
the texts differ (equal texts have equal normal forms, and the text rules refuse nothing).

Only the differences come back, and one more row with each side's row count: a
``count(*)`` of the side's statement run again when it reads a stored table (cheaper than
counting every key in the comparison), else of its rows as the comparison reads them (kept
once by PostgreSQL, so a view or a query never runs twice). The counts follow: every source row belongs to one key, and a key that is
not a difference is matched with one row a side. The rows go through
:class:`~apps.reconciliation.compare.Differences`, as the streamed strategy's do: the samples
are the first ``sample_size`` keys of each kind in
:func:`~apps.reconciliation.compare.key_order` (NULL first, numbers by value, text by code
point), and the report is the streamed strategy's CSV (the order of its rows is
unspecified). Raw values travel through the comparison only where a column's normal form
would not show them (a trimmed text, a rounded number); elsewhere the normal form's text is
the raw value's.

For the statement JIT compilation and hash joins are off: the planner cannot estimate the
normalised keys, expects billions of joined rows, compiles the statement for longer than it
takes to run and would rather hash two inputs that are already sorted by key. When the
function opens the transaction it is REPEATABLE READ.

A value that does not read (``'abc'`` in a number column) makes its normal form fail with
PostgreSQL's invalid-input error (``('refused: ' || value)::numeric``), so the happy path
checks each value once; the error is then traced, by a query that stops at the first such
value, to the :class:`ComparisonError` compare.py raises, naming side, column and value.

Values shown
------------
Samples and the report show raw values as PostgreSQL's text of them (``value::text`` with
``DateStyle`` ISO and ``TimeZone`` UTC): ``'10.10'``, ``'true'``,
``'2024-05-01 08:00:00+00'``, ``None`` for NULL. (The streamed strategy shows Python's
values: ``10.10`` as a number, ``True``.) In the report a NULL and an empty text are both an
empty cell, as in the streamed strategy.

Normalisation in SQL
--------------------
Each column's SQL depends on its PostgreSQL type (read from the statements without running
them) and follows what :func:`~apps.reconciliation.compare.normaliser` does with the Python
value psycopg would give for it: ``numeric`` compares by value and reads as text through
``trim_scale`` (``10.50`` -> ``'10.5'``); ``float4``/``float8`` through their shortest text
(``extra_float_digits = 1``, PostgreSQL's default, which psycopg parses and Python's
``repr`` writes back); ``timestamp`` (naive, read as UTC) and
``timestamptz`` as text in Python's ``isoformat`` (``2024-05-01T08:00:00+00:00``); the
whitespace rules strip exactly Python's ``str.isspace`` characters; ``case_insensitive``
lowers with the ICU root collation (``und-x-icu``, as Python's ``str.lower``), or the
database's default collation when the server has no ICU. Types psycopg reads as text (enums,
``citext``, ``money``, and ``json``/``jsonb`` when the connection has the text loader for
them, as the SQL reader's has) are their text; other types (``bytea``, ``time``,
``interval``, arrays, …) are refused with an error naming the column: cast them in the query
(``payload::text``) or use the streamed strategy.

Typed values written as text are read in the ISO forms both PostgreSQL and Python read the
same way; a value outside them stops the run with the error compare.py gives (``source
column amount: 'abc' is not a number.``), or, for the few forms Python reads but the database
does not, an error that says which forms are read:

- numbers: ``[+-]digits[.digits][e[+-]digits]`` with ``_`` separators anywhere (as
  :class:`decimal.Decimal`); not non-ASCII digits, nor exponents of 10000 and more.
- dates and date-times: ``YYYY-MM-DD``, optionally ``T`` or a space, ``HH:MM``, ``:SS``,
  ``.f`` (1 to 6 digits), and ``Z`` or an offset ``±HH``, ``±HHMM``, ``±HH:MM`` up to
  ``±15:59`` (PostgreSQL's limit); not hour-only times, ``,`` fractions, other separators,
  offsets with seconds or ISO week dates, and a date column does not read numbers
  (``20240501``).
- booleans: ``true/false, t/f, yes/no, y/n, 1/0`` in any case, never PostgreSQL's
  ``on``/``off``: the mapping is written out in SQL, not ``::boolean``.

The caller's connection stays read-only: the statements only read, and settings are set with
``set_config(…, true)`` (``SET LOCAL``) inside the transaction (or savepoint) this function
opens; from a savepoint they last until the caller's transaction ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TextIO

import psycopg
from psycopg import errors, pq, sql

from apps.reconciliation.compare import (
    SAMPLE_SIZE,
    ColumnRule,
    ComparisonError,
    Differences,
    Outcome,
    Plan,
    normaliser,
)

SIDES = ("source", "target")

# Exactly the characters Python's str.strip() removes (str.isspace); tests check it.
WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)

# A number as decimal.Decimal reads it once underscores are removed (finite values only),
# with an exponent below 10000 (PostgreSQL's numeric holds 131072 digits, 16383 decimals).
NUMBER_PATTERN = r"^[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][+-]?0*[0-9]{1,4})?$"

_MONTH_DAY = "(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])|(0[13-9]|1[0-2])-(29|30)|(0[13578]|1[02])-31"
_LEAP_YEAR = "[0-9]{2}(0[48]|[2468][048]|[13579][26])|([02468][048]|[13579][26])00"
# The shape of the ISO dates and date-times read (checked for every value), and the full
# pattern (checked to find a value that did not read): with valid days, offsets up to
# ±15:59 (PostgreSQL's limit) and no year 0, read alike by PostgreSQL and Python.
DATETIME_SHAPE = (
    "^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9]([.][0-9]{1,6})?)?"
    "(Z|[+-][0-9]{2}(:?[0-9]{2})?)?)?$"
)
DATETIME_PATTERN = (
    "^(?!0000)([0-9]{4}-(" + _MONTH_DAY + ")|(" + _LEAP_YEAR + ")-02-29)"
    "([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9]([.][0-9]{1,6})?)?"
    "(Z|[+-](0[0-9]|1[0-5])(:?[0-5][0-9])?)?)?$"
)

_TRUE = ("true", "t", "yes", "y", "1")
_FALSE = ("false", "f", "no", "n", "0")

# What psycopg gives Python for each PostgreSQL type, so that the SQL treats it alike.
TYPE_KINDS = {
    16: "boolean",
    18: "text",  # "char"
    19: "text",  # name
    20: "integer",
    21: "integer",
    23: "integer",
    25: "text",
    26: "integer",  # oid
    700: "float4",
    701: "float8",
    1042: "bpchar",
    1043: "text",
    1082: "date",
    1114: "timestamp",
    1184: "timestamptz",
    1700: "numeric",
    2950: "text",  # uuid: Python's str() of it is PostgreSQL's text
}
_TEXT_KINDS = ("text", "bpchar")
_NUMBER_KINDS = ("integer", "numeric", "float4", "float8")

_ZERO = {
    "text": sql.SQL("''"),
    "numeric": sql.SQL("0::numeric"),
    "bigint": sql.SQL("0::bigint"),
    "date": sql.SQL("'1970-01-01'::date"),
    "timestamptz": sql.SQL("'1970-01-01 00:00+00'::timestamptz"),
    "boolean": sql.SQL("false"),
}

_UNREADABLE = {
    "number": "is not a number the database reads ([+-]digits[.digits][e[+-]digits])",
    "integer": "is not a number the database reads ([+-]digits[.digits][e[+-]digits])",
    "date": "is not an ISO date the database reads (YYYY-MM-DD, or a date-time)",
    "datetime": (
        "is not an ISO date-time the database reads "
        "(YYYY-MM-DD[THH:MM[:SS[.ffffff]]][Z|±HH[:MM]], offsets up to ±15:59)"
    ),
    "boolean": "is not true or false",
}


def compare_in_database(
    connection: psycopg.Connection,
    plan: Plan,
    source_sql: str,
    target_sql: str,
    *,
    report: TextIO | None = None,
    sample_size: int = SAMPLE_SIZE,
    rescan: frozenset[str] | set[str] = frozenset(),
) -> Outcome:
    """Compares two SELECTs of one PostgreSQL database in the database, in one statement.

    ``source_sql`` and ``target_sql`` return the columns of ``plan.side_columns(side)`` in
    that order. Runs in a transaction on ``connection`` (REPEATABLE READ when the
    connection is idle and has no isolation level of its own; a savepoint when a
    transaction is open) and writes nothing. Statements: ``SET TRANSACTION`` (when it opens
    the transaction), one ``SELECT set_config(…)`` for ``TimeZone``, ``DateStyle``,
    ``extra_float_digits``, ``jit`` and ``enable_hashjoin``, and the comparison, read by
    binary COPY as the database finds its rows: they give the counts, the samples and,
    when ``report`` is given, every difference as CSV — whatever the size of the data. The side
    statements are parsed and described (not run) first, to learn their column types.

    Samples have the streamed strategy's shape (``key``, ``source``, ``target``,
    ``columns`` for mismatches, ``source_count``/``target_count`` for duplicates) with
    values as PostgreSQL's text; a duplicate key's sample shows one of its rows, not
    necessarily the first read.

    Raises :class:`ComparisonError` for a value that does not read (naming side, column and
    value), an unsupported column type, a failing query or a statement timeout; a lost
    connection raises psycopg's error. Safe to repeat.
    """
    query = None
    try:
        try:
            owns = connection.info.transaction_status == pq.TransactionStatus.IDLE
            with connection.transaction():
                if owns and connection.isolation_level is None:
                    # The counts, the samples and the report read one snapshot.
                    connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                icu = apply_settings(connection)
                kinds = {
                    "source": _column_kinds(connection, plan, "source", source_sql),
                    "target": _column_kinds(connection, plan, "target", target_sql),
                }
                queries = {"source": source_sql, "target": target_sql}
                query = _Query(plan, queries, kinds, icu=icu, rescan=rescan)
                differences = Differences(plan, report, sample_size=sample_size)
                return _compare(connection, query, differences)
        except errors.DataError as exc:
            if query is not None:
                with connection.transaction():
                    apply_settings(connection)
                    _diagnose(connection, query)
            raise ComparisonError(
                f"The database could not read a value: {_message(exc)}."
            ) from None
    except errors.QueryCanceled as exc:
        raise ComparisonError(f"The database stopped the comparison: {_message(exc)}.") from None
    except (errors.ProgrammingError, errors.NotSupportedError, errors.InternalError) as exc:
        raise ComparisonError(f"The comparison query failed: {_message(exc)}.") from None


def apply_settings(connection) -> bool:
    """Sets, for the current transaction, the settings the SQL relies on (UTC, ISO dates,
    shortest exact float text); returns whether the ICU root collation is available."""
    return connection.execute(
        "SELECT set_config('TimeZone', 'UTC', true), "
        "set_config('DateStyle', 'ISO, YMD', true), "
        "set_config('extra_float_digits', '1', true), "
        # The planner cannot estimate the normalised keys, sees billions of joined rows and
        # compiles the statement: 1.7 of 5 s at a million rows, for nothing gained. The
        # sides come out of their windows sorted by key: a merge join, not a hash join that
        # would spill them to disk again.
        "set_config('jit', 'off', true), "
        "set_config('enable_hashjoin', 'off', true), "
        "to_regcollation('pg_catalog.\"und-x-icu\"') IS NOT NULL"
    ).fetchone()[5]


def _message(exc: psycopg.Error) -> str:
    return (exc.diag.message_primary or str(exc)).rstrip(".")


# --------------------------------------------------------------------------------------
# Column types
# --------------------------------------------------------------------------------------


def _column_kinds(connection, plan: Plan, side: str, query: str) -> list[str]:
    """The kind (see TYPE_KINDS) of each column the side's statement returns, from a
    Parse + Describe of the statement: nothing runs."""
    pgconn = connection.pgconn
    encoding = connection.info.encoding
    result = pgconn.prepare(b"", _statement(query).encode(encoding), None)
    if result.status != pq.ExecStatus.COMMAND_OK:
        message = result.error_field(pq.DiagnosticField.MESSAGE_PRIMARY) or b"failed"
        raise ComparisonError(
            f"The {side} query failed: {message.decode(encoding, 'replace').rstrip('.')}."
        )
    description = pgconn.describe_prepared(b"")
    names = plan.side_columns(side)
    if description.nfields != len(names):
        raise ComparisonError(
            f"The {side} query returns {description.nfields} columns; "
            f"{len(names)} were asked for ({', '.join(names)})."
        )
    text_loader = connection.adapters.get_loader(25, pq.Format.TEXT)
    kinds = []
    for index, name in enumerate(names):
        oid = description.ftype(index)
        kind = TYPE_KINDS.get(oid)
        if kind is None:
            # psycopg gives the text of a type without a loader, or with the text loader
            # (the SQL reader registers it for json and jsonb): such a column is its text.
            if connection.adapters.get_loader(oid, pq.Format.TEXT) not in (None, text_loader):
                info = connection.adapters.types.get(oid)
                type_name = info.name if info else f"oid {oid}"
                raise ComparisonError(
                    f"{side} column {name}: the in-database comparison does not read type "
                    f"{type_name}; cast it to text in the query or use the streamed strategy."
                )
            kind = "text"
        kinds.append(kind)
    return kinds


def _statement(query: str) -> str:
    return query.strip().rstrip(";").strip()


# --------------------------------------------------------------------------------------
# Normalisation as SQL
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Normal:
    """A column's normal form as SQL: the expression (which fails with PostgreSQL's
    invalid-input error for a value that does not read), a condition true exactly for such
    values (None when every value reads; it finds them after a failure) and the SQL type of
    the normal form (text in ``COLLATE "C"``, numeric, date, timestamptz or boolean)."""

    value: sql.Composable
    refused: sql.Composable | None
    type: str
    # Whether the normal form's text is the raw value's text (``value::text``), so that
    # the raw value need not be carried through the comparison to be shown.
    shows_raw: bool = False


def _bigint(column: sql.Composable) -> Normal:
    return Normal(sql.SQL("{}::bigint").format(column), None, "bigint", shows_raw=True)


def _iso_text(timestamp: sql.Composable) -> sql.Composable:
    """A timestamp (without time zone, UTC) as Python's ``isoformat()`` of the instant."""
    return sql.SQL(
        "(to_char({ts}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN to_char({ts}, 'US') = "
        "'000000' THEN '' ELSE to_char({ts}, '.US') END || '+00:00')"
    ).format(ts=timestamp)


def python_text(kind: str, column: sql.Composable) -> sql.Composable:
    """The SQL for compare.text_of the value psycopg gives for a column of this kind."""
    # Text in "C": bytewise comparisons, whatever the column's collation (a nondeterministic
    # one would make 'a' = 'A' and refuse regular expressions).
    if kind == "bpchar":  # with the padding psycopg returns (::text drops it)
        return sql.SQL('CASE WHEN {c} IS NOT NULL THEN concat({c}) END COLLATE "C"').format(
            c=column
        )
    if kind == "numeric":
        return sql.SQL("trim_scale({})::text").format(column)
    if kind in ("float4", "float8"):
        return sql.SQL("trim_scale({})::text").format(_float_number(kind, column))
    if kind == "timestamp":
        return _iso_text(column)
    if kind == "timestamptz":
        return _iso_text(sql.SQL("({} AT TIME ZONE 'UTC')").format(column))
    return sql.SQL('{}::text COLLATE "C"').format(column)  # text, integer, boolean, date


# WHITESPACE as an escape string literal, readable in logs and plans.
_WHITESPACE_SQL = sql.SQL("E'{}'".format("".join(f"\\u{ord(char):04x}" for char in WHITESPACE)))


def _float_number(kind: str, column: sql.Composable) -> sql.Composable:
    """A float as the Decimal of Python's ``repr`` of the float psycopg reads.

    psycopg parses PostgreSQL's shortest text (``extra_float_digits = 1``), which has the
    value of Python's ``repr`` but for float8 integers from 2**53 up, where PostgreSQL may
    write 17 digits (``3.5705331885592883e+17``) and Python fewer (``3.570533188559288e+17``):
    there Python's is the first of 15 digits (``::numeric``), 16 digits or PostgreSQL's text
    that reads back as the same float."""
    text = sql.SQL("{}::text::numeric").format(column)
    if kind == "float4":  # at most 9 digits, which the double psycopg makes of them repr()s
        return text
    fifteen = sql.SQL("{}::numeric").format(column)  # %.15g
    sixteen = sql.SQL("round({t}, 15 - floor(log(abs({t})))::int)").format(t=text)

    def reads_back(candidate):  # guarded: a candidate above the largest float would not read
        return sql.SQL(
            "CASE WHEN abs({x}) <= power(2::numeric, 1024) - power(2::numeric, 971) "
            "THEN {x}::float8 = {c} ELSE false END"
        ).format(x=candidate, c=column)

    return sql.SQL(
        "CASE WHEN abs({c}) >= 9007199254740992 AND {c} = trunc({c}) "
        "AND {c} NOT IN ('NaN', 'Infinity', '-Infinity') THEN "
        "CASE WHEN {fifteen_reads} THEN {fifteen} WHEN {sixteen_reads} THEN {sixteen} "
        "ELSE {t} END "
        "ELSE {t} END"
    ).format(
        c=column,
        t=text,
        fifteen=fifteen,
        fifteen_reads=reads_back(fifteen),
        sixteen=sixteen,
        sixteen_reads=reads_back(sixteen),
    )


def _strip(text: sql.Composable) -> sql.Composable:
    return sql.SQL("btrim({}, {})").format(text, _WHITESPACE_SQL)


def _refuse(text: sql.Composable, type_name: str) -> sql.Composable:
    """Raises PostgreSQL's invalid-input error for a value that does not read (NULL stays
    NULL): the comparison then looks for the value with :attr:`Normal.refused`."""
    return sql.SQL("('refused: ' || {})::{}").format(text, sql.SQL(type_name))


def normal_sql(kind: str, rule: ColumnRule, column: sql.Composable, *, icu: bool) -> Normal:
    """The SQL normal form of a column of the given kind under a rule, as
    compare.normaliser computes it for the value psycopg gives."""
    if rule.type == "text":
        text = python_text(kind, column)
        if kind in _TEXT_KINDS:  # other kinds' text has no outer whitespace and is never ''
            if rule.trim:
                text = _strip(text)
            elif not rule.keep_trailing_whitespace:
                text = sql.SQL("rtrim({}, {})").format(text, _WHITESPACE_SQL)
            if rule.empty_is_null:
                text = sql.SQL("nullif({}, '')").format(text)
        if rule.case_insensitive:
            collation = sql.SQL('pg_catalog."und-x-icu"' if icu else '"default"')
            text = sql.SQL("lower({} COLLATE {})").format(text, collation)
        as_is = (
            kind == "text"
            and rule.keep_trailing_whitespace
            and not (rule.trim or rule.empty_is_null or rule.case_insensitive)
        )
        return Normal(sql.SQL('({}) COLLATE "C"').format(text), None, "text", shows_raw=as_is)

    text = python_text(kind, column)
    stripped = _strip(text)  # typed values are read stripped
    if rule.type in ("number", "integer"):
        value, refused = _number(kind, column, text, stripped)
        if rule.places is not None:
            value = sql.SQL("round({}, {})").format(value, sql.Literal(rule.places))
        as_is = kind in ("integer", "numeric") and rule.places is None
        return Normal(value, refused, "numeric", shows_raw=as_is)
    if rule.type in ("date", "datetime"):
        return _instant(kind, rule.type, column, text, stripped)
    return _boolean(kind, column, text, stripped)


def _number(kind: str, column, text, stripped) -> tuple[sql.Composable, sql.Composable | None]:
    if kind == "integer":
        return sql.SQL("{}::numeric").format(column), None
    if kind in ("numeric", "float4", "float8"):
        refused = sql.SQL("{} IN ('NaN', 'Infinity', '-Infinity')").format(column)
        value = sql.SQL("CASE WHEN {refused} THEN {refuse} ELSE {number} END").format(
            refused=refused,
            refuse=_refuse(sql.SQL("{}::text").format(column), "numeric"),
            number=column if kind == "numeric" else _float_number(kind, column),
        )
        return value, refused
    if kind in _TEXT_KINDS:
        digits = sql.SQL("replace({}, '_', '')").format(stripped)
        pattern = sql.Literal(NUMBER_PATTERN)
        value = sql.SQL(
            "CASE WHEN {text} ~ {pattern} THEN {text}::numeric "  # as most are written
            "WHEN {digits} ~ {pattern} THEN {digits}::numeric "
            "WHEN {stripped} = '' THEN NULL ELSE {refuse} END"
        ).format(
            text=text,
            digits=digits,
            pattern=pattern,
            stripped=stripped,
            refuse=_refuse(stripped, "numeric"),
        )
        refused = sql.SQL("({stripped} <> '' AND {digits} !~ {pattern})").format(
            stripped=stripped, digits=digits, pattern=pattern
        )
        return value, refused
    # boolean, date, timestamps
    return _refuse(text, "numeric"), _not_null(column)


def _not_null(column) -> sql.Composable:
    return sql.SQL("{} IS NOT NULL").format(column)


def _instant(kind: str, type_name: str, column, text, stripped) -> Normal:
    if kind in _TEXT_KINDS:
        # The shape is checked here; PostgreSQL refuses the ranges (month 13, February 30,
        # year 0, offsets beyond ±15:59) itself. DATETIME_PATTERN checks both, to find them.
        instant = sql.SQL(
            "CASE WHEN {text} ~ {shape} THEN {text}::timestamptz "  # as most are written
            "WHEN {s} ~ {shape} THEN {s}::timestamptz WHEN {s} = '' THEN NULL "
            "ELSE {refuse} END"
        ).format(
            text=text,
            s=stripped,
            shape=sql.Literal(DATETIME_SHAPE),
            refuse=_refuse(stripped, "timestamptz"),
        )
        refused = sql.SQL("({s} <> '' AND {s} !~ {p})").format(
            s=stripped, p=sql.Literal(DATETIME_PATTERN)
        )
    elif kind == "timestamptz":
        if type_name == "datetime":
            return Normal(column, None, "timestamptz", shows_raw=True)
        instant, refused = column, None
    elif kind == "timestamp":
        instant, refused = sql.SQL("({} AT TIME ZONE 'UTC')").format(column), None
    elif kind == "date":
        if type_name == "date":
            return Normal(column, None, "date", shows_raw=True)
        instant, refused = sql.SQL("({}::timestamp AT TIME ZONE 'UTC')").format(column), None
    else:  # numbers, boolean
        instant, refused = _refuse(text, "timestamptz"), _not_null(column)
    if type_name == "datetime":
        return Normal(instant, refused, "timestamptz")
    return Normal(sql.SQL("({} AT TIME ZONE 'UTC')::date").format(instant), refused, "date")


def _boolean(kind: str, column, text, stripped) -> Normal:
    if kind == "boolean":
        return Normal(column, None, "boolean", shows_raw=True)
    if kind in _TEXT_KINDS:
        word = sql.SQL('lower({} COLLATE "C")').format(stripped)
    elif kind in _NUMBER_KINDS:
        word = text  # '1', '0', '1.5', … never blank
    else:  # dates and timestamps
        return Normal(_refuse(text, "boolean"), _not_null(column), "boolean")
    cases = [sql.SQL("WHEN {} THEN true").format(sql.Literal(w)) for w in _TRUE]
    cases += [sql.SQL("WHEN {} THEN false").format(sql.Literal(w)) for w in _FALSE]
    value = sql.SQL("CASE {word} {cases} WHEN '' THEN NULL ELSE {refuse} END").format(
        word=word, cases=sql.SQL(" ").join(cases), refuse=_refuse(word, "boolean")
    )
    refused = sql.SQL("({word} <> '' AND {word} NOT IN ({all}))").format(
        word=word, all=sql.SQL(", ").join(sql.Literal(w) for w in _TRUE + _FALSE)
    )
    return Normal(value, refused, "boolean")


# --------------------------------------------------------------------------------------
# The statements
# --------------------------------------------------------------------------------------


class _Query:
    """Builds the comparison and refusal statements of one comparison."""

    def __init__(
        self,
        plan: Plan,
        queries: dict[str, str],
        kinds: dict[str, list[str]],
        *,
        icu,
        rescan=frozenset(),
    ):
        self.plan = plan
        self.queries = queries
        self.rescan = rescan
        self.key_count = len(plan.keys)
        self.width = len(plan.keys) + len(plan.columns)
        rules = [plan.rules[source] for source, _ in plan.keys + plan.columns]
        self.rules = rules
        # A column that is an integer on both sides is compared as a bigint: faster to
        # sort, join and compare than numeric, and equal exactly when the numerics are.
        whole = [
            rule.type in ("number", "integer")
            and rule.places is None
            and kinds["source"][index] == kinds["target"][index] == "integer"
            for index, rule in enumerate(rules)
        ]
        self.normals = {
            side: [
                _bigint(sql.Identifier(f"c{index}"))
                if whole[index]
                else normal_sql(kind, rule, sql.Identifier(f"c{index}"), icu=icu)
                for index, (kind, rule) in enumerate(zip(kinds[side], rules, strict=True))
            ]
            for side in SIDES
        }
        # The normal forms of a key part have one SQL type on both sides (the rule's).
        self.key_types = [normal.type for normal in self.normals["source"][: self.key_count]]
        # A text column with a text rule on both sides is compared as it is first, and
        # normalised only where the texts differ: the normal form of equal texts is equal,
        # and the text rules never refuse a value.
        self.icu = icu
        self.lazy = {
            index
            for index, rule in enumerate(rules)
            if index >= self.key_count
            and rule.type == "text"
            and kinds["source"][index] == kinds["target"][index] == "text"
        }

    def _rows(self, side: str) -> sql.Composable:
        # On lines of their own: a query may end with a -- comment.
        return sql.SQL("{side}_rows ({columns}) AS (\n{query}\n)").format(
            side=sql.SQL(side),
            columns=sql.SQL(", ").join(sql.Identifier(f"c{i}") for i in range(self.width)),
            query=sql.SQL(_statement(self.queries[side])),  # the caller's checked SELECT
        )

    def _join_columns(self) -> list[sql.Identifier]:
        names = []
        for index in range(self.key_count):
            names += [sql.Identifier(f"j{index}"), sql.Identifier(f"z{index}")]
        return names

    def _side(self, side: str) -> sql.Composable:
        """The side's rows normalised, one row per key (any of its rows) with the key's row
        count ``n``, in key order. Every row is normalised, so a value that does not read
        stops the comparison wherever it is."""
        fields = []
        for index, normal in enumerate(self.normals[side]):
            if index < self.key_count:
                # A NULL key part matches a NULL key part: joined as (value or a zero of its
                # type, is NULL), two equalities a merge or hash join can use.
                fields += [
                    sql.SQL("coalesce({}, {}) AS {}").format(
                        normal.value, _ZERO[normal.type], sql.Identifier(f"j{index}")
                    ),
                    sql.SQL("{} IS NULL AS {}").format(normal.value, sql.Identifier(f"z{index}")),
                ]
            elif index not in self.lazy:
                fields.append(
                    sql.SQL("{} AS {}").format(
                        normal.value, sql.Identifier(f"v{index - self.key_count}")
                    )
                )
            if self._carries_raw(index, normal):
                fields.append(sql.SQL("{c} AS {c}").format(c=sql.Identifier(f"c{index}")))
        keys = sql.SQL(", ").join(self._join_columns())
        return sql.SQL(
            "{side}_keys AS (SELECT DISTINCT ON ({keys}) *, count(*) OVER (PARTITION BY {keys}) "
            "AS n FROM (SELECT {fields} FROM {side}_rows) AS normal ORDER BY {keys})"
        ).format(side=sql.SQL(side), keys=keys, fields=sql.SQL(", ").join(fields))

    def _differs(self, index: int) -> sql.Composable:
        source, _ = self.plan.columns[index]
        rule = self.plan.rules[source]
        tolerance = rule.tolerance
        position = self.key_count + index
        if position in self.lazy:
            a, b = (sql.Identifier(alias, f"c{position}") for alias in ("s", "t"))
            return sql.SQL("({} IS DISTINCT FROM {} AND {} IS DISTINCT FROM {})").format(
                python_text("text", a),
                python_text("text", b),
                normal_sql("text", rule, a, icu=self.icu).value,
                normal_sql("text", rule, b, icu=self.icu).value,
            )
        a = sql.Identifier("s", f"v{index}")
        b = sql.Identifier("t", f"v{index}")
        if tolerance is None:
            return sql.SQL("{} IS DISTINCT FROM {}").format(a, b)
        return sql.SQL(
            "NOT CASE WHEN {a} IS NULL OR {b} IS NULL THEN {a} IS NULL AND {b} IS NULL "
            "ELSE abs({a} - {b}) <= {tolerance} END"
        ).format(a=a, b=b, tolerance=sql.Literal(tolerance))

    def _carries_raw(self, index: int, normal: Normal) -> bool:
        """Whether a column's raw value travels with its row: a lazily compared text is its
        own raw value; otherwise only a normal form that does not show it needs it."""
        return index in self.lazy or not normal.shows_raw

    def _raw(self, alias: str, side: str) -> sql.Composable:
        """The side's raw values as text, from the normal form where its text is the raw
        value's."""
        items = []
        for index, normal in enumerate(self.normals[side]):
            if self._carries_raw(index, normal):
                value = sql.Identifier(alias, f"c{index}")
            elif index < self.key_count:
                value = sql.SQL("CASE WHEN NOT {z} THEN {j} END").format(
                    z=sql.Identifier(alias, f"z{index}"), j=sql.Identifier(alias, f"j{index}")
                )
            else:
                value = sql.Identifier(alias, f"v{index - self.key_count}")
            items.append(sql.SQL("{}::text").format(value))
        return sql.SQL("CASE WHEN {a}.n IS NOT NULL THEN ARRAY[{items}] END").format(
            a=sql.SQL(alias), items=sql.SQL(", ").join(items)
        )

    def comparison(self) -> sql.Composable:
        """The one statement: a row for each key that differs (missing, unexpected,
        duplicate or mismatched), then a row with each side's row count (see
        :func:`_compare`)."""
        differs = [self._differs(index) for index in range(len(self.plan.columns))]
        keys = []
        for index in range(self.key_count):
            j, z = sql.Identifier(f"j{index}"), sql.Identifier(f"z{index}")
            keys.append(
                sql.SQL(
                    "CASE WHEN NOT coalesce(s.{z}, t.{z}) THEN coalesce(s.{j}, t.{j}) END"
                ).format(j=j, z=z)
            )
        join = sql.SQL(" AND ").join(
            sql.SQL("s.{c} = t.{c}").format(c=column) for column in self._join_columns()
        )
        fields = [
            sql.SQL("false, s.n, t.n"),
            *keys,
            *differs,
            self._raw("s", "source"),
            self._raw("t", "target"),
        ]
        condition = [sql.SQL("s.n IS NULL OR t.n IS NULL OR s.n + t.n > 2"), *differs]
        totals = [
            sql.SQL("true"),
            *(self._row_count(side) for side in SIDES),
            *[sql.NULL] * (self.key_count + len(differs) + 2),
        ]
        return sql.SQL(
            "WITH {rows_s},\n{rows_t},\n{source},\n{target}\n"
            "SELECT {fields} FROM source_keys AS s FULL JOIN target_keys AS t ON {join}\n"
            "WHERE {condition}\n"
            "UNION ALL SELECT {totals}"
        ).format(
            rows_s=self._rows("source"),
            rows_t=self._rows("target"),
            source=self._side("source"),
            target=self._side("target"),
            fields=sql.SQL(", ").join(fields),
            join=join,
            condition=sql.SQL(" OR ").join(condition),
            totals=sql.SQL(", ").join(totals),
        )

    def _row_count(self, side: str) -> sql.Composable:
        # Counting the comparison's own rows would need a window over every key, which
        # costs more than a count(*) of a stored table read again. A view or a query is
        # counted from its rows kept once (a CTE read twice is materialised).
        if side in self.rescan:
            return sql.SQL("(SELECT count(*) FROM (\n{}\n) AS side)").format(
                sql.SQL(_statement(self.queries[side]))
            )
        return sql.SQL("(SELECT count(*) FROM {}_rows)").format(sql.SQL(side))

    def row_types(self) -> list[str]:
        """The types of the comparison's columns, for reading it through binary COPY."""
        return [
            *["boolean", "bigint", "bigint"],
            *self.key_types,
            *["boolean"] * len(self.plan.columns),
            "text[]",
            "text[]",
        ]

    def refused(self, side: str) -> sql.Composable | None:
        """The first column and value of a side that does not read, as text (None when
        every value of the side reads)."""
        normals = self.normals[side]
        columns = [index for index, normal in enumerate(normals) if normal.refused is not None]
        if not columns:
            return None
        first = sql.SQL(" ").join(
            sql.SQL("WHEN {} THEN {}").format(normals[index].refused, sql.Literal(index))
            for index in columns
        )
        value = sql.SQL(" ").join(
            sql.SQL("WHEN {} THEN {}::text").format(sql.Literal(index), sql.Identifier(f"c{index}"))
            for index in columns
        )
        return sql.SQL(
            "WITH {rows} SELECT bad, CASE bad {value} END FROM "
            "(SELECT CASE {first} END AS bad, * FROM {side}_rows) AS r "
            "WHERE bad IS NOT NULL LIMIT 1"
        ).format(rows=self._rows(side), value=value, first=first, side=sql.SQL(side))


# --------------------------------------------------------------------------------------
# Running them
# --------------------------------------------------------------------------------------


def _diagnose(connection, query: _Query) -> None:
    """Raises the ComparisonError compare.py raises for the first value that does not read,
    if one is found: a statement failed with invalid input, from a value that does not read
    (see _refuse) or from the side's own query."""
    for side in SIDES:
        statement = query.refused(side)
        if statement is None:
            continue
        try:
            with connection.transaction():  # a savepoint: the other side may still be read
                row = connection.execute(statement).fetchone()
        except errors.DataError:
            continue  # the side's own query fails
        if row is None:
            continue
        index, value = row
        rule = query.rules[index]
        try:
            normaliser(rule)(value)
            message = _UNREADABLE[rule.type]  # Python reads it; the database does not
        except Exception as exc:  # compare's refusal carries its message
            message = getattr(exc, "message", None) or _UNREADABLE[rule.type]
        name = query.plan.side_columns(side)[index]
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        raise ComparisonError(f"{side} column {name}: {shown} {message}.")


def _compare(connection, query: _Query, differences: Differences) -> Outcome:
    """Runs the comparison statement and works the counts out of its rows: every source
    row belongs to one key, and a key that is not a difference is matched (one row)."""
    plan = query.plan
    outcome = Outcome(column_mismatches={source: 0 for source, _ in plan.columns})
    names = {side: plan.side_columns(side) for side in SIDES}
    columns = [source for source, _ in plan.columns]
    key_count = query.key_count
    differing_source_rows = 0
    # COPY streams the rows as the database finds them: the rows are recorded here while
    # it is still comparing.
    statement = sql.SQL("COPY ({}) TO STDOUT (FORMAT BINARY)").format(query.comparison())
    with connection.cursor() as cursor, cursor.copy(statement) as copy:
        copy.set_types(query.row_types())
        for row in copy.rows():
            totals, source_n, target_n = row[:3]
            if totals:
                outcome.source_rows, outcome.target_rows = source_n, target_n
                continue
            key = row[3 : 3 + key_count]
            differs = row[3 + key_count : -2]
            source_raw, target_raw = row[-2], row[-1]
            counts = differing = None
            if source_n is not None:
                differing_source_rows += source_n
                if source_n > 1:
                    outcome.duplicate_source_keys += 1
                    outcome.duplicate_source_rows += source_n
            if target_n is not None and target_n > 1:
                outcome.duplicate_target_keys += 1
                outcome.duplicate_target_rows += target_n
            if target_n is None:
                kind = "missing_in_target"
                outcome.missing_in_target += 1
            elif source_n is None:
                kind = "unexpected_in_target"
                outcome.unexpected_in_target += 1
            elif source_n + target_n > 2:
                kind, counts = "duplicate", (source_n, target_n)
                outcome.duplicates += 1
            else:
                kind = "mismatched"
                outcome.mismatched += 1
                differing = [name for name, d in zip(columns, differs, strict=True) if d]
                for name in differing:
                    outcome.column_mismatches[name] += 1
            raw = source_raw or target_raw
            differences.record(
                kind,
                key,
                list(raw[:key_count]),
                dict(zip(names["source"], source_raw, strict=True)) if source_raw else None,
                dict(zip(names["target"], target_raw, strict=True)) if target_raw else None,
                columns=differing,
                counts=counts,
            )
    outcome.matched = outcome.source_rows - differing_source_rows
    if outcome.matched < 0:
        raise ComparisonError(
            "The source statement returned fewer rows when counted than when compared; "
            "its rows must not change between two runs (random(), LIMIT without ORDER BY)."
        )
    outcome.samples = differences.samples()
    return outcome
