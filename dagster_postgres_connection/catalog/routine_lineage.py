"""What a routine's statements write and read: lineage through functions, procedures and triggers.

Postgres records no dependency from a routine to the relations its body uses (a plpgsql body is
plain text until it runs), so the body is parsed: `sql` bodies are SQL statements; `plpgsql`
bodies are split into statements (`;` outside strings, quoted names, dollar quotes and
comments), control flow is peeled off (`IF ... THEN`, `LOOP`, `FOR r IN <query> LOOP`,
`EXCEPTION WHEN ... THEN`, `DECLARE`, labels) and what remains is SQL: `PERFORM x` is
`SELECT x`, `SELECT ... INTO var` and `RETURNING ... INTO var` assign variables (their `INTO`
is dropped), conditions and assignments that hold a subquery are read as `SELECT <expression>`.
`EXECUTE` (dynamic SQL) is counted and reported, never guessed: its text exists only at run
time. A statement sqlglot cannot parse is reported with its first words; nothing here raises.

Writes are `INSERT`, `UPDATE`, `DELETE`, `MERGE`, `CREATE TABLE AS` and, in `sql` bodies, `SELECT
INTO` (in plpgsql that assigns a variable). Reads are every other relation a statement names.

Names are resolved like Postgres would at run time, as far as the catalog can tell: a qualified
name as written; an unqualified one in the first schema of the routine's search path that has a
relation of that name. That path is the routine's own `SET search_path` (proconfig; `"$user"`
is its owner), else the routine's schema and then `public`, since the caller's path is unknown.
Names found in no schema of the path (temporary tables the routine creates, typos) are reported
as unresolved; CTE names and system catalogs (`pg_*`) are not relations of ours and drop out.

In a trigger function, `NEW` and `OLD` are rows of the table that fires it (`pg_trigger`): a
column `NEW.amount` reads that table's `amount`. A routine is analysed once per firing table.

Column lineage is kept where a statement allows it: `INSERT INTO t (a, b) SELECT x, y ...`
(through joins, CTEs and subqueries, by sqlglot's lineage) and `INSERT ... VALUES (NEW.x, ...)`.
Without a column list the target's columns are taken in order. A source column must be a known
column of a resolved relation, else that output column is left out rather than guessed.
"""

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from sqlglot import exp, parse_one
from sqlglot.lineage import lineage
from sqlglot.schema import MappingSchema

from dagster_postgres_connection.catalog.models import RelationName

# A column of a relation: (schema, relation, column).
ColumnKey = tuple[str, str, str]

# What a statement does to its target, as reported.
_INSERT, _UPDATE, _DELETE, _MERGE, _CTAS, _SELECT_INTO = (
    "INSERT", "UPDATE", "DELETE", "MERGE", "CREATE TABLE AS", "SELECT INTO",
)
# Words that start a statement sqlglot should parse.
_SQL_START = re.compile(r"(SELECT|WITH|INSERT|UPDATE|DELETE|MERGE|CREATE|VALUES|TABLE)\b", re.IGNORECASE)
# plpgsql statements that touch no relation (or that we do not follow: CALL names a routine).
_SKIPPED = re.compile(
    r"(RAISE|GET|NULL|EXIT|CONTINUE|COMMIT|ROLLBACK|CLOSE|FETCH|MOVE|ASSERT|CALL|DROP|ANALYZE|"
    r"TRUNCATE|ALTER|LOCK|RESET|SET|GRANT|REVOKE|REFRESH|COMMENT|NOTIFY|LISTEN|VACUUM|DISCARD)\b",
    re.IGNORECASE,
)
_TRIGGER_ROWS = frozenset({"new", "old"})
_UNPARSED_PREVIEW = 60  # characters of an unparsed statement kept in the report


@dataclass
class WriteLineage:
    """One relation a routine writes: how, from what, and from which columns."""

    operations: list[str] = field(default_factory=list)
    reads: set[RelationName] = field(default_factory=set)
    # target column -> its source columns; None once any statement left a source unconfirmed
    columns: dict[str, set[ColumnKey] | None] = field(default_factory=dict)


