"""The quickstart example in the real Dagster webserver: GraphQL checks, then UI screenshots.

One `dg dev` serves the whole module (see conftest.py). Expectations come from the database
itself (the superuser reads `pg_catalog`), not from our own reader.
"""

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from dagster_postgres_connection.testing import EmbeddedPostgres
from dagster_postgres_connection_tests.e2e.browser import chromium_page, require_chromium
from dagster_postgres_connection_tests.e2e.conftest import CONNECTION, FILM_COMMENT, RATING_COMMENT
from dagster_postgres_connection_tests.e2e.webserver import WORKSPACE_QUERY, DagsterWebserver
from dagster_postgres_connection_tests.utils import REPO_ROOT, PgTarget

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# The README's screenshots. Tests write theirs to a temporary folder, so a test run leaves the
# tree clean; `DPC_REFRESH_SCREENSHOTS=1` writes them here instead, to refresh the tracked ones.
README_IMAGES = REPO_ROOT / "docs" / "images"
REFRESH_SCREENSHOTS = "DPC_REFRESH_SCREENSHOTS"

ASSET_NODES_QUERY = """
{
  assetNodes {
    assetKey { path }
    groupName
    kinds
    description
    dependencyKeys { path }
    repository { location { name } }
    metadataEntries {
      label
      ... on TextMetadataEntry { text }
      ... on TableSchemaMetadataEntry {
        schema {
          columns { name type description constraints { nullable unique other } }
          constraints { other }
        }
      }
    }
  }
}
"""

KINDS_BY_RELKIND = {
    "r": {"postgres", "table"},
    "p": {"postgres", "table", "partitioned_table"},
    "f": {"postgres", "table", "foreign_table"},
    "v": {"postgres", "view"},
    "m": {"postgres", "view", "materialized_view"},
}

# What `rental_by_category` selects from (Pagila's definition; `payment` is partitioned).
RENTAL_BY_CATEGORY_UPSTREAM = {"category", "film", "film_category", "inventory", "payment", "rental"}


def key(name: str) -> tuple[str, ...]:
    return (CONNECTION, "pagila", "public", name)


@pytest.fixture(name="asset_nodes", scope="module")
def asset_nodes_fixture(webserver: DagsterWebserver) -> Mapping[tuple[str, ...], dict[str, Any]]:
    nodes = webserver.graphql(ASSET_NODES_QUERY)["assetNodes"]
    return {tuple(node["assetKey"]["path"]): node for node in nodes}


@pytest.fixture(name="pagila_relkinds", scope="module")
def pagila_relkinds_fixture(pagila_server: EmbeddedPostgres, pagila: PgTarget) -> Mapping[str, str]:
    """relkind of every relation that is an asset: partitions are rolled up into their parent."""
    rows = pagila_server.query(
        """
        SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND NOT c.relispartition
        """,
        database=pagila.database,
    )
    return dict(rows)


def metadata(node: Mapping[str, Any], label: str) -> dict[str, Any]:
    entries = [entry for entry in node["metadataEntries"] if entry["label"] == label]
    assert len(entries) == 1, f"{label} on {node['assetKey']['path']}: {entries}"
    return entries[0]


def test_code_location_is_named_after_the_connection_and_loads(webserver: DagsterWebserver) -> None:
    workspace = webserver.graphql(WORKSPACE_QUERY)["workspaceOrError"]
    assert workspace["__typename"] == "Workspace"
    [entry] = workspace["locationEntries"]
    assert entry["name"] == CONNECTION
    assert entry["loadStatus"] == "LOADED"
    location = entry["locationOrLoadError"]
    assert location["__typename"] == "RepositoryLocation", location
    assert location["name"] == CONNECTION


def test_one_asset_per_relation_under_connection_database_schema_relation(
    asset_nodes: Mapping[tuple[str, ...], dict[str, Any]], pagila_relkinds: Mapping[str, str]
) -> None:
    assert set(asset_nodes) == {key(name) for name in pagila_relkinds}
    assert len(asset_nodes) == 23  # Pagila: 14 tables, 1 partitioned table, 7 views, 1 materialized view
    assert key("payment_p2022_01") not in asset_nodes  # a partition: part of `payment`
    assert {node["repository"]["location"]["name"] for node in asset_nodes.values()} == {CONNECTION}


def test_group_and_kinds(
    asset_nodes: Mapping[tuple[str, ...], dict[str, Any]], pagila_relkinds: Mapping[str, str]
) -> None:
    for name, relkind in pagila_relkinds.items():
        node = asset_nodes[key(name)]
        assert node["groupName"] == CONNECTION, name
        assert set(node["kinds"]) == KINDS_BY_RELKIND[relkind], name


