"""The drop format's manifest, and the landing-time checks of a bar file against it.

A vendor drop is ``<root>/<market>/<session>/`` with bar files and ``manifest.json`` (see
``docs/vendor-format.md``). The manifest is the vendor's promise: file sizes, sha256 digests and record
counts, the session's condition and a revision number. The ingestion side calls ``verify_file`` and
``parse_bar_file`` before any quality gate runs, so a corrupt or truncated delivery is caught at landing
(``landing_verification``) with the file named, instead of surfacing later as a confusing gate failure.
"""

import dataclasses
import datetime as dt
import functools
import gzip
import hashlib
import io
import json
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import polars as pl

from tradepulse_assets.feeds.confined import ConfinementError, check_name
from tradepulse_assets.markets.bars import BAR_COLUMNS, OPTIONAL_BAR_COLUMNS, SCHEMA_VERSION

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1
CONDITIONS = ("available", "degraded", "pending", "missing")
BAR_FILE_SUFFIXES = (".parquet", ".csv", ".csv.gz")
GROUND_TRUTH_DIR = "_ground_truth"
#: Decompression limit of a .csv.gz bar file: this many bytes, or this ratio times its size if larger.
MAX_INFLATED_FLOOR = 64 * 1024 * 1024
MAX_INFLATE_RATIO = 100


class ManifestError(ValueError):
    """A manifest that cannot be read or is inconsistent; the message names its source.

    ``data`` holds the bytes as delivered (when they were read), so landing can keep them as evidence.
    """

    def __init__(self, message: str, data: bytes | None = None):
        super().__init__(message)
        self.data = data


class BarFileError(ValueError):
    """A bar file that cannot be parsed; names the file and the cause."""

    def __init__(self, name: str, cause: str):
        super().__init__(f"bar file {name}: {cause}")
        self.name = name
        self.cause = cause


@dataclass(frozen=True)
class Fault:
    """One landing-verification finding for one file."""

    check: str  # size | sha256 | record_count | parse | missing_file | refused | manifest | empty_manifest
    #            | manifest_identity | file_name | suffix | duplicate_file
    file: str
    message: str
    expected: object = None
    actual: object = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ManifestFile:
    name: str
    size: int
    sha256: str
    record_count: int


@dataclass(frozen=True)
class Manifest:
    market: str
    session: dt.date
    revision: int
    published_at: dt.datetime
    condition: str
    files: tuple[ManifestFile, ...]
    schema_version: int = SCHEMA_VERSION
    vendor: str = "simulator"
    previous_revisions: tuple[str, ...] = field(default=())
    #: The bytes this manifest was parsed from, verbatim (None when built in code): what landing keeps.
    source_bytes: bytes | None = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        if self.condition not in CONDITIONS:
            raise ManifestError(
                f"manifest {self.market}/{self.session}: condition {self.condition!r} "
                f"not in {', '.join(CONDITIONS)}"
            )
        if self.published_at.tzinfo is None:
            raise ManifestError(f"manifest {self.market}/{self.session}: published_at has no time zone")

    @property
    def record_count(self) -> int:
        return sum(f.record_count for f in self.files)

    def file(self, name: str) -> ManifestFile:
        entry = self._entries.get(name)
        if entry is None:
            raise KeyError(f"manifest {self.market}/{self.session} r{self.revision} lists no file {name!r}")
        return entry

    @functools.cached_property
    def _entries(self) -> dict[str, ManifestFile]:
        """The first entry of each name: ``file`` is asked once per file (1,440 of a streamed session)."""
        entries: dict[str, ManifestFile] = {}
        for entry in self.files:
            entries.setdefault(entry.name, entry)
        return entries

    def to_dict(self) -> dict:
        return {
            "manifest_format": MANIFEST_FORMAT,
            "schema_version": self.schema_version,
            "vendor": self.vendor,
            "market": self.market,
            "session": self.session.isoformat(),
            "revision": self.revision,
            "published_at": _iso_utc(self.published_at),
            "condition": self.condition,
            "record_count": self.record_count,
            "files": [asdict(f) for f in self.files],
            "previous_revisions": list(self.previous_revisions),
        }

    def to_json(self) -> bytes:
        """Canonical bytes (sorted keys, fixed indentation): the same manifest is always the same bytes."""
        return (json.dumps(self.to_dict(), sort_keys=True, indent=2) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes | str, source: str = MANIFEST_NAME) -> "Manifest":
        raw = data.encode() if isinstance(data, str) else bytes(data)
        try:
            return dataclasses.replace(cls._parse(raw, source), source_bytes=raw)
        except ManifestError as exc:
            raise ManifestError(str(exc), raw) from None

    @classmethod
    def _parse(cls, data: bytes, source: str) -> "Manifest":
        try:
            doc = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ManifestError(f"manifest {source}: not valid JSON ({exc})") from None
        if not isinstance(doc, dict):
            raise ManifestError(f"manifest {source}: top level is {type(doc).__name__}, expected an object")
        required = ("market", "session", "revision", "published_at", "condition", "files")
        missing = [k for k in required if k not in doc]
        if missing:
            raise ManifestError(f"manifest {source}: missing field(s) {', '.join(missing)}")
        try:
            files = tuple(
                ManifestFile(str(f["name"]), int(f["size"]), str(f["sha256"]), int(f["record_count"]))
                for f in doc["files"]
            )
            manifest = cls(
                market=str(doc["market"]),
                session=dt.date.fromisoformat(str(doc["session"])),
                revision=int(doc["revision"]),
                published_at=dt.datetime.fromisoformat(str(doc["published_at"]).replace("Z", "+00:00")),
                condition=str(doc["condition"]),
                files=files,
                schema_version=int(doc.get("schema_version", SCHEMA_VERSION)),
                vendor=str(doc.get("vendor", "unknown")),
                previous_revisions=tuple(doc.get("previous_revisions", ())),
            )
        except ManifestError as exc:
            raise ManifestError(f"manifest {source}: {exc}") from None
        except (KeyError, TypeError, ValueError) as exc:
            raise ManifestError(f"manifest {source}: malformed field ({type(exc).__name__}: {exc})") from None
        if "record_count" in doc and int(doc["record_count"]) != manifest.record_count:
            raise ManifestError(
                f"manifest {source}: record_count {doc['record_count']} "
                f"!= sum of file counts {manifest.record_count}"
            )
        return manifest


