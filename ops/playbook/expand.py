"""Variable expansion (`{name}` inside strings) and `when` conditions, both without eval of code."""

from __future__ import annotations

import ast
import re
from typing import Any

from ops.errors import UsageError

_REFERENCE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
MAX_DEPTH = 10


def expand(value: Any, variables: dict[str, Any]) -> Any:
    """Replace `{name}` references in strings, recursively in lists and dicts.

    A string that is exactly one reference takes the referenced value with its type (a list stays a
    list). Braces that do not name a variable are left alone (shell scripts, JSON).
    """
    if isinstance(value, str):
        return _expand_string(value, variables, 0)
    if isinstance(value, list):
        return [expand(item, variables) for item in value]
    if isinstance(value, dict):
        return {key: expand(item, variables) for key, item in value.items()}
    return value


def _expand_string(text: str, variables: dict[str, Any], depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise UsageError(f"playbook vars: {text!r} expands recursively (a var refers to itself)")
    whole = _REFERENCE.fullmatch(text)
    if whole and whole[1] in variables:
        value = variables[whole[1]]
        return _expand_string(value, variables, depth + 1) if isinstance(value, str) else expand(value, variables)

    def replace(match: re.Match[str]) -> str:
        if match[1] not in variables:
            return match[0]
        value = variables[match[1]]
        return str(_expand_string(value, variables, depth + 1) if isinstance(value, str) else value)

    return _REFERENCE.sub(replace, text)


def expand_vars(variables: dict[str, Any]) -> dict[str, Any]:
    """Expand every var against the others (vars may refer to vars)."""
    return {key: expand(value, variables) for key, value in variables.items()}


_ALLOWED = (ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.Compare, ast.Eq, ast.NotEq,
            ast.In, ast.NotIn, ast.Name, ast.Load, ast.Constant, ast.List, ast.Tuple)


def evaluate_when(condition: str | None, variables: dict[str, Any]) -> bool:
    """Evaluate a `when:` such as `model_type == 'pro' and not use_uv`: names are vars; only
    comparisons, `in`, `and`, `or`, `not` and literals are allowed."""
    if condition is None:
        return True
    try:
        tree = ast.parse(condition, mode="eval")
    except SyntaxError as exc:
        raise UsageError(f"when: {condition!r} is not a valid condition: {exc.msg}") from exc
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED):
            raise UsageError(f"when: {condition!r} uses {type(node).__name__}, which is not allowed",
                             "use var names, literals, ==, !=, in, not in, and, or, not")
        if isinstance(node, ast.Name) and node.id not in variables:
            raise UsageError(f"when: {condition!r} refers to {node.id!r}, which is not a var")
    return bool(_eval(tree.body, variables))


def _eval(node: ast.AST, variables: dict[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return variables[node.id]
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_eval(item, variables) for item in node.elts]
    if isinstance(node, ast.UnaryOp):
        return not _eval(node.operand, variables)
    if isinstance(node, ast.BoolOp):
        values = (_eval(item, variables) for item in node.values)
        return all(values) if isinstance(node.op, ast.And) else any(values)
    assert isinstance(node, ast.Compare)
    left = _eval(node.left, variables)
    for op, comparator in zip(node.ops, node.comparators, strict=True):
        right = _eval(comparator, variables)
        ok = {ast.Eq: lambda a, b: a == b, ast.NotEq: lambda a, b: a != b,
              ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b}[type(op)](left, right)
        if not ok:
            return False
        left = right
    return True
