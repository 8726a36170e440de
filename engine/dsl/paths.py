"""Resolving data paths (event.data.x, customer.attributes.y, context.z) to null-safe reads.

Attribute access only ever walks the data the engine hands to an expression (dicts and
lists), never Python objects; every name is checked against the pack's declarations.
"""

from __future__ import annotations

import ast
import difflib
from typing import Any

from engine.dsl.functions import FUNCTIONS
from engine.dsl.syntax import MAX_DEPTH, call, const, dict_get, err, ref, subscript, suggest
from engine.dsl.types import Scope

Keys = list[tuple[ast.AST, str | int]]
# what a map's key may be: text or a whole number (engine.models.records.instance_key)
_KEY_TYPES = frozenset({"str", "int", "number", "any", "null"})


def _map_path(node: ast.expr) -> bool:
    """Whether ``node`` is ``customer.maps.<name>``."""
    return (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
            and node.value.attr == "maps" and isinstance(node.value.value, ast.Name)
            and node.value.value.id == "customer")


class PathResolver:
    """Mixed into the compiler: turns a chain of attributes/subscripts into a typed read."""

    scope: Scope
    contexts: set[str]

    def visit(self, node: ast.AST, depth: int) -> tuple[ast.expr, str]:
        raise NotImplementedError

    # -- data paths -----------------------------------------------------------------
    def _chain(self, node: ast.expr, depth: int) -> tuple[ast.expr, str]:
        keys: list[tuple[ast.AST, str | int]] = []
        cur: ast.expr = node
        while True:
            if isinstance(cur, ast.Attribute):
                if cur.attr.startswith("_"):
                    raise err(cur, f"access to '{cur.attr}' is not allowed")
                keys.append((cur, cur.attr))
                cur = cur.value
            elif isinstance(cur, ast.Subscript) and _map_path(cur.value):
                # customer.maps.<name>[key]: any key expression, looked up at run time
                base, typ = self._map_item(cur, depth)
                keys.reverse()
                return self._rest(base, typ, keys)
            elif isinstance(cur, ast.Subscript):
                sl = cur.slice
                if (
                    not isinstance(sl, ast.Constant)
                    or isinstance(sl.value, bool)
                    or not (isinstance(sl.value, str | int))
                ):
                    raise err(cur, "subscripts must be a constant string or integer")
                if isinstance(sl.value, str) and sl.value.startswith("_"):
                    raise err(cur, f"access to '{sl.value}' is not allowed")
                keys.append((cur, sl.value))
                cur = cur.value
            else:
                break
        keys.reverse()
        if not isinstance(cur, ast.Name):
            self.visit(cur, depth)  # a forbidden call or name below is the clearer error
            raise err(cur, "attributes can only be read from event, customer or context")
        if depth + len(keys) > MAX_DEPTH:
            raise err(node, f"expression nests deeper than {MAX_DEPTH} levels")
        return self._path(node, cur, keys)

    def _path(
        self, node: ast.expr, root: ast.Name, keys: list[tuple[ast.AST, str | int]]
    ) -> tuple[ast.expr, str]:
        name = root.id
        if name == "now":
            if keys:
                raise err(keys[0][0], "now is a time and has no fields")
            return ref("now"), "time"
        if name == "event":
            return self._event(root, keys)
        if name == "customer":
            return self._customer(root, keys)
        if name == "context":
            return self._context(root, keys)
        if name == "const":
            value, typ = self._constant(root, keys)
            return const(value), typ
        if name.startswith("_"):
            raise err(root, f"name '{name}' is not allowed")
        if name in FUNCTIONS:
            raise err(root, f"'{name}' is a function: call it as {name}(...)")
        hint = suggest(name, ("event", "customer", "context", "const", "now"))
        raise err(root, f"unknown name '{name}'"
                        f"{hint or ' (use event, customer, context, const or now)'}")

    def _constant(self, root: ast.Name, keys: Keys) -> tuple[Any, str]:
        """A pack constant's value (inlined at compile time) and its type."""
        if len(keys) > 1:
            raise err(keys[1][0], "a constant has no fields")
        key = keys[0][1] if keys else None
        if not isinstance(key, str):
            raise err(root, "name one constant, e.g. const.sla")
        node = keys[0][0]
        known = self.scope.constants
        found = known.get(key)
        if found is None:
            close = difflib.get_close_matches(key, list(known), n=1)
            hint = (f"; did you mean 'const.{close[0]}'?" if close
                    else " (define it under constants:)")
            raise err(node, f"unknown constant '{key}'{hint}")
        return found

    def constant_value(self, node: ast.expr) -> tuple[bool, Any]:
        """(True, value) for a literal or a ``const.name``; (False, None) for anything else."""
        if isinstance(node, ast.Constant):
            return True, node.value
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "const"
        ):
            return True, self._constant(node.value, [(node, node.attr)])[0]
        return False, None

    def _rest(
        self, base: ast.expr, typ: str, keys: list[tuple[ast.AST, str | int]]
    ) -> tuple[ast.expr, str]:
        """Walk into user data below a declared field: null-safe, untyped."""
        for node, key in keys:
            if typ not in ("map", "list", "any"):
                raise err(node, f"a value of type {typ} has no field '{key}'")
            base = (
                call("_g", base, const(key))
                if isinstance(key, str)
                else call("_idx", base, const(key))
            )
            typ = "any"
        return base, typ

    def _event(self, root: ast.Name, keys: list[tuple[ast.AST, str | int]]) -> tuple[ast.expr, str]:
        if not keys:
            raise err(root, "name a field of the event, e.g. event.type or event.data.x")
        node, key = keys[0]
        if key in ("id", "customer", "type"):
            return self._rest(subscript(ref("ev"), str(key)), "str", keys[1:])
        if key in ("at", "received"):
            return self._rest(subscript(ref("ev"), str(key)), "time", keys[1:])
        if key != "data":
            fields = ("id", "customer", "type", "at", "received", "data")
            hint = suggest(str(key), fields) or f" ({', '.join(fields)})"
            raise err(node, f"the event has no field '{key}'{hint}")
        if len(keys) == 1:
            return ref("d"), "map"
        fnode, fkey = keys[1]
        if not isinstance(fkey, str):
            raise err(fnode, "event.data fields are named, not indexed")
        declared = self.scope.event_data
        if declared is None:
            typ = "any"
        elif fkey in declared:
            typ = declared[fkey]
        else:
            known = ", ".join(sorted(declared)) or "none"
            raise err(
                fnode,
                f"unknown field event.data.{fkey} for the trigger{suggest(fkey, declared)} "
                f"(known: {known})",
            )
        return self._rest(dict_get(ref("d"), fkey), typ, keys[2:])

    def _customer(
        self, root: ast.Name, keys: list[tuple[ast.AST, str | int]]
    ) -> tuple[ast.expr, str]:
        if not keys:
            raise err(root, "name a field of the customer, e.g. customer.attributes.segment")
        node, section = keys[0]
        if section == "id":
            return self._rest(subscript(ref("customer"), "id"), "str", keys[1:])
        sections = ("attributes", "consent", "counters", "windows", "timestamps", "sets", "maps")
        if section not in sections:
            hint = suggest(str(section), (*sections, "id")) or f" ({', '.join(sections)}, id)"
            raise err(node, f"the customer has no field '{section}'{hint}")
        if len(keys) == 1:
            raise err(node, f"name one of customer.{section}'s fields")
        fnode, fkey = keys[1]
        if not isinstance(fkey, str):
            raise err(fnode, f"customer.{section} fields are named, not indexed")
        base = subscript(ref("customer"), str(section))
        s = self.scope
        if section == "attributes":
            attrs = s.attributes
            if attrs is not None and fkey not in attrs:
                hint = suggest(fkey, attrs) or " (declare it under attributes:)"
                raise err(fnode, f"unknown attribute '{fkey}'{hint}")
            typ = "any" if attrs is None else attrs[fkey]
            return self._rest(dict_get(base, fkey), typ, keys[2:])
        if section == "consent":
            if s.channels and fkey not in s.channels:
                raise err(fnode, f"unknown channel '{fkey}'{suggest(fkey, s.channels)}")
            return self._rest(dict_get(base, fkey, False), "bool", keys[2:])
        if section == "sets":
            return self._set(fnode, fkey, base, keys[2:])
        if section == "maps":
            return self._map(fnode, fkey, keys[2:])
        known = {"counters": s.counters, "windows": s.windows, "timestamps": s.timestamps}[
            str(section)
        ]
        if fkey not in known:
            keyed = {"counters": s.keyed_counters, "timestamps": s.keyed_timestamps}.get(
                str(section), frozenset())
            what = str(section)[:-1]
            if fkey in keyed:
                raise err(fnode, f"the {what} '{fkey}' is kept per key: read one with "
                                 f"{what}('{fkey}', key)")
            hint = suggest(fkey, known) or " (declare it in a state update)"
            raise err(fnode, f"unknown {what} '{fkey}'{hint}")
        if section == "timestamps":
            return self._rest(dict_get(base, fkey), "time", keys[2:])
        typ = "int" if section == "windows" else "float"
        return self._rest(dict_get(base, fkey, 0), typ, keys[2:])

    def _set(self, node: ast.AST, name: str, base: ast.expr, rest: Keys) -> tuple[ast.expr, str]:
        """A declared set's live members (a list of text: ``in``, ``len``)."""
        if name not in self.scope.sets:
            hint = suggest(name, self.scope.sets) or " (declare it under sets:)"
            raise err(node, f"unknown set '{name}'{hint}")
        if rest:
            raise err(rest[0][0], f"a set has no fields: ask x in customer.sets.{name}, or "
                                  f"count with len(customer.sets.{name})")
        return dict_get(base, name, ()), "list:str"

    def _map(self, node: ast.AST, name: str, rest: Keys) -> tuple[ast.expr, str]:
        """A declared map's live entries (``key in``, ``len``; ``[key]`` is _map_item)."""
        maps = self.scope.maps
        if name not in maps:
            hint = suggest(name, maps) or " (declare it under maps:)"
            raise err(node, f"unknown map '{name}'{hint}")
        if rest:
            raise err(rest[0][0], f"read a map's value by its key: customer.maps.{name}[key]")
        return call("_mall", subscript(ref("customer"), "maps"), const(name)), f"map:{maps[name]}"

    def _map_item(self, node: ast.Subscript, depth: int) -> tuple[ast.expr, str]:
        """``customer.maps.<name>[key]``: the value (null when absent or expired), typed
        as the map's values; the key is text or a whole number."""
        holder = node.value
        if not isinstance(holder, ast.Attribute):  # _map_path checked it: one shape only
            raise err(node, "read a map's value as customer.maps.<name>[key]")
        entries, typ = self._map(holder, holder.attr, [])
        key, key_type = self.visit(node.slice, depth)
        if key_type not in _KEY_TYPES:
            raise err(node.slice, f"a map's key is text or a whole number, not {key_type}")
        return call("_mget", entries, key), typ[len("map:"):]

    def keyed_name(self, node: ast.expr, fn: str, kind: str, name: str) -> None:
        """A context, counter or timestamp a function names with a key must be one kept
        per key (a context declared with key:, an update's key: for the others)."""
        s = self.scope
        if kind == "context":
            known, keyed, plain = s.contexts, s.keyed_contexts, f"context.{name}"
        elif kind == "counter":
            known, keyed, plain = s.counters | s.keyed_counters, s.keyed_counters, \
                f"customer.counters.{name}"
        else:
            known, keyed, plain = s.timestamps | s.keyed_timestamps, s.keyed_timestamps, \
                f"customer.timestamps.{name}"
        if name not in known:
            where = "contexts:" if kind == "context" else "an update with a key:"
            hint = suggest(name, known) or f" (declare it under {where})"
            raise err(node, f"{fn}(): unknown {kind} '{name}'{hint}")
        if name not in keyed:
            raise err(node, f"{fn}(): {kind} '{name}' has no key: (use {plain})")
        if kind == "context":
            self.contexts.add(name)

    def _context(
        self, root: ast.Name, keys: list[tuple[ast.AST, str | int]]
    ) -> tuple[ast.expr, str]:
        if len(keys) != 1 or not isinstance(keys[0][1], str):
            raise err(root, "name one context, e.g. context.in_transit")
        node, key = keys[0]
        if key not in self.scope.contexts:
            hint = suggest(str(key), self.scope.contexts) or " (declare it under contexts:)"
            raise err(node, f"unknown context '{key}'{hint}")
        self.contexts.add(key)
        return ast.Compare(left=const(key), ops=[ast.In()], comparators=[ref("contexts")]), "bool"
