"""The rules themselves: walk one module and report OA101-OA112.

Precision first: every rule fires only when name resolution (`resolve`) is certain the
receiver is an OpenAI client of the right kind; anything unknown is left alone.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .project import Project
from .resolve import RETURNS_ITS_CLIENT, ApiCall, Binding, FunctionNode, Module, Scope, is_none_constant
from .rules import RULES, VARIANTS

__all__ = ["Issue", "check_tree"]

ROUTE_METHODS = frozenset(
    {"get", "post", "put", "patch", "delete", "head", "options", "trace", "api_route", "websocket"}
)
STREAMING_RESPONSES = frozenset({"StreamingResponse", "EventSourceResponse"})
CACHE_DECORATORS = frozenset({"functools.lru_cache", "functools.cache", "functools.cached_property"})
FASTAPI_CLASSES = frozenset({"fastapi.FastAPI", "fastapi.applications.FastAPI"})
APP_CLASSES = FASTAPI_CLASSES | {"starlette.applications.Starlette"}
CLOSE_METHODS = frozenset({"close", "aclose"})
RETRY_DECORATORS = frozenset({"tenacity.retry", "backoff.on_exception", "backoff.on_predicate"})
RETRY_ITERATORS = frozenset({"tenacity.Retrying", "tenacity.AsyncRetrying"})
HTTP_CLIENTS = frozenset(
    {
        "httpx.Client",
        "httpx.AsyncClient",
        "openai.DefaultHttpxClient",
        "openai.DefaultAsyncHttpxClient",
        "openai.DefaultAioHttpClient",
    }
)
ASYNC_AZURE = frozenset({"openai.AsyncAzureOpenAI", "openai.lib.azure.AsyncAzureOpenAI"})
SYNC_TOKEN_PROVIDERS = frozenset({"azure.identity.get_bearer_token_provider"})
TOKEN_FETCHES = frozenset({"get_token", "get_token_info"})
DISCONNECTS = frozenset({"asyncio.CancelledError", "asyncio.exceptions.CancelledError", "builtins.GeneratorExit"})
ENTRY_POINTS = frozenset({"main", "amain", "run", "cli", "lifespan"})  # run once, not per call
SLEEPS = frozenset({"time.sleep", "asyncio.sleep", "anyio.sleep", "trio.sleep"})


@dataclass(frozen=True)
class Issue:
    """A finding in module coordinates: 1-based line, 1-based column."""

    code: str
    line: int
    column: int
    message: str


def check_tree(
    tree: ast.Module, *, notebook: bool = False, project: Project | None = None, path: str | None = None
) -> list[Issue]:
    """All findings in one parsed module (a notebook's code cells joined into one); with a
    `project`, names imported from its other modules resolve too (`path` is the module's file)."""
    module = Module(tree, project, Path(path).resolve() if project is not None and path else None)
    if module.project is not None and module.path is not None and not notebook:
        module.project.add(module.path, module)
    return sorted(set(_Checker(module, notebook).run()), key=lambda i: (i.line, i.column, i.code))


class _Checker:
    def __init__(self, module: Module, notebook: bool) -> None:
        self.m = module
        self.notebook = notebook
        self.routes = _route_handlers(module)

    def issue(self, code: str, node: ast.AST, variant: str | None = None) -> Issue:
        message = VARIANTS.get((code, variant or ""), RULES[code].message)
        return Issue(code, getattr(node, "lineno", 1), getattr(node, "col_offset", 0) + 1, message)

    def run(self) -> Iterator[Issue]:
        per_request = self._per_request_functions()
        for node in ast.walk(self.m.tree):
            if not isinstance(node, ast.Call):
                continue
            call = self.m.api_call(node)
            if call is not None:
                yield from self._call_rules(call)
            if self._fresh_client(node):
                yield from self._constructor_rules(node, per_request)
            if self.m.qualname(node.func) == "asyncio.run":
                scope = self.m.function_scope(node)
                if (scope is not None and scope.is_async) or (scope is None and self.notebook):
                    yield self.issue("OA106", node)
        yield from self._unclosed_module_clients()
        yield from self._sync_stream_generators()
        yield from self._unclosed_streams()
        yield from self._stacked_retries()
        yield from self._no_timeouts()
        yield from self._sync_token_providers()
        yield from self._sync_client_dependencies()

    # --- OA101, OA102, OA103 ----------------------------------------------------------

    def _call_rules(self, call: ApiCall) -> Iterator[Issue]:
        node = call.node
        parent = self.m.parents.get(node)
        awaited = isinstance(parent, ast.Await)
        scope = self.m.function_scope(node)
        if call.kind == "sync":
            if not call.path:
                return  # client.close(): not an upstream call
            if isinstance(parent, ast.Await) and not call.manager:
                yield self.issue("OA101", parent)
            elif not awaited and scope is not None and scope.is_async:
                if call.manager and not self._is_with_item(node):
                    return  # a manager not entered here does nothing yet
                yield self.issue("OA102", node)
            return
        if awaited or call.manager or call.method == "list":
            return
        variant = self._unawaited_use(node, parent, scope)
        if variant is not None:
            yield self.issue("OA103", node, variant or None)

    def _is_with_item(self, node: ast.Call) -> bool:
        parent = self.m.parents.get(node)
        return isinstance(parent, ast.withitem) or (
            isinstance(parent, (ast.With, ast.AsyncWith)) and any(i.context_expr is node for i in parent.items)
        )

    def _unawaited_use(self, node: ast.Call, parent: ast.AST | None, scope: Scope | None) -> str | None:
        """How a coroutine is certainly misused ("" for the plain message), or None."""
        if isinstance(parent, (ast.Attribute, ast.Subscript)) and parent.value is node:
            return ""
        if isinstance(parent, ast.Expr):
            return ""
        if isinstance(parent, ast.AsyncFor) and parent.iter is node:
            return "async-for"
        if isinstance(parent, ast.For) and parent.iter is node:
            return ""
        if isinstance(parent, ast.Return) and scope is not None and scope.is_async:
            return "return"
        if isinstance(parent, (ast.Assign, ast.AnnAssign)) and parent.value is node:
            targets = parent.targets if isinstance(parent, ast.Assign) else [parent.target]
            if len(targets) == 1 and isinstance(targets[0], ast.Name) and self._never_awaited(targets[0].id, node):
                return ""
        return None

    def _never_awaited(self, name: str, node: ast.Call) -> bool:
        """Every use of `name` in its scope reads an attribute, indexes or iterates (or there is none)."""
        scope = self.m.scope_of.get(node)
        if scope is None or self.m.defining_scope(name, scope) is not scope:
            return False
        if len(scope.bindings.get(name, [])) != 1:
            return False  # rebound somewhere: too clever to judge
        body = scope.node
        for use in ast.walk(body):
            if not (isinstance(use, ast.Name) and use.id == name and isinstance(use.ctx, ast.Load)):
                continue
            if self.m.scope_of.get(use) is not scope:
                return False  # used in a nested function or lambda: may be awaited there
            parent = self.m.parents.get(use)
            if isinstance(parent, (ast.Attribute, ast.Subscript)) and parent.value is use:
                continue
            if isinstance(parent, (ast.For, ast.AsyncFor)) and parent.iter is use:
                continue
            return False
        return True

    # --- OA104, OA105 -----------------------------------------------------------------

    def _module_function(self, expr: ast.expr | None, at: ast.AST) -> FunctionNode | None:
        return _module_function(self.m, expr, at)

    def _cached(self, fn: FunctionNode) -> bool:
        for deco in fn.decorator_list:
            target = deco.func if isinstance(deco, ast.Call) else deco
            if self.m.qualname(target) in CACHE_DECORATORS:
                return True
        return False

    def _per_request_functions(self) -> dict[FunctionNode, str]:
        """Functions that run once per request: routes, dependencies, helpers routes call
        (here, or, in a project, from a route in another module)."""
        found: dict[FunctionNode, str] = {fn: "route handler" for fn in self.routes}
        for node in ast.walk(self.m.tree):
            if isinstance(node, ast.Call) and self.m.is_depends(node.func):
                target = node.args[0] if node.args else _keyword(node, "dependency")
                fn = self._module_function(target, node)
                if fn is not None:
                    found.setdefault(fn, "dependency")
        for route in self.routes:
            for node in self.m.walk_own(route):
                if isinstance(node, ast.Call):
                    fn = self._module_function(node.func, node)
                    if fn is not None and fn is not route:
                        found.setdefault(fn, "function called by a route")
        if self.m.project is not None and self.m.path is not None:
            for path, name in self.m.project.once(_route_callees):
                fn = self.m.global_function(name) if path == self.m.path else None
                if fn is not None and not self._constructs_and_returns(fn):
                    # (a factory imported by a route is reported at the route's call of it)
                    found.setdefault(fn, "function called by a route")
        return {fn: why for fn, why in found.items() if not self._cached(fn)}

    def _fresh_client(self, node: ast.Call) -> bool:
        """`node` builds a new client: a constructor, or a factory imported from another module
        every ``return`` of which is one (``def get_openai(): return Client(...)``), not cached
        (a factory in this module is judged at its own constructor)."""
        if self.m.constructor_kind(node):
            return True
        scope = self.m.scope_of.get(node)
        if scope is None:
            return False
        owner, fn = self.m._factory(node.func, scope)
        return owner is not self.m and fn is not None and _constructs_and_returns(owner, fn)

    def _constructs_and_returns(self, fn: FunctionNode) -> bool:
        return _constructs_and_returns(self.m, fn)

    def _dropped_per_call(self, node: ast.Call) -> bool:
        """A client built inside an ``async def`` (not an entry point), or a plain ``def`` of the
        service that something calls, bound to a local that is only used for API calls there:
        every call of the function builds and drops one."""
        fn = next(self.m.enclosing_functions(node), None)
        parent = self.m.parents.get(node)
        per_call = isinstance(fn, ast.AsyncFunctionDef) or (
            isinstance(fn, ast.FunctionDef) and self.part_of_the_service and self._called_somewhere(fn.name)
        )
        if fn is None or not per_call or fn.name in ENTRY_POINTS or fn.name == "__init__" or fn.decorator_list:
            return False
        if not (isinstance(parent, (ast.Assign, ast.AnnAssign)) and parent.value is node):
            return False
        targets = parent.targets if isinstance(parent, ast.Assign) else [parent.target]
        if len(targets) != 1 or not isinstance(targets[0], ast.Name):
            return False
        name = targets[0].id
        uses = [
            n for n in self.m.walk_own(fn) if isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load)
        ]
        return bool(uses) and all(self._api_receiver(use) for use in uses)

    def _called_somewhere(self, name: str) -> bool:
        """Some call in the project (or this module) names `name`: ``name(...)`` or ``x.name(...)``."""
        modules = list(self.m.project.modules()) if self.m.project is not None else []
        return any(name in m.called_names for m in [self.m, *modules])

    def _api_receiver(self, use: ast.Name) -> bool:
        """`use` is the client of an endpoint call (``use.chat.completions.create(...)``)."""
        node: ast.AST = use
        while isinstance(self.m.parents.get(node), ast.Attribute):
            node = self.m.parents[node]
        call = self.m.parents.get(node)
        if not (isinstance(call, ast.Call) and call.func is node):
            return False
        api = self.m.api_call(call)
        return api is not None and api.method not in CLOSE_METHODS  # a client closed here is not dropped

    def _constructor_rules(self, node: ast.Call, per_request: dict[FunctionNode, str]) -> Iterator[Issue]:
        for fn in self.m.enclosing_functions(node):
            if fn in per_request:
                yield self.issue("OA104", node)
                return
        if self.m.constructor_kind(node) and self._dropped_per_call(node):
            yield self.issue("OA104", node, "per-call")

    def _unclosed_module_clients(self) -> Iterator[Issue]:
        if not _builds_app(self.m):
            yield from self._unclosed_imported_clients()
            return
        closers = self._closer_functions()
        for stmt in ast.walk(self.m.tree):
            if (
                not isinstance(stmt, (ast.Assign, ast.AnnAssign))
                or self.m.scope_of.get(stmt) is not self.m.module_scope
            ):
                continue
            if stmt.value is None or self.m.constructor_kind(stmt.value) != "async":
                continue
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            names = [t.id for t in targets if isinstance(t, ast.Name)]
            if closers is None:
                continue  # a lifespan defined elsewhere: cannot tell, so say nothing
            if not any(self._closes(fn, name) for fn in closers for name in names):
                yield self.issue("OA105", stmt.value)

    @functools.cached_property
    def part_of_the_service(self) -> bool:
        """This module builds the app, or (in a project that builds one) another module imports it:
        code a service runs, not a script beside it."""
        if _builds_app(self.m):
            return True
        project, path = self.m.project, self.m.path
        if self.notebook or project is None or path is None or not any(_builds_app(m) for m in project.modules()):
            return False
        return any(m.path != path and path in _imported_files(project, m) for m in project.modules() if m.path)

    def _unclosed_imported_clients(self) -> Iterator[Issue]:
        """In a project with a FastAPI app elsewhere: a module-level AsyncOpenAI here (built
        at import, possibly wrapped) that nothing in the project ever closes, under its own
        name or any name it is imported as."""
        project, path = self.m.project, self.m.path
        if project is None or path is None or not self.part_of_the_service:
            return
        clients: dict[str, ast.expr] = {}
        for stmt in self.m.tree.body:
            if (
                isinstance(stmt, ast.Assign)
                and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], ast.Name)
                and self._fresh_async_client(stmt.value)
            ):
                clients[stmt.targets[0].id] = stmt.value
        if not clients:
            return
        names = {name: {name} for name in clients}
        closed: set[str] = set()
        for module in [self.m, *project.modules()]:
            for local, bindings in module.module_scope.bindings.items():
                for b in bindings:
                    located = (
                        project.locate(module.path, b.target)
                        if b.how == "import" and b.target and module.path
                        else None
                    )
                    if located is not None and located[0].path == path and located[1] in names:
                        names[located[1]].add(local)
            closed |= _closed_names(module.tree)
        for name, value in clients.items():
            if not names[name] & closed:
                yield self.issue("OA105", value)

    def _fresh_async_client(self, value: ast.expr) -> bool:
        """``AsyncOpenAI(...)``, or one given to a wrapper that returns it (``wrap_openai(AsyncOpenAI())``)."""
        if self.m.constructor_kind(value) == "async":
            return True
        return (
            isinstance(value, ast.Call)
            and bool(value.args)
            and self.m.qualname(value.func) in RETURNS_ITS_CLIENT
            and self.m.constructor_kind(value.args[0]) == "async"
        )

    def _closer_functions(self) -> list[FunctionNode] | None:
        """Lifespans and shutdown handlers defined here; None if one is defined elsewhere."""
        closers: list[FunctionNode] = []
        for node in ast.walk(self.m.tree):
            if isinstance(node, ast.Call):
                lifespan = _keyword(node, "lifespan")
                if lifespan is not None and not (isinstance(lifespan, ast.Constant) and lifespan.value is None):
                    fn = self._module_function(lifespan, node)
                    if fn is None:
                        return None
                    closers.append(fn)
                func = node.func
                if (
                    isinstance(func, ast.Attribute)
                    and func.attr == "add_event_handler"
                    and len(node.args) == 2
                    and isinstance(node.args[0], ast.Constant)
                    and node.args[0].value == "shutdown"
                ):
                    fn = self._module_function(node.args[1], node)
                    if fn is None:
                        return None
                    closers.append(fn)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for deco in node.decorator_list:
                    if (
                        isinstance(deco, ast.Call)
                        and isinstance(deco.func, ast.Attribute)
                        and deco.func.attr == "on_event"
                        and deco.args
                        and isinstance(deco.args[0], ast.Constant)
                        and deco.args[0].value == "shutdown"
                    ):
                        closers.append(node)
        helpers = []
        for fn in closers:  # one level of helpers: `await close_clients()`
            for node in self.m.walk_own(fn):
                if isinstance(node, ast.Call):
                    helper = self._module_function(node.func, node)
                    if helper is not None:
                        helpers.append(helper)
        return closers + helpers

    def _closes(self, fn: FunctionNode, name: str) -> bool:
        for node in ast.walk(fn):
            target: ast.expr | None
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in {"close", "aclose"}
            ):
                target = node.func.value
            elif isinstance(node, (ast.With, ast.AsyncWith)):
                hits = [i.context_expr for i in node.items if isinstance(i.context_expr, ast.Name)]
                target = hits[0] if hits and any(h.id == name for h in hits) else None
                if target is not None:
                    target = next(h for h in hits if h.id == name)
            else:
                continue
            if isinstance(target, ast.Name) and target.id == name:
                scope = self.m.scope_of.get(target)
                if scope is not None and self.m.defining_scope(name, scope) is self.m.module_scope:
                    return True
        return False

    # --- OA107 ------------------------------------------------------------------------

    def _sync_stream_generators(self) -> Iterator[Issue]:
        served = self._served_generators()
        for fn in served:
            scope = self._scope_of_body(fn)
            if scope is None:
                continue
            for node in self.m.walk_own(fn):
                if isinstance(node, ast.For) and self._is_sync_stream(node.iter, scope, fn):
                    yield self.issue("OA107", node)

    def _scope_of_body(self, fn: FunctionNode) -> Scope | None:
        return self.m.scope_of.get(fn.body[0]) if fn.body else None

    def _is_generator(self, fn: ast.AST) -> bool:
        return isinstance(fn, ast.FunctionDef) and any(
            isinstance(n, (ast.Yield, ast.YieldFrom)) for n in self.m.walk_own(fn)
        )

    def _served_generators(self) -> list[ast.FunctionDef]:
        served: list[ast.FunctionDef] = []

        def add(expr: ast.expr | None, at: ast.AST) -> None:
            if isinstance(expr, ast.Call):
                expr = expr.func
            if isinstance(expr, ast.Name):
                bindings = self.m.lookup(expr.id, self.m.scope_of.get(at, self.m.module_scope)) or []
                for b in bindings:
                    for fn in self._defs_named(expr.id, b.scope):
                        if self._is_generator(fn) and fn not in served:
                            served.append(fn)

        for node in ast.walk(self.m.tree):
            if isinstance(node, ast.Call):
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
                if name in STREAMING_RESPONSES:
                    add(node.args[0] if node.args else _keyword(node, "content"), node)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and self._is_generator(node):
                outer = self.m.function_scope(node)
                if outer is not None and outer.node in self.routes and node not in served:
                    assert isinstance(node, ast.FunctionDef)
                    served.append(node)
        for route in self.routes:
            for node in self.m.walk_own(route):
                if isinstance(node, ast.Return) and node.value is not None:
                    add(node.value, node)
        if self.m.project is not None and self.m.path is not None:
            # a function here whose result a StreamingResponse in another module serves:
            # it is the generator, or it returns a call of one defined in it
            for path, name in self.m.project.once(_served_elsewhere):
                fn = self.m.global_function(name) if path == self.m.path else None
                if fn is None:
                    continue
                if self._is_generator(fn) and fn not in served:
                    assert isinstance(fn, ast.FunctionDef)
                    served.append(fn)
                for node in self.m.walk_own(fn):
                    if isinstance(node, ast.Return) and node.value is not None:
                        add(node.value, node)
        return served

    def _defs_named(self, name: str, scope: Scope) -> list[ast.FunctionDef]:
        return [
            s
            for s in ast.walk(self.m.tree)
            if isinstance(s, ast.FunctionDef) and s.name == name and self.m.scope_of.get(s) is scope
        ]

    def _is_sync_stream(self, expr: ast.expr, scope: Scope, fn: ast.FunctionDef | None) -> bool:
        """`expr` is a sync client call with ``stream=True``, or a name bound only to one.

        With `fn`, a parameter of `fn` counts when a call of `fn` in this module passes one.
        """
        if isinstance(expr, ast.Call):
            call = self.m.api_call(expr)
            return call is not None and call.kind == "sync" and call.streams
        if isinstance(expr, ast.Name):
            bindings = self.m.lookup(expr.id, scope)
            if not bindings:
                return False
            if all(b.how == "param" for b in bindings):
                return fn is not None and bindings[0].scope is scope and self._stream_passed_to(fn, expr.id)
            return all(
                b.value is not None and b.how != "param" and self._is_sync_stream(b.value, b.scope, None)
                for b in bindings
            )
        return False

    def _stream_passed_to(self, fn: ast.FunctionDef, param: str) -> bool:
        """Some call ``fn(...)`` in this module passes a sync stream as `param`."""
        names = [a.arg for a in [*fn.args.posonlyargs, *fn.args.args]]
        for node in ast.walk(self.m.tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == fn.name):
                continue
            arg = _keyword(node, param)
            if arg is None and param in names and names.index(param) < len(node.args):
                arg = node.args[names.index(param)]
            scope = self.m.scope_of.get(node)
            if arg is not None and scope is not None and self._is_sync_stream(arg, scope, None):
                return True
        return False

    # --- OA108 ------------------------------------------------------------------------

    def _unclosed_streams(self) -> Iterator[Issue]:
        for loop in ast.walk(self.m.tree):
            if not isinstance(loop, (ast.For, ast.AsyncFor)):
                continue
            scope = self.m.function_scope(loop)
            opened = self._stream_source(loop, scope) if scope is not None else None
            if opened is None:
                continue
            # at the call that opened it, where the fix goes
            if self._left_before_the_loop(opened, loop):
                yield self.issue("OA108", opened, "unread")
            elif (self._exits_early(loop) or self._handled_around(loop)) and not self._closed_by_finally(loop):
                yield self.issue("OA108", opened)

    def _stream_call(self, expr: ast.expr | None, is_async: bool) -> ast.Call | None:
        """The call, when `expr` is ``await client...create(stream=True)`` (async) or the sync call itself."""
        if is_async:
            if not isinstance(expr, ast.Await):
                return None
            expr = expr.value
        if not isinstance(expr, ast.Call):
            return None
        call = self.m.api_call(expr)
        if call is None or call.kind != ("async" if is_async else "sync") or call.manager:
            return None
        return expr if call.streams or self._streams_by_dict(expr) else None

    def _streams_by_dict(self, call: ast.Call) -> bool:
        """``create(**params)`` with ``params = {..., "stream": True, ...}`` bound once, just here."""
        scope = self.m.scope_of.get(call)
        for keyword in call.keywords:
            if keyword.arg is None and isinstance(keyword.value, ast.Name) and scope is not None:
                bindings = self.m.lookup(keyword.value.id, scope) or []
                value = bindings[0].value if len(bindings) == 1 and bindings[0].how == "assign" else None
                if isinstance(value, ast.Dict) and any(
                    isinstance(k, ast.Constant)
                    and k.value == "stream"
                    and isinstance(v, ast.Constant)
                    and v.value is True
                    for k, v in zip(value.keys, value.values, strict=True)
                ):
                    return True
        return False

    def _stream_source(self, loop: ast.For | ast.AsyncFor, scope: Scope) -> ast.Call | None:
        """The call that opened the stream the loop iterates, when the loop opened it itself:
        the call, or a local bound once to it and used only by this loop (a stream returned,
        stored or closed elsewhere is left alone)."""
        is_async = isinstance(loop, ast.AsyncFor)
        direct = self._stream_call(loop.iter, is_async)
        if direct is not None or not isinstance(loop.iter, ast.Name):
            return direct
        name = loop.iter.id
        holder = self.m.defining_scope(name, scope)  # this function, or one around it (a closure)
        if holder is None or holder.is_module or holder.is_class:
            return None
        bindings = holder.bindings[name]
        if len(bindings) != 1 or bindings[0].how != "assign":
            return None
        opened = self._stream_call(bindings[0].value, is_async)
        uses = [
            n for n in ast.walk(holder.node) if isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load)
        ]
        return opened if uses == [loop.iter] else None

    def _left_before_the_loop(self, opened: ast.Call, loop: ast.For | ast.AsyncFor) -> bool:
        """A statement between ``stream = ...create(stream=True)`` and the loop over it can leave
        without reaching the loop: ``return``, ``raise`` (not caught on the way to the loop), or
        ``break``/``continue`` of a loop around both. The stream is then never iterated, and
        nothing closes it (the stream's only use is the loop: `_stream_source`)."""
        assign = self.m.parents.get(opened)
        if isinstance(assign, ast.Await):
            assign = self.m.parents.get(assign)
        if not isinstance(assign, (ast.Assign, ast.AnnAssign)):
            return False
        owner = self.m.function_scope(assign)
        if owner is None or self._client_closed_around(opened, assign):
            return False
        fn = owner.node
        opened_chain, loop_chain = _statement_chain(self.m, assign, fn), _statement_chain(self.m, loop, fn)
        common = next(
            ((i, j) for i, (_, a) in enumerate(opened_chain) for j, (_, b) in enumerate(loop_chain) if a is b), None
        )
        if common is None:
            return False  # the loop is in another function than the one that opened the stream
        i, j = common
        (first, block), (last, _) = opened_chain[i], loop_chain[j]
        if first is last or block.index(first) > block.index(last):
            return False
        if any(isinstance(s, (ast.For, ast.AsyncFor, ast.While)) for s, _ in opened_chain[1 : i + 1]):
            return False  # opened on every round of a loop the stream's loop is not in
        between: list[ast.stmt] = block[block.index(first) + 1 : block.index(last)]
        for stmt, stmts in opened_chain[:i]:  # after the call, inside the statements around it
            between += stmts[stmts.index(stmt) + 1 :]
            around = self.m.parents.get(stmt)
            if isinstance(around, ast.Try | ast.TryStar) and stmts is around.body:
                between += around.orelse
        for stmt, stmts in loop_chain[:j]:  # before the loop, inside the statements around it
            if self.m.function_scope(stmt) is owner:
                between += stmts[: stmts.index(stmt)]
        return any(self._leaves(node, assign, loop) for node in self._own(between))

    def _leaves(self, node: ast.AST, opened: ast.stmt, loop: ast.AST) -> bool:
        """`node` leaves the code between `opened` and `loop` for good, with nothing closing on the way:
        a ``return``; a ``raise`` that nothing catches short of the loop; a ``break``/``continue``
        of a loop around both."""
        if isinstance(node, (ast.Break, ast.Continue)):
            loops = (ast.For, ast.AsyncFor, ast.While)
            target = next((p for p in _ancestors(self.m, node) if isinstance(p, loops)), None)
            if target is None or not any(p is target for p in _ancestors(self.m, opened)):
                return False  # ends a loop of its own between the two
        elif not isinstance(node, (ast.Return, ast.Raise)):
            return False
        child: ast.AST = node
        for parent in _ancestors(self.m, node):
            if isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                return True
            if isinstance(parent, ast.Try | ast.TryStar) and any(
                _closes_something(s) for s in [*parent.handlers, *parent.finalbody]
            ):
                return False
            # a `raise` caught by a `try` (or a `with`: `suppress(...)`) that does not hold the loop
            # may go on to the loop from there
            catches = isinstance(parent, (ast.With, ast.AsyncWith)) or (
                isinstance(parent, ast.Try | ast.TryStar) and bool(parent.handlers) and child in parent.body
            )
            if isinstance(node, ast.Raise) and catches and not _contains(parent, loop):
                return False
            child = parent
        return True

    def _client_closed_around(self, opened: ast.Call, at: ast.AST) -> bool:
        """The stream's client is a `with` target here (``async with AsyncOpenAI() as client:``):
        leaving the block closes the client and its connections with it."""
        node: ast.expr = opened.func
        while isinstance(node, ast.Attribute):
            node = node.value
        scope = self.m.scope_of.get(at)
        if not isinstance(node, ast.Name) or scope is None:
            return False
        return any(b.how == "with" for b in self.m.lookup(node.id, scope) or [])

    def _exits_early(self, loop: ast.For | ast.AsyncFor) -> bool:
        """`break` out of this loop, or `return` / `raise` (not caught inside it) in its body."""
        stack: list[tuple[ast.AST, bool, bool]] = [(s, True, False) for s in loop.body]
        while stack:
            node, own_loop, caught = stack.pop()
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
                continue
            if isinstance(node, ast.Break) and own_loop:
                return True
            if isinstance(node, ast.Return):
                return True
            if isinstance(node, ast.Raise) and not caught:
                return True
            if isinstance(node, (ast.For, ast.AsyncFor, ast.While)):
                stack.extend((s, False, caught) for s in [*node.body, *node.orelse])
                continue
            if isinstance(node, ast.Try | ast.TryStar) and node.handlers:
                stack.extend((s, own_loop, True) for s in node.body)
                rest = [*node.handlers, *node.orelse, *node.finalbody]
                stack.extend((s, own_loop, caught) for s in rest)
                continue
            stack.extend((c, own_loop, caught) for c in ast.iter_child_nodes(node))
        return False

    def _handled_around(self, loop: ast.For | ast.AsyncFor) -> bool:
        """A ``try``/``except`` around the loop that expects an exception to end it and goes on
        with the stream still open (no handler closes anything): inside a retry loop, where
        the next attempt opens another stream, or catching the disconnect itself
        (``asyncio.CancelledError``, ``GeneratorExit``) to clean up."""
        child: ast.AST = loop
        parent = self.m.parents.get(loop)
        handled: ast.Try | ast.TryStar | None = None
        while parent is not None and not isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            if isinstance(parent, ast.Try | ast.TryStar) and child in parent.body and parent.handlers:
                if any(_closes_something(h) for h in parent.handlers):
                    return False
                if any(self.m.qualname(t) in DISCONNECTS for h in parent.handlers for t in _caught(h)):
                    return True
                handled = handled or parent
            elif isinstance(parent, (ast.For, ast.AsyncFor, ast.While)) and handled is not None:
                return True  # the try sits in a loop: a retry
            child, parent = parent, self.m.parents.get(parent)
        return False

    def _closed_by_finally(self, loop: ast.For | ast.AsyncFor) -> bool:
        """A `with` around the loop, or a `finally` around it that closes something."""
        child: ast.AST = loop
        parent = self.m.parents.get(loop)
        while parent is not None and not isinstance(
            parent, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.Module)
        ):
            if isinstance(parent, (ast.With, ast.AsyncWith)) and child in parent.body:
                return True
            if (
                isinstance(parent, ast.Try | ast.TryStar)
                and child in parent.body
                and any(_closes_something(s) for s in parent.finalbody)
            ):
                return True
            child, parent = parent, self.m.parents.get(parent)
        return False

    # --- OA109 ------------------------------------------------------------------------

    def _stacked_retries(self) -> Iterator[Issue]:
        for node in ast.walk(self.m.tree):
            regions: list[ast.AST] = []
            if self._retrying_block(node):
                regions = list(getattr(node, "body", []))
            elif isinstance(node, ast.For) and self._retry_loop(node):
                regions = [
                    s for t in self._own(node.body) if isinstance(t, ast.Try) and self._retries(t, node) for s in t.body
                ]
            for call in self._api_calls(regions):
                if self._default_retries(call):
                    yield self.issue("OA109", call.node)

    def _retrying_block(self, node: ast.AST) -> bool:
        """A function under a retry decorator, or ``for attempt in Retrying(...):``."""
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return any(self._retry_decorator(d) for d in node.decorator_list)
        return (
            isinstance(node, (ast.For, ast.AsyncFor))
            and isinstance(node.iter, ast.Call)
            and self.m.qualname(node.iter.func) in RETRY_ITERATORS
        )

    def _retry_decorator(self, decorator: ast.expr) -> bool:
        """``@retry(...)``, ``@backoff.on_exception(...)``, or a name bound once to such a call,
        here or in the project module it is imported from (``llm_retry = retry(stop=...)``)."""
        if self.m.qualname(decorator.func if isinstance(decorator, ast.Call) else decorator) in RETRY_DECORATORS:
            return True
        if not isinstance(decorator, ast.Name):
            return False
        owner, bindings = self.m, self.m.lookup(decorator.id, self.m.scope_of.get(decorator, self.m.module_scope))
        if bindings and len(bindings) == 1 and bindings[0].how == "import" and bindings[0].target:
            located = self.m._locate(bindings[0].target)
            owner, bindings = (
                (located[0], located[0].module_scope.bindings.get(located[1])) if located else (owner, None)
            )
        if not bindings or len(bindings) != 1 or bindings[0].how != "assign":
            return False
        value = bindings[0].value
        return isinstance(value, ast.Call) and owner.qualname(value.func) in RETRY_DECORATORS

    def _own(self, stmts: Sequence[ast.AST]) -> Iterator[ast.AST]:
        """Nodes of `stmts`, not descending into nested functions, lambdas or classes."""
        stack: list[ast.AST] = list(reversed(stmts))
        while stack:
            node = stack.pop()
            yield node
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
                stack.extend(reversed(list(ast.iter_child_nodes(node))))

    def _retry_loop(self, loop: ast.For) -> bool:
        """``for attempt in range(n):`` (a `while` loop is as often a worker loop: left alone)."""
        it = loop.iter
        return (
            isinstance(it, ast.Call)
            and isinstance(it.func, ast.Name)
            and it.func.id == "range"
            and self.m.lookup("range", self.m.scope_of.get(it, self.m.module_scope)) is None
        )

    def _retries(self, attempt: ast.Try, loop: ast.For) -> bool:
        """This `try` is one attempt: success leaves the loop (`break`/`return` in its body or
        `else`), a handler swallows the error and goes round again (`continue` or a sleep), and
        the loop variable is not used in it (a batch over items is not a retry)."""
        target = loop.target.id if isinstance(loop.target, ast.Name) else None
        if target is None:
            return False
        inside = list(self._own([*attempt.body, *attempt.orelse]))
        if any(isinstance(n, ast.Name) and n.id == target for n in inside):
            return False
        if not any(isinstance(n, (ast.Break, ast.Return)) for n in inside):
            return False
        for handler in attempt.handlers:
            for n in self._own(handler.body):
                if isinstance(n, ast.Continue) or (isinstance(n, ast.Call) and self.m.qualname(n.func) in SLEEPS):
                    return True
        return False

    def _api_calls(self, stmts: Sequence[ast.AST]) -> Iterator[ApiCall]:
        for node in self._own(stmts):
            if isinstance(node, ast.Call):
                call = self.m.api_call(node)
                if call is not None and call.path:
                    yield call

    def _default_retries(self, call: ApiCall) -> bool:
        """The client of `call` certainly keeps the SDK's default retries: every constructor it
        comes from (in this file, or in the project module it is imported from) sets no
        ``max_retries`` (nor ``**kwargs``), and no ``with_options``/``copy`` on the way sets it."""
        func = call.node.func
        assert isinstance(func, ast.Attribute)
        expr = func.value
        for _ in call.path:
            assert isinstance(expr, ast.Attribute)
            expr = expr.value
        scope = self.m.scope_of.get(call.node)
        return scope is not None and _default_client(self.m, expr, scope, 0)

    # --- OA110 ------------------------------------------------------------------------

    def _no_timeouts(self) -> Iterator[Issue]:
        service = self.part_of_the_service or any(
            isinstance(n, ast.Call) and self.m.qualname(n.func) in APP_CLASSES for n in ast.walk(self.m.tree)
        )
        for node in ast.walk(self.m.tree):
            if not isinstance(node, ast.Call):
                continue
            timeout = _keyword(node, "timeout")
            http_client = _keyword(node, "http_client")
            if (
                timeout is None
                and self.m.constructor_kind(node)
                and isinstance(http_client, ast.Call)
                and self.m.qualname(http_client.func) in HTTP_CLIENTS
            ):
                timeout = _keyword(http_client, "timeout")  # the SDK adopts the http_client's timeout
            elif not (self.m.constructor_kind(node) or self.m.api_call(node) or self._client_copy(node)):
                continue
            if not (isinstance(timeout, ast.Constant) and timeout.value is None):
                continue
            scope = self.m.function_scope(node)
            if service or (scope is not None and scope.is_async):
                yield self.issue("OA110", timeout)

    def _client_copy(self, node: ast.Call) -> bool:
        """``client.with_options(...)`` / ``client.copy(...)`` on a known client."""
        func = node.func
        scope = self.m.scope_of.get(node)
        return (
            isinstance(func, ast.Attribute)
            and func.attr in {"with_options", "copy"}
            and scope is not None
            and self.m.client_kind(func.value, scope) is not None
        )

    # --- OA111 ------------------------------------------------------------------------

    def _sync_token_providers(self) -> Iterator[Issue]:
        for node in ast.walk(self.m.tree):
            if not (isinstance(node, ast.Call) and self.m.qualname(node.func) in ASYNC_AZURE):
                continue
            provider = _keyword(node, "azure_ad_token_provider")
            scope = self.m.scope_of.get(node)
            if provider is not None and scope is not None and self._sync_provider(provider, scope, 0):
                yield self.issue("OA111", provider)

    def _sync_provider(self, expr: ast.expr, scope: Scope, depth: int) -> bool:
        """`expr` is certainly a plain function returning the token (not an awaitable)."""
        if depth > 8:
            return False
        if isinstance(expr, ast.Call):
            if self.m.qualname(expr.func) in SYNC_TOKEN_PROVIDERS:
                return True
            # a getter that returns one: `def _provider(): ... return get_bearer_token_provider(...)`
            owner, fn = self.m._factory(expr.func, scope)
            if owner is not self.m or not isinstance(fn, ast.FunctionDef) or fn.decorator_list:
                return False
            returns = [n for n in self.m.walk_own(fn) if isinstance(n, ast.Return)]
            return bool(returns) and all(
                r.value is not None and self._sync_provider(r.value, self.m.scope_of[r], depth + 1) for r in returns
            )
        if not isinstance(expr, ast.Name):
            return False
        # `provider = None` beside `provider = get_bearer_token_provider(...)` (lazy set-up): the
        # client calls it only once it is set
        bindings = [
            b for b in self.m.lookup(expr.id, scope) or [] if not (b.how == "assign" and is_none_constant(b.value))
        ]
        if len(bindings) != 1:
            return False
        binding = bindings[0]
        if binding.how == "assign" and binding.value is not None:
            return self._sync_provider(binding.value, binding.scope, depth + 1)
        if binding.how != "def":
            return False
        defs = [
            n
            for n in ast.walk(binding.scope.node)
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
            and n.name == expr.id
            and self.m.scope_of.get(n) is binding.scope
        ]
        if len(defs) != 1 or not isinstance(defs[0], ast.FunctionDef) or self._is_generator(defs[0]):
            return False
        # a plain def that fetches the token itself (`credential.get_token(...)`, which blocks while it
        # refreshes); one that returns a call's result may hand back a coroutine, which the SDK awaits
        own = list(self.m.walk_own(defs[0]))
        fetches = any(
            isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in TOKEN_FETCHES for n in own
        )
        return fetches and not any(isinstance(n, ast.Return) and isinstance(n.value, ast.Call) for n in own)

    # --- OA112 ------------------------------------------------------------------------

    def _sync_client_dependencies(self) -> Iterator[Issue]:
        found: list[FunctionNode] = []
        for route in self.routes:
            if not isinstance(route, ast.AsyncFunctionDef):
                continue
            for fn in self._dependencies_of(route):
                if fn not in found and self._only_returns_a_client(fn):
                    found.append(fn)
        if self.m.project is not None and self.m.path is not None:
            for path, name in self.m.project.once(_depends_targets_in):
                target = self.m.global_function(name) if path == self.m.path else None
                if target is not None and target not in found and self._only_returns_a_client(target):
                    found.append(target)
        for fn in found:
            yield self.issue("OA112", fn)

    def _dependencies_of(self, route: ast.AsyncFunctionDef) -> Iterator[FunctionNode]:
        """Module-level functions `route` depends on through ``Depends(fn)`` in its parameters
        (directly or through a module-level alias such as ``Client = Annotated[..., Depends(fn)]``)
        or its decorator's ``dependencies=[...]``."""
        args = route.args
        exprs: list[ast.expr] = [
            *(a.annotation for a in [*args.posonlyargs, *args.args, *args.kwonlyargs] if a.annotation is not None),
            *args.defaults,
            *(d for d in args.kw_defaults if d is not None),
        ]
        for deco in route.decorator_list:
            if isinstance(deco, ast.Call) and (deps := _keyword(deco, "dependencies")) is not None:
                exprs.append(deps)
        for expr in exprs:
            for node in ast.walk(expr):
                if isinstance(node, ast.Name) and not self.m.is_depends(node):
                    bindings = self.m.module_scope.bindings.get(node.id, [])
                    if len(bindings) == 1 and bindings[0].value is not None and bindings[0].how == "assign":
                        yield from self._depends_targets(bindings[0].value)
            yield from self._depends_targets(expr)

    def _depends_targets(self, expr: ast.expr) -> Iterator[FunctionNode]:
        for node in ast.walk(expr):
            if isinstance(node, ast.Call) and self.m.is_depends(node.func):
                target = node.args[0] if node.args else _keyword(node, "dependency")
                fn = self._module_function(target, node)
                if fn is not None:
                    yield fn

    def _only_returns_a_client(self, fn: FunctionNode) -> bool:
        """A plain def whose whole body is ``return <name or attribute>``, and that is a client."""
        if not isinstance(fn, ast.FunctionDef):
            return False
        body = fn.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            body = body[1:]  # docstring
        if len(body) != 1 or not isinstance(body[0], ast.Return) or body[0].value is None:
            return False
        value = body[0].value
        if any(not isinstance(n, (ast.Attribute, ast.Name, ast.Load)) for n in ast.walk(value)):
            return False
        if fn.returns is not None and (
            self.m.annotation_kind(fn.returns, self.m.module_scope) or self._client_holder(fn.returns)
        ):
            return True
        scope = self.m.scope_of.get(value)
        return scope is not None and self.m.client_kind(value, scope) is not None

    def _client_holder(self, annotation: ast.expr) -> bool:
        """The annotation names a class (here, or imported from the project) that holds an
        OpenAI client: ``self.client = OpenAI(...)`` in one of its methods."""
        if not isinstance(annotation, ast.Name):
            return False
        owner, name = self.m, annotation.id
        bindings = self.m.module_scope.bindings.get(name, [])
        if len(bindings) == 1 and bindings[0].how == "import" and bindings[0].target:
            located = self.m._locate(bindings[0].target)
            if located is None:
                return False
            owner, name = located
        classes = [c for c in owner.class_bindings if c.name == name and owner.scope_of.get(c) is owner.module_scope]
        return len(classes) == 1 and any(
            owner._binding_kind(b) for bs in owner.class_bindings[classes[0]].values() for b in bs
        )