@dataclass
class RoutineAnalysis:
    writes: dict[RelationName, WriteLineage] = field(default_factory=dict)
    reads: set[RelationName] = field(default_factory=set)
    dynamic_sql: int = 0
    unparsed: list[str] = field(default_factory=list)
    unresolved: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class RelationCatalog:
    """Every relation of the database (any non-system schema) and the columns known for them."""

    relations: frozenset[RelationName]
    columns: Mapping[RelationName, Sequence[str]]

    def parse_schema(self) -> MappingSchema:
        mapping: dict[str, object] = {}  # schema -> relation -> column -> type
        for (schema, name), columns in self.columns.items():
            # Types do not matter for lineage; a neutral one keeps sqlglot from parsing ours.
            mapping.setdefault(schema, {})[name] = dict.fromkeys(columns, "text")  # type: ignore[index]
        return MappingSchema(mapping, dialect="postgres", normalize=False)


def search_path_of(config: Sequence[str] | None, schema: str, owner: str | None) -> list[str]:
    """The schemas unqualified names resolve in: the routine's `SET search_path`, else its schema
    and `public` (see the module docstring)."""
    for setting in config or ():
        name, _, value = setting.partition("=")
        if name.strip().lower() == "search_path":
            path = []
            for part in value.split(","):
                part = part.strip()
                if part.startswith('"') and part.endswith('"'):
                    part = part[1:-1].replace('""', '"')
                else:
                    part = part.lower()
                if part == "$user":
                    part = owner or ""
                if part and part not in path:
                    path.append(part)
            return path
    return list(dict.fromkeys([schema, "public"]))


def analyze_routine(
    body: str,
    language: str,
    search_path: Sequence[str],
    catalog: RelationCatalog,
    parse_schema: MappingSchema,
    trigger_table: RelationName | None = None,
) -> RoutineAnalysis:
    """The relations a `sql` or `plpgsql` body writes and reads. Never raises on odd input."""
    analysis = RoutineAnalysis()
    context = _Context(analysis, search_path, catalog, parse_schema, trigger_table)
    try:
        if language == "plpgsql":
            for kind, text in plpgsql_statements(body):
                context.add(kind, text, plpgsql=True)
        else:
            for text in sql_statements(body):
                context.add("sql", text, plpgsql=False)
    except Exception as error:  # a parser limit (recursion, ...) must never fail the sync
        analysis.unparsed.append(f"(body: {type(error).__name__})")
    return analysis


# --- Splitting a body into statements ---------------------------------------------------------

_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


def split_statements(body: str) -> list[tuple[str, str]]:
    """`(text, masked)` of each `;`-terminated piece, comments dropped; in `masked` the inside of
    strings and quoted names is `_`, so keywords are only ever found in code."""
    pieces: list[tuple[str, str]] = []
    text: list[str] = []
    masked: list[str] = []
    i, n = 0, len(body)

    def emit(chunk: str, hide: bool) -> None:
        text.append(chunk)
        masked.append(chunk[0] + "_" * (len(chunk) - 2) + chunk[-1] if hide and len(chunk) >= 2 else chunk)

    while i < n:
        char = body[i]
        if char == ";":
            pieces.append(("".join(text).strip(), "".join(masked).strip()))
            text, masked = [], []
            i += 1
        elif body.startswith("--", i):
            end = body.find("\n", i)
            i = n if end == -1 else end
            emit(" ", False)
        elif body.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if body.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif body.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            i = j
            emit(" ", False)
        elif char in "'\"":
            j = i + 1
            escapes = char == "'" and i > 0 and body[i - 1] in "eE"
            while j < n:
                if escapes and body[j] == "\\":
                    j += 2
                    continue
                if body[j] == char:
                    if j + 1 < n and body[j + 1] == char:  # '' or "" inside
                        j += 2
                        continue
                    break
                j += 1
            emit(body[i : j + 1], True)
            i = j + 1
        elif char == "$" and (match := _DOLLAR_TAG.match(body, i)) and not (i > 0 and (body[i - 1].isalnum() or body[i - 1] == "_")):
            end = body.find(match.group(0), match.end())
            end = n if end == -1 else end + len(match.group(0))
            emit(body[i:end], True)
            i = end
        else:
            j = i
            while j < n and body[j] not in ";'\"$-/":
                j += 1
            j = max(j, i + 1)
            emit(body[i:j], False)
            i = j
    pieces.append(("".join(text).strip(), "".join(masked).strip()))
    return [(t, m) for t, m in pieces if t]


