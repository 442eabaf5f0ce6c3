"""Errors of the write-ahead log: one class per thing a caller can react to differently."""

from __future__ import annotations


class WalError(Exception):
    """The WAL could not do what was asked; the message says what and why."""


class WalFullError(WalError):
    """The WAL holds ``max_bytes`` already: back off until segment commits free files."""


class WalClosedError(WalError):
    """The WAL was closed; appends after :meth:`WriteAheadLog.close` are refused."""


class InvalidEntryError(WalError, ValueError):
    """An append got an entry the WAL cannot log (e.g. not one RecordBatch v2); nothing stored."""
