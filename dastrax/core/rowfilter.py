"""Row selections, as strax has them (SEMANTICS.md, "Selections").

``Selection("area > 100 & channel < 3")`` (or a list of such strings, AND-ed) keeps the
rows where the expression is true. ``&``, ``|`` and ``~`` bind *looser* than comparisons,
as in ``pandas.eval`` (so ``area > 100 & channel < 3`` means ``(area > 100) & (channel <
3)``); arithmetic, comparisons and a few numexpr functions (``abs``, ``sqrt``, ``log``, ...)
are allowed. Rows are selected with ``numexpr`` (the expression rewritten with explicit
parentheses); columns numexpr cannot handle (strings, unsigned 64-bit) fall back to
``pandas.eval``.

:meth:`Selection.may_match` decides from per-chunk minima and maxima
(:func:`chunk_stats`, recorded in the chunk table at write time) whether any row of a
chunk can match: interval arithmetic, conservative (True whenever it cannot tell).
"""

from __future__ import annotations

import ast
import io
import math
import tokenize
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from dastrax.core.chunks import chunk_stats
from dastrax.errors import InvalidRequest

__all__ = ["Selection", "chunk_stats", "chunks_may_match"]

try:  # numexpr is a dependency, but selections still work without it
    # numexpr ships no type information (no stubs, no py.typed)
    import numexpr  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - numexpr is installed with dastrax
    numexpr = None

#: functions a selection may call (all are numexpr functions)
FUNCTIONS = {
    "abs": np.abs,
    "sqrt": np.sqrt,
    "exp": np.exp,
    "expm1": np.expm1,
    "log": np.log,
    "log10": np.log10,
    "log1p": np.log1p,
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "arctan": np.arctan,
    "sinh": np.sinh,
    "cosh": np.cosh,
    "tanh": np.tanh,
    "floor": np.floor,
    "ceil": np.ceil,
}
#: increasing functions and the lowest argument they accept (interval evaluation)
_MONOTONE = {
    "sqrt": (0.0, math.sqrt),
    "exp": (-math.inf, math.exp),
    "expm1": (-math.inf, math.expm1),
    "log": (0.0, math.log),
    "log10": (0.0, math.log10),
    "log1p": (-1.0, math.log1p),
    "arctan": (-math.inf, math.atan),
    "sinh": (-math.inf, math.sinh),
    "tanh": (-math.inf, math.tanh),
    "floor": (-math.inf, math.floor),
    "ceil": (-math.inf, math.ceil),
}
_BINOPS = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.Mod: "%",
    ast.Pow: "**",
}
_CMPOPS = {
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Eq: "==",
    ast.NotEq: "!=",
}
_INT64 = 2**63
#: relative widening of float interval bounds (more than float32 rounding)
_WIDEN = 2.0**-20


def _rewrite(expr: str) -> str:
    """``&``, ``|`` as ``and``, ``or`` so they bind looser than comparisons."""
    out = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(expr).readline):
            if tok.type == tokenize.OP and tok.string in ("&", "|"):
                out.append((tokenize.NAME, "and" if tok.string == "&" else "or"))
            else:
                out.append((tok.type, tok.string))
        return tokenize.untokenize(out)
    except (tokenize.TokenError, SyntaxError, IndentationError) as e:
        raise InvalidRequest(f"selection {expr!r} is not an expression: {e}") from None


def _parse(expr: str) -> ast.expr:
    if not isinstance(expr, str) or not expr.strip():
        raise InvalidRequest(
            f"a selection is a non-empty string like 'area > 100 & channel < 3', not {expr!r}"
        )
    try:
        tree = ast.parse(_rewrite(expr.strip()), mode="eval").body
    except SyntaxError as e:
        raise InvalidRequest(f"selection {expr!r} is not an expression: {e.msg}") from None
    _validate(tree, expr)
    return tree