def sql_statements(body: str) -> list[str]:
    """Statements of a `LANGUAGE sql` body, `BEGIN ATOMIC ... END` (PG 14+) unwrapped."""
    statements = []
    for text, masked in split_statements(body):
        match = re.match(r"BEGIN\s+ATOMIC\b", masked, re.IGNORECASE)
        if match:
            text, masked = text[match.end() :].strip(), masked[match.end() :].strip()
        if re.fullmatch(r"END", masked, re.IGNORECASE):
            continue
        if text:
            statements.append(text)
    return statements


# Control flow peeled off the front of a plpgsql statement: (pattern on the masked text, the
# group holding a condition or query to read, or None). Tried in order until none matches.
_PREFIXES: list[tuple[re.Pattern[str], str | None]] = [
    (re.compile(r"<<\s*\w+\s*>>\s*"), None),
    (re.compile(r"DECLARE\b\s*", re.IGNORECASE), "declare"),
    (re.compile(r"BEGIN\b\s*", re.IGNORECASE), "begin"),
    (re.compile(r"EXCEPTION\s+WHEN\b.*?\bTHEN\b\s*", re.IGNORECASE | re.DOTALL), None),
    (re.compile(r"(?:IF|ELSIF|ELSEIF)\b(?P<read>.*?)\bTHEN\b\s*", re.IGNORECASE | re.DOTALL), "expression"),
    (re.compile(r"CASE\b.*?\bWHEN\b(?P<read>.*?)\bTHEN\b\s*", re.IGNORECASE | re.DOTALL), "expression"),
    (re.compile(r"WHEN\b(?P<read>.*?)\bTHEN\b\s*", re.IGNORECASE | re.DOTALL), "expression"),
    (re.compile(r"ELSE\b\s*", re.IGNORECASE), None),
    (re.compile(r"WHILE\b(?P<read>.*?)\bLOOP\b\s*", re.IGNORECASE | re.DOTALL), "expression"),
    (re.compile(r"FOR\b[^;]*?\bIN\s+EXECUTE\b.*?\bLOOP\b\s*", re.IGNORECASE | re.DOTALL), "dynamic"),
    (re.compile(r"FOR\b[^;]*?\bIN\s+(?P<read>(?:SELECT|WITH|VALUES|TABLE)\b.*?)\bLOOP\b\s*", re.IGNORECASE | re.DOTALL), "query"),
    (re.compile(r"(?:FOR|FOREACH)\b.*?\bLOOP\b\s*", re.IGNORECASE | re.DOTALL), None),
    (re.compile(r"LOOP\b\s*", re.IGNORECASE), None),
]
_END = re.compile(r"END(\s+(IF|LOOP|CASE))?(\s+\w+)?", re.IGNORECASE)
_CURSOR = re.compile(r"\w+\s+(?:(?:NO\s+)?SCROLL\s+)?CURSOR\b.*?\b(?:FOR|IS)\s+(?P<read>.*)", re.IGNORECASE | re.DOTALL)
_ASSIGNMENT = re.compile(r"[\w.\"\[\]]+\s*(?::=|=)\s*(?P<read>.*)", re.DOTALL)
_DECLARATION = re.compile(r"[\w\"]+\s+.*?(?::=|=|\bDEFAULT\b)\s*(?P<read>.*)", re.IGNORECASE | re.DOTALL)
# `INTO [STRICT] a, b.c` of SELECT INTO var / RETURNING ... INTO var (not INSERT INTO, MERGE INTO)
_INTO_VARIABLES = re.compile(r"\bINTO\s+(?:STRICT\s+)?[\w.$\"]+(?:\s*,\s*[\w.$\"]+)*", re.IGNORECASE)
_WRITES_INTO = re.compile(r"\b(INSERT|MERGE)\s*$", re.IGNORECASE)


