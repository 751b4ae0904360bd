"""The Dagster instance ``make run`` writes: how often its daemon looks at the run queue is configurable."""

import dagster as dg
import pytest

from tradepulse_assets.cli.devserver import write_instance_yaml


@pytest.mark.parametrize("environ, seconds", [({}, 5), ({"TRADEPULSE_RUN_QUEUE_INTERVAL_SECONDS": " 1 "}, 1)])
def test_the_daemon_looks_at_the_run_queue_as_often_as_configured(tmp_path, environ, seconds):
    write_instance_yaml(tmp_path, environ)
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert instance.run_coordinator.dequeue_interval_seconds == seconds
        assert instance.run_coordinator.get_run_queue_config().max_concurrent_runs == 2  # the rest as it was


@pytest.mark.parametrize("value", ["0", "0.5", "fast"])
def test_an_interval_that_is_not_whole_seconds_stops_make_run_with_the_variable_named(tmp_path, value):
    with pytest.raises(SystemExit, match="TRADEPULSE_RUN_QUEUE_INTERVAL_SECONDS"):
        write_instance_yaml(tmp_path, {"TRADEPULSE_RUN_QUEUE_INTERVAL_SECONDS": value})
