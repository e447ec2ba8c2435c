"""Name resolution for the doctor: which expressions are OpenAI clients, sync or async.

A flow-insensitive, per-scope model of one module: every name's bindings in its scope
(assignments, ``with ... as``, parameters and their annotations), ``self.X`` bindings
from all methods of a class, and ``<obj>.state.X`` bindings from anywhere in the
module (``app.state.openai = client`` in a lifespan). A name is a client only when
*every* binding of it in its scope resolves to the same kind of client: a name that is
sometimes something else is unknown, and unknown is never flagged (a plain ``x = None``
beside the client does not count: a call on None raises before any request).

Clients come from the SDK's classes and their exported aliases (``openai.Client``,
``AsyncClient``), through the module under any alias; from a factory in the same file
(annotated, or every ``return`` agreeing), a method or ``@property`` of the same class,
langsmith's ``wrap_openai``; and the module-level client of openai >= 1
(``openai.chat.completions.create`` is a sync client underneath). Imports are resolved
per scope: a name bound otherwise where it is used (a local ``Client`` class, a
parameter) is not the import.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from .project import Project

__all__ = ["ApiCall", "Kind", "Module", "Scope"]

Kind = Literal["sync", "async"]

# The client classes and the SDK's exported aliases of them (openai 3.57,
# openai/__init__.py: ``from ._client import Client, OpenAI, ..., AsyncClient, AsyncOpenAI``;
# openai/_client.py: ``Client = OpenAI`` and ``AsyncClient = AsyncOpenAI``;
# ``from .lib.azure import AzureOpenAI, AsyncAzureOpenAI`` and ``from .lib.bedrock import
# BedrockOpenAI, AsyncBedrockOpenAI``, where ``class BedrockOpenAI(OpenAI)`` and
# ``class AsyncBedrockOpenAI(AsyncOpenAI)``).
SYNC_CLASSES = frozenset(
    {
        "openai.OpenAI",
        "openai.Client",
        "openai.AzureOpenAI",
        "openai.BedrockOpenAI",
        "openai._client.OpenAI",
        "openai._client.Client",
        "openai.lib.azure.AzureOpenAI",
        "openai.lib.bedrock.BedrockOpenAI",
    }
)
ASYNC_CLASSES = frozenset(
    {
        "openai.AsyncOpenAI",
        "openai.AsyncClient",
        "openai.AsyncAzureOpenAI",
        "openai.AsyncBedrockOpenAI",
        "openai._client.AsyncOpenAI",
        "openai._client.AsyncClient",
        "openai.lib.azure.AsyncAzureOpenAI",
        "openai.lib.bedrock.AsyncBedrockOpenAI",
    }
)
# The resources of the module-level client of openai >= 1: ``openai.chat.completions.create``
# goes through a lazily built sync ``OpenAI`` (openai/__init__.py: ``class _ModuleClient(OpenAI)``,
# ``_load_client() -> OpenAI``, and ``from ._module_client import beta as beta, chat as chat, ...``,
# each a ``LazyProxy`` of that client's resource). openai 0.x's ``openai.ChatCompletion.create``
# and ``acreate`` are not among them: that API is gone from openai >= 1 (lib/_old_api.py only
# raises ``APIRemovedInV1``), so it is left alone.
MODULE_RESOURCES = frozenset(
    {
        "admin",
        "audio",
        "batches",
        "beta",
        "chat",
        "completions",
        "containers",
        "content_provenance_checks",
        "conversations",
        "decisions",
        "embeddings",
        "evals",
        "files",
        "fine_tuning",
        "images",
        "live",
        "models",
        "moderations",
        "realtime",
        "responses",
        "safety",
        "skills",
        "uploads",
        "vector_stores",
        "videos",
        "webhooks",
    }
)
# Decorators that keep a factory's return value (a cached factory returns the same client).
KEEPS_RESULT = frozenset({"functools.lru_cache", "functools.cache"})
# Decorators that make a method an attribute whose value is what the method returns.
PROPERTIES = frozenset({"builtins.property", "functools.cached_property"})
BUILTINS = frozenset({"property", "GeneratorExit"})  # builtins the rules name, when not rebound in the file
# Functions that return the client they are given, patched in place: langsmith's
# ``def wrap_openai(client: C, *, ...) -> C`` (langsmith/wrappers/_openai.py) wraps
# ``chat.completions.create`` and ``completions.create`` keeping each sync or async
# (``acreate if run_helpers.is_async(original_create) else create``) and ends ``return client``.
RETURNS_ITS_CLIENT = frozenset({"langsmith.wrappers.wrap_openai", "langsmith.wrappers._openai.wrap_openai"})
# Modules that re-export openai's names: langfuse's drop-in (langfuse/openai.py: ``import
# openai`` and ``from openai import AsyncAzureOpenAI, AsyncOpenAI, AzureOpenAI, OpenAI``,
# patching the resources' ``create`` in place with wrapt, sync and async kept apart), used
# as ``from langfuse.openai import openai`` or ``from langfuse.openai import AsyncOpenAI``.
REEXPORTS = {
    "langfuse.openai.openai": "openai",
    **{f"langfuse.openai.{c}": f"openai.{c}" for c in ("OpenAI", "AsyncOpenAI", "AzureOpenAI", "AsyncAzureOpenAI")},
}
# Methods of a client that return another client sharing its pool.
CLIENT_COPY_METHODS = frozenset({"with_options", "copy"})
# Attributes that return a resource wrapper, not a response.
WRAPPERS = frozenset({"with_raw_response", "with_streaming_response"})
# Methods that return a context manager (or, for `list`, an async paginator that is
# both awaitable and async-iterable) rather than a coroutine.
MANAGER_METHODS = frozenset({"stream", "connect"})
ANNOTATED = frozenset({"typing.Annotated", "typing_extensions.Annotated"})
OPTIONAL = frozenset({"typing.Optional", "typing_extensions.Optional"})
DEPENDS = frozenset({"fastapi.Depends", "fastapi.Security", "fastapi.params.Depends", "fastapi.params.Security"})

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass(eq=False)
class Scope:
    """A module, function, lambda or class body."""

    node: ast.AST
    parent: Scope | None
    bindings: dict[str, list[Binding]] = field(default_factory=dict)
    global_names: set[str] = field(default_factory=set)

    @property
    def is_class(self) -> bool:
        return isinstance(self.node, ast.ClassDef)

    @property
    def is_async(self) -> bool:
        return isinstance(self.node, ast.AsyncFunctionDef)

    @property
    def is_module(self) -> bool:
        return isinstance(self.node, ast.Module)

    def bind(self, name: str, binding: Binding) -> None:
        self.bindings.setdefault(name, []).append(binding)


@dataclass(eq=False)
class Binding:
    """One way a name (or attribute) gets a value: `value` evaluated in `scope`."""

    scope: Scope
    value: ast.expr | None = None  # None: unknown (import, loop target, def, ...)
    annotation: ast.expr | None = None
    how: str = "assign"  # assign | with | param | def | import
    target: str | None = None  # for an import: the qualified name it binds


@dataclass
class ApiCall:
    """A call of an endpoint method on a client: ``client.chat.completions.create(...)``."""

    node: ast.Call
    kind: Kind
    path: list[str]  # attributes between the client and the method
    method: str

    @property
    def manager(self) -> bool:
        """Returns a context manager (streaming response, stream helper, realtime connection)."""
        return "with_streaming_response" in self.path or self.method in MANAGER_METHODS

    @property
    def streams(self) -> bool:
        return any(
            k.arg == "stream" and isinstance(k.value, ast.Constant) and k.value.value is True
            for k in self.node.keywords
        )


class Module:
    """One parsed module (or notebook, cells joined) with its scopes and bindings."""

    def __init__(self, tree: ast.Module, project: Project | None = None, path: Path | None = None) -> None:
        self.tree = tree
        self.project = project if path is not None else None  # other modules, for what this one imports
        self.path = path
        self.imports: dict[str, str] = {}
        self.parents: dict[ast.AST, ast.AST] = {}
        self.scope_of: dict[ast.AST, Scope] = {}
        self.state_bindings: dict[str, list[Binding]] = {}
        self.name_attribute_bindings: dict[str, list[tuple[ast.Name, Binding]]] = {}
        self.class_bindings: dict[ast.ClassDef, dict[str, list[Binding]]] = {}
        self.module_scope = Scope(tree, None)
        self.functions: dict[str, FunctionNode] = {}  # module-level defs
        self._memo: dict[int, Kind | None] = {}
        self._returns_memo: dict[FunctionNode, Kind | None] = {}
        self._build(tree, self.module_scope)

    # --- building ---------------------------------------------------------------------

    def _build(self, node: ast.AST, scope: Scope) -> None:
        for child in ast.iter_child_nodes(node):
            self.parents[child] = node
            self._visit(child, scope)

    def _visit(self, node: ast.AST, scope: Scope) -> None:
        self.scope_of[node] = scope
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            self._visit_function(node, scope)
        elif isinstance(node, ast.Lambda):
            inner = Scope(node, scope)
            self._bind_params(node.args, inner, node)
            self._visit_child(node.body, node, inner)
        elif isinstance(node, ast.ClassDef):
            self._visit_class(node, scope)
        else:
            self._bind_names(node, scope)
            self._build(node, scope)

    def _visit_child(self, child: ast.AST, parent: ast.AST, scope: Scope) -> None:
        self.parents[child] = parent
        self._visit(child, scope)

    def _visit_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef, scope: Scope) -> None:
        scope.bind(node.name, Binding(scope, how="def"))
        if scope.is_module:
            self.functions[node.name] = node
        # decorators, defaults and the return annotation are evaluated in the enclosing scope
        outer = [*node.decorator_list, *node.args.defaults, *node.args.kw_defaults, node.returns]
        for expr in outer:
            if expr is not None:
                self._visit_child(expr, node, scope)
        inner = Scope(node, scope)
        self._bind_params(node.args, inner, node)
        for stmt in node.body:
            self._visit_child(stmt, node, inner)

    def _visit_class(self, node: ast.ClassDef, scope: Scope) -> None:
        scope.bind(node.name, Binding(scope, how="def"))
        inner = Scope(node, scope)
        bindings = self.class_bindings.setdefault(node, {})
        for expr in [*node.decorator_list, *node.bases, *(k.value for k in node.keywords)]:
            self._visit_child(expr, node, scope)
        for stmt in node.body:
            self._visit_child(stmt, node, inner)
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                bindings.setdefault(stmt.target.id, []).append(Binding(inner, stmt.value, stmt.annotation))
            elif isinstance(stmt, ast.Assign):
                for t in stmt.targets:
                    if isinstance(t, ast.Name):
                        bindings.setdefault(t.id, []).append(Binding(inner, stmt.value))

    def _bind_names(self, node: ast.AST, scope: Scope) -> None:
        """The names a statement or expression (other than def, lambda and class) binds in `scope`."""
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            self._bind_imports(node, scope)
        elif isinstance(node, ast.Global):
            scope.global_names.update(node.names)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                self._bind_target(target, node.value, scope)
        elif isinstance(node, ast.AnnAssign):
            self._bind_target(node.target, node.value, scope, node.annotation)
        elif isinstance(node, ast.AugAssign):
            self._bind_target(node.target, None, scope)
        elif isinstance(node, ast.NamedExpr):
            self._bind_target(node.target, node.value, scope)
        elif isinstance(node, (ast.For, ast.AsyncFor)):
            self._bind_target(node.target, None, scope)
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                if item.optional_vars is not None:
                    self._bind_target(item.optional_vars, item.context_expr, scope, how="with")
        elif isinstance(node, ast.ExceptHandler) and node.name:
            scope.bind(node.name, Binding(scope))
        # comprehension variables stay inside the comprehension: nothing to bind here

    def _bind_imports(self, node: ast.Import | ast.ImportFrom, scope: Scope) -> None:
        for alias in node.names:
            if isinstance(node, ast.Import):
                local = alias.asname or alias.name.split(".")[0]
                self.imports[local] = alias.name if alias.asname else local
            elif alias.name != "*" and (node.module or node.level):
                # a relative import keeps its dots (``.clients.client``): no rule's name starts with one
                local = alias.asname or alias.name
                module = "." * node.level + (f"{node.module}." if node.module else "")
                self.imports[local] = f"{module}{alias.name}"
            else:
                continue
            scope.bind(local, Binding(scope, how="import", target=self.imports[local]))

    def _bind_params(self, args: ast.arguments, scope: Scope, fn: ast.AST) -> None:
        positional = [*args.posonlyargs, *args.args]
        defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
        pairs = list(zip(positional, defaults, strict=True)) + list(zip(args.kwonlyargs, args.kw_defaults, strict=True))
        for arg, default in pairs:
            if arg.annotation is not None:
                self.parents[arg.annotation] = fn
                self._visit(arg.annotation, scope.parent or scope)
            scope.bind(arg.arg, Binding(scope, default, arg.annotation, how="param"))
        for extra in (args.vararg, args.kwarg):
            if extra is not None:
                scope.bind(extra.arg, Binding(scope, how="param"))

    def _bind_target(
        self,
        target: ast.expr,
        value: ast.expr | None,
        scope: Scope,
        annotation: ast.expr | None = None,
        how: str = "assign",
    ) -> None:
        if isinstance(target, ast.Name):
            # a name declared `global` is bound in the module, its value evaluated here
            holder = self.module_scope if target.id in scope.global_names else scope
            holder.bind(target.id, Binding(scope, value, annotation, how))
        elif isinstance(target, (ast.Tuple, ast.List)):
            # `client, model = OpenAI(), "m"`: element by element when the shapes match
            values: list[ast.expr | None] = [None] * len(target.elts)
            if (
                isinstance(value, (ast.Tuple, ast.List))
                and len(value.elts) == len(target.elts)
                and not any(isinstance(e, ast.Starred) for e in [*target.elts, *value.elts])
            ):
                values = list(value.elts)
            for element, element_value in zip(target.elts, values, strict=True):
                if isinstance(element, ast.Starred):
                    self._bind_target(element.value, None, scope)
                else:
                    self._bind_target(element, element_value, scope, how=how if element_value is not None else "assign")
        elif isinstance(target, ast.Attribute):
            binding = Binding(scope, value, annotation, how)
            if isinstance(target.value, ast.Attribute) and target.value.attr == "state":
                self.state_bindings.setdefault(target.attr, []).append(binding)
            cls = self._self_class(target.value, scope)
            if cls is not None:
                self.class_bindings[cls].setdefault(target.attr, []).append(binding)
            elif isinstance(target.value, ast.Name):  # `Service.client = ...`: judged when read
                self.name_attribute_bindings.setdefault(target.attr, []).append((target.value, binding))

    def _self_class(self, expr: ast.expr, scope: Scope) -> ast.ClassDef | None:
        """The class whose instance `expr` is, when `expr` is a method's first parameter."""
        fn = scope.node
        if not isinstance(expr, ast.Name) or not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return None
        params = [*fn.args.posonlyargs, *fn.args.args]
        if not params or params[0].arg != expr.id or scope.parent is None or not scope.parent.is_class:
            return None
        cls = scope.parent.node
        return cls if isinstance(cls, ast.ClassDef) else None

    # --- queries ----------------------------------------------------------------------

    def qualname(self, expr: ast.expr) -> str | None:
        """``openai.OpenAI`` for `OA` after ``from openai import OpenAI as OA``, and so on."""
        if isinstance(expr, ast.Name):
            scope = self.scope_of.get(expr)
            if scope is None:  # a node outside the tree (a string annotation, parsed)
                return self.imports.get(expr.id)
            # the import the name refers to from where it stands: a name also bound
            # otherwise in that scope (a local class `Client`, a parameter) is not the import
            bindings = self.lookup(expr.id, scope) or []
            if not bindings and expr.id in BUILTINS:
                return f"builtins.{expr.id}"
            imported = {b.target for b in bindings if b.how == "import"}
            # `try: from openai import OpenAI` / `except ImportError: OpenAI = None`: where
            # `OpenAI(...)` or `OpenAI.x` works at all, the name is the import
            others = [
                b for b in bindings if b.how != "import" and not (b.how == "assign" and is_none_constant(b.value))
            ]
            if len(imported) == 1 and others and all(self._rebinds_itself(b, expr.id) for b in others):
                # `import openai` then `openai = openai.OpenAI()`: where `openai.X` works at
                # all (a client has no attribute `OpenAI`), `openai` is still the module
                others = []
            name = imported.pop() if len(imported) == 1 and not others else None
            return REEXPORTS.get(name, name) if name else None
        if isinstance(expr, ast.Attribute):
            base = self.qualname(expr.value)
            return REEXPORTS.get(f"{base}.{expr.attr}", f"{base}.{expr.attr}") if base else None
        return None

    @staticmethod
    def _rebinds_itself(binding: Binding, name: str) -> bool:
        """``name = name.Something(...)``: a name rebound to a call of its own attribute."""
        value = binding.value
        return (
            binding.how == "assign"
            and isinstance(value, ast.Call)
            and isinstance(value.func, ast.Attribute)
            and isinstance(value.func.value, ast.Name)
            and value.func.value.id == name
        )

    def class_kind(self, expr: ast.expr) -> Kind | None:
        """The kind of client class `expr` names (``OpenAI``, ``openai.AsyncOpenAI``)."""
        name = self.qualname(expr)
        if name in SYNC_CLASSES:
            return "sync"
        if name in ASYNC_CLASSES:
            return "async"
        return None

    def constructor_kind(self, call: ast.AST) -> Kind | None:
        return self.class_kind(call.func) if isinstance(call, ast.Call) else None

    def lookup(self, name: str, scope: Scope) -> list[Binding] | None:
        """The bindings `name` refers to from `scope` (Python's LEGB, class bodies skipped)."""
        holder = self.defining_scope(name, scope)
        return holder.bindings[name] if holder is not None else None

    def defining_scope(self, name: str, scope: Scope) -> Scope | None:
        """The scope `name` refers to from `scope`: where its bindings are held."""
        if name in scope.global_names:
            return self.module_scope if name in self.module_scope.bindings else None
        current: Scope | None = scope
        first = True
        while current is not None:
            if (first or not current.is_class) and name in current.bindings:
                return current
            first = False
            current = current.parent
        return None

    def function_named(self, name: str, scope: Scope) -> FunctionNode | None:
        """The module-level function `name` refers to from `scope`, if it is one."""
        bindings = self.lookup(name, scope)
        if bindings and all(b.how == "def" for b in bindings) and bindings[0].scope.is_module:
            return self.functions.get(name)
        return None

    def client_kind(self, expr: ast.expr, scope: Scope) -> Kind | None:
        """``"sync"``/``"async"`` when `expr` certainly evaluates to an OpenAI client."""
        if isinstance(expr, ast.Call):
            kind = self.constructor_kind(expr)
            if kind:
                return kind
            func = expr.func
            if isinstance(func, ast.Attribute) and func.attr in CLIENT_COPY_METHODS:
                return self.client_kind(func.value, scope)
            if expr.args and not isinstance(expr.args[0], ast.Starred) and self.qualname(func) in RETURNS_ITS_CLIENT:
                return self.client_kind(expr.args[0], scope)
            owner, fn = self._factory(func, scope)
            return owner.returned_kind(fn) if isinstance(fn, ast.FunctionDef) else None
        if isinstance(expr, ast.Await) and isinstance(expr.value, ast.Call):
            # `await make_client()`, `await self.make_client()` of an `async def` factory
            owner, fn = self._factory(expr.value.func, scope)
            return owner.returned_kind(fn) if isinstance(fn, ast.AsyncFunctionDef) else None
        if isinstance(expr, ast.IfExp):
            # `AzureOpenAI() if azure else OpenAI()`: both branches the same kind (a None
            # branch aside, as in `_unify`)
            branches = [b for b in (expr.body, expr.orelse) if not is_none_constant(b)]
            kinds = {self.client_kind(b, scope) for b in branches}
            return kinds.pop() if len(kinds) == 1 else None
        if isinstance(expr, ast.Name):
            bindings = self.lookup(expr.id, scope)
            return self._unify(bindings) if bindings else None
        if isinstance(expr, ast.Attribute):
            if isinstance(expr.value, ast.Attribute) and expr.value.attr == "state":
                return self._state_kind(expr.attr)
            cls = self._self_class(expr.value, scope)
            if cls is not None:
                return self._self_attribute_kind(cls, expr.attr)
            cls = self._class_named(expr.value, scope)
            if cls is not None and self._method(cls, expr.attr) is None:  # `Service.client`
                # with every `Service.client = ...` anywhere (a name spelled the same counts)
                outside = [b for base, b in self.name_attribute_bindings.get(expr.attr, []) if base.id == cls.name]
                return self._unify([*self.class_bindings[cls].get(expr.attr, []), *outside])
            name = self.qualname(expr)  # `clients.openai_client` after `from app import clients`
            if name is not None and self.project is not None:
                return self._imported_kind(name)
        return None

    @functools.cached_property
    def called_names(self) -> frozenset[str]:
        """The names this module calls: ``f(...)`` gives ``f``, ``x.f(...)`` gives ``f``."""
        return frozenset(
            n.func.id if isinstance(n.func, ast.Name) else n.func.attr
            for n in ast.walk(self.tree)
            if isinstance(n, ast.Call) and isinstance(n.func, (ast.Name, ast.Attribute))
        )

    # --- other modules of the project -------------------------------------------------

    def _imported_kind(self, target: str) -> Kind | None:
        """The kind of client an imported name is, from the project module that binds it."""
        located = self._locate(target)
        return located[0].global_kind(located[1]) if located else None

    def _locate(self, target: str) -> tuple[Module, str] | None:
        if self.project is None or self.path is None:
            return None
        return self.project.locate(self.path, target)

    def global_kind(self, name: str) -> Kind | None:
        """The kind of client this module's global `name` is (an import followed further)."""
        bindings = self.module_scope.bindings.get(name)
        return self._unify(bindings) if bindings else None

    def global_function(self, name: str) -> FunctionNode | None:
        bindings = self.module_scope.bindings.get(name)
        return self.functions.get(name) if bindings and all(b.how == "def" for b in bindings) else None

    def _factory(self, func: ast.expr, scope: Scope) -> tuple[Module, FunctionNode | None]:
        """The function a call of `func` runs and the module it is defined in: here (see
        `_callee`), or another module of the project it is imported from."""
        fn = self._callee(func, scope)
        if fn is None and isinstance(func, (ast.Name, ast.Attribute)):
            name = self.qualname(func)
            located = self._locate(name) if name else None
            if located is not None:
                return located[0], located[0].global_function(located[1])
        return self, fn

    def _state_kind(self, attr: str) -> Kind | None:
        """``app.state.<attr>``: what every ``<obj>.state.<attr> = ...`` in this module
        assigns; with none here, what every one in the project's other modules assigns
        (the lifespan is often in ``main.py``)."""
        modules = {id(self): self}
        if self.project is not None and attr not in self.state_bindings:
            modules.update((id(m), m) for m in self.project.modules())
        kinds = {
            module._binding_kind(b)
            for module in modules.values()
            for b in module.state_bindings.get(attr, [])
            if not (b.how == "assign" and is_none_constant(b.value))
        }
        return kinds.pop() if len(kinds) == 1 else None

    def _callee(self, func: ast.expr, scope: Scope) -> FunctionNode | None:
        """The function a call of `func` runs: a module-level ``get_client`` or a method
        ``self.get_client`` of the same class (one not also assigned as an attribute)."""
        if isinstance(func, ast.Name):
            return self.function_named(func.id, scope)
        if isinstance(func, ast.Attribute):
            cls = self._self_class(func.value, scope)
            if cls is not None and not self.class_bindings[cls].get(func.attr):
                return self._method(cls, func.attr)
        return None

    def _class_named(self, expr: ast.expr, scope: Scope) -> ast.ClassDef | None:
        """The class `expr` names, when it is a Name bound only by one ``class`` statement."""
        if not isinstance(expr, ast.Name):
            return None
        holder = self.defining_scope(expr.id, scope)
        bindings = holder.bindings[expr.id] if holder is not None else []
        if len(bindings) != 1 or bindings[0].how != "def":
            return None
        classes = [c for c in self.class_bindings if c.name == expr.id and self.scope_of.get(c) is holder]
        return classes[0] if len(classes) == 1 else None

    def returned_kind(self, fn: FunctionNode, keeps: frozenset[str] = KEEPS_RESULT) -> Kind | None:
        """The kind of client a factory returns: its return annotation, else what every one
        of its ``return`` statements returns (``def get_client(): return OpenAI()``), when
        all agree (a ``return None`` aside). A generator, a function with a decorator not in
        `keeps` (``functools.lru_cache``/``cache``) or one returning only None is unknown."""
        if fn.returns is not None:
            return self.annotation_kind(fn.returns, self.module_scope)
        if not all(self.qualname(d.func if isinstance(d, ast.Call) else d) in keeps for d in fn.decorator_list):
            return None
        if fn in self._returns_memo:
            return self._returns_memo[fn]
        self._returns_memo[fn] = None  # recursion resolves to unknown
        kind: Kind | None = None
        own = list(self.walk_own(fn))
        returns = [n for n in own if isinstance(n, ast.Return)]
        if returns and not any(isinstance(n, (ast.Yield, ast.YieldFrom)) for n in own):
            # `return` / `return None` beside `return OpenAI()`: a call on the result
            # succeeds only when it is the client (see `_unify`)
            values = [(r.value, self.scope_of[r]) for r in returns if r.value is not None and not is_none(r.value)]
            kinds = {self.client_kind(value, scope) for value, scope in values}
            kind = kinds.pop() if len(kinds) == 1 else None
        self._returns_memo[fn] = kind
        return kind

    def _method(self, cls: ast.ClassDef, name: str) -> FunctionNode | None:
        """The one method `name` defined in `cls`'s body (None if absent or defined twice)."""
        defs = [s for s in cls.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)) and s.name == name]
        return defs[0] if len(defs) == 1 else None

    def _self_attribute_kind(self, cls: ast.ClassDef, name: str) -> Kind | None:
        """``self.name``: what every ``self.name = ...`` assigns, or what a ``@property`` /
        ``@functools.cached_property`` of that name returns (not both)."""
        bindings = self.class_bindings[cls].get(name, [])
        method = self._method(cls, name)
        if method is None:
            return self._unify(bindings)
        if bindings or not method.decorator_list or not isinstance(method, ast.FunctionDef):
            return None
        return self.returned_kind(method, PROPERTIES)

    def _unify(self, bindings: list[Binding]) -> Kind | None:
        # `x = None` beside `x = OpenAI()` (lazy set-up) leaves x a client wherever a call on
        # it can succeed at all: `None.chat` raises before any request, so a plain
        # assignment of None is no evidence against the client (a parameter's default is).
        kinds = {self._binding_kind(b) for b in bindings if not (b.how == "assign" and is_none_constant(b.value))}
        if len(kinds) == 1:
            return kinds.pop()
        return None

    def _binding_kind(self, binding: Binding) -> Kind | None:
        key = id(binding)
        if key in self._memo:
            return self._memo[key]
        self._memo[key] = None  # a cycle resolves to unknown
        kind: Kind | None = None
        annotation_scope = binding.scope.parent if binding.how == "param" and binding.scope.parent else binding.scope
        if binding.annotation is not None:
            kind = self.annotation_kind(binding.annotation, annotation_scope)
        if binding.how == "import" and binding.target is not None:
            kind = self._imported_kind(binding.target)
        if kind is None and binding.value is not None:
            if binding.how == "param":
                kind = self._dependency_kind(binding.value, annotation_scope)
            else:
                kind = self.client_kind(binding.value, binding.scope)
        self._memo[key] = kind
        return kind

    def _dependency_kind(self, default: ast.expr, scope: Scope) -> Kind | None:
        """``client = Depends(get_client)`` where ``get_client`` is annotated to return a client."""
        if not (isinstance(default, ast.Call) and self.is_depends(default.func)):
            return None
        target = (
            default.args[0]
            if default.args
            else next((k.value for k in default.keywords if k.arg == "dependency"), None)
        )
        if isinstance(target, ast.Name):
            fn = self.function_named(target.id, scope)
            if fn is not None and fn.returns is not None:
                return self.annotation_kind(fn.returns, self.module_scope)
        return None

    def is_depends(self, func: ast.expr) -> bool:
        return self.qualname(func) in DEPENDS

    def annotation_kind(self, annotation: ast.expr, scope: Scope) -> Kind | None:
        if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
            try:
                parsed = ast.parse(annotation.value.strip(), mode="eval").body
            except SyntaxError:
                return None
            return self.annotation_kind(parsed, scope)
        if isinstance(annotation, ast.Subscript):
            outer = self.qualname(annotation.value)
            inner = annotation.slice
            if outer in ANNOTATED and isinstance(inner, ast.Tuple) and inner.elts:
                return self.annotation_kind(inner.elts[0], scope)
            if outer in OPTIONAL:
                return self.annotation_kind(inner, scope)
            return None
        if isinstance(annotation, ast.BinOp) and isinstance(annotation.op, ast.BitOr):
            sides = [annotation.left, annotation.right]
            rest = [s for s in sides if not (isinstance(s, ast.Constant) and s.value is None)]
            if len(rest) == 1:
                return self.annotation_kind(rest[0], scope)
            return None
        return self.class_kind(annotation)

    def api_call(self, call: ast.Call) -> ApiCall | None:
        """`call` as an endpoint call on a known client, or None."""
        func = call.func
        if not isinstance(func, ast.Attribute) or func.attr in CLIENT_COPY_METHODS | WRAPPERS:
            return None
        scope = self.scope_of.get(call)
        if scope is None:
            return None
        path: list[str] = []
        node = func.value
        while True:
            kind = self.client_kind(node, scope)
            if kind:
                break
            resource = self._module_resource(node, path)
            if resource is not None:
                kind = "sync"  # openai.chat.completions.create(...): the module-level client
                path = [*resource, *path]
                break
            if isinstance(node, ast.Attribute):
                path.insert(0, node.attr)
                node = node.value
                continue
            return None
        if not path and func.attr != "close":
            return None  # low-level client.get/post/...: not what the rules are about
        return ApiCall(call, kind, path, func.attr)

    def _module_resource(self, node: ast.expr, path: list[str]) -> list[str] | None:
        """When `node` (followed by `path`) reaches the module-level client: the resource
        `node` itself names (``[]`` for ``openai`` then ``chat``; ``["chat"]`` for ``chat``
        after ``from openai import chat``). None otherwise."""
        scope = self.scope_of.get(node)
        if not isinstance(node, ast.Name) or scope is None:
            return None  # `openai.chat` is judged one step out, at `openai`
        name = self.qualname(node)
        if name == "openai":
            # after `openai = openai.OpenAI()` the name is the module or a sync client: a
            # sync client either way (but not after `openai = openai.AsyncOpenAI()`)
            bindings = self.lookup(node.id, scope) or []
            rebound = [
                b for b in bindings if b.how != "import" and not (b.how == "assign" and is_none_constant(b.value))
            ]
            if any(self._binding_kind(b) != "sync" for b in rebound):
                return None
            return [] if path and path[0] in MODULE_RESOURCES else None
        prefix, _, resource = (name or "").partition(".")
        return [resource] if prefix == "openai" and resource in MODULE_RESOURCES else None

    # --- structure helpers ------------------------------------------------------------

    def function_scope(self, node: ast.AST) -> Scope | None:
        """The innermost function or lambda scope around `node` (None at module level)."""
        scope: Scope | None = self.scope_of.get(node)
        while scope is not None and scope.is_class:
            scope = scope.parent
        return None if scope is None or scope.is_module else scope

    def enclosing_functions(self, node: ast.AST) -> Iterator[FunctionNode]:
        scope = self.scope_of.get(node)
        while scope is not None:
            if isinstance(scope.node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield scope.node
            scope = scope.parent

    def walk_own(self, fn: ast.AST) -> Iterator[ast.AST]:
        """Nodes in `fn`'s body, not descending into nested functions, lambdas or classes."""
        stack = list(reversed(getattr(fn, "body", [])))
        while stack:
            node = stack.pop()
            yield node
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
                continue
            stack.extend(reversed(list(ast.iter_child_nodes(node))))


def is_none(expr: ast.expr | None) -> bool:
    """`expr` is absent (a bare ``return``) or the constant None."""
    return expr is None or (isinstance(expr, ast.Constant) and expr.value is None)


def is_none_constant(expr: ast.expr | None) -> bool:
    """`expr` is the constant None (an absent value is unknown, not None)."""
    return isinstance(expr, ast.Constant) and expr.value is None