def plpgsql_statements(body: str) -> list[tuple[str, str]]:
    """`(kind, text)` of each SQL statement in a plpgsql body: kind `sql` (a statement to parse),
    `expression` (an expression that may read through a subquery), `dynamic` (EXECUTE) or
    `unparsed` (a statement we do not recognise)."""
    found: list[tuple[str, str]] = []
    declaring = False
    for text, masked in split_statements(body):
        # peel control flow off the front, keeping conditions and loop queries
        while True:
            for pattern, role in _PREFIXES:
                match = pattern.match(masked)
                if not match:
                    continue
                if role == "declare":
                    declaring = True
                elif role == "begin":
                    declaring = False
                elif role == "dynamic":
                    found.append(("dynamic", text[: match.end()].strip()))
                elif role in ("expression", "query"):
                    start, end = match.span("read")
                    found.append(("expression" if role == "expression" else "sql", text[start:end].strip()))
                text, masked = text[match.end() :].strip(), masked[match.end() :].strip()
                break
            else:
                break
        if not masked or _END.fullmatch(masked):
            continue
        if declaring:
            cursor = _CURSOR.match(masked) or _DECLARATION.match(masked)
            if cursor:
                start = cursor.start("read")
                found.append(("sql" if cursor.re is _CURSOR else "expression", text[start:].strip()))
            continue
        found.append(_classify(text, masked))
    return [(kind, text) for kind, text in found if text]


def _classify(text: str, masked: str) -> tuple[str, str]:
    head = masked.split(None, 1)[0].upper() if masked.split() else ""
    if head == "EXECUTE":
        return "dynamic", text
    if head == "PERFORM":
        return "sql", "SELECT " + text[len("PERFORM") :].strip()
    if head == "RETURN":
        rest, rest_masked = text[len("RETURN") :].strip(), masked[len("RETURN") :].strip()
        if re.match(r"QUERY\s+EXECUTE\b", rest_masked, re.IGNORECASE):
            return "dynamic", text
        if re.match(r"QUERY\b", rest_masked, re.IGNORECASE):
            return "sql", _without_into_variables(rest[len("QUERY") :].strip(), rest_masked[len("QUERY") :].strip())
        if re.match(r"NEXT\b", rest_masked, re.IGNORECASE):
            return "expression", rest[len("NEXT") :].strip()
        return "expression", rest
    if head == "OPEN":
        match = re.match(r"OPEN\s+\S+\s+(?:(?:NO\s+)?SCROLL\s+)?FOR\s+(EXECUTE\b)?", masked, re.IGNORECASE)
        if match is None:
            return "expression", ""  # a bound cursor: its query was read where it was declared
        return ("dynamic", text) if match.group(1) else ("sql", text[match.end() :].strip())
    if _SQL_START.match(masked):
        return "sql", _without_into_variables(text, masked)
    if _SKIPPED.match(masked):
        return "expression", ""
    assignment = _ASSIGNMENT.match(masked)
    if assignment:
        return "expression", text[assignment.start("read") :].strip()
    return "unparsed", text


def _without_into_variables(text: str, masked: str) -> str:
    """plpgsql's `SELECT ... INTO var` and `... RETURNING ... INTO var` assign variables: drop the
    clause so the rest parses as SQL (the first one only: a statement has at most one)."""
    for match in _INTO_VARIABLES.finditer(masked):
        if not _WRITES_INTO.search(masked[: match.start()]):
            return (text[: match.start()] + " " + text[match.end() :]).strip()
    return text


# --- Parsing statements -----------------------------------------------------------------------


