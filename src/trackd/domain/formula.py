"""Arithmetic formulas that users write (a league's custom MMR), evaluated without `eval`.

    formula = compile_formula("max(rating_2v2, rating_3v3) * 0.8 + 100", names={"rating_2v2", ...})
    formula.evaluate({"rating_2v2": 1500.0, ...})  # 1300.0

The text is parsed by Python's own parser into a syntax tree (`ast.parse`, which only parses)
and the tree is walked here, node by node, against a whitelist: numbers, the given variable
names, + - * / // % **, unary minus, parentheses, and the functions in FUNCTIONS. Anything else
(attributes, subscripts, strings, lambdas, comparisons, keyword arguments...) is refused when the
formula is compiled, with its column, so a formula is checked once when it is configured and
cannot fail on its syntax later.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Final, NoReturn

MAX_LENGTH: Final = 500
MAX_NODES: Final = 200
# A bound on exponents keeps `**` from producing numbers no rating formula needs.
MAX_EXPONENT: Final = 16.0


class FormulaError(ValueError):
    """The formula cannot be compiled or evaluated; the message says where and why."""


def _round(value: float, digits: float = 0) -> float:
    """Half away from zero, as people round (Python's `round` rounds half to even)."""
    if digits != int(digits) or not 0 <= digits <= 6:
        raise FormulaError("round's second argument is a whole number of digits from 0 to 6")
    scale = 10.0 ** int(digits)
    return math.copysign(math.floor(abs(value) * scale + 0.5), value) / scale


def _sqrt(value: float) -> float:
    if value < 0:
        raise FormulaError("sqrt of a negative number")
    return math.sqrt(value)


def _clamp(value: float, low: float, high: float) -> float:
    if low > high:
        raise FormulaError("clamp's lower bound is above its upper bound")
    return min(max(value, low), high)


# name -> (function, fewest arguments, most arguments or None for any number)
FUNCTIONS: Final[Mapping[str, tuple[Callable[..., float], int, int | None]]] = {
    "min": (lambda *xs: min(xs), 1, None),
    "max": (lambda *xs: max(xs), 1, None),
    "abs": (abs, 1, 1),
    "round": (_round, 1, 2),
    "floor": (lambda x: float(math.floor(x)), 1, 1),
    "ceil": (lambda x: float(math.ceil(x)), 1, 1),
    "sqrt": (_sqrt, 1, 1),
    "clamp": (_clamp, 3, 3),
}

_OPERATORS: Final[Mapping[type[ast.operator], str]] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
}


@dataclass(frozen=True, slots=True)
class Formula:
    """A checked formula; `names` are the variables it reads."""

    text: str
    tree: ast.Expression
    names: frozenset[str]

    def evaluate(self, values: Mapping[str, float]) -> float:
        """The formula's value for `values` (every name it reads must be there).

        Raises:
            FormulaError: a value is missing, a division by zero, a result out of range.
        """
        missing = sorted(self.names - values.keys())
        if missing:
            raise FormulaError(f"no value for {', '.join(missing)}")
        try:
            result = _evaluate(self.tree.body, values)
        except ZeroDivisionError:
            raise FormulaError("division by zero") from None
        except OverflowError:
            raise FormulaError("a number in the formula grew out of range") from None
        except FormulaError:
            raise
        except ValueError:  # floor/ceil of a NaN that infinities made
            raise FormulaError("the formula's result is not a finite number") from None
        if not math.isfinite(result):
            raise FormulaError("the formula's result is not a finite number")
        return result


def compile_formula(text: str, names: Collection[str]) -> Formula:
    """Parse and check `text`, allowing the variables in `names`.

    Raises:
        FormulaError: empty or too long, a syntax error, or something not allowed (its
            column is named), such as an unknown variable (the known ones are listed).
    """
    if not isinstance(text, str) or not text.strip():
        raise FormulaError("the formula is empty")
    if len(text) > MAX_LENGTH:
        raise FormulaError(f"the formula is {len(text)} characters long; at most {MAX_LENGTH}")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        where = f" at column {exc.offset}" if exc.offset else ""
        raise FormulaError(f"the formula is not valid{where}: {exc.msg}") from None
    except (RecursionError, MemoryError, ValueError):
        raise FormulaError("the formula is nested too deeply or holds a null character") from None
    allowed = frozenset(names)
    used: set[str] = set()
    # ast.walk goes breadth first, so a call is checked (and its function name set aside)
    # before the name node of that function comes up.
    called: set[int] = set()
    for count, node in enumerate(ast.walk(tree), start=1):
        if count > MAX_NODES:
            raise FormulaError(f"the formula has more than {MAX_NODES} parts; simplify it")
        if id(node) in called:
            continue
        _check(node, allowed, used)
        if isinstance(node, ast.Call):
            called.add(id(node.func))
    return Formula(text, tree, frozenset(used))