def _route_handlers(m: Module) -> set[FunctionNode]:
    """The module's route handlers: decorated with a route method, or given to ``add_api_route``."""
    routes: set[FunctionNode] = set()
    for node in ast.walk(m.tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for deco in node.decorator_list:
                if (
                    isinstance(deco, ast.Call)
                    and isinstance(deco.func, ast.Attribute)
                    and deco.func.attr in ROUTE_METHODS
                ):
                    routes.add(node)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in {"add_api_route", "add_api_websocket_route"}
        ):
            endpoint = node.args[1] if len(node.args) > 1 else _keyword(node, "endpoint")
            fn = _module_function(m, endpoint, node)
            if fn is not None:
                routes.add(fn)
    return routes


def _module_function(m: Module, expr: ast.expr | None, at: ast.AST) -> FunctionNode | None:
    if not isinstance(expr, ast.Name):
        return None
    return m.function_named(expr.id, m.scope_of.get(at, m.module_scope))


def _route_callees(project: Project) -> set[tuple[Path, str]]:
    """Functions that route handlers anywhere in the project call by an imported name:
    (the file defining it, its name). Read through `Project.once`."""
    callees: set[tuple[Path, str]] = set()
    for module in project.modules():
        for route in _route_handlers(module):
            for node in module.walk_own(route):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                    name = module.qualname(node.func)
                    located = project.locate(module.path, name) if name and module.path else None
                    if located is not None and located[0].path is not None:
                        callees.add((located[0].path, located[1]))
    return callees