class _Context:
    def __init__(
        self,
        analysis: RoutineAnalysis,
        search_path: Sequence[str],
        catalog: RelationCatalog,
        parse_schema: MappingSchema,
        trigger_table: RelationName | None,
    ) -> None:
        self.analysis = analysis
        self.search_path = search_path
        self.catalog = catalog
        self.parse_schema = parse_schema
        self.trigger_table = trigger_table
        # Tables the routine creates as TEMP (never assets, never unresolved) -> the relations
        # their rows come from: `CREATE TEMP TABLE t AS SELECT ... FROM a; INSERT INTO b SELECT
        # ... FROM t` makes `b` read `a`.
        self.temporary: dict[str, set[RelationName]] = {}

    def add(self, kind: str, text: str, *, plpgsql: bool) -> None:
        analysis = self.analysis
        if kind == "dynamic":
            analysis.dynamic_sql += 1
            return
        if kind == "unparsed":
            analysis.unparsed.append(_preview(text))
            return
        if kind == "expression":
            if not re.search(r"\bSELECT\b", text, re.IGNORECASE):
                return  # no subquery: an expression of variables reads no relation
            text = f"SELECT {text}"
        try:
            statement = parse_one(text, read="postgres")
        except Exception:  # ParseError, TokenError, RecursionError
            analysis.unparsed.append(_preview(text))
            return
        if isinstance(statement, exp.Command):  # sqlglot's fallback for what it does not know
            analysis.unparsed.append(_preview(text))
            return
        self._add_statement(statement, plpgsql=plpgsql)

    def _add_statement(self, statement: exp.Expr, *, plpgsql: bool) -> None:
        target_node, operation = _target_of(statement, plpgsql=plpgsql)
        temporary_target: str | None = None
        if isinstance(statement, exp.Create) and statement.find(exp.TemporaryProperty) is not None:
            table = statement.find(exp.Table)
            if table is not None and (name := _pg_name(table.this)) is not None:
                self.temporary.setdefault(name, set())  # CREATE TEMP TABLE x (AS ...): session-local
                temporary_target = name
            target_node = operation = None
        ctes = {cte.alias_or_name.lower() for cte in statement.find_all(exp.CTE)}
        target: RelationName | None = None
        reads: set[RelationName] = set()
        for table in list(statement.find_all(exp.Table)):
            if not isinstance(table.this, exp.Identifier):
                continue  # a table function, e.g. generate_series(...)
            temporary = self._temporary(table, ctes)
            if temporary is not None:
                if table is target_node:  # INSERT INTO a temp table: its rows come from what is read
                    temporary_target, target_node = temporary, None
                elif temporary != temporary_target:
                    reads |= self.temporary[temporary]  # read through it, from where its rows came
                continue
            resolved = self._resolve(table, ctes)
            if table is target_node:
                target = resolved
                continue
            if resolved is not None:
                reads.add(resolved)
                # qualified and quoted as stored: lineage then finds its columns exactly
                table.set("db", exp.to_identifier(resolved[0], quoted=True))
                table.set("this", exp.to_identifier(resolved[1], quoted=True))
                table.set("catalog", None)
        if self.trigger_table is not None and _reads_trigger_rows(statement):
            reads.add(self.trigger_table)
        if target is not None:
            reads.discard(target)  # UPDATE t SET a = a + 1 reads t, but t is no dependency of itself
        self.analysis.reads |= reads
        if temporary_target is not None:
            self.temporary[temporary_target] |= reads
        if target_node is None or target is None or operation is None:
            return
        write = self.analysis.writes.setdefault(target, WriteLineage())
        if operation not in write.operations:
            write.operations.append(operation)
        write.reads |= reads
        for column, sources in self._column_lineage(statement, target).items():
            if column in write.columns and write.columns[column] is None:
                continue
            if sources is None:
                write.columns[column] = None
            else:
                write.columns[column] = (write.columns.get(column) or set()) | sources

    def _temporary(self, table: exp.Table, ctes: set[str]) -> str | None:
        """The name of a temporary table the routine created, if `table` is one."""
        name = _pg_name(table.this)
        if table.args.get("db") is None and name in self.temporary and name not in ctes:
            return name
        return None

    def _resolve(self, table: exp.Table, ctes: set[str]) -> RelationName | None:
        name = _pg_name(table.this)
        schema = _pg_name(table.args.get("db"))
        if name is None:
            return None
        if schema is None:
            if name in ctes:
                return None
            for candidate in self.search_path:
                if (candidate, name) in self.catalog.relations:
                    return (candidate, name)
            if not name.startswith("pg_"):
                self.analysis.unresolved.add(name)
            return None
        if (schema, name) in self.catalog.relations:
            return (schema, name)
        if schema not in ("pg_catalog", "information_schema") and not schema.startswith("pg_temp"):
            self.analysis.unresolved.add(f"{schema}.{name}")
        return None

    def _column_lineage(self, statement: exp.Expr, target: RelationName) -> dict[str, set[ColumnKey] | None]:
        """Target column -> source columns (None: a source could not be confirmed), for INSERT,
        UPDATE (`SET a = s.x ... FROM s`) and MERGE (its `UPDATE SET` and `INSERT ... VALUES`)."""
        if isinstance(statement, exp.Update):
            scope = self._scope(statement, [statement.args.get("from_")])
            return self._assignments(statement.expressions, scope, target)
        if isinstance(statement, exp.Merge):
            return self._merge_lineage(statement, target)
        if not isinstance(statement, exp.Insert):
            return {}
        into = statement.this
        if isinstance(into, exp.Schema):
            columns = [_pg_name(c) or "" for c in into.expressions]
        else:
            columns = list(self.catalog.columns.get(target, ()))
        source = statement.expression
        if isinstance(source, exp.Values):
            outputs = self._values_sources(source, len(columns))
        elif isinstance(source, (exp.Select, exp.SetOperation)):
            ctes = statement.args.get("with_")
            if ctes is not None and source.args.get("with_") is None:  # WITH x AS (...) INSERT ... FROM x
                source = source.copy()
                source.set("with_", ctes.copy())
            outputs = self._query_sources(source)
        else:
            return {}
        if outputs is None or not columns or len(outputs) != len(columns):
            return {}
        return {column: sources for column, sources in zip(columns, outputs, strict=True) if sources != set()}

    def _values_sources(self, values: exp.Values, width: int) -> list[set[ColumnKey] | None] | None:
        """VALUES rows: only `NEW.x` / `OLD.x` name columns (anything else is a variable or constant)."""
        merged: list[set[ColumnKey] | None] = [set() for _ in range(width)]
        for row in values.expressions:
            items = row.expressions if isinstance(row, exp.Tuple) else [row]
            if len(items) != width:
                return None
            for index, item in enumerate(items):
                for column in item.find_all(exp.Column):
                    if _pg_name(column.args.get("table")) in _TRIGGER_ROWS:
                        found = self._confirmed(self.trigger_table, _pg_name(column.this))
                        current = merged[index]
                        merged[index] = None if found is None or current is None else current | {found}
        return merged

    def _query_sources(self, query: exp.Expr) -> list[set[ColumnKey] | None] | None:
        """Each output column's sources, in output order."""
        named = self._named_query_sources(query)
        return None if named is None else list(named.values())

    def _named_query_sources(self, query: exp.Expr) -> dict[str, set[ColumnKey] | None] | None:
        """Output column name -> its sources, through joins, CTEs and subqueries (sqlglot's lineage)."""
        if _reads_trigger_rows(query):
            return None  # NEW.x inside a query: sqlglot would take NEW for a table
        try:
            nodes = lineage(None, query.sql(dialect="postgres"), schema=self.parse_schema, dialect="postgres", trim_selects=False)
        except Exception:
            return None
        assert isinstance(nodes, dict)
        outputs: dict[str, set[ColumnKey] | None] = {}
        for output, node in nodes.items():
            sources: set[ColumnKey] | None = set()
            for leaf in node.walk():
                if leaf.downstream or not isinstance(leaf.expression, exp.Table):
                    continue
                table = leaf.expression
                relation = (_pg_name(table.args.get("db")), _pg_name(table.this))
                column = _leaf_column(leaf.name)
                schema, name = relation
                found = self._confirmed((schema, name) if schema and name else None, column)
                if found is None:
                    sources = None
                    break
                sources.add(found)
            outputs[output] = sources
        return outputs

    # UPDATE ... SET and MERGE: each assigned column from the columns its expression names.
    # A scope maps each source's alias to its relation (its columns are known) or, for a subquery,
    # to the sources of each of its output columns.

    def _scope(self, statement: exp.Expr, sources: Sequence[exp.Expr | None]) -> "_Scope":
        target = statement.this
        scope = _Scope(target_alias=target.alias_or_name.lower() if isinstance(target, exp.Table) else None)
        for source in sources:
            if source is None:
                continue
            for node in source.walk(bfs=True):
                if isinstance(node, exp.Subquery) and node.alias:
                    scope.queries[node.alias.lower()] = self._named_query_sources(node.this)
                elif isinstance(node, exp.Table) and node.find_ancestor(exp.Subquery) is None:
                    schema, name = _pg_name(node.args.get("db")), _pg_name(node.this)
                    if schema and name and (schema, name) in self.catalog.relations:
                        scope.tables[node.alias_or_name.lower()] = (schema, name)
                    else:
                        scope.opaque = True  # a table function, a CTE: its columns are unknown
        return scope

    def _assignments(
        self, assignments: Sequence[exp.Expr], scope: "_Scope", target: RelationName
    ) -> dict[str, set[ColumnKey] | None]:
        found: dict[str, set[ColumnKey] | None] = {}
        for assignment in assignments:
            if not isinstance(assignment, exp.EQ) or not isinstance(assignment.this, exp.Column):
                continue
            column = _pg_name(assignment.this.this)
            if column is None:
                continue
            sources = self._expression_sources(assignment.expression, scope, target)
            if sources != set():
                found[column] = sources
        return found

    def _expression_sources(self, expression: exp.Expr, scope: "_Scope", target: RelationName) -> set[ColumnKey] | None:
        """Columns an expression reads (None when one cannot be placed; a subquery is not followed)."""
        if expression.find(exp.Select) is not None:
            return None
        target_columns = self.catalog.columns.get(target, ())
        sources: set[ColumnKey] = set()
        for column in expression.find_all(exp.Column):
            name, qualifier = _pg_name(column.this), _pg_name(column.args.get("table"))
            if name is None:
                return None
            if qualifier is None:
                holders = [alias for alias, relation in scope.tables.items() if name in self.catalog.columns.get(relation, ())]
                holders += [alias for alias, outputs in scope.queries.items() if outputs is not None and name in outputs]
                in_target = name in target_columns
                if not holders:
                    if scope.opaque or (scope.queries and None in scope.queries.values()):
                        return None
                    continue  # the target's own column, or a variable / parameter: no source
                if len(holders) > 1 or in_target:
                    return None  # ambiguous
                qualifier = holders[0]
            if qualifier == scope.target_alias:
                continue  # `SET n = n + 1`: the target's own column
            if qualifier in _TRIGGER_ROWS and self.trigger_table is not None:
                found = self._confirmed(self.trigger_table, name)
                if found is None:
                    return None
                sources.add(found)
            elif qualifier in scope.tables:
                found = self._confirmed(scope.tables[qualifier], name)
                if found is None:
                    return None
                sources.add(found)
            elif qualifier in scope.queries:
                outputs = scope.queries[qualifier]
                if outputs is None or outputs.get(name) is None:
                    return None
                sources |= outputs[name] or set()
            else:
                return None
        return sources

    def _merge_lineage(self, merge: exp.Merge, target: RelationName) -> dict[str, set[ColumnKey] | None]:
        scope = self._scope(merge, [merge.args.get("using")])
        found: dict[str, set[ColumnKey] | None] = {}

        def add(column: str, sources: set[ColumnKey] | None) -> None:
            if sources == set():
                return
            if column in found and (found[column] is None or sources is None):
                found[column] = None
            else:
                found[column] = (found.get(column) or set()) | (sources or set())

        whens = merge.args.get("whens")
        for when in whens.expressions if whens is not None else ():
            then = when.args.get("then")
            if isinstance(then, exp.Update):
                for column, sources in self._assignments(then.expressions, scope, target).items():
                    add(column, sources)
            elif isinstance(then, exp.Insert) and isinstance(then.expression, exp.Tuple):
                names = (
                    [_pg_name(c.this if isinstance(c, exp.Column) else c) for c in then.this.expressions]
                    if isinstance(then.this, exp.Tuple)
                    else list(self.catalog.columns.get(target, ()))
                )
                values = then.expression.expressions
                if len(names) != len(values):
                    continue
                for column, value in zip(names, values, strict=True):
                    if column is not None:
                        add(column, self._expression_sources(value, scope, target))
        return found

    def _confirmed(self, relation: RelationName | None, column: str | None) -> ColumnKey | None:
        """The column, if it is a known column of a resolved relation."""
        if relation is None or column is None or column not in self.catalog.columns.get(relation, ()):
            return None
        return (relation[0], relation[1], column)


