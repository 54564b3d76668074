"""Catalogue entries."""

from __future__ import annotations

from tilevm.error_catalog.entry import Entry

ENTRIES: list[Entry] = []
