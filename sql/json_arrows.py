"""`col -> 'path'` inside a function call is DuckDB's JSON operator, not a lambda.

DuckDB reads `x -> ...` as a lambda only where a function takes one (list_transform,
list_filter, ...) and as JSON extraction everywhere else, so `json_array_length(value->'tags')`
works in DuckDB. sqlglot's parser reads every `name -> ...` inside call arguments as a lambda,
which would turn that call into `JSON_ARRAY_LENGTH(LAMBDA value : 'tags')`. After parsing, a
lambda of one parameter whose body is a JSON path (a literal, or a chain of `->`/`->>` starting
with one) outside a higher-order function is turned back into the JSON extraction it was.
"""

from __future__ import annotations

from sqlglot import exp

#: Functions whose `x -> ...` arguments really are lambdas.
HIGHER_ORDER = (exp.Transform, exp.ArrayFilter, exp.Reduce, exp.ArrayAll, exp.ArrayAny)
HIGHER_ORDER_NAMES = frozenset(
    {
        "apply",
        "array_apply",
        "array_filter",
        "array_reduce",
        "array_transform",
        "filter",
        "list_apply",
        "list_filter",
        "list_reduce",
        "list_transform",
        "reduce",
        "list_sort",
        "array_sort",
        "list_reverse_sort",
        "array_reverse_sort",
    }
)
_JSON_OPS = (exp.JSONExtract, exp.JSONExtractScalar)


def _in_higher_order(node: exp.Lambda) -> bool:
    parent = node.parent
    if isinstance(parent, HIGHER_ORDER):
        return True
    return isinstance(parent, exp.Anonymous) and parent.name.lower() in HIGHER_ORDER_NAMES


def _rooted(column: exp.Column, body: exp.Expr, to_json_path) -> exp.Expr | None:
    """`body` with its leading literal replaced by `column -> literal`, or None."""
    if isinstance(body, exp.Literal):
        return exp.JSONExtract(this=column, expression=to_json_path(body), only_json_types=False)
    if isinstance(body, _JSON_OPS):
        inner = _rooted(column, body.this, to_json_path)
        if inner is not None:
            body.set("this", inner)
            return body
    return None


def restore_json_arrows(tree: exp.Expr | None, to_json_path) -> exp.Expr | None:
    """Rewrites misread lambdas in `tree` in place (see the module notes); returns it."""
    if tree is None:
        return None
    for node in list(tree.find_all(exp.Lambda)):
        params = node.expressions
        if len(params) != 1 or _in_higher_order(node):
            continue
        param = params[0]
        if not isinstance(param, (exp.Identifier, exp.Column)):
            continue
        column = exp.column(param.name, quoted=param.args.get("quoted"))
        replaced = _rooted(column, node.this.copy(), to_json_path)
        if replaced is not None:
            node.replace(replaced)
    return tree