def manifest_faults(manifest: Manifest, market: str, session: dt.date, drop_format: bool = True) -> list[Fault]:
    """What is wrong with the manifest itself, before any file is read.

    An empty file list, a manifest for another market or session, a name that is not a plain file name
    (traversal), a hidden or reserved name, an unknown suffix or a name listed twice: each is a fault of the
    delivery (landing fails and the delivery is quarantined), never "not published yet".
    """
    faults = []
    if not manifest.files:
        faults.append(Fault("empty_manifest", MANIFEST_NAME,
                            f"manifest r{manifest.revision} lists no files: an empty delivery", ">= 1", 0))
    if (manifest.market, manifest.session) != (market, session):
        faults.append(Fault("manifest_identity", MANIFEST_NAME,
                            f"manifest is for {manifest.market} {manifest.session}, not {market} {session}",
                            f"{market} {session}", f"{manifest.market} {manifest.session}"))
    seen = set()
    for entry in manifest.files:
        name = entry.name
        try:
            check_name(name, name)
        except ConfinementError:
            faults.append(Fault("file_name", name, f"{name!r}: not a plain file name (path traversal)"))
            continue
        if name.startswith((".", "_")):
            faults.append(Fault("file_name", name, f"{name!r}: hidden or reserved name, never a bar file"))
        elif drop_format and not name.lower().endswith(BAR_FILE_SUFFIXES):  # a vendor format has its own
            faults.append(Fault("suffix", name, f"{name}: unknown suffix, expected one of "
                                + ", ".join(BAR_FILE_SUFFIXES)))
        if name in seen:
            faults.append(Fault("duplicate_file", name, f"{name}: listed twice in the manifest"))
        seen.add(name)
    return faults


def readable_names(manifest: Manifest, faults: list[Fault]) -> list[str]:
    """The manifest's file names that may be fetched: each once, none with a name fault."""
    bad = {f.file for f in faults if f.check in ("file_name", "suffix")}
    return list(dict.fromkeys(e.name for e in manifest.files if e.name not in bad))


def _iso_utc(ts: dt.datetime) -> str:
    return ts.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def is_bar_file(name: str) -> bool:
    return not name.startswith((".", "_")) and name.lower().endswith(BAR_FILE_SUFFIXES)


def archived_manifest_name(revision: int) -> str:
    """Where revision ``revision``'s manifest is kept once a restatement supersedes it."""
    return f"manifest.r{revision}.json"