@dataclass
class _Scope:
    """The sources an UPDATE ... FROM or a MERGE ... USING assigns from, by alias."""

    target_alias: str | None
    tables: dict[str, RelationName] = field(default_factory=dict)
    queries: dict[str, dict[str, set[ColumnKey] | None] | None] = field(default_factory=dict)
    opaque: bool = False


def _target_of(statement: exp.Expr, *, plpgsql: bool) -> tuple[exp.Table | None, str | None]:
    """The table a statement writes, and how."""
    node = statement
    if isinstance(node, exp.Insert):
        into = node.this
        table = into.this if isinstance(into, exp.Schema) else into
        return (table if isinstance(table, exp.Table) else None), _INSERT
    if isinstance(node, exp.Update):
        return (node.this if isinstance(node.this, exp.Table) else None), _UPDATE
    if isinstance(node, exp.Delete):
        return (node.this if isinstance(node.this, exp.Table) else None), _DELETE
    if isinstance(node, exp.Merge):
        return (node.this if isinstance(node.this, exp.Table) else None), _MERGE
    if isinstance(node, exp.Create) and node.args.get("expression") is not None and str(node.args.get("kind", "")).upper() == "TABLE":
        this = node.this
        table = this.this if isinstance(this, exp.Schema) else this
        return (table if isinstance(table, exp.Table) else None), _CTAS
    if isinstance(node, exp.Select) and not plpgsql and node.args.get("into") is not None:
        into = node.args["into"].this
        return (into if isinstance(into, exp.Table) else None), _SELECT_INTO
    return None, None


