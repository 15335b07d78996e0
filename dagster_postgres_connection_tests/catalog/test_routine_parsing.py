"""How routine bodies are split and read, on bodies no real database needs to hold: quoting,
comments, control flow, dynamic SQL, name resolution. (test_routines.py reads real ones.)"""

import pytest

from dagster_postgres_connection.catalog.routine_lineage import (
    RelationCatalog,
    analyze_routine,
    plpgsql_statements,
    search_path_of,
    shorten_statement,
    split_statements,
    sql_statements,
)

CATALOG = RelationCatalog(
    relations=frozenset({("etl", "src"), ("etl", "dst"), ("public", "log"), ("Sales", "Orders"), ("bob", "mine")}),
    columns={("etl", "src"): ["id", "v"], ("etl", "dst"): ["id", "v"], ("Sales", "Orders"): ["Id"]},
)


def analyze(body: str, language: str = "plpgsql", path: tuple[str, ...] = ("etl", "public"), trigger: tuple[str, str] | None = None):
    return analyze_routine(body, language, list(path), CATALOG, CATALOG.parse_schema(), trigger)


def test_semicolons_inside_strings_quoted_names_dollar_quotes_and_comments_do_not_split() -> None:
    body = (
        "INSERT INTO log VALUES ('a;b', E'it\\'s; x', $q$ ; $inner$ ; $q$, \"odd;name\"); "
        "-- a comment; still a comment\n"
        "/* nested /* ; */ ; */ DELETE FROM dst"
    )
    pieces = [text for text, _ in split_statements(body)]
    assert len(pieces) == 2
    assert pieces[0].startswith("INSERT INTO log VALUES ('a;b', E'it\\'s; x', $q$ ; $inner$ ; $q$")
    assert pieces[1] == "DELETE FROM dst"


def test_control_flow_is_peeled_off_and_conditions_are_read() -> None:
    body = """
    <<main>>
    DECLARE
        n int := (SELECT count(*) FROM etl.src);
        c CURSOR FOR SELECT id FROM etl.dst;
    BEGIN
        CASE n WHEN 0 THEN INSERT INTO dst SELECT * FROM src; ELSE RAISE NOTICE 'x'; END CASE;
        WHILE EXISTS (SELECT 1 FROM log) LOOP EXIT; END LOOP;
        FOR r IN EXECUTE 'SELECT 1' LOOP NULL; END LOOP;
        FOR i IN 1..3 LOOP PERFORM pg_sleep(0); END LOOP;
        OPEN c FOR EXECUTE 'SELECT 2';
        RETURN QUERY EXECUTE 'SELECT 3';
        INSERT INTO dst (id) VALUES (1) RETURNING id INTO n;
    EXCEPTION WHEN unique_violation THEN
        UPDATE dst SET v = 'dup';
    END main
    """
    assert plpgsql_statements(body) == [
        ("expression", "(SELECT count(*) FROM etl.src)"),
        ("sql", "SELECT id FROM etl.dst"),
        ("expression", "0"),
        ("sql", "INSERT INTO dst SELECT * FROM src"),
        ("expression", "EXISTS (SELECT 1 FROM log)"),
        ("dynamic", "FOR r IN EXECUTE 'SELECT 1' LOOP"),
        ("sql", "SELECT pg_sleep(0)"),
        ("dynamic", "OPEN c FOR EXECUTE 'SELECT 2'"),
        ("dynamic", "RETURN QUERY EXECUTE 'SELECT 3'"),
        ("sql", "INSERT INTO dst (id) VALUES (1) RETURNING id"),
        ("sql", "UPDATE dst SET v = 'dup'"),
    ]
    analysis = analyze(body)
    assert analysis.dynamic_sql == 3
    assert set(analysis.writes) == {("etl", "dst")}
    assert analysis.writes[("etl", "dst")].operations == ["INSERT", "UPDATE"]
    assert analysis.reads == {("etl", "src"), ("etl", "dst"), ("public", "log")}
    assert analysis.unparsed == [] and analysis.unresolved == set()


def test_select_into_assigns_a_variable_in_plpgsql_and_creates_a_table_in_sql() -> None:
    plpgsql = analyze("BEGIN SELECT v INTO STRICT x FROM src WHERE id = 1; END")
    assert plpgsql.writes == {} and plpgsql.reads == {("etl", "src")}
    sql = analyze("SELECT v INTO etl.dst FROM etl.src", language="sql")
    assert sql.writes[("etl", "dst")].operations == ["SELECT INTO"]


def test_names_fold_to_lower_case_unless_quoted_and_follow_the_search_path() -> None:
    quoted = analyze('INSERT INTO "Sales"."Orders" SELECT id FROM src', language="sql")
    assert set(quoted.writes) == {("Sales", "Orders")}
    assert quoted.writes[("Sales", "Orders")].columns == {"Id": {("etl", "src", "id")}}
    folded = analyze("INSERT INTO Sales.Orders SELECT 1", language="sql")
    assert folded.writes == {} and folded.unresolved == {"sales.orders"}
    # the routine's own search_path, "$user" being its owner
    path = search_path_of(['search_path="$user", etl'], "public", "bob")
    assert path == ["bob", "etl"]
    assert analyze("SELECT * FROM mine JOIN src ON true", language="sql", path=tuple(path)).reads == {
        ("bob", "mine"), ("etl", "src"),
    }
    assert search_path_of(None, "etl", "bob") == ["etl", "public"]