def _builds_app(m: Module) -> bool:
    return any(isinstance(n, ast.Call) and m.qualname(n.func) in FASTAPI_CLASSES for n in ast.walk(m.tree))


def _imported_files(project: Project, module: Module) -> set[Path | None]:
    """The project files `module` imports anywhere (a function's own imports included)."""
    assert module.path is not None
    dotted: list[str] = []
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            dotted += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            joiner = "" if base.endswith(".") or not base else "."
            dotted += [base or "."] + [f"{base}{joiner}{alias.name}" for alias in node.names]
    return {project.module_file(module.path, name) for name in dotted}


def _closed_names(tree: ast.AST) -> set[str]:
    """The last name of everything closed in `tree`: ``x.close()``, ``await app.state.x.aclose()``,
    ``async with x``, ``stack.push_async_callback(x.close)`` (all give ``x``)."""
    closed: set[str] = set()
    for node in ast.walk(tree):
        target: ast.expr | None = None
        if isinstance(node, ast.Attribute) and node.attr in CLOSE_METHODS:
            target = node.value
        elif isinstance(node, ast.withitem):
            target = node.context_expr
        if isinstance(target, ast.Name):
            closed.add(target.id)
        elif isinstance(target, ast.Attribute):
            closed.add(target.attr)
    return closed