def _validate(node: ast.AST, expr: str) -> None:
    ok = (
        isinstance(node, (ast.BoolOp, ast.Name))
        or (isinstance(node, ast.BinOp) and type(node.op) in _BINOPS)
        or isinstance(node, ast.UnaryOp)
        or (isinstance(node, ast.Compare) and all(type(o) in _CMPOPS for o in node.ops))
        or (
            isinstance(node, ast.Constant)
            and isinstance(node.value, (bool, int, float, str, bytes))
        )
        or (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in FUNCTIONS
            and len(node.args) == 1
            and not node.keywords
        )
    )
    if not ok:
        what = ast.unparse(node)
        raise InvalidRequest(
            f"selection {expr!r}: {what!r} is not allowed; use columns, numbers, "
            "comparisons, arithmetic, &, |, ~ and the functions "
            f"{', '.join(sorted(FUNCTIONS))}"
        )
    children = node.args if isinstance(node, ast.Call) else list(ast.iter_child_nodes(node))
    for child in children:
        if isinstance(child, (ast.expr_context, ast.operator, ast.boolop, ast.cmpop, ast.unaryop)):
            continue
        _validate(child, expr)


def _names(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Call):
        return [n for a in node.args for n in _names(a)]
    if isinstance(node, ast.Name):
        return [node.id]
    return [n for child in ast.iter_child_nodes(node) for n in _names(child)]


def _to_numexpr(node: ast.AST) -> str:
    """The expression with explicit parentheses, in numexpr's syntax."""
    if isinstance(node, ast.BoolOp):
        joint = " & " if isinstance(node.op, ast.And) else " | "
        return "(" + joint.join(_to_numexpr(v) for v in node.values) + ")"
    if isinstance(node, ast.UnaryOp):
        sign = {ast.Not: "~", ast.Invert: "~", ast.USub: "-", ast.UAdd: "+"}[type(node.op)]
        return f"({sign}{_to_numexpr(node.operand)})"
    if isinstance(node, ast.BinOp):
        return f"({_to_numexpr(node.left)} {_BINOPS[type(node.op)]} {_to_numexpr(node.right)})"
    if isinstance(node, ast.Compare):
        parts, left = [], node.left
        for cmp, right in zip(node.ops, node.comparators):
            parts.append(f"({_to_numexpr(left)} {_CMPOPS[type(cmp)]} {_to_numexpr(right)})")
            left = right
        return "(" + " & ".join(parts) + ")"
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return f"{node.func.id}({_to_numexpr(node.args[0])})"
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Constant):
        return repr(node.value)
    # _validate refuses everything else before a tree gets here
    raise InvalidRequest(f"selection: {ast.unparse(node)!r} is not allowed")