def test_trigger_rows_are_the_firing_table() -> None:
    body = "BEGIN INSERT INTO log SELECT NEW.id WHERE OLD.v IS DISTINCT FROM NEW.v; RETURN NEW; END"
    analysis = analyze(body, trigger=("etl", "src"))
    assert analysis.writes[("public", "log")].reads == {("etl", "src")}
    without_trigger = analyze(body)
    assert without_trigger.writes[("public", "log")].reads == set()


def test_begin_atomic_bodies_are_unwrapped() -> None:
    assert sql_statements("BEGIN ATOMIC\n INSERT INTO dst SELECT * FROM src;\n SELECT 1;\nEND") == [
        "INSERT INTO dst SELECT * FROM src", "SELECT 1",
    ]


@pytest.mark.parametrize(
    "body",
    ["$$ unterminated", "'open string", "BEGIN ;;; END IF; END", "((((((", "SELECT " + "(" * 3000 + "1" + ")" * 3000],
    ids=["dollar", "quote", "empty statements", "parens", "deep nesting"],
)
def test_odd_bodies_never_raise(body: str) -> None:
    for language in ("sql", "plpgsql"):
        analysis = analyze(body, language=language)
        assert analysis.writes == {}


def test_update_and_merge_assignments_give_column_lineage() -> None:
    catalog = RelationCatalog(
        relations=frozenset({("etl", "staged"), ("etl", "final"), ("etl", "bonus")}),
        columns={("etl", "staged"): ["id", "amount"], ("etl", "final"): ["id", "total", "n"], ("etl", "bonus"): ["id", "extra"]},
    )

    def columns(body: str) -> dict:
        analysis = analyze_routine(body, "sql", ["etl"], catalog, catalog.parse_schema())
        (write,) = analysis.writes.values()
        return write.columns

    # qualified, through a join, the target's own column (no source), unqualified but unambiguous
    assert columns("UPDATE final f SET total = s.amount + b.extra, n = n + 1 FROM staged s JOIN bonus b ON b.id = s.id WHERE s.id = f.id") == {
        "total": {("etl", "staged", "amount"), ("etl", "bonus", "extra")},
    }
    assert columns("UPDATE final SET total = amount FROM staged WHERE staged.id = final.id") == {"total": {("etl", "staged", "amount")}}
    # a subquery is not followed: the column is marked unconfirmed, never guessed
    assert columns("UPDATE final SET total = (SELECT max(amount) FROM staged)") == {"total": None}
    # MERGE from a subquery: through its output columns; INSERT without a column list: the target's order
    assert columns(
        "MERGE INTO final t USING (SELECT id, sum(amount) AS s_total FROM staged GROUP BY 1) s ON t.id = s.id "
        "WHEN MATCHED THEN UPDATE SET total = s.s_total "
        "WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.s_total, 0) WHEN MATCHED AND s.s_total < 0 THEN DELETE"
    ) == {"total": {("etl", "staged", "amount")}, "id": {("etl", "staged", "id")}}


def test_string_constants_never_reach_the_metadata() -> None:
    """Unparsed statements and executed statements are kept shortened: their string constants,
    which may hold secrets (`dblink('... password=...')`), are replaced."""
    analysis = analyze("BEGIN PERFORM dblink_exec(E'host=db password=s3cr\\'et', $x$ ; $x$) ~>=~ 'x'; END")
    (unparsed,) = analysis.unparsed
    assert "s3cr" not in unparsed and "'...'" in unparsed
    assert shorten_statement("INSERT INTO t SELECT * FROM dblink('password=s3cret', $$q$$) x", 300) == (
        "INSERT INTO t SELECT * FROM dblink('...', '...') x"
    )
    assert shorten_statement("UPDATE t SET a = $1 WHERE b = $2", 300) == "UPDATE t SET a = $1 WHERE b = $2"


def test_temporary_tables_pass_their_sources_through() -> None:
    """A -> temp -> B is B reading A (the temp table is never an asset, nor unresolved)."""
    analysis = analyze(
        "BEGIN CREATE TEMP TABLE scratch AS SELECT id FROM src; INSERT INTO scratch SELECT id FROM log; "
        "INSERT INTO dst (id) SELECT id FROM scratch; DROP TABLE scratch; END"
    )
    assert set(analysis.writes) == {("etl", "dst")}
    write = analysis.writes[("etl", "dst")]
    assert write.reads == {("etl", "src"), ("public", "log")}
    assert write.columns == {"id": None}  # through the temp table: not confirmed, not guessed
    assert analysis.unresolved == set()
