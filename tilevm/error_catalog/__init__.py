"""Every error code tilevm raises: what it means, a minimal example that raises it, and how to
fix it, for ``python -m tilevm explain CODE``. A test checks that every code raised anywhere in
the source has an entry here and that every example raises its code (on the interpreter).
The entries are grouped by where the errors come from."""

from __future__ import annotations

from tilevm.error_catalog import backends, language, launch, types
from tilevm.error_catalog.entry import Entry

CATALOG: dict[str, Entry] = {
    e.code: e for part in (language, launch, types, backends) for e in part.ENTRIES
}

__all__ = ["CATALOG", "Entry"]
