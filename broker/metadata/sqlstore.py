"""The metadata contract written once in SQL that SQLite and PostgreSQL both run."""

from __future__ import annotations

from streamhouse.broker.metadata.sqlbase import DuplicateKeyError, Row, SqlStoreBase, Tx
from streamhouse.broker.metadata.sqlclients import ClientsMixin
from streamhouse.broker.metadata.sqllog import LogMixin
from streamhouse.broker.metadata.sqlsources import SourcesMixin
from streamhouse.broker.metadata.sqltopics import TopicsMixin

__all__ = ["DuplicateKeyError", "Row", "SqlMetadataStore", "SqlStoreBase", "Tx"]


class SqlMetadataStore(TopicsMixin, LogMixin, ClientsMixin, SourcesMixin):
    """Every method of :class:`~streamhouse.broker.metadata.store.MetadataStore` in SQL.

    The concrete stores (``SqliteMetadataStore``, ``PostgresMetadataStore``) add connections,
    transactions and row-lock syntax; see :mod:`streamhouse.broker.metadata.sqlbase`.
    """
