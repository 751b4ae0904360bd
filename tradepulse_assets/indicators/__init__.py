"""Indicator kernels (numba) and their NumPy-level API: Kuramoto, Ricci curvature, Hurst.

Pure numerical code: imports only ``core`` (``docs/architecture.md``). Definitions and
parameters are documented in ``docs/indicators.md``.
"""

from .features import (
    FeatureParams,
    SessionFeatures,
    compute_session_features,
    effective_revisions,
    forward_fill,
)
from .hurst import (
    default_dfa_scales,
    default_rs_nvals,
    dfa,
    expected_rs,
    hurst_dfa,
    hurst_rs,
    rescaled_range,
    sliding_windows,
)
from .kuramoto import (
    KuramotoResult,
    analytic_signal,
    detrend_linear,
    kuramoto_order,
    order_parameter,
    phases,
    window_starts,
)
from .ricci import (
    CorrelationGraph,
    RicciResult,
    correlation_graph,
    forman_ricci,
    graph_from_correlation,
    ollivier_ricci,
    ricci_curvature,
    shortest_paths,
)
from .tolerance import ToleranceEntry, ToleranceReport, compare_to_baseline
from .transport import wasserstein1

__all__ = [
    "CorrelationGraph", "FeatureParams", "KuramotoResult", "RicciResult", "SessionFeatures", "ToleranceEntry",
    "ToleranceReport", "analytic_signal", "compare_to_baseline", "compute_session_features", "correlation_graph",
    "default_dfa_scales", "default_rs_nvals", "detrend_linear", "dfa", "effective_revisions", "expected_rs",
    "forman_ricci", "forward_fill", "graph_from_correlation", "hurst_dfa", "hurst_rs", "kuramoto_order",
    "ollivier_ricci", "order_parameter", "phases", "rescaled_range", "ricci_curvature", "shortest_paths",
    "sliding_windows", "wasserstein1", "window_starts",
]