class Selection:
    """A row selection: one expression, or several AND-ed.

    Parameters
    ----------
    exprs : str or list of str
        E.g. ``"area > 100 & channel < 3"`` or ``["area > 100", "channel < 3"]``.
    fields : iterable of str, optional
        The columns available; names outside them are refused.

    Raises
    ------
    InvalidRequest
        If an expression does not parse, uses something not allowed, or (with
        ``fields``) names unknown columns.

    Examples
    --------
    >>> sel = Selection("area > 100 & channel < 3")
    >>> sel.columns
    ['area', 'channel']
    >>> x = np.array([(150.0, 1), (50.0, 1), (150.0, 5)], [("area", "f4"), ("channel", "i2")])
    >>> sel.mask(x).tolist()
    [True, False, False]
    >>> sel.may_match({"area": (0, 90), "channel": (0, 2)})
    False
    """

    def __init__(self, exprs: str | Iterable[str], fields: Iterable[str] | None = None):
        if isinstance(exprs, str):
            self.exprs = [exprs]
        elif isinstance(exprs, Iterable) and not isinstance(exprs, (bytes, Mapping)):
            self.exprs = list(exprs)
        else:
            raise InvalidRequest(
                "a selection is a string like 'area > 100 & channel < 3', or a list of "
                f"such strings (AND-ed), not {type(exprs).__name__} {exprs!r:.100}"
            )
        if not self.exprs:
            raise InvalidRequest("selection: give at least one expression, e.g. 'area > 100'")
        trees = [_parse(e) for e in self.exprs]
        self.tree = trees[0] if len(trees) == 1 else ast.BoolOp(op=ast.And(), values=trees)
        self.columns = list(dict.fromkeys(_names(self.tree)))
        self.numexpr = _to_numexpr(self.tree)
        if fields is not None:
            self.check(fields)

    def __repr__(self) -> str:
        return f"Selection({self.exprs!r})"

    @property
    def text(self) -> str:
        """The selection as one string (the expressions AND-ed)."""
        if len(self.exprs) == 1:
            return self.exprs[0]
        return " & ".join(f"({e})" for e in self.exprs)

    def check(self, fields: Iterable[str]) -> None:
        """Refuse (``InvalidRequest``) names that are not among ``fields``."""
        fields = list(fields)
        unknown = [c for c in self.columns if c not in fields]
        if unknown:
            raise InvalidRequest(
                f"selection {self.text!r} names unknown column(s) {unknown}; the available "
                f"columns are {fields}"
            )

    # -- rows -------------------------------------------------------------------------
    def mask(self, data) -> np.ndarray:
        """A bool array: which rows of ``data`` (structured array or dict of columns)
        the selection keeps.

        Raises
        ------
        InvalidRequest
            For unknown columns, or an expression that does not give true/false.
        """
        names = data.dtype.names if isinstance(data, np.ndarray) else list(data)
        self.check(names or ())
        n = len(data) if isinstance(data, np.ndarray) else len(next(iter(data.values()), ()))
        cols = {c: _prepare(np.asarray(data[c])) for c in self.columns}
        result = None
        if numexpr is not None and all(a.dtype.kind in "bif" for a in cols.values()):
            try:
                result = numexpr.evaluate(self.numexpr, local_dict=cols, global_dict={})
            except (ValueError, TypeError, KeyError, SyntaxError, NotImplementedError):
                result = None
        if result is None:
            result = self._pandas_eval(cols)
        result = np.asarray(result)
        if result.dtype != bool:
            raise InvalidRequest(
                f"selection {self.text!r} gives {result.dtype} values, not true/false; "
                "compare them (e.g. 'area > 0')"
            )
        if result.shape != (n,):
            result = np.broadcast_to(result, (n,)).copy()
        return result

    def _pandas_eval(self, cols: dict) -> np.ndarray:
        frame = pd.DataFrame({c: a for c, a in cols.items()}) if cols else pd.DataFrame()
        try:
            out = pd.eval(self.numexpr, engine="python", resolvers=[frame])
        except Exception as e:  # pandas raises many kinds; all mean "cannot evaluate"
            raise InvalidRequest(
                f"selection {self.text!r} cannot be evaluated on columns "
                f"{ {c: str(a.dtype) for c, a in cols.items()} }: {e}"
            ) from None
        return np.asarray(out)

    # -- chunks -----------------------------------------------------------------------
    def may_match(self, stats: Mapping) -> bool:
        """Whether a chunk whose columns lie within ``stats`` may hold a matching row.

        Parameters
        ----------
        stats : dict
            ``{column: (min, max)}`` of the chunk (:func:`chunk_stats`); columns missing
            (or None) are unknown.

        Returns
        -------
        bool
            False only when no row with values inside those ranges can match.
        """
        try:
            return bool(_as_bool(_interval(self.tree, stats))[0])
        except (ArithmeticError, ValueError, TypeError):
            return True


def _prepare(a: np.ndarray) -> np.ndarray:
    """Columns as numexpr computes them: small integers widened to int64 (no wrap)."""
    if a.dtype.kind in "iu" and a.dtype.itemsize < 8:
        return a.astype(np.int64)
    if a.dtype.kind == "f" and a.dtype.itemsize < 4:
        return a.astype(np.float32)
    return a


# -- interval evaluation -------------------------------------------------------------
# Each expression node evaluates to the range its values can take over the rows of a
# chunk: a number interval (_Num), what a condition can be (_Bool), or None (unknown).


class _Num(NamedTuple):
    """Numbers within ``[lo, hi]``; ``exact`` is False when floats are involved (the
    bounds are then widened and comparisons made non-strict)."""

    lo: float
    hi: float
    exact: bool


class _Bool(NamedTuple):
    """A condition: whether it can be true, whether it can be false."""

    can_be_true: bool
    can_be_false: bool


