"""Per-market indicator features and their consumers.

``indicator_features`` computes Kuramoto, Ricci and Hurst from production bars and carries the
tolerance gate (blocking the consumers) that compares a recomputation with the pre-incident baseline.
The consumers (feature-store writer, backtest exporter) honour the control plane: while paused they write
nothing, record no materialisation (``output_required=False``: the step yields nothing, so the partition is
not marked as made), log why, and leave a skip record that the catch-up sensor turns into exactly one re-run
of that partition once the hold is released.
"""

import io

import dagster as dg
import polars as pl

from tradepulse_assets.defs.assets.bars import MARKET_TAG, market_key, session_check_spec
from tradepulse_assets.defs.partitions import session_of_key, session_partitions
from tradepulse_assets.defs.resources import ClockResource, ObjectStoreResource, StateResource
from tradepulse_assets.incidents.control_plane import BACKTEST_EXPORTER, FEATURE_STORE_WRITER, ControlPlane
from tradepulse_assets.incidents.store import IncidentStore
from tradepulse_assets.markets import Market
from tradepulse_assets.pipeline import features as feature_pipeline
from tradepulse_assets.pipeline.catchup import ConsumerSkips
from tradepulse_assets.pipeline.dashboard import sparkline
from tradepulse_assets.storage import lake

TOLERANCE_CHECK = "indicator_tolerance"
DEFAULT_TOLERANCE = 0.005


def _summary_markdown(features) -> str:
    r = features.kuramoto.get_column("r")
    ricci = features.ricci
    hurst = features.hurst
    lines = [
        "| indicator | windows/symbols | mean | min | max |",
        "| --- | --- | --- | --- | --- |",
        f"| Kuramoto R | {r.len()} | {r.mean():.4f} | {r.min():.4f} | {r.max():.4f} |",
    ]
    for col in ("ollivier_mean", "forman_mean"):
        s = ricci.get_column(col)
        lines.append(f"| Ricci {col.split('_')[0]} | {s.len()} | {s.mean():.4f} | {s.min():.4f} | {s.max():.4f} |")
    for col in ("dfa", "rs"):
        s = hurst.get_column(col)
        lines.append(f"| Hurst {col} | {s.len()} | {s.mean():.4f} | {s.min():.4f} | {s.max():.4f} |")
    return "\n".join(lines) + "\n\nKuramoto R(t): `" + sparkline(r.to_list()) + "`"


def build_feature_assets(market: Market) -> list[dg.AssetsDefinition]:
    partitions = session_partitions(market)
    group = market.market_id.lower()
    features_key = market_key(market, "indicator_features")
    op_tags = {MARKET_TAG: market.market_id}

    @dg.asset(
        key=features_key,
        deps=[market_key(market, "production_bars")],
        partitions_def=partitions,
        group_name=group,
        kinds={"numba", "parquet"},
        op_tags=op_tags,
        description=(
            f"{market.market_id} Kuramoto order parameter on fixed causal windows, Ollivier/Forman-Ricci "
            "curvature of the correlation graph, per-symbol Hurst (DFA, R/S)."
        ),
        check_specs=[
            session_check_spec(
                TOLERANCE_CHECK,
                features_key,
                partitions,
                blocking=True,
                description=(
                    "After a backfill, features match the pre-incident baseline: windows without revised bars to "
                    "1e-12, windows with revised bars within the tolerance (default 0.005)."
                ),
            )
        ],
    )
    def indicator_features(
        context: dg.AssetExecutionContext, object_store: ObjectStoreResource, state: StateResource
    ) -> dg.MaterializeResult:
        session = session_of_key(context.partition_key)
        store = object_store.store()
        features = feature_pipeline.compute(store, market, session)
        incidents = [
            i for i in IncidentStore(state.db()).list(market=market.market_id) if str(session) in i.scope.sessions
        ]
        outcome = feature_pipeline.tolerance_gate(
            store, market, session, features, [i.id for i in incidents], DEFAULT_TOLERANCE
        )
        if outcome.report is None:
            check_meta = {"baseline": "none: no incident baseline covers this partition"}
        else:
            check_meta = {"baseline_incident": outcome.incident_id, "revised_minutes": outcome.revised,
                          **outcome.report.to_metadata()}
        description = outcome.summary
        return dg.MaterializeResult(
            metadata={
                "summary": dg.MetadataValue.md(_summary_markdown(features)),
                "params": features.params.to_dict() if hasattr(features, "params") else {},
                "kuramoto_windows": features.kuramoto.height,
                "ricci_edges": features.ricci_edges.height,
            },
            check_results=[
                dg.AssetCheckResult(
                    check_name=TOLERANCE_CHECK,
                    passed=outcome.passed,
                    severity=dg.AssetCheckSeverity.ERROR,
                    description=description,
                    metadata=check_meta,
                )
            ],
        )

    def consumer(name: str, description: str, export_prefix: str):
        key = market_key(market, name)

        @dg.asset(
            key=key,
            deps=[features_key],
            partitions_def=partitions,
            group_name=group,
            kinds={"parquet"},
            op_tags=op_tags,
            description=description,
            output_required=False,
        )
        def _consumer(
            context: dg.AssetExecutionContext, object_store: ObjectStoreResource, state: StateResource,
            clock: ClockResource,
        ):
            session = session_of_key(context.partition_key)
            db = state.db()
            control = ControlPlane(db)
            skips = ConsumerSkips(db)
            if control.is_paused(market.market_id, name):
                holds = [h.holder for h in control.toggle_status(market.market_id, name).holds]
                reason = f"{name} for {market.market_id} is paused by the control plane ({', '.join(holds)})"
                skips.record(market.market_id, name, session, reason=reason, run_id=context.run.run_id,
                             now=clock.clock().now())
                context.log.warning(f"skipped {market.market_id} {session}: {reason}; wrote nothing, "
                                    "the catch-up sensor re-runs it when the hold is released")
                yield dg.AssetObservation(asset_key=key, partition=context.partition_key,
                                          metadata={"skipped": reason, "holds": holds})
                return
            store = object_store.store()
            written = 0
            for table in feature_pipeline.FEATURE_TABLES:
                frame = lake.read_frame(store, lake.feature_layer(table), market.market_id, session)
                buffer = io.BytesIO()
                frame.with_columns(pl.lit(market.market_id).alias("market_id")).write_parquet(buffer)
                store.put_bytes(f"{export_prefix}/{table}/{market.market_id}/{session}.parquet", buffer.getvalue())
                written += frame.height
            caught_up = skips.clear(market.market_id, name, session)
            yield dg.MaterializeResult(metadata={"paused": False, "written": written, "caught_up": caught_up})

        return _consumer

    return [
        indicator_features,
        consumer(
            FEATURE_STORE_WRITER,
            f"Writes {market.market_id} features to the feature store; paused by the control plane during incidents.",
            "exports/feature_store",
        ),
        consumer(
            BACKTEST_EXPORTER,
            f"Exports {market.market_id} features for backtests; paused by the control plane during incidents.",
            "exports/backtest",
        ),
    ]
