"""The package's module structure, read from the source with `ast`: no import
cycles among spacy_medlink's modules (imports inside functions count, relative
imports resolved; imports only a type checker runs, under ``if TYPE_CHECKING:``,
do not), and no module imports another module's private names."""
import ast
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Set, Tuple

PACKAGE = Path(__file__).parents[1] / "spacy_medlink"


def _modules() -> Dict[str, Path]:
    """Dotted module name -> file, packages by their __init__.py."""
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


MODULES = _modules()


def _type_checking_nodes(tree: ast.AST) -> Set[int]:
    skip: Set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            for stmt in node.body:
                skip.update(id(n) for n in ast.walk(stmt))
    return skip


def _owner(name: str) -> Optional[str]:
    """The module of ours that a dotted name is, or lives in."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str) -> Iterator[Tuple[int, str, str]]:
    """(line, imported module, imported name or "") for every import of ours in `module`."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    skip = _type_checking_nodes(tree)
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _owner(alias.name) if alias.name.split(".")[0] == "spacy_medlink" else None
                if target:
                    yield node.lineno, target, ""
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if source.split(".")[0] != "spacy_medlink":
                continue
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                if submodule in MODULES:
                    yield node.lineno, submodule, ""
                elif _owner(source):
                    yield node.lineno, _owner(source), alias.name


def _graph() -> Dict[str, Set[str]]:
    return {m: {target for _, target, _ in _imports(m) if target != m} for m in MODULES}


def _cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    found: List[List[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_graph_sees_imports_inside_functions_and_relative_imports():
    graph = _graph()
    assert "spacy_medlink.kb.ranker" in graph["spacy_medlink.kb.candidates"]  # inside from_disk, relative
    assert "spacy_medlink.ml.nested_module" in graph["spacy_medlink.ml.nested_recognizer"]  # inside functions
    assert "spacy_medlink.ids" in graph["spacy_medlink.corpora.pubtator"]  # `from ..ids import`


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles():
    assert _cycles(_graph()) == []


def test_no_private_names_imported_across_modules():
    private = [
        f"{MODULES[module].relative_to(PACKAGE.parent)}:{line}: {name} from {target}"
        for module in MODULES
        for line, target, name in _imports(module)
        if name.startswith("_") and not name.startswith("__") and target != module
    ]
    assert private == []