def _check(node: ast.AST, allowed: frozenset[str], used: set[str]) -> None:
    if isinstance(node, ast.Expression | ast.Load):
        return
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            _refuse(node, f"{node.value!r} is not a number")
        return
    if isinstance(node, ast.Name):
        if node.id not in allowed:
            if node.id in FUNCTIONS:
                _refuse(node, f"{node.id} is a function; call it as {node.id}(...)")
            known = ", ".join(sorted(allowed)) or "none"
            _refuse(node, f"unknown name {node.id!r}; known names: {known}")
        used.add(node.id)
        return
    if isinstance(node, ast.BinOp):
        if type(node.op) not in _OPERATORS:
            _refuse(node, "only + - * / // % ** are allowed between numbers")
        return
    if isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, ast.UAdd | ast.USub):
            _refuse(node, "only + and - may stand before a number")
        return
    if isinstance(node, ast.Call):
        _check_call(node)
        return
    if isinstance(node, ast.operator | ast.unaryop):
        return  # checked with their BinOp / UnaryOp
    _refuse(node, f"{_describe(node)} is not allowed in a formula")


def _check_call(node: ast.Call) -> None:
    if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
        known = ", ".join(sorted(FUNCTIONS))
        _refuse(node, f"only these functions may be called: {known}")
    name = node.func.id
    if node.keywords or any(isinstance(arg, ast.Starred) for arg in node.args):
        _refuse(node, f"{name} takes plain arguments only")
    _, fewest, most = FUNCTIONS[name]
    given = len(node.args)
    if given < fewest or (most is not None and given > most):
        expected = (
            str(fewest)
            if fewest == most
            else f"{fewest} or more"
            if most is None
            else f"{fewest} to {most}"
        )
        _refuse(
            node, f"{name} takes {expected} argument{'s' if expected != '1' else ''}, got {given}"
        )


def _evaluate(node: ast.expr, values: Mapping[str, float]) -> float:
    # Only node kinds that _check let through can appear here.
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return float(node.value)
    if isinstance(node, ast.Name):
        if node.id in values:
            return float(values[node.id])
        raise FormulaError(f"no value for {node.id}")
    if isinstance(node, ast.UnaryOp):
        operand = _evaluate(node.operand, values)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp):
        return _binary(node.op, _evaluate(node.left, values), _evaluate(node.right, values))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        function = FUNCTIONS[node.func.id][0]
        return float(function(*(_evaluate(arg, values) for arg in node.args)))
    raise FormulaError(f"{_describe(node)} is not allowed in a formula")


def _binary(op: ast.operator, left: float, right: float) -> float:
    if isinstance(op, ast.Add):
        return left + right
    if isinstance(op, ast.Sub):
        return left - right
    if isinstance(op, ast.Mult):
        return left * right
    if isinstance(op, ast.Div):
        return left / right
    if isinstance(op, ast.FloorDiv):
        return float(left // right)
    if isinstance(op, ast.Mod):
        return left % right
    if abs(right) > MAX_EXPONENT:
        raise FormulaError(f"exponents are limited to ±{MAX_EXPONENT:g}")
    if left == 0 and right < 0:
        raise FormulaError("division by zero (zero to a negative power)")
    try:
        return math.pow(left, right)
    except ValueError:
        raise FormulaError("a negative number to a fractional power is undefined") from None


def _refuse(node: ast.AST, message: str) -> NoReturn:
    column = getattr(node, "col_offset", None)
    where = f" (column {column + 1})" if column is not None else ""
    raise FormulaError(f"{message}{where}")


def _describe(node: ast.AST) -> str:
    names = {
        ast.Attribute: "attribute access",
        ast.Subscript: "indexing",
        ast.Compare: "a comparison",
        ast.BoolOp: "and/or",
        ast.IfExp: "if/else",
        ast.Lambda: "a lambda",
        ast.List: "a list",
        ast.Tuple: "a tuple",
        ast.Dict: "a dict",
        ast.Set: "a set",
        ast.JoinedStr: "an f-string",
        ast.NamedExpr: "an assignment",
    }
    return names.get(type(node), type(node).__name__)