def describe_file(name: str, data: bytes) -> ManifestFile:
    """A manifest entry for ``data`` (parses it to count records: a file we cannot parse gets no entry)."""
    return ManifestFile(
        name=name, size=len(data), sha256=sha256_hex(data), record_count=parse_bar_file(name, data).height
    )


# --- bar files ----------------------------------------------------------------------------------------


def parse_bar_file(name: str, data: bytes) -> pl.DataFrame:
    """Parse a bar file by extension (Parquet, CSV, gzip CSV).

    Types are not forced onto the frame: a renamed or retyped column stays visible for the schema gate.
    CSV has no types, so there (only) known columns are cast to the bar schema where they cast cleanly and
    ``ts`` text is read as UTC.
    """
    lower = name.lower()
    try:
        if lower.endswith(".parquet"):
            return pl.read_parquet(io.BytesIO(data))
        if lower.endswith(".csv.gz"):
            return _typed_csv(pl.read_csv(io.BytesIO(gunzip_bounded(name, data)), infer_schema=False))
        if lower.endswith(".csv"):
            return _typed_csv(pl.read_csv(io.BytesIO(data), infer_schema=False))
    except BarFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - every parser failure becomes one typed error naming the file
        raise BarFileError(
            name, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        ) from exc
    raise BarFileError(name, f"unsupported extension; expected one of {', '.join(BAR_FILE_SUFFIXES)}")


def parse_bar_files(files: Sequence[tuple[str, bytes]]) -> list[pl.DataFrame | BarFileError]:
    """``parse_bar_file`` of each ``(name, bytes)``, in order: a frame, or the error naming the file.

    Why: a streamed session is 1,440 one-minute Parquet files of a dozen rows each, and polars' fixed cost per
    read made parsing them one by one 0.33-0.46 s of CPU; one read of them all takes 0.08 s. So Parquet files
    whose footers declare the same schema are read in one polars call and split by the row counts their
    footers give: each frame equals the file parsed alone. A file whose footer cannot be read, every file of a
    group whose joint read fails (a corrupt page), and CSV files are parsed one by one, so a bad file gets
    the same error, naming it, as it would alone.
    """
    results: list[pl.DataFrame | BarFileError | None] = [None] * len(files)
    groups: dict[tuple, list[tuple[int, int]]] = {}  # footer schema -> [(index in files, rows)]
    for index, (name, data) in enumerate(files):
        footer = _parquet_footer(name, data)
        if footer is None:
            results[index] = _parsed_alone(name, data)
        else:
            schema, rows = footer
            groups.setdefault(schema, []).append((index, rows))
    for members in groups.values():
        together = _read_parquet_together([files[i][1] for i, _ in members]) if len(members) > 1 else None
        if together is None or together.height != sum(rows for _, rows in members):
            for index, _ in members:
                results[index] = _parsed_alone(*files[index])
            continue
        offset = 0
        for index, rows in members:
            results[index] = together.slice(offset, rows)
            offset += rows
    return results


def _parsed_alone(name: str, data: bytes) -> pl.DataFrame | BarFileError:
    try:
        return parse_bar_file(name, data)
    except BarFileError as exc:
        return exc


def _parquet_footer(name: str, data: bytes) -> tuple[tuple, int] | None:
    """``(schema, rows)`` from a Parquet file's footer (the Parquet schema and the Arrow schema polars
    reads types from), or None: not Parquet by name, or no readable footer."""
    if not name.lower().endswith(".parquet"):
        return None
    import pyarrow as pa  # lazy: only landing parses bar files, and pyarrow costs start-up time
    import pyarrow.parquet as pq

    try:
        meta = pq.read_metadata(pa.BufferReader(data))
    except Exception:  # noqa: BLE001 - the file is then parsed alone, which names what is wrong with it
        return None
    return (meta.schema.to_arrow_schema(), (meta.metadata or {}).get(b"ARROW:schema")), meta.num_rows


def _read_parquet_together(datas: list[bytes]) -> pl.DataFrame | None:
    try:
        return pl.read_parquet(datas)
    except Exception:  # noqa: BLE001 - one bad file spoils a joint read: its group is parsed file by file
        return None


def gunzip_bounded(name: str, data: bytes) -> bytes:
    """gzip-decompress ``data``, refusing to inflate past ``MAX_INFLATE_RATIO`` x its size (at least
    ``MAX_INFLATED_FLOOR``): bar CSV compresses about 5x, a decompression bomb thousands of times."""
    limit = max(MAX_INFLATED_FLOOR, MAX_INFLATE_RATIO * len(data))
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise BarFileError(name, f"not valid gzip ({exc})") from None
    if len(out) > limit:
        raise BarFileError(name, f"inflates beyond {limit} bytes from {len(data)} (a decompression bomb?)")
    if not inflater.eof:
        raise BarFileError(name, "truncated gzip stream")
    return out


