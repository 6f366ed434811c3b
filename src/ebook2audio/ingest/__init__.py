"""Readers: ``read_book(path) -> Book``. One module per format, chosen by content, then extension."""

from __future__ import annotations

from .registry import detect_format, read_book, supported_formats

__all__ = ["detect_format", "read_book", "supported_formats"]