def _served_elsewhere(project: Project) -> set[tuple[Path, str]]:
    """Functions imported from another module whose result a ``StreamingResponse`` serves:
    ``StreamingResponse(make_stream(...))``, or through a local bound once to that call."""
    served: set[tuple[Path, str]] = set()
    for module in project.modules():
        for node in ast.walk(module.tree):
            if not isinstance(node, ast.Call) or module.path is None:
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
            content = (
                (node.args[0] if node.args else _keyword(node, "content")) if name in STREAMING_RESPONSES else None
            )
            if isinstance(content, ast.Name):
                bindings = module.lookup(content.id, module.scope_of.get(node, module.module_scope)) or []
                content = bindings[0].value if len(bindings) == 1 and bindings[0].how == "assign" else None
            if isinstance(content, ast.Call) and isinstance(content.func, ast.Name):
                qualname = module.qualname(content.func)
                located = project.locate(module.path, qualname) if qualname else None
                if located is not None and located[0].path is not None:
                    served.add((located[0].path, located[1]))
    return served


def _depends_targets_in(project: Project) -> set[tuple[Path, str]]:
    """Every function given to ``Depends(...)`` anywhere in the project: (its file, its name)."""
    targets: set[tuple[Path, str]] = set()
    for module in project.modules():
        for node in ast.walk(module.tree):
            if not (isinstance(node, ast.Call) and module.is_depends(node.func)):
                continue
            target = node.args[0] if node.args else _keyword(node, "dependency")
            if not isinstance(target, ast.Name) or module.path is None:
                continue
            if module.function_named(target.id, module.scope_of.get(node, module.module_scope)) is not None:
                targets.add((module.path, target.id))
            elif (
                (name := module.qualname(target))
                and (located := project.locate(module.path, name))
                and located[0].path is not None
            ):
                targets.add((located[0].path, located[1]))
    return targets


