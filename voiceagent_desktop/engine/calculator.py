"""Safe arithmetic for the calculator tool: the expression is parsed with ``ast`` and only numbers, the
arithmetic operators, parentheses and a few named functions and constants are evaluated — never
``eval``. Powers and factorials are bounded so that no expression can hang the app or fill its memory.

Accepted: ``+ - * / // % **`` (also ``^``, ``×``, ``÷`` and ``x`` between numbers, as speech-to-text and
models write them), ``%`` after a number as "percent" (``15% * 80``), ``sqrt sin cos tan asin acos atan
log ln log10 log2 exp abs round floor ceil factorial``, ``pi``, ``e``, ``tau``; decimals with ``,``
thousands separators (``1,234.5``).
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable
from typing import Any

MAX_EXPONENT = 1000
MAX_FACTORIAL = 170  # the largest whose result is a finite float
MAX_LENGTH = 300

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}


def _factorial(x: float) -> int:
    if x != int(x) or x < 0:
        raise CalculatorError("factorial needs a whole number ≥ 0")
    if x > MAX_FACTORIAL:
        raise CalculatorError(f"factorial is limited to {MAX_FACTORIAL}")
    return math.factorial(int(x))


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "sqrt": math.sqrt, "sin": math.sin, "cos": math.cos, "tan": math.tan, "asin": math.asin,
    "acos": math.acos, "atan": math.atan, "log": math.log, "ln": math.log, "log10": math.log10,
    "log2": math.log2, "exp": math.exp, "abs": abs, "round": round, "floor": math.floor,
    "ceil": math.ceil, "factorial": _factorial,
}  # fmt: skip
CONSTANTS = {"pi": math.pi, "e": math.e, "tau": math.tau}


class CalculatorError(ValueError):
    """The expression is not arithmetic this calculator evaluates (the message says why)."""


def _normalise(expr: str) -> str:
    s = expr.strip().replace("×", "*").replace("÷", "/").replace("^", "**").replace("−", "-")
    s = re.sub(r"(?<=\d),(?=\d{3}\b)", "", s)  # 1,234 → 1234
    s = re.sub(r"(?<=[\d.)])\s*[xX]\s*(?=[\d.(])", "*", s)  # 3 x 4 → 3*4
    s = re.sub(r"(\d+(?:\.\d+)?)\s*%(?!\s*[\d.(])", r"(\1/100)", s)  # 15% → (15/100); 7 % 3 stays mod
    return s


def evaluate(expr: str) -> float | int:
    if len(expr) > MAX_LENGTH:
        raise CalculatorError(f"the expression is longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(_normalise(expr), mode="eval")
    except SyntaxError:
        raise CalculatorError("that is not an arithmetic expression") from None
    try:
        return _eval(tree.body)
    except ZeroDivisionError:
        raise CalculatorError("division by zero") from None
    except OverflowError:
        raise CalculatorError("the result is too large") from None
    except (ValueError, TypeError) as e:
        if isinstance(e, CalculatorError):
            raise
        raise CalculatorError(f"not defined: {e}") from None


def _eval(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        raise CalculatorError(f"unknown name {node.id!r}")
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow) and (abs(right) > MAX_EXPONENT or (abs(left) > 1e6 and right > 50)):
            raise CalculatorError("the power is too large")
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        fn = FUNCTIONS.get(node.func.id)
        if fn is None:
            raise CalculatorError(f"unknown function {node.func.id!r}")
        return fn(*(_eval(a) for a in node.args))
    raise CalculatorError("only numbers, arithmetic and the listed functions are allowed")


def format_number(x: Any) -> str:
    """How the result is said: whole numbers without a decimal point (thousands grouped), others and very
    large ones to 10 significant digits."""
    if isinstance(x, complex):
        raise CalculatorError("the result is not a real number")
    if isinstance(x, int) and abs(x) >= 10**15:
        try:
            x = float(x)
        except OverflowError:
            raise CalculatorError("the result is too large") from None
    if not math.isfinite(x):
        raise CalculatorError("the result is not a finite number")
    if x == int(x) and abs(x) < 10**15:
        return f"{int(x):,}" if abs(x) >= 10_000 else str(int(x))
    return f"{x:.10g}"