def _typed_csv(frame: pl.DataFrame) -> pl.DataFrame:
    columns = {**BAR_COLUMNS, **OPTIONAL_BAR_COLUMNS}
    casts = []
    for col in frame.columns:
        target = columns.get(col)
        if target is None:
            continue
        if col == "ts":
            parsed = frame[col].str.to_datetime(time_unit="us", strict=False, time_zone="UTC")
            if parsed.null_count() == frame[col].null_count():
                casts.append(parsed.alias("ts"))
            continue
        cast = frame[col].cast(target, strict=False)
        if cast.null_count() == frame[col].null_count():
            casts.append(cast.alias(col))
    return frame.with_columns(casts) if casts else frame


def write_bar_file(name: str, frame: pl.DataFrame) -> bytes:
    """Serialise ``frame`` by extension with fixed settings, so the same frame is always the same bytes."""
    lower = name.lower()
    if lower.endswith(".parquet"):
        import pyarrow.parquet as pq

        buf = io.BytesIO()
        pq.write_table(frame.to_arrow(), buf, compression="zstd", compression_level=3, write_statistics=True)
        return buf.getvalue()
    text = _csv_text(frame)
    if lower.endswith(".csv.gz"):
        return gzip.compress(text, compresslevel=6, mtime=0)  # mtime=0: no timestamp in the gzip header
    if lower.endswith(".csv"):
        return text
    raise BarFileError(name, f"unsupported extension; expected one of {', '.join(BAR_FILE_SUFFIXES)}")


def _csv_text(frame: pl.DataFrame) -> bytes:
    if "ts" in frame.columns and frame.schema["ts"] == pl.Datetime("us", "UTC"):
        frame = frame.with_columns(pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    return frame.write_csv().encode()


def verify_file(entry: ManifestFile, data: bytes, parse=parse_bar_file) -> list[Fault]:
    """Landing verification of one file against its manifest entry: size, sha256, then record count.

    ``parse(name, data)`` decodes the file (a vendor format passes its own decoder)."""
    return verify_and_parse(entry, data, parse)[0]


def verify_and_parse(
    entry: ManifestFile, data: bytes, parse=parse_bar_file
) -> tuple[list[Fault], pl.DataFrame | None]:
    """``verify_file`` plus the parsed frame (None when it does not parse), so a caller parses once."""
    try:
        parsed = parse(entry.name, data)
    except BarFileError as exc:
        parsed = exc
    return _verified(entry, data, parsed)


def verify_and_parse_many(
    files: Sequence[tuple[ManifestFile, bytes]], parse=parse_bar_file
) -> list[tuple[list[Fault], pl.DataFrame | None]]:
    """``verify_and_parse`` of each file, in order; the drop format's files are parsed together
    (``parse_bar_files``), a vendor format's ``parse`` one file at a time."""
    if parse is not parse_bar_file:
        return [verify_and_parse(entry, data, parse) for entry, data in files]
    parsed = parse_bar_files([(entry.name, data) for entry, data in files])
    return [_verified(entry, data, result) for (entry, data), result in zip(files, parsed)]


def _verified(
    entry: ManifestFile, data: bytes, parsed: pl.DataFrame | BarFileError
) -> tuple[list[Fault], pl.DataFrame | None]:
    """The faults of one file against its entry (size, sha256, then parse or record count) and its frame."""
    faults = []
    if len(data) != entry.size:
        faults.append(
            Fault(
                "size",
                entry.name,
                f"{entry.name}: size {len(data)} bytes, manifest says {entry.size}",
                entry.size,
                len(data),
            )
        )
    digest = sha256_hex(data)
    if digest != entry.sha256:
        faults.append(
            Fault(
                "sha256",
                entry.name,
                f"{entry.name}: sha256 {digest[:12]}..., manifest says {entry.sha256[:12]}...",
                entry.sha256,
                digest,
            )
        )
    if isinstance(parsed, BarFileError):
        faults.append(Fault("parse", entry.name, str(parsed)))
        return faults, None
    rows = parsed.height
    if rows != entry.record_count:
        faults.append(
            Fault(
                "record_count",
                entry.name,
                f"{entry.name}: {rows} records, manifest says {entry.record_count}",
                entry.record_count,
                rows,
            )
        )
    return faults, parsed