def _constructs_and_returns(m: Module, fn: FunctionNode) -> bool:
    """A plain, undecorated factory every ``return`` of which builds a new client."""
    if not isinstance(fn, ast.FunctionDef) or fn.decorator_list:
        return False
    returns = [n for n in m.walk_own(fn) if isinstance(n, ast.Return)]
    return bool(returns) and all(m.constructor_kind(r.value) for r in returns if r.value is not None)


def _default_client(m: Module, expr: ast.expr, scope: Scope, depth: int) -> bool:
    """`expr`, evaluated in `m`, is a client built with the SDK's default ``max_retries``."""
    if depth > 8:
        return False
    if isinstance(expr, ast.Call):
        if any(k.arg in {"max_retries", None} for k in expr.keywords):
            return False
        if m.constructor_kind(expr):
            return True
        func = expr.func
        return (
            isinstance(func, ast.Attribute)
            and func.attr in {"with_options", "copy"}
            and _default_client(m, func.value, scope, depth + 1)
        )
    bindings: list[Binding] | None = None
    if isinstance(expr, ast.Name):
        bindings = m.lookup(expr.id, scope)
    elif isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Attribute) and expr.value.attr == "state":
        bindings = m.state_bindings.get(expr.attr)
    if bindings and len(bindings) == 1 and bindings[0].how == "import" and bindings[0].target:
        located = m._locate(bindings[0].target)  # `from app.clients import client`
        if located is None:
            return False
        m, bindings = located[0], located[0].module_scope.bindings.get(located[1])
    if not bindings:
        return False
    return all(
        b.value is not None and b.how in {"assign", "with"} and _default_client(m, b.value, b.scope, depth + 1)
        for b in bindings
    )


