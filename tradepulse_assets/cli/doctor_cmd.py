"""``tradepulse-cli doctor``: find and remove what interrupted writes left behind.

A writer killed between writing its temporary file and renaming it (SIGKILL, OOM, power loss) leaves a
``.tp-tmp-<name>.<pid>.*`` file beside the object it was replacing. Listings never show it as data and the
next write of the same object removes it; ``doctor`` sweeps the whole local store and ``$TRADEPULSE_HOME`` at
once (for partitions nobody writes again). Only temporary files whose writer is dead, or older than an hour,
are touched, so running it beside a live pipeline is safe. An S3 store has no temporary objects.
"""

from pathlib import Path

from tradepulse_assets.cli.output import emit, table
from tradepulse_assets.pipeline.settings import load_settings
from tradepulse_assets.storage.object_store import (
    LocalObjectStore,
    object_store_from_url,
    remove_temp_files,
    stale_temp_files,
)


def add_commands(sub, common) -> None:
    doctor = sub.add_parser(
        "doctor", help="find and remove temporary files left by interrupted writes", parents=[common]
    )
    doctor.add_argument("--dry-run", action="store_true", help="list what would be removed, remove nothing")
    doctor.set_defaults(handler=_doctor)


def _roots(settings) -> list[Path]:
    roots = [Path(settings.home)]
    store = object_store_from_url(settings.object_store_url, s3=settings.s3)
    if isinstance(store, LocalObjectStore) and not store.root.is_relative_to(roots[0]):
        roots.append(store.root)
    return roots


def _doctor(args) -> int:
    settings = load_settings()
    temps = [t for root in _roots(settings) for t in stale_temp_files(root, recursive=True)]
    removed = 0 if args.dry_run else remove_temp_files(temps)
    rows = [{"file": str(t.path), "bytes": t.size, "age_s": round(t.age_seconds), "writer_pid": t.writer_pid}
            for t in temps]
    verb = "would remove" if args.dry_run else "removed"
    human = (table(rows) + "\n" if rows else "") + (
        f"{verb} {len(temps)} temporary file(s) left by interrupted writes "
        f"({sum(t.size for t in temps)} bytes) under {', '.join(str(r) for r in _roots(settings))}"
    )
    emit(args, {"temporary_files": rows, "removed": removed, "dry_run": args.dry_run}, human)
    return 0