_Value = _Num | _Bool | None
#: ``{column: (min, max)}`` of a chunk; a missing column or a None bound is unknown
_Stats = Mapping[str, Any]


def _num(lo: float, hi: float, exact: bool) -> _Num | None:
    """A number interval: NaN bounds open up, float bounds are widened, and exact
    (integer) bounds that int64 arithmetic would wrap give unknown."""
    if isinstance(lo, float) and math.isnan(lo):
        lo = -math.inf
    if isinstance(hi, float) and math.isnan(hi):
        hi = math.inf
    if exact and (abs(lo) >= _INT64 or abs(hi) >= _INT64):
        return None  # int64 arithmetic would wrap
    if not exact:
        lo, hi = float(lo), float(hi)
        lo = lo - abs(lo) * _WIDEN - 1e-300 if math.isfinite(lo) else lo
        hi = hi + abs(hi) * _WIDEN + 1e-300 if math.isfinite(hi) else hi
    return _Num(lo, hi, exact)


def _as_bool(v: _Value) -> tuple[bool, bool]:
    """(can be true, can be false) of a value; a number is true when not zero."""
    if v is None:
        return (True, True)
    if isinstance(v, _Bool):
        return v.can_be_true, v.can_be_false
    return (not (v.lo == v.hi == 0), v.lo <= 0 <= v.hi)


def _as_num(v: _Value) -> _Num | None:
    """A value as numbers; a condition is 0 (false) or 1 (true)."""
    if v is None or isinstance(v, _Num):
        return v
    return _Num(0 if v.can_be_false else 1, 1 if v.can_be_true else 0, True)


def _interval(node: ast.AST, stats: _Stats) -> _Value:
    """What ``node`` can evaluate to on rows within ``stats``: one rule per node type."""
    rule = _INTERVAL_RULES.get(type(node))
    return None if rule is None else rule(node, stats)


def _name_interval(node: ast.Name, stats: _Stats) -> _Value:
    s = stats.get(node.id)
    if s is None or s[0] is None or s[1] is None:
        return None
    lo, hi = s
    if isinstance(lo, float) or isinstance(hi, float):
        return _num(float(lo), float(hi), False)
    return _Num(int(lo), int(hi), True)


def _constant_interval(node: ast.Constant, stats: _Stats) -> _Value:
    v = node.value
    if isinstance(v, bool):
        return _Bool(v, not v)
    if isinstance(v, int):
        return _Num(v, v, True) if abs(v) < _INT64 else None
    if isinstance(v, float):
        return _Num(v, v, False)
    return None


def _boolop_interval(node: ast.BoolOp, stats: _Stats) -> _Value:
    parts = [_as_bool(_interval(v, stats)) for v in node.values]
    if isinstance(node.op, ast.And):
        return _Bool(all(t for t, _ in parts), any(f for _, f in parts))
    return _Bool(any(t for t, _ in parts), all(f for _, f in parts))


def _unaryop_interval(node: ast.UnaryOp, stats: _Stats) -> _Value:
    v = _interval(node.operand, stats)
    if isinstance(node.op, ast.Not) or (isinstance(node.op, ast.Invert) and isinstance(v, _Bool)):
        t, f = _as_bool(v)
        return _Bool(f, t)
    if isinstance(node.op, ast.Invert):
        return None  # bitwise not of numbers
    n = _as_num(v)
    if n is None:
        return None
    if isinstance(node.op, ast.USub):
        return _num(-n.hi, -n.lo, n.exact)
    return n


def _binop_interval(node: ast.BinOp, stats: _Stats) -> _Value:
    a, b = _as_num(_interval(node.left, stats)), _as_num(_interval(node.right, stats))
    if a is None or b is None:
        return None
    rule = _ARITHMETIC.get(type(node.op))
    return None if rule is None else rule(a, b)


def _add(a: _Num, b: _Num) -> _Num | None:
    return _num(a.lo + b.lo, a.hi + b.hi, a.exact and b.exact)


def _sub(a: _Num, b: _Num) -> _Num | None:
    return _num(a.lo - b.hi, a.hi - b.lo, a.exact and b.exact)


