"""The package's layers go one way, and no module touches another's
underscored names.

Read from the source with ``ast``, nothing is imported.  ``LAYERS`` lists the
modules from the bottom up; a module may import only from layers below its
own.  That holds for imports under ``TYPE_CHECKING`` too, with one pair
allowed (the protocol and transport interfaces name each other in
annotations) and the function-local imports of the reactor's conveniences
(``listen_tcp``, ``listen_unix``, ``connect_accepted_socket``...), which
reach up into ``tcp``, ``unix`` and ``streams`` when called.

A name that starts with one underscore may be used only in the module that
defines it (as a class, function, method, slot, annotated or assigned name,
or ``self.``/``cls.`` attribute), or through ``self``/``cls`` by a subclass.
The checker is itself tested below on small made-up modules, so it is known
to catch both kinds of violation.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Set, Tuple

PACKAGE = Path(__file__).resolve().parents[2] / "reactor"

#: Bottom layer first.  A package (``machines``) counts as one module for
#: the rest; inside it, its modules may import each other.
LAYERS: List[Set[str]] = [
    {"timers", "trace", "selector", "addresses", "framing"},
    {"machines"},
    {"loop"},
    {"protocols", "transports", "deadlines"},
    {"streams", "framed", "tls"},
    {"listeners"},
    {"tcp"},
    {"unix", "udp", "pipes"},
    {"process"},
    {"testing", "conversations", "clients", "reconnect"},
    {"demo"},
    {"cli"},
    {"__init__", "__main__"},
]

#: Imports allowed against the layer order: (importer, imported, where),
#: where is "TYPE_CHECKING" or "function".
ALLOWED = {
    ("protocols", "transports", "TYPE_CHECKING"),
    ("transports", "protocols", "TYPE_CHECKING"),
    ("loop", "tcp", "function"),
    ("loop", "unix", "function"),
    ("loop", "udp", "function"),
    ("loop", "pipes", "function"),
    ("loop", "process", "function"),
    ("loop", "streams", "function"),
}

#: Documented standard-library names that happen to start with "_".
STDLIB_PRIVATE_OK = {("os", "_exit")}


def layer_of(module: str) -> int:
    unit = module.split(".")[0]
    for index, layer in enumerate(LAYERS):
        if unit in layer:
            return index
    raise AssertionError(f"reactor.{module} is in no layer: add it to LAYERS")


def _resolve(importer: str, is_package: bool, level: int, module: Optional[str]) -> str:
    """The imported module, relative to the package, of ``from <dots>module``."""
    parts = [] if importer == "__init__" else importer.split(".")
    base = parts if is_package else parts[:-1]
    if level > 1:
        base = base[:len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


class _Imports(ast.NodeVisitor):
    """Every import of the package's own modules: (target, where, line)."""

    def __init__(self, importer: str, is_package: bool) -> None:
        self.importer = importer
        self.is_package = is_package
        self.found: List[Tuple[str, str, int, List[str]]] = []
        self._where = ["module"]

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        guarded = (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
            isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
        if guarded:
            self._where.append("TYPE_CHECKING")
            for child in node.body:
                self.visit(child)
            self._where.pop()
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._where.append("function")
        self.generic_visit(node)
        self._where.pop()

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name == "reactor" or alias.name.startswith("reactor."):
                target = alias.name[len("reactor."):] if "." in alias.name else "__init__"
                self.found.append((target, self._where[-1], node.lineno, []))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        names = [alias.name for alias in node.names]
        if node.level:
            target = _resolve(self.importer, self.is_package, node.level, node.module)
        elif node.module and (node.module == "reactor" or node.module.startswith("reactor.")):
            target = node.module[len("reactor."):] if "." in node.module else ""
        else:
            return
        if target == "":  # "from . import x": each name is a module
            for name in names:
                self.found.append((name, self._where[-1], node.lineno, []))
        else:
            self.found.append((target, self._where[-1], node.lineno, names))


def _defined_names(tree: ast.AST) -> Set[str]:
    """The names a module defines (see the module docstring)."""
    defined: Set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            defined.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) \
                and isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
            defined.add(node.attr)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            defined.add(node.target.id)
        elif isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__slots__" for t in node.targets):
            for const in ast.walk(node.value):
                if isinstance(const, ast.Constant) and isinstance(const.value, str):
                    defined.add(const.value)
        elif isinstance(node, ast.alias) and node.asname:
            defined.add(node.asname)
    return defined


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def violations(sources: Dict[str, Tuple[str, bool]]) -> List[str]:
    """Check ``{module: (source, is_package)}``; one line per violation."""
    problems: List[str] = []
    for module, (source, is_package) in sorted(sources.items()):
        tree = ast.parse(source)
        own = layer_of(module)
        imports = _Imports(module, is_package)
        imports.visit(tree)
        for target, where, line, names in imports.found:
            unit, target_unit = module.split(".")[0], target.split(".")[0]
            for name in names:
                if _private(name):
                    problems.append(f"reactor.{module}:{line} imports private {name!r} "
                                    f"from reactor.{target}")
            if unit == target_unit and unit not in ("__init__", "__main__"):
                continue  # inside one package
            if layer_of(target) < own or (unit, target_unit, where) in ALLOWED:
                continue
            problems.append(f"reactor.{module}:{line} imports reactor.{target} ({where}), "
                            f"which is not in a layer below it")
        defined = _defined_names(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _private(node.attr) \
                    and node.attr not in defined:
                owner = node.value.id if isinstance(node.value, ast.Name) else None
                if owner not in ("self", "cls") and (owner, node.attr) not in STDLIB_PRIVATE_OK:
                    problems.append(f"reactor.{module}:{node.lineno} uses {node.attr!r}, "
                                    f"which reactor.{module} does not define")
    return problems


def package_sources() -> Dict[str, Tuple[str, bool]]:
    sources = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package and len(parts) > 1:
            parts = parts[:-1]
        sources[".".join(parts)] = (path.read_text(), is_package)
    return sources


def _made_up(**modules: str) -> Iterator[str]:
    """Run the checker over made-up modules (every one non-package)."""
    return iter(violations({name: (text, False) for name, text in modules.items()}))


# -- the package itself ---------------------------------------------------------------


def test_every_module_imports_only_from_below_and_uses_only_its_own_private_names() -> None:
    problems = violations(package_sources())
    assert problems == [], "\n".join(problems)


def test_every_module_is_in_a_layer() -> None:
    for module in package_sources():
        layer_of(module)


# -- the checker catches what it should -------------------------------------------------


def test_an_upward_import_is_caught() -> None:
    found = list(_made_up(loop="from .streams import StreamTransport\n", streams=""))
    assert len(found) == 1 and "reactor.loop:1 imports reactor.streams (module)" in found[0]


def test_an_upward_import_under_type_checking_is_caught() -> None:
    source = ("from typing import TYPE_CHECKING\n"
              "if TYPE_CHECKING:\n"
              "    from .listeners import Listener\n")
    found = list(_made_up(streams=source, listeners=""))
    assert len(found) == 1 and "(TYPE_CHECKING)" in found[0]


def test_a_function_local_upward_import_is_caught_unless_allowed() -> None:
    found = list(_made_up(streams="def f():\n    from .tcp import listen_tcp\n", tcp=""))
    assert len(found) == 1 and "(function)" in found[0]
    assert list(_made_up(loop="def f():\n    from .tcp import listen_tcp\n", tcp="")) == []
    # Allowed only inside a function: at module level it is an upward import.
    assert len(list(_made_up(loop="from .tcp import listen_tcp\n", tcp=""))) == 1


def test_an_import_within_one_layer_is_caught() -> None:
    found = list(_made_up(conversations="from .clients import Client\n", clients=""))
    assert len(found) == 1


def test_importing_a_private_name_is_caught() -> None:
    found = list(_made_up(demo="from .tcp import _is_ip_literal\n", tcp=""))
    assert len(found) == 1 and "imports private '_is_ip_literal'" in found[0]


def test_another_modules_private_attribute_is_caught() -> None:
    found = list(_made_up(streams="def f(reactor):\n    reactor._register(1, 2, 3)\n"))
    assert len(found) == 1 and "uses '_register'" in found[0]


def test_inherited_private_names_through_self_are_fine() -> None:
    source = "class B(A):\n    def f(self):\n        self._to(1)\n        cls = self\n"
    assert list(_made_up(streams=source)) == []


def test_a_modules_own_private_names_are_fine() -> None:
    source = ("class A:\n"
              "    __slots__ = ('_slot',)\n"
              "    def _helper(self):\n"
              "        self._state = 1\n"
              "def f(a, b):\n"
              "    a._helper(); b._slot; a._state\n")
    assert list(_made_up(streams=source)) == []


def test_an_absolute_import_is_checked_too() -> None:
    found = list(_made_up(timers="import reactor.loop\nfrom reactor.tcp import x\n",
                          loop="", tcp=""))
    assert len(found) == 2