def _reads_trigger_rows(node: exp.Expr) -> bool:
    return any(_pg_name(column.args.get("table")) in _TRIGGER_ROWS for column in node.find_all(exp.Column))


def _pg_name(identifier: exp.Expr | None) -> str | None:
    """An identifier as Postgres stores it: unquoted names fold to lower case."""
    if not isinstance(identifier, exp.Identifier):
        return None
    return identifier.this if identifier.quoted else identifier.this.lower()


def _leaf_column(qualified: str) -> str | None:
    """`r."Weird Col"` -> `Weird Col`, as sqlglot names a lineage leaf."""
    try:
        return exp.to_column(qualified, dialect="postgres").name or None
    except Exception:
        return None


def _preview(text: str) -> str:
    return shorten_statement(text, _UNPARSED_PREVIEW)


# String constants, which may hold secrets (`dblink('... password=...')`): never kept.
_LITERALS = re.compile(
    r"[eE]?'(?:[^'\\]|''|\\.)*'?"  # '...', E'...' (unterminated: to the end)
    r"|\$\$.*?(?:\$\$|$)"  # $$...$$
    r"|\$([A-Za-z_][A-Za-z0-9_]*)\$.*?(?:\$\1\$|$)",  # $tag$...$tag$
    re.DOTALL,
)


def shorten_statement(text: str, limit: int) -> str:
    """A statement as kept in metadata: string constants as `'...'`, on one line, at most `limit`
    characters."""
    flat = " ".join(_LITERALS.sub("'...'", text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def merge_analyses(analyses: Iterable[RoutineAnalysis]) -> RoutineAnalysis:
    """One routine's analyses (one per firing table) as one."""
    merged = RoutineAnalysis()
    for analysis in analyses:
        merged.reads |= analysis.reads
        merged.dynamic_sql = max(merged.dynamic_sql, analysis.dynamic_sql)
        merged.unparsed = merged.unparsed or analysis.unparsed
        merged.unresolved |= analysis.unresolved
        for target, write in analysis.writes.items():
            into = merged.writes.setdefault(target, WriteLineage())
            into.operations += [op for op in write.operations if op not in into.operations]
            into.reads |= write.reads
            for column, sources in write.columns.items():
                if column in into.columns and (into.columns[column] is None or sources is None):
                    into.columns[column] = None
                else:
                    into.columns[column] = (into.columns.get(column) or set()) | (sources or set())
    return merged
