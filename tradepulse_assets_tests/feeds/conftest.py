"""Shared helpers for the vendor tests: read a published session back the way ingestion will."""

import datetime as dt

import polars as pl
import pytest

from tradepulse_assets.markets import load_registry
from tradepulse_assets.feeds.connectors import DirectoryConnector
from tradepulse_assets.feeds.manifest import parse_bar_file


def read_session(root, market: str, session: dt.date, revision_manifest=None) -> pl.DataFrame:
    """The session as published: manifest files concatenated in manifest order."""
    conn = DirectoryConnector(root)
    manifest = revision_manifest or conn.read_manifest(market, session)
    assert manifest is not None, f"{market} {session} not published"
    frames = [parse_bar_file(f.name, conn.read_file(market, session, f.name)) for f in manifest.files]
    return pl.concat(frames, how="vertical_relaxed") if frames else pl.DataFrame()


@pytest.fixture(scope="session")
def registry():
    return load_registry()
