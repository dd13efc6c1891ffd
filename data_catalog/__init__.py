"""Storage and lineage of datasets: zarr v3 groups, a SQLite index, OpenLineage events.

No science and no Prefect here.
"""

from __future__ import annotations

from .catalog import Catalog, default_root, now_iso
from .events import EventLog, read_events
from .fingerprint import fingerprint
from .index import Index, Record, owner_alive, owner_id
from .keys import canonical, canonical_json, check_key, make_key
from .regions import RegionWriter
from .storage import COMPLETE_ATTR, LINEAGE_ATTR, Storage, prepare

__all__ = [
    "Catalog", "RegionWriter", "default_root", "now_iso", "EventLog", "read_events", "fingerprint",
    "Index", "Record", "owner_alive", "owner_id", "canonical", "canonical_json", "check_key", "make_key",
    "COMPLETE_ATTR", "LINEAGE_ATTR", "Storage", "prepare",
]
