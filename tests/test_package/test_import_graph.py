"""No circle of imports inside nlnet: the graph read from the sources, and every module imported.

The graph has an edge from a module to each nlnet module it imports, at module
level or inside a function, relatively or absolutely; importing ``a.b.c`` also
runs the ``__init__`` of ``a.b``, so that package is an edge too unless it
encloses the importing module (its ``__init__`` is then already running).
"""
import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = 'nlnet'
PACKAGE_DIR = Path(__file__).resolve().parents[2] / PACKAGE


def module_files(package_dir=PACKAGE_DIR):
    """``{module name: file}`` of every module of the package (a package by its ``__init__``)."""
    modules = {}
    for path in sorted(package_dir.rglob('*.py')):
        parts = path.relative_to(package_dir.parent).with_suffix('').parts
        if parts[-1] == '__init__':
            parts = parts[:-1]
        modules['.'.join(parts)] = path
    return modules


def _enclosing_package(module, is_package):
    return module if is_package else module.rpartition('.')[0]


def _imported_names(tree, module, is_package):
    """The dotted names a module's ``import`` statements reach, anywhere in its body.

    ``from P import x`` yields ``P.x`` (a module when ``x`` is one) and ``P``.
    """
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _enclosing_package(module, is_package)
                for _ in range(node.level - 1):
                    base = base.rpartition('.')[0]
                base = f'{base}.{node.module}' if node.module else base
            else:
                base = node.module
            for alias in node.names:
                yield f'{base}.{alias.name}'


def _target(name, modules):
    """The longest prefix of ``name`` that is a module of the package, or None."""
    parts = name.split('.')
    for end in range(len(parts), 0, -1):
        prefix = '.'.join(parts[:end])
        if prefix in modules:
            return prefix
    return None


def _packages_above(module):
    """``['a', 'a.b']`` for ``a.b.c``: the packages whose ``__init__`` runs before it."""
    parts = module.split('.')
    return ['.'.join(parts[:end]) for end in range(1, len(parts))]


def import_graph(modules):
    """``{module: set of the package's modules importing it runs}`` (see the module docstring)."""
    graph = {}
    for module, path in modules.items():
        is_package = path.name == '__init__.py'
        # Packages whose __init__ is already running while this module runs.
        running = set(_packages_above(module)) | ({module} if is_package else set())
        edges = set()
        for name in _imported_names(ast.parse(path.read_text(), filename=str(path)), module,
                                    is_package):
            target = _target(name, modules)
            if target is not None:
                edges.add(target)
                edges.update(set(_packages_above(target)) - running)
        edges.discard(module)
        graph[module] = edges
    return graph


def find_cycle(graph):
    """One circle of the graph as ``[a, b, ..., a]``, or None."""
    state = {}  # module -> 'open' while on the path, 'done' once all it reaches is explored

    def visit(module, path):
        state[module] = 'open'
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 'open':
                return path[path.index(target):] + [target]
            if target not in state:
                cycle = visit(target, path)
                if cycle:
                    return cycle
        path.pop()
        state[module] = 'done'
        return None

    for module in sorted(graph):
        if module not in state:
            cycle = visit(module, [])
            if cycle:
                return cycle
    return None


def dependency_order(graph):
    """The modules, each after every module it imports (the graph has no circle)."""
    order, placed = [], set()

    def place(module):
        if module in placed:
            return
        placed.add(module)
        for target in sorted(graph[module]):
            place(target)
        order.append(module)

    for module in sorted(graph):
        place(module)
    return order


def test_graph_reader_sees_every_kind_of_import(tmp_path):
    """The reader itself, on a package written here: each import form is an edge."""
    root = tmp_path / 'pkg'
    (root / 'sub').mkdir(parents=True)
    (root / '__init__.py').write_text('from . import a\n')
    (root / 'a.py').write_text('from .sub.b import name\n')
    (root / 'sub' / '__init__.py').write_text('')
    (root / 'sub' / 'b.py').write_text('def late():\n    import pkg.c\n')
    (root / 'c.py').write_text('from .. import outside\nimport pkg.sub\n')
    graph = import_graph(module_files(root))
    assert graph == {'pkg': {'pkg.a'}, 'pkg.a': {'pkg.sub', 'pkg.sub.b'}, 'pkg.sub': set(),
                     'pkg.sub.b': {'pkg.c'}, 'pkg.c': {'pkg.sub'}}
    assert find_cycle(graph) is None
    (root / 'sub' / 'b.py').write_text('def late():\n    from ..a import name\n')
    assert find_cycle(import_graph(module_files(root))) == ['pkg.a', 'pkg.sub.b', 'pkg.a']


def test_no_circle_of_imports_inside_nlnet():
    graph = import_graph(module_files())
    assert 'nlnet.compat' in graph and len(graph) > 50
    cycle = find_cycle(graph)
    assert cycle is None, f'import circle: {" -> ".join(cycle)}'


def test_every_module_imports_in_dependency_order_in_a_fresh_interpreter():
    order = dependency_order(import_graph(module_files()))
    code = ('import importlib, sys\n'
            'for name in sys.argv[1:]:\n'
            '    importlib.import_module(name)\n'
            '    print(name, flush=True)\n')
    result = subprocess.run([sys.executable, '-c', code, *order], capture_output=True,
                            text=True, timeout=240, cwd=PACKAGE_DIR.parent)
    imported = result.stdout.split()
    assert result.returncode == 0, (f'importing {order[len(imported)]} failed:\n'
                                    f'{result.stderr[-3000:]}')
    assert imported == order
