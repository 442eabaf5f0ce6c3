"""The StreamHouse dialect: DuckDB SQL plus ksqlDB's catalog statements and time travel.

Everything is done through sqlglot's extension tables (tokenizer KEYWORDS, STATEMENT_PARSERS,
SHOW_PARSERS, FUNCTIONS, generator TRANSFORMS) and two small parser overrides:

- `_parse_table_alias` refuses to read `AS OF` as an alias named OF, so that
- `_parse_version` can read `AS OF TIMESTAMP <expr>` / `AS OF OFFSET <expr>` after a table
  into sqlglot's own `exp.Version` node; `_parse_table` also accepts it after the alias.

EXPLAIN is tokenized as DESCRIBE (sqlglot would otherwise swallow it as an opaque command), and
the DESCRIBE statement parser tells the two apart by the keyword's text.
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.dialects.duckdb import DuckDB
from sqlglot.generators.duckdb import DuckDBGenerator
from sqlglot.helper import seq_get
from sqlglot.parsers.duckdb import DuckDBParser
from sqlglot.tokens import TokenType
from sqlglot.trie import new_trie
from streamhouse.sql import nodes
from streamhouse.sql.json_arrows import restore_json_arrows

SHOW_KINDS = ("TOPICS", "STREAMS", "TABLES", "QUERIES")
SOURCE_KINDS = ("STREAM", "TABLE")
AS_OF_KINDS = ("TIMESTAMP", "OFFSET")


def _show(kind: str):
    return lambda self: self.expression(exp.Show(this=kind))


def _extract_json_field(args: list, dialect) -> exp.Expr:
    """ksqlDB's EXTRACTJSONFIELD(json, path) is DuckDB's json_extract_string (`->>`)."""
    return exp.JSONExtractScalar(
        this=seq_get(args, 0), expression=dialect.to_json_path(seq_get(args, 1))
    )


class StreamHouseParser(DuckDBParser):
    SHOW_PARSERS = {kind: _show(kind) for kind in SHOW_KINDS}
    SHOW_TRIE = new_trie(key.split(" ") for key in SHOW_PARSERS)

    STATEMENT_PARSERS = {
        **DuckDBParser.STATEMENT_PARSERS,
        TokenType.CREATE: lambda self: self._parse_create_source(),
        TokenType.DROP: lambda self: self._parse_drop_source(),
        TokenType.DESCRIBE: lambda self: self._parse_describe_or_explain(),
    }

    FUNCTIONS = {**DuckDBParser.FUNCTIONS, "EXTRACTJSONFIELD": _extract_json_field}

    def parse(self, raw_tokens, sql):
        trees = super().parse(raw_tokens, sql)
        return [restore_json_arrows(tree, self.dialect.to_json_path) for tree in trees]

    def _at_as_of(self) -> bool:
        return (
            self._curr is not None
            and self._curr.token_type == TokenType.ALIAS
            and self._next is not None
            and self._next.text.upper() == "OF"
        )

    def _parse_table_alias(self, alias_tokens=None) -> exp.TableAlias | None:
        if self._at_as_of():
            return None
        return super()._parse_table_alias(alias_tokens=alias_tokens)

    def _parse_table(self, *args, **kwargs) -> exp.Expr | None:
        # DuckDB reads a version before the alias; ksqlDB users also write it after one.
        table = super()._parse_table(*args, **kwargs)
        if isinstance(table, exp.Table) and not table.args.get("version") and self._at_as_of():
            table.set("version", self._parse_version())
        return table

    def _parse_version(self) -> exp.Version | None:
        if not self._at_as_of():
            return super()._parse_version()
        self._advance(2)
        if not self._match_texts(AS_OF_KINDS):
            self.raise_error("Expected TIMESTAMP or OFFSET after AS OF")
        kind = self._prev.text.upper()
        value = self._parse_bitwise()
        if value is None:
            self.raise_error(f"Expected a value after AS OF {kind}")
        return self.expression(exp.Version(this=kind, kind="AS OF", expression=value))

    def _parse_describe_or_explain(self) -> exp.Expr:
        if self._prev.text.upper() == "EXPLAIN":
            query = self._parse_statement()
            if not isinstance(query, exp.Query):
                self.raise_error("EXPLAIN expects a query")
            return self.expression(nodes.Explain(this=query))
        name = self._parse_table_parts()
        extended = self._match_text_seq("EXTENDED")
        return self.expression(nodes.DescribeSource(this=name, extended=extended))

    def _parse_source_kind(self) -> str | None:
        return self._prev.text.upper() if self._match_texts(SOURCE_KINDS) else None

    def _parse_create_source(self) -> exp.Expr:
        start = self._index
        replace = self._match_text_seq("OR", "REPLACE")
        kind = self._parse_source_kind()
        if kind is None:
            self._retreat(start)
            return self._parse_create()
        exists = self._match_text_seq("IF", "NOT", "EXISTS")
        name = self._parse_table_parts(schema=True)
        columns = None
        if self._match(TokenType.L_PAREN):
            columns = self._parse_csv(self._parse_source_column)
            self._match_r_paren()
        if self._match(TokenType.ALIAS):
            self.raise_error(f"CREATE {kind} ... AS SELECT (continuous queries) is not supported")
        properties = None
        if self._match(TokenType.WITH):
            self._match_l_paren()
            properties = self._parse_csv(self._parse_source_property)
            self._match_r_paren()
        return self.expression(
            nodes.CreateSource(
                this=name,
                kind=kind,
                expressions=columns,
                properties=properties,
                exists=exists,
                replace=replace,
            )
        )

    def _parse_source_column(self) -> nodes.SourceColumn:
        name = self._parse_id_var(any_token=True)
        kind = self._parse_types(check_func=False, schema=True)
        if name is None or kind is None:
            self.raise_error("Expected a column name and type")
        key = None
        if self._match(TokenType.PRIMARY_KEY) or self._match_text_seq("PRIMARY", "KEY"):
            key = "PRIMARY KEY"
        elif self._match_text_seq("KEY"):
            key = "KEY"
        return self.expression(nodes.SourceColumn(this=name, kind=kind, key=key))

    def _parse_source_property(self) -> exp.Property:
        name = self._parse_id_var(any_token=True)
        if name is None or not self._match(TokenType.EQ):
            self.raise_error("Expected name = value in WITH (...)")
        value = self._parse_primary()
        if not isinstance(value, (exp.Literal, exp.Boolean)):
            self.raise_error("A WITH property value must be a string, number or boolean")
        return self.expression(exp.Property(this=exp.var(name.name.lower()), value=value))

    def _parse_drop_source(self) -> exp.Expr:
        start = self._index
        kind = self._parse_source_kind()
        if kind is None:
            self._retreat(start)
            return self._parse_drop()
        exists = self._match_text_seq("IF", "EXISTS")
        name = self._parse_table_parts()
        if self._match_text_seq("DELETE", "TOPIC"):
            self.raise_error(
                f"DROP {kind} ... DELETE TOPIC is not supported: drop the {kind.lower()}, "
                "then delete its topic (streamctl topics delete)"
            )
        return self.expression(nodes.DropSource(this=name, kind=kind, exists=exists))


def _version_sql(self: DuckDBGenerator, expression: exp.Version) -> str:
    if expression.text("kind") == "AS OF" and expression.name in AS_OF_KINDS:
        return f"AS OF {expression.name} {self.sql(expression, 'expression')}"
    return DuckDBGenerator.version_sql(self, expression)


def _create_source_sql(self: DuckDBGenerator, e: nodes.CreateSource) -> str:
    replace = " OR REPLACE" if e.args.get("replace") else ""
    exists = " IF NOT EXISTS" if e.args.get("exists") else ""
    columns = e.expressions
    cols = f" ({self.expressions(e, flat=True)})" if columns else ""
    props = e.args.get("properties")
    with_ = ""
    if props:
        items = ", ".join(f"{p.name}={self.sql(p, 'value')}" for p in props)
        with_ = f" WITH ({items})"
    return f"CREATE{replace} {e.text('kind')}{exists} {self.sql(e, 'this')}{cols}{with_}"


def _source_column_sql(self: DuckDBGenerator, e: nodes.SourceColumn) -> str:
    key = f" {e.text('key')}" if e.args.get("key") else ""
    return f"{self.sql(e, 'this')} {self.sql(e, 'kind')}{key}"


def _drop_source_sql(self: DuckDBGenerator, e: nodes.DropSource) -> str:
    exists = " IF EXISTS" if e.args.get("exists") else ""
    return f"DROP {e.text('kind')}{exists} {self.sql(e, 'this')}"


def _describe_source_sql(self: DuckDBGenerator, e: nodes.DescribeSource) -> str:
    extended = " EXTENDED" if e.args.get("extended") else ""
    return f"DESCRIBE {self.sql(e, 'this')}{extended}"


class StreamHouseGenerator(DuckDBGenerator):
    TRANSFORMS = {
        **DuckDBGenerator.TRANSFORMS,
        exp.Version: _version_sql,
        nodes.CreateSource: _create_source_sql,
        nodes.SourceColumn: _source_column_sql,
        nodes.DropSource: _drop_source_sql,
        nodes.DescribeSource: _describe_source_sql,
        nodes.Explain: lambda self, e: f"EXPLAIN {self.sql(e, 'this')}",
    }


class StreamHouse(DuckDB):
    """Registered with sqlglot as `streamhouse`: `sqlglot.parse_one(sql, read="streamhouse")`."""

    class Tokenizer(DuckDB.Tokenizer):
        # ksqlDB quotes identifiers with backticks; DuckDB with double quotes. Both work.
        IDENTIFIERS = ['"', "`"]
        KEYWORDS = {**DuckDB.Tokenizer.KEYWORDS, "EXPLAIN": TokenType.DESCRIBE}

    Parser = StreamHouseParser
    Generator = StreamHouseGenerator
