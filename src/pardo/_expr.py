"""Safe arithmetic for ``pre_dispatch`` strings such as ``"2 * n_jobs"`` (no ``eval``)."""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping

__all__ = ["eval_count"]

_BINARY: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
}
_MAX_LENGTH = 50
_MAX_VALUE = 1e9


def _eval(node: ast.AST, names: Mapping[str, float]) -> float:
    if isinstance(node, ast.Expression):
        return _eval(node.body, names)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return float(node.value)
    if isinstance(node, ast.Name) and node.id in names:
        return float(names[node.id])
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _eval(node.operand, names)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left, names), _eval(node.right, names)
        value = _BINARY[type(node.op)](left, right)
        if abs(value) > _MAX_VALUE:
            raise ValueError("value too large")
        return value
    raise ValueError(f"unsupported element {ast.dump(node)[:40]}")


def eval_count(text: str, names: Mapping[str, float]) -> int:
    """Evaluate ``text`` (numbers, + - * / //, parentheses and ``names``) to an int >= 1.

    Raises:
        ValueError: naming the expression and what is allowed.
    """
    try:
        if len(text) > _MAX_LENGTH:
            raise ValueError(f"longer than {_MAX_LENGTH} characters")
        value = _eval(ast.parse(text.strip(), mode="eval"), names)
    except (SyntaxError, ValueError, ZeroDivisionError) as exc:
        msg = (
            f"cannot evaluate {text!r} ({exc}): use an int, 'all', or arithmetic on "
            f"{sorted(names)} such as '2 * n_jobs'"
        )
        raise ValueError(msg) from None
    return max(int(value), 1)