def _ancestors(m: Module, node: ast.AST) -> Iterator[ast.AST]:
    parent = m.parents.get(node)
    while parent is not None:
        yield parent
        parent = m.parents.get(parent)


def _contains(tree: ast.AST, node: ast.AST) -> bool:
    return any(n is node for n in ast.walk(tree))


def _statement_chain(m: Module, node: ast.stmt, fn: ast.AST) -> list[tuple[ast.stmt, list[ast.stmt]]]:
    """`node` and each statement around it, up to `fn`'s body, each with the block holding it
    (the ``body``, ``orelse``, ``finalbody`` or handler body it sits in)."""
    chain: list[tuple[ast.stmt, list[ast.stmt]]] = []
    stmt: ast.AST | None = node
    while isinstance(stmt, ast.stmt) and stmt is not fn:
        parent = m.parents.get(stmt)
        if parent is None:
            break
        blocks = [getattr(parent, f, None) for f in ("body", "orelse", "finalbody")]
        block = next((b for b in blocks if isinstance(b, list) and any(s is stmt for s in b)), None)
        if block is None:
            break
        chain.append((stmt, block))
        stmt = m.parents.get(parent) if isinstance(parent, (ast.ExceptHandler, ast.match_case)) else parent
    return chain


def _caught(handler: ast.ExceptHandler) -> list[ast.expr]:
    """The exception classes a handler names (none for a bare ``except:``)."""
    if handler.type is None:
        return []
    return list(handler.type.elts) if isinstance(handler.type, ast.Tuple) else [handler.type]


def _closes_something(node: ast.AST) -> bool:
    """A ``.close()`` / ``.aclose()`` call anywhere in `node`."""
    return any(
        isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in CLOSE_METHODS
        for n in ast.walk(node)
    )


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)
