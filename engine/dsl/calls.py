"""Calls to the whitelisted functions: checked by name, arity and argument types at load.

Arguments a function needs constant (a counter's name, a time zone) are evaluated and
prepared here, once; a function marked ``fold`` whose arguments are all constant is called
at load and becomes its value.
"""

from __future__ import annotations

import ast
from typing import Any

from engine.dsl.functions import FUNCTIONS, FunctionSpec
from engine.dsl.paths import PathResolver
from engine.dsl.syntax import call, const, err, ref, suggest
from engine.dsl.types import join
from engine.errors import ExpressionError


class CallChecker(PathResolver):
    """Mixed into the compiler: turns a call of a whitelisted function into a typed call."""

    globals: dict[str, Any]

    def _constant_slot(self, value: Any) -> ast.expr:
        raise NotImplementedError

    def v_Call(self, node: ast.Call, depth: int) -> tuple[ast.expr, str]:
        if not isinstance(node.func, ast.Name):
            self.visit(node.func, depth)  # report a lambda or a forbidden name precisely
        spec = _function_of(node)
        name = spec.name
        args: list[ast.expr] = [ref(n) for n in spec.needs]
        types_: list[str] = []
        folded: list[Any] = []  # the prepared constant arguments, for a call made at load
        for i, a in enumerate(node.args):
            prep = (spec.constant_args or {}).get(i)
            if prep is not None:
                prepared = self._constant_arg(spec, i, a)
                folded.append(prepared)
                args.append(self._constant_slot(prepared))
                types_.append("str")
                continue
            bounds = (spec.literal_range or {}).get(i)
            literal = _literal_number(a) if bounds is not None else None
            if bounds is not None and literal is not None and not bounds[0] <= literal <= bounds[1]:
                raise err(a, f"argument {i + 1} of {name}() must be in {bounds[0]}..{bounds[1]}")
            expr, typ = self.visit(a, depth)
            accepted = spec.params[min(i, len(spec.params) - 1)]
            if typ.startswith(("list:", "map:")):
                typ = typ.partition(":")[0]
            if typ not in accepted:
                raise err(a, f"argument {i + 1} of {name}() cannot be a {typ}")
            args.append(expr)
            types_.append(typ)
        if spec.fold and len(folded) == len(node.args):
            try:
                return const(spec.impl(*folded)), spec.returns
            except ValueError as exc:
                raise err(node, f"{name}(): {exc}") from None
        self.globals["F_" + name] = spec.impl
        returns = spec.returns
        if name == "coalesce":
            returns = types_[0]
            for t in types_[1:]:
                returns = join(returns, t)
        return call("F_" + name, *args), returns

    def _constant_arg(self, spec: FunctionSpec, i: int, arg: ast.expr) -> Any:
        """Argument ``i``, which must be constant, prepared (and a state name checked)."""
        is_constant, value = self.constant_value(arg)
        if not is_constant:
            raise ExpressionError(
                f"argument {i + 1} of {spec.name}() must be a constant", arg.lineno, arg.col_offset
            )
        try:
            prepared = (spec.constant_args or {})[i](value)
        except ValueError as exc:
            raise err(arg, f"{spec.name}(): {exc}") from None
        kind = (spec.names or {}).get(i)
        if kind is not None:
            self.keyed_name(arg, spec.name, kind, prepared)
        return prepared


def _function_of(node: ast.Call) -> FunctionSpec:
    """The whitelisted function ``node`` calls, with its arity checked."""
    if not isinstance(node.func, ast.Name):
        raise err(node.func, "only the built-in functions can be called, by name")
    name = node.func.id
    if name.startswith("_"):
        raise err(node.func, f"name '{name}' is not allowed")
    spec = FUNCTIONS.get(name)
    if spec is None:
        raise err(node.func, f"unknown function '{name}'{suggest(name)}")
    if node.keywords:
        raise err(node.keywords[0], f"{name}() takes positional arguments only")
    nargs = len(node.args)
    most = None if spec.variadic else len(spec.params)
    if nargs < spec.min_args or (most is not None and nargs > most):
        want = (
            f"{spec.min_args}"
            if most == spec.min_args
            else (f"{spec.min_args} or more" if most is None else f"{spec.min_args} to {most}")
        )
        raise err(node, f"{name}() takes {want} argument(s), got {nargs}")
    return spec


def _literal_number(node: ast.expr) -> int | float | None:
    """The value of a number literal, signed or not; None for anything else."""
    sign = 1
    while isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        sign = -sign if isinstance(node.op, ast.USub) else sign
        node = node.operand
    value = node.value if isinstance(node, ast.Constant) else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return sign * value
    return None
