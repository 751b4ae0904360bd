"""``tradepulse-cli sql "SELECT ..."``: DuckDB over the lake and the data-health catalog.

Why: the runbook's triage ("confirm scope using the metadata store") asks questions nobody wrote a command
for: which sessions of XLON failed a gate this week, how many bars a backfill replaced. SQL answers them
without a notebook. The views, each with ``market`` and ``session`` columns:

| view | what |
| --- | --- |
| ``landing``, ``staging``, ``production`` | the lake layers (bars) |
| ``features_<name>`` | an indicator feature table (``lake/features/<name>``) |
| ``data_health`` | every gate verdict per market and session (the health catalog) |

Only the views a query names are built. On a local store DuckDB reads the Parquet files in place; on S3 the
partitions are read with polars (the store's own credentials and endpoint) and handed to DuckDB as Arrow,
so ``--market`` keeps a query over a large S3 layer small. DuckDB, polars and the lake are imported when the
command runs, so ``tradepulse-cli --help`` stays quick.
"""

import re
from typing import Any

from tradepulse_assets.cli.output import CliError, emit, table

HEALTH_VIEW = "data_health"
FEATURES_PREFIX = "features_"


def add_commands(sub, common) -> None:
    p = sub.add_parser(
        "sql",
        help="query the lake and the data-health catalog with DuckDB SQL",
        description="DuckDB SQL over the views landing, staging, production, features_<name> (the lake) and "
        "data_health (the gate verdicts), each with market and session columns.",
        parents=[common],
    )
    p.add_argument(
        "query", help='one SQL statement, e.g. "SELECT market, count(*) FROM production GROUP BY 1"'
    )
    p.add_argument("--market", action="append", help="only these markets' lake partitions (repeatable)")
    p.add_argument("--max-rows", type=int, default=1000, help="rows printed at most (default 1000)")
    p.set_defaults(handler=_sql)


def _named(query: str, view: str) -> bool:
    return re.search(rf"\b{re.escape(view)}\b", query, re.IGNORECASE) is not None


def feature_views(store: Any) -> dict[str, str]:
    """``{view: layer}`` for every feature table present in the lake."""
    from tradepulse_assets.storage import lake

    prefix = f"{lake.LAKE_ROOT}/features/"
    names = {key[len(prefix) :].split("/", 1)[0] for key in store.list_keys(prefix)}
    return {f"{FEATURES_PREFIX}{name}": lake.feature_layer(name) for name in sorted(names)}


def lake_views(store: Any, query: str) -> dict[str, str]:
    """The lake views ``query`` names, as ``{view: layer}``."""
    from tradepulse_assets.storage import lake

    views = {layer: layer for layer in lake.BASE_LAYERS}
    if re.search(rf"\b{FEATURES_PREFIX}\w+", query, re.IGNORECASE):
        views.update(feature_views(store))
    return {view: layer for view, layer in views.items() if _named(query, view)}


def run_query(con: Any, store: Any, query: str, markets: list[str] | None):
    """Register the views ``query`` names on DuckDB connection ``con``; return (columns, rows)."""
    import duckdb

    from tradepulse_assets.quality.catalog import health_catalog_for
    from tradepulse_assets.storage import lake

    for view, layer in lake_views(store, query).items():
        try:
            lake.register_duckdb_view(con, store, layer, view, markets=markets)
        except lake.LakeError as exc:
            raise CliError(str(exc), hint="the layer has no partitions yet: land a session first") from None
    if _named(query, HEALTH_VIEW):
        health_catalog_for(store).register_duckdb(con)
    try:
        cursor = con.execute(query)
    except duckdb.Error as exc:
        raise CliError(
            f"sql: {exc}".splitlines()[0],
            hint="views: landing, staging, production, features_<name>, data_health",
        ) from None
    if cursor.description is None:
        return [], []
    columns = [d[0] for d in cursor.description]
    return columns, cursor.fetchall()


def _sql(args) -> int:
    import duckdb

    from tradepulse_assets.pipeline.settings import load_settings
    from tradepulse_assets.storage.object_store import StorageError, object_store_from_url

    settings = load_settings()
    try:
        store = object_store_from_url(settings.object_store_url, s3=settings.s3)
    except StorageError as exc:
        raise CliError(str(exc), hint="check TRADEPULSE_OBJECT_STORE_URL") from None
    with duckdb.connect() as con:
        columns, rows = run_query(con, store, args.query, args.market)
    records = [dict(zip(columns, row)) for row in rows]
    shown = records[: args.max_rows]
    human = table(shown, columns)
    if len(records) > len(shown):
        human += f"\n({len(records) - len(shown)} more row(s); raise --max-rows or use --json)"
    emit(args, {"columns": columns, "rows": records}, human)
    return 0
