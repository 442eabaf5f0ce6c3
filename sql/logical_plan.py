"""The logical plan of a query, as EXPLAIN shows it: which operators run over which scans.

DuckDB plans and runs the query; this tree is for people reading EXPLAIN. It follows SQL's
logical order (scan, join, filter, aggregate, having, window, qualify, project, distinct, sort,
limit) so the place of every clause is visible, and each scan names the table reference it
reads, which the engine annotates with what was pushed into it. CTEs are planned once, as
their own trees, and referenced by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlglot import exp
from streamhouse.sql.dialect import StreamHouse
from streamhouse.sql.statements import QueryStatement, table_name, table_references


@dataclass(frozen=True)
class PlanNode:
    operator: str
    detail: str = ""
    children: tuple[PlanNode, ...] = ()

    def walk(self, depth: int = 0):
        """(depth, node) in pre-order: a node before its inputs."""
        yield depth, self
        for child in self.children:
            yield from child.walk(depth + 1)


def _sql(node: exp.Expr | None) -> str:
    return "" if node is None else node.sql(StreamHouse)


def _list(nodes: list[exp.Expr]) -> str:
    return ", ".join(_sql(n) for n in nodes)


class _Planner:
    def __init__(self, statement: QueryStatement, scan_detail: Callable[[int], str]) -> None:
        self._refs = {id(t): i for i, t in enumerate(table_references(statement.ast))}
        self._scan_detail = scan_detail
        self.ctes: list[PlanNode] = []

    def query(self, node: exp.Expr) -> PlanNode:
        with_ = node.args.get("with_")
        if with_ is not None:
            for cte in with_.expressions:
                self.ctes.append(PlanNode("CTE", cte.alias_or_name, (self.query(cte.this),)))
        if isinstance(node, exp.SetOperation):
            return self._set_operation(node)
        if isinstance(node, exp.Subquery):
            return self._finish(node, self.query(node.this))
        if isinstance(node, exp.Select):
            return self._select(node)
        return PlanNode("Values" if isinstance(node, exp.Values) else "Query", _sql(node))

    def _set_operation(self, node: exp.SetOperation) -> PlanNode:
        name = type(node).__name__
        if isinstance(node, exp.Union) and not node.args.get("distinct"):
            name += " All"
        plan = PlanNode(name, "", (self.query(node.left), self.query(node.right)))
        return self._finish(node, plan)

    def _select(self, select: exp.Select) -> PlanNode:
        plan = self._from(select)
        if select.args.get("where") is not None:
            where = select.args["where"].this
            plan = PlanNode("Filter", _sql(where), (plan, *self._nested(where, select)))
        group = select.args.get("group")
        aggregates = [
            a
            for e in select.expressions
            for a in e.find_all(exp.AggFunc)
            if not isinstance(a.parent, exp.Window)
            and a.find_ancestor(exp.Select, exp.SetOperation) is select
        ]
        if group is not None or aggregates:
            parts = []
            if group is not None:
                parts.append("group by " + (_list(group.expressions) or _sql(group)))
            if aggregates:
                parts.append(_list(aggregates))
            plan = PlanNode("Aggregate", "; ".join(parts), (plan,))
        if select.args.get("having") is not None:
            having = select.args["having"].this
            nested = self._nested(having, select)
            plan = PlanNode("Filter", "having " + _sql(having), (plan, *nested))
        windows = [
            w
            for e in select.expressions
            for w in e.find_all(exp.Window)
            if w.find_ancestor(exp.Select, exp.SetOperation) is select
        ]
        if windows:
            plan = PlanNode("Window", _list(windows), (plan,))
        if select.args.get("qualify") is not None:
            plan = PlanNode("Filter", "qualify " + _sql(select.args["qualify"].this), (plan,))
        nested = [n for e in select.expressions for n in self._nested(e, select)]
        plan = PlanNode("Project", _list(select.expressions), (plan, *nested))
        if select.args.get("distinct") is not None:
            plan = PlanNode("Distinct", "", (plan,))
        return self._finish(select, plan)

    def _nested(self, clause: exp.Expr, owner: exp.Expr) -> list[PlanNode]:
        """Plans of the subqueries written inside `clause` of `owner` (IN, EXISTS, scalar)."""
        plans = []
        for query in clause.find_all(exp.Select, exp.SetOperation):
            if query.find_ancestor(exp.Select, exp.SetOperation) is owner:
                plans.append(PlanNode("Subquery", "", (self.query(query),)))
        return plans

    def _finish(self, node: exp.Expr, plan: PlanNode) -> PlanNode:
        order = node.args.get("order")
        if order is not None:
            plan = PlanNode("Sort", _list(order.expressions), (plan,))
        limit, offset = node.args.get("limit"), node.args.get("offset")
        if limit is not None or offset is not None:
            parts = []
            if limit is not None:
                parts.append(_sql(limit.expression))
            if offset is not None:
                parts.append("offset " + _sql(offset.expression))
            plan = PlanNode("Limit", " ".join(parts), (plan,))
        return plan

    def _from(self, select: exp.Select) -> PlanNode:
        from_ = select.args.get("from_")
        if from_ is None:
            return PlanNode("Values", "one row")
        plan = self._source(from_.this)
        for join in select.args.get("joins") or []:
            kind = " ".join(part for part in (join.text("side"), join.text("kind")) if part).upper()
            condition = join.args.get("on")
            using = join.args.get("using")
            detail = kind or "INNER"
            if condition is not None:
                detail += " ON " + _sql(condition)
            elif using:
                detail += " USING " + _list(using)
            plan = PlanNode("Join", detail, (plan, self._source(join.this)))
        return plan

    def _source(self, node: exp.Expr) -> PlanNode:
        alias = node.alias_or_name
        if isinstance(node, exp.Table) and id(node) in self._refs:
            name = table_name(node)
            shown = name if alias == node.name else f"{name} AS {alias}"
            return PlanNode("Scan", f"{shown}: {self._scan_detail(self._refs[id(node)])}")
        if isinstance(node, exp.Table) and isinstance(node.this, exp.Identifier):
            shown = node.name if alias == node.name else f"{node.name} AS {alias}"
            return PlanNode("CTE Scan", shown)
        if isinstance(node, exp.Subquery):
            return PlanNode("Subquery", alias, (self.query(node.this),))
        return PlanNode("Table Function", _sql(node))


def logical_plan(
    statement: QueryStatement, scan_detail: Callable[[int], str]
) -> tuple[PlanNode, ...]:
    """The plan trees of `statement`: one per CTE, then the query's.

    `scan_detail(ref)` describes what the scan of table reference `ref` (its position in
    `table_references`) reads, e.g. the pushdown the engine applies.
    """
    planner = _Planner(statement, scan_detail)
    root = planner.query(statement.ast)
    return (*planner.ctes, root)