def _mul(a: _Num, b: _Num) -> _Num | None:
    p = [x * y for x in (a.lo, a.hi) for y in (b.lo, b.hi)]
    return _num(min(p), max(p), a.exact and b.exact)


def _div(a: _Num, b: _Num) -> _Num | None:
    if b.lo <= 0 <= b.hi:
        return None
    p = [x / y for x in (a.lo, a.hi) for y in (b.lo, b.hi)]
    return _num(min(p), max(p), False)


#: interval arithmetic per operator (``%`` and ``**`` give unknown)
_ARITHMETIC: dict[type[ast.operator], Callable[[_Num, _Num], _Num | None]] = {
    ast.Add: _add,
    ast.Sub: _sub,
    ast.Mult: _mul,
    ast.Div: _div,
}


def _compare_interval(node: ast.Compare, stats: _Stats) -> _Value:
    parts, left = [], _as_num(_interval(node.left, stats))
    for op, comp in zip(node.ops, node.comparators):
        right = _as_num(_interval(comp, stats))
        parts.append(_compare(type(op), left, right))
        left = right
    return _Bool(all(t for t, _ in parts), any(f for _, f in parts))


def _call_interval(node: ast.Call, stats: _Stats) -> _Value:
    v = _as_num(_interval(node.args[0], stats))
    if v is None or not isinstance(node.func, ast.Name):
        return None
    if node.func.id == "abs":
        return _abs_interval(v)
    if node.func.id in _MONOTONE:
        return _monotone_interval(node.func.id, v)
    return None


def _abs_interval(v: _Num) -> _Num | None:
    if v.lo >= 0:
        return _num(v.lo, v.hi, v.exact)
    if v.hi <= 0:
        return _num(-v.hi, -v.lo, v.exact)
    return _num(0, max(-v.lo, v.hi), v.exact)


def _monotone_interval(name: str, v: _Num) -> _Num | None:
    lowest, f = _MONOTONE[name]
    if v.lo < lowest or (lowest == 0.0 and name.startswith("log") and v.lo <= 0):
        return None
    try:
        return _num(f(v.lo), f(v.hi), False)
    except (OverflowError, ValueError):
        return None


#: the interval rule of each node type a selection may hold (others give unknown)
_INTERVAL_RULES: dict[type[ast.AST], Callable[[Any, _Stats], _Value]] = {
    ast.Name: _name_interval,
    ast.Constant: _constant_interval,
    ast.BoolOp: _boolop_interval,
    ast.UnaryOp: _unaryop_interval,
    ast.BinOp: _binop_interval,
    ast.Compare: _compare_interval,
    ast.Call: _call_interval,
}


def _compare(op: type[ast.cmpop], a: _Num | None, b: _Num | None) -> tuple[bool, bool]:
    """(can be true, can be false) of ``a op b`` over intervals."""
    if a is None or b is None:
        return (True, True)
    alo, ahi, blo, bhi = a.lo, a.hi, b.lo, b.hi
    if not (a.exact and b.exact):  # floats: rounding may make strict order an equality
        if op in (ast.Lt, ast.LtE):
            return (alo <= bhi, ahi >= blo)
        if op in (ast.Gt, ast.GtE):
            return (ahi >= blo, alo <= bhi)
        overlap = alo <= bhi and blo <= ahi
        return (overlap, True) if op is ast.Eq else (True, overlap)
    if op is ast.Lt:
        return (alo < bhi, ahi >= blo)
    if op is ast.LtE:
        return (alo <= bhi, ahi > blo)
    if op is ast.Gt:
        return (ahi > blo, alo <= bhi)
    if op is ast.GtE:
        return (ahi >= blo, alo < bhi)
    overlap = alo <= bhi and blo <= ahi
    single = alo == ahi == blo == bhi
    return (overlap, not single) if op is ast.Eq else (not single, overlap)


def chunks_may_match(selection: Selection, chunks: Iterable[Mapping]) -> np.ndarray:
    """For each chunk dict of a chunk table, whether ``selection`` may match in it:
    its ``stats`` entry (``{field: [min, max]}``) is used; chunks without one may."""
    return np.array(
        [selection.may_match(c.get("stats") or {}) if c.get("stats") else True for c in chunks],
        bool,
    )
