"""The house: core's rooms import only downwards and in no circle, core never imports Streamlit, nothing patches
sys.path, and the command line's defaults are the dataclasses' own."""

import ast
import importlib
from dataclasses import fields
from pathlib import Path

from helpers import REPO

from core.cli import COMMANDS
from core.cli_arguments import build_parser, dataclass_from_flags
from core.data import PrepareOptions
from core.text import CleaningOptions
from core.training import TrainConfig

CORE = REPO / "core"
# bottom to top: a module may import from its own room and from rooms on a lower floor
FLOORS = {
    "errors": 0,
    "workspace": 0,
    "languages": 0,
    "formatting": 0,
    "option_fields": 0,
    "audio": 1,
    "text": 1,
    "models": 2,
    "data": 3,
    "training": 4,
    "speech": 5,
    "evaluation": 6,
    "demo": 7,
    "publish": 7,
    "cli_arguments": 8,
    "cli": 9,
    "__main__": 10,
}


def _imports(path: Path) -> list[tuple[str, int]]:
    """(module, line) of every `from core.X… import` and `import core.X…` in a file, lazy ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("core."):
            found.append((node.module, node.lineno))
        elif isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names if a.name.startswith("core.")]
    return found


def _room(path: Path) -> str:
    return path.relative_to(CORE).with_suffix("").parts[0]


def test_rooms_import_only_downwards():
    upward = []
    for path in CORE.rglob("*.py"):
        room = _room(path)
        if room == "__init__":
            continue
        for module, line in _imports(path):
            target = module.split(".")[1]
            same_ground_floor = FLOORS[target] == FLOORS[room] == 0
            if target != room and not same_ground_floor and FLOORS[target] >= FLOORS[room]:
                upward.append(f"{path.relative_to(REPO)}:{line} imports {module}")
    assert not upward, upward


def test_no_import_circle_between_modules():
    graph: dict[str, set[str]] = {}
    for path in CORE.rglob("*.py"):
        name = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        graph[name] = {m for m, _ in _imports(path) if m != name}
    seen, stack, circles = set(), [], []

    def visit(node: str) -> None:
        if node in stack:
            circles.append(stack[stack.index(node) :] + [node])
            return
        if node in seen:
            return
        seen.add(node)
        stack.append(node)
        for target in graph.get(node, ()):
            visit(target)
        stack.pop()

    for node in sorted(graph):
        visit(node)
    assert not circles, circles


def test_core_has_few_top_level_modules_and_never_imports_streamlit():
    top = [p.name for p in CORE.glob("*.py") if p.name != "__init__.py"]
    assert len(top) <= 10, top
    rooms = {p.stem for p in CORE.glob("*.py")} | {p.name for p in CORE.iterdir() if p.is_dir()}
    assert set(FLOORS) >= rooms - {"__pycache__", "__init__"}  # every room has a floor
    for path in CORE.rglob("*.py"):
        assert "import streamlit" not in path.read_text(), path


def test_nothing_patches_sys_path():
    offenders = []
    for folder in ("core", "app", "pages", "bench", "scripts", "tests"):
        for path in (REPO / folder).rglob("*.py"):
            text = path.read_text()
            if "sys.path.insert" in text.replace('"sys.path.insert"', "") or "PYTHONPATH" in text:
                offenders.append(str(path.relative_to(REPO)))
    offenders = [o for o in offenders if o != "tests/test_layout.py"]
    assert not offenders, offenders


def test_the_prepare_flags_default_to_prepare_options():
    args = build_parser(COMMANDS).parse_args(
        ["prepare", "--source", "fleurs", "--language", "nb", "--model", "demo", "--name", "x"]
    )
    options = dataclass_from_flags(PrepareOptions, args, cleaning=dataclass_from_flags(CleaningOptions, args))
    assert options == PrepareOptions()
    given = build_parser(COMMANDS).parse_args(
        ["prepare", "--source", "s", "--language", "nb", "--model", "demo", "--name", "x", "--max-sequence-length", "9"]
        + ["--lowercase", "--no-collapse-whitespace", "--task", "translate"]
    )
    changed = dataclass_from_flags(PrepareOptions, given, cleaning=dataclass_from_flags(CleaningOptions, given))
    assert changed.max_sequence_length == 9 and changed.task == "translate"
    assert changed.cleaning == CleaningOptions(lowercase=True, collapse_whitespace=False)


def test_every_train_config_field_is_a_flag_with_its_help():
    parser = build_parser(COMMANDS)
    train = parser._subparsers._group_actions[0].choices["train"]
    flags = {action.dest: action for action in train._actions}
    for f in fields(TrainConfig):
        assert f.name in flags, f.name
        assert f.metadata["help"].replace("%", "%%") in flags[f.name].help
        assert flags[f.name].default is None  # unset: a preset's value stays unless a flag overrides it


def test_no_page_statement_that_streamlit_magic_would_echo():
    """Streamlit writes any bare expression statement to the page ("magic"): a conditional expression used as a
    statement (`a.warning(x) if bad else a.success(x)`) shows the DeltaGenerator's repr, docstring and API list."""
    echoed = []
    for folder in ("app", "pages"):
        for path in (REPO / folder).rglob("*.py"):
            tree = ast.parse(path.read_text())
            docstrings = {id(n.body[0]) for n in ast.walk(tree) if isinstance(n, ast.Module | ast.FunctionDef)}
            for node in ast.walk(tree):
                if not isinstance(node, ast.Expr) or id(node) in docstrings:
                    continue
                if not isinstance(node.value, ast.Call | ast.Await | ast.Yield | ast.YieldFrom):
                    echoed.append(f"{path.relative_to(REPO)}:{node.lineno}: {ast.unparse(node)[:60]}")
    assert not echoed, echoed