def test_table_shows_its_columns_keys_and_description(
    asset_nodes: Mapping[tuple[str, ...], dict[str, Any]], pagila_server: EmbeddedPostgres, pagila: PgTarget
) -> None:
    film = asset_nodes[key("film")]
    assert film["description"] == FILM_COMMENT
    assert metadata(film, "dagster/table_name")["text"] == "pagila.public.film"

    schema = metadata(film, "dagster/column_schema")["schema"]
    expected = pagila_server.query(
        """
        SELECT attname, format_type(atttypid, atttypmod), NOT attnotnull FROM pg_attribute
        WHERE attrelid = 'public.film'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum
        """,
        database=pagila.database,
    )
    assert [(c["name"], c["type"], c["constraints"]["nullable"]) for c in schema["columns"]] == [
        tuple(row) for row in expected
    ]
    columns = {c["name"]: c for c in schema["columns"]}
    assert columns["rating"]["type"] == "mpaa_rating"
    assert columns["rating"]["description"] == RATING_COMMENT
    assert columns["rental_rate"]["type"] == "numeric(4,2)"
    assert columns["special_features"]["type"] == "text[]"
    assert columns["title"]["constraints"]["nullable"] is False
    film_id = columns["film_id"]["constraints"]
    assert film_id["unique"] is True
    assert "primary key" in film_id["other"]
    assert "foreign key -> public.language(language_id)" in columns["language_id"]["constraints"]["other"]
    assert "PRIMARY KEY (film_id)" in schema["constraints"]["other"]


def test_view_depends_on_what_it_reads(asset_nodes: Mapping[tuple[str, ...], dict[str, Any]]) -> None:
    deps = {tuple(dep["path"]) for dep in asset_nodes[key("rental_by_category")]["dependencyKeys"]}
    assert deps == {key(name) for name in RENTAL_BY_CATEGORY_UPSTREAM}
    # Every dependency is an asset of the same code location, so the graph is connected.
    assert deps <= set(asset_nodes)


def test_screenshots_of_catalog_columns_and_lineage(webserver: DagsterWebserver, tmp_path: Path) -> None:
    """Takes the README's screenshots; fails if the UI shows an error. They go to docs/images/
    only with `DPC_REFRESH_SCREENSHOTS=1`."""
    require_chromium()
    folder = README_IMAGES if os.environ.get(REFRESH_SCREENSHOTS) == "1" else tmp_path / "screenshots"
    folder.mkdir(exist_ok=True)
    asset = f"/assets/{CONNECTION}/pagila/public"
    pages = [
        # (file, path, an element that proves the page rendered; the catalog middle-truncates
        # names, so its row is found by the full name in the tooltip)
        ("catalog.png", f"/assets?asset-selection=group:{CONNECTION}",
         f'[title="{CONNECTION} / pagila / public / actor_info"]'),
        ("asset_columns.png", f"{asset}/film", 'text="special_features"'),
        ("lineage.png", f"{asset}/rental_by_category?view=lineage&lineageScope=upstream", 'text="film_category"'),
    ]
    saved = []
    with chromium_page(webserver.url, tmp_path / "chromium-profile") as browser:
        for file, path, proof in pages:
            browser.open(path, wait_for=proof)
            browser.assert_no_error_state()
            saved.append(browser.screenshot(folder / file))
    for path in saved:
        assert path.stat().st_size > 20_000, f"{path} looks blank"


SYNC_JOB_METADATA_QUERY = """
query ($job: String!, $location: String!) {
  pipelineOrError(params: {pipelineName: $job, repositoryName: "__repository__", repositoryLocationName: $location}) {
    __typename
    ... on Pipeline { metadataEntries { label ... on MarkdownMetadataEntry { mdStr } } }
  }
}
"""


def test_the_sync_job_lists_the_routines_in_the_ui(webserver: DagsterWebserver, tmp_path: Path) -> None:
    """Routines are no assets: their listing is the sync job's metadata, shown on its page."""
    job = f"{CONNECTION}_sync"
    result = webserver.graphql(SYNC_JOB_METADATA_QUERY, {"job": job, "location": CONNECTION})["pipelineOrError"]
    assert result["__typename"] == "Pipeline", result
    (listing,) = [e for e in result["metadataEntries"] if e["label"] == "dagster-postgres-connection/routines"]
    assert "| `public.film_in_stock(p_film_id integer, p_store_id integer, OUT p_film_count integer)` | function | sql |" in listing["mdStr"]
    assert "| `public.rewards_report(" in listing["mdStr"] and "3 dynamic SQL (EXECUTE)" in listing["mdStr"]
    require_chromium()
    with chromium_page(webserver.url, tmp_path / "chromium-profile") as browser:
        browser.open(f"/locations/{CONNECTION}/jobs/{job}", wait_for='text="dagster-postgres-connection/routines"')
        browser.assert_no_error_state()
        browser.page.get_by_text("[Show Markdown]").first.click()  # the listing opens as a table
        browser.page.get_by_text("film_in_stock", exact=False).first.wait_for(state="visible", timeout=30_000)
        browser.assert_no_error_state()
        text = browser.page.inner_text("body")
        # Pagila's `last_updated` fires on 14 tables: grouped, the first three named
        assert "last_updated (BEFORE UPDATE) on public.actor, public.address, public.category and 11 more" in " ".join(text.split())
        browser.screenshot(tmp_path / "sync_job.png")