def test_a_configs_command_line_makes_the_same_config():
    import shlex
    from dataclasses import replace

    from core.training import apply_preset

    config = replace(
        apply_preset(TrainConfig(data="nb synth", run="r-1"), "whisper-base-cpu"), gradient_checkpointing=True
    )
    words = shlex.split(config.command_line())
    assert words[:4] == ["python", "-m", "core", "train"]
    args = build_parser(COMMANDS).parse_args(words[3:])
    given = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if getattr(args, f.name, None) is not None}
    assert TrainConfig(**{**TrainConfig(data="", run="").to_dict(), **given}) == config


# A fact that lives in one module, and that module alone (docstrings and comments may mention it): Whisper's audio
# and decoder constants, openai/whisper's loop threshold, the dataset marker file, the installed model's name.
ONE_HOME = {
    16000: "core/audio/constants.py",
    160: "core/audio/constants.py",
    448: "core/audio/constants.py",
    2.4: "core/text/wer.py",
    "manifest.json": "core/data/manifest.py",
    "whisper-base": "core/models/installed.py",
    "assets": "core/__init__.py",
}


def _code_constants(tree: ast.AST):
    """Every literal in the code of a module, its docstrings left out."""
    docstrings = {
        id(n.body[0].value)
        for n in ast.walk(tree)
        if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and n.body
        and isinstance(n.body[0], ast.Expr)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and id(node) not in docstrings and not isinstance(node.value, bool):
            yield node


def test_each_fact_has_one_home():
    """A second home for a fact (a literal 448, "manifest.json", a workspace folder built by hand) is a place that
    will disagree with the first one day: import the name instead."""
    seconds = []
    for path in sorted(CORE.rglob("*.py")):
        where = str(path.relative_to(REPO))
        tree = ast.parse(path.read_text())
        for node in _code_constants(tree):
            home = ONE_HOME.get(node.value) if isinstance(node.value, int | float | str) else None
            if home and home != where and not (node.value == "assets" and where == "core/audio/silero.py"):
                seconds.append(f"{where}:{node.lineno} {node.value!r} (its home: {home})")
        for node in ast.walk(tree):  # workspace folders: Workspace names them (workspace.runs, .jobs, …)
            is_home = isinstance(node, ast.BinOp) and isinstance(node.left, ast.Attribute) and node.left.attr == "home"
            if is_home and isinstance(node.right, ast.Constant) and where != "core/workspace.py":
                seconds.append(f"{where}:{node.lineno} home / {node.right.value!r} (its home: core/workspace.py)")
    assert not seconds, seconds


def _imports_from(paths) -> list[tuple[Path, ast.ImportFrom]]:
    found = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("core."):
                found.append((path, node))
    return found


def test_pages_import_core_through_its_package_faces_and_each_face_name_is_used():
    """The app reads core through each sub-package's face (`from core.data import …`), never around it; and a face
    exports only what somebody imports through it, so it stays a short list of what the package offers."""
    app = sorted((REPO / "app").glob("*.py")) + sorted((REPO / "pages").glob("*.py"))
    around = [f"{p.relative_to(REPO)}: {n.module}" for p, n in _imports_from(app) if n.module.count(".") > 1]
    assert not around, around
    everywhere = [
        p for folder in ("core", "app", "pages", "bench", "tests", "scripts") for p in (REPO / folder).rglob("*.py")
    ]
    through = {(n.module, a.name) for _, n in _imports_from(everywhere) if n.module.count(".") == 1 for a in n.names}
    faces = [p.parent.name for p in CORE.glob("*/__init__.py")]
    unused = []
    for face in faces:
        module = importlib.import_module(f"core.{face}")
        unused += [f"core.{face}.{name}" for name in module.__all__ if (f"core.{face}", name) not in through]
    assert not unused, f"exported by a face, imported through it nowhere: {unused}"
