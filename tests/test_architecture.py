"""Architecture rules that a refactor must not break: the pure core, one adapter per outside
library, no import cycles, and a public API that is exactly what ``__all__`` says."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import streamem

PKG = Path(streamem.__file__).resolve().parent
OUTSIDE = {"kafka", "prometheus_client", "yaml", "httpx", "orjson", "matplotlib", "river",
           "sklearn", "drain3", "jsonpickle", "datasketches", "croniter", "icalendar",
           "dateutil"}
# the one module allowed to import each outside library (its adapter; None: no module may)
ADAPTERS: dict[str, str | None] = {
    "kafka": "kafka/client.py",
    "prometheus_client": "metrics/exporter.py",
    "yaml": "config/load.py",
    "httpx": "sinks/http.py",
    "orjson": "features.py",
    "matplotlib": "evaluation/report.py",
    "river": "integrations/river.py",
    # OnlineGMM follows scikit-learn's conventions duck-typed: no module imports it
    "sklearn": None,
    "drain3": "parsing/templates.py",
    "datasketches": "aggregate/sketches.py",
    "jsonpickle": None,  # Drain3's persistence format: never imported (state is plain JSON)
    "croniter": "calendars/_cron.py",
    "icalendar": "calendars/_ics.py",
    "dateutil": "calendars/_ics.py",  # RRULE expansion of iCalendar events
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
    return out


def _adapter_violations(imports: dict[str, set[str]],
                        adapters: dict[str, str | None]) -> list[str]:
    """``"module imports lib"`` for each outside library imported outside its one adapter."""
    return sorted(f"{rel} imports {lib}" for rel, libs in imports.items()
                  for lib in libs & set(adapters) if rel != adapters[lib])


def test_adapter_checker_finds_a_second_kafka_importer() -> None:
    planted = {"kafka/client.py": {"kafka"}, "sinks/kafka.py": {"kafka", "streamem"},
               "metrics/exporter.py": {"prometheus_client"}, "model/gmm.py": {"sklearn"}}
    assert _adapter_violations(planted, ADAPTERS) == ["model/gmm.py imports sklearn",
                                                      "sinks/kafka.py imports kafka"]


def test_each_outside_library_has_its_one_adapter_module() -> None:
    imports = {p.relative_to(PKG).as_posix(): _imports(p) for p in sorted(PKG.rglob("*.py"))}
    assert "kafka" in imports["kafka/client.py"]  # the checker sees real imports
    assert _adapter_violations(imports, ADAPTERS) == []


def test_core_imports_only_numpy_scipy_and_itself() -> None:
    allowed = {"numpy", "scipy", "streamem", "__future__"} | set(sys.stdlib_module_names)
    for sub in ("model", "scoring"):
        for path in (PKG / sub).rglob("*.py"):
            bad = _imports(path) - allowed
            assert not bad, f"{path.relative_to(PKG)} imports {bad}"


def test_import_streamem_loads_no_adapter_library() -> None:
    code = ("import sys, streamem; streamem.Detector(); streamem.OnlineGMM(); "
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {sorted(OUTSIDE)!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_daemon_start_up_does_not_import_heavy_scipy_subpackages() -> None:
    # scipy.signal pulls in scipy.stats and scipy.interpolate: ~1.1 s of every CLI start-up
    # and every daemon a test spawns; only detrending detectors need it, lazily.
    code = ("import sys, numpy as np, streamem.cli, streamem.runtime.daemon; "
            "streamem.Detector(random_state=0).process("
            "np.random.default_rng(0).normal(size=(3000, 3))); "
            "print(sorted(m for m in sys.modules "
            "if m in ('scipy.stats', 'scipy.signal', 'scipy.interpolate')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_public_api_is_exactly_all() -> None:
    code = ("import streamem, types; print(sorted(n for n, v in vars(streamem).items() "
            "if not n.startswith('_') and not isinstance(v, types.ModuleType)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    public = set(ast.literal_eval(out.stdout)) - {"annotations"}  # the __future__ flag
    assert public == set(streamem.__all__) - {"__version__"}
    for name in streamem.__all__:
        assert getattr(streamem, name) is not None


def _module_graph() -> dict[str, set[str]]:
    """streamem's modules and the streamem modules each imports at module level (imports
    inside functions, the deliberate lazy ones, and ``if TYPE_CHECKING:`` blocks excluded)."""
    mods: dict[str, Path] = {}
    for p in PKG.rglob("*.py"):
        parts = ("streamem", *p.relative_to(PKG).with_suffix("").parts)
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    graph: dict[str, set[str]] = {}
    for name, p in mods.items():
        deps: set[str] = set()
        for node in ast.parse(p.read_text()).body:
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for a in node.names:
                    sub = f"{node.module}.{a.name}"
                    deps.add(sub if sub in mods else node.module)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
        graph[name] = {d for d in deps if d in mods and d != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    graph = _module_graph()
    assert "streamem.scoring.detector" in graph["streamem"]  # the graph sees real imports
    assert _cycles(graph) == [], "import cycles among streamem modules"


# a package and the packages it must not import, lazily or not: alerting makes the records
# that the sinks deliver, so it never depends on a sink (or on the runtime that wires them);
# sinks and state share the Kafka client settings through streamem.kafka, not the source's
_RUNTIME = ("streamem.runtime",)
LAYERS: dict[str, tuple[str, ...]] = {
    "streamem.alerting": ("streamem.sinks", "streamem.sources", "streamem.state", *_RUNTIME),
    "streamem.kafka": ("streamem.sinks", "streamem.sources", "streamem.state", *_RUNTIME),
    "streamem.sinks": ("streamem.sources", "streamem.state", *_RUNTIME),
    "streamem.state": ("streamem.sources", "streamem.sinks", *_RUNTIME),
    "streamem.sources": ("streamem.sinks", "streamem.state", *_RUNTIME),
    "streamem.events": ("streamem.sources", "streamem.sinks", "streamem.state", *_RUNTIME),
}


def _all_streamem_imports(path: Path) -> set[str]:
    """Every ``streamem...`` module a file imports, at module level or inside functions."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return {m for m in out if m.split(".")[0] == "streamem"}


def _layer_violations(imports: dict[str, set[str]],
                      layers: dict[str, tuple[str, ...]]) -> list[str]:
    """``"importer -> imported"`` for each import a layer rule forbids."""
    def under(mod: str, pkg: str) -> bool:
        return mod == pkg or mod.startswith(pkg + ".")

    return sorted(f"{mod} -> {dep}" for mod, deps in imports.items() for dep in deps
                  for pkg, banned in layers.items() if under(mod, pkg)
                  for b in banned if under(dep, b))


def test_layer_checker_finds_a_planted_violation() -> None:
    planted = {"streamem.alerting.records": {"streamem.errors"},
               "streamem.alerting.incidents": {"streamem.sinks.base", "streamem.logs"},
               "streamem.sinks.base": {"streamem.alerting.records"}}
    assert _layer_violations(planted, LAYERS) == [
        "streamem.alerting.incidents -> streamem.sinks.base"]


def test_leaf_packages_do_not_import_their_users() -> None:
    imports = {}
    for p in PKG.rglob("*.py"):
        parts = ("streamem", *p.relative_to(PKG).with_suffix("").parts)
        imports[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = \
            _all_streamem_imports(p)
    assert "streamem.alerting.records" in imports["streamem.sinks.base"]  # sees real imports
    assert _layer_violations(imports, LAYERS) == []


MAX_MODULE_LINES = 400
# justified exceptions: each is one concept whose parts share private state, so a split
# would only move code behind a new private interface
LONG_MODULES = {
    "evaluation/metrics.py": 420,  # point, event and ranking metrics of one labelled stream
    "evaluation/scenarios.py": 450,  # the seeded synthetic streams, one generator each
    "integrations/river.py": 420,  # the one module that imports river (the adapter)
    "model/_keyed.py": 430,  # the stacked per-key mixture kernels (one vectorised E/M step)
    "model/gmm.py": 420,  # the estimator's public API + its E/M steps (kernels live apart)
    "model/hmm.py": 420,  # one online-EM HMM: filter, statistics and M-step share its state
    "scoring/keyed.py": 420,  # KeyedDetector.process: one batch over many keys, both paths
    "sinks/delivery.py": 480,  # the one delivery state machine the network sinks share
    "sinks/spool.py": 440,  # the durable on-disk FIFO: segments, recovery, replay
    "sources/kafka/records.py": 420,  # the Kafka v2 record-batch decoder (inlined varints)
    "state/codec.py": 460,  # the exact pickle-free encoding of state and snapshots
    "state/directory.py": 440,  # the directory store: atomic writes, retention, recovery
}


def test_every_module_is_small() -> None:
    sizes = {p.relative_to(PKG).as_posix(): len(p.read_text().splitlines())
             for p in PKG.rglob("*.py")}
    assert sizes["runtime/daemon.py"] <= 250  # the daemon's main module
    too_long = {m: n for m, n in sizes.items() if n > LONG_MODULES.get(m, MAX_MODULE_LINES)}
    assert too_long == {}, "split these modules (or justify them in LONG_MODULES)"
    assert set(LONG_MODULES) <= set(sizes), "a justified exception no longer exists"


CORE = ("streamem.model", "streamem.scoring")
# durations: "7d" -> seconds, stdlib only; the core reads it lazily (streamem.config's package
# imports pyyaml) when a half-life or a season is given as a duration
CORE_MAY_IMPORT = (*CORE, "streamem.errors", "streamem.config.durations")


def _core_violations(imports: dict[str, set[str]]) -> list[str]:
    """``"core module -> streamem module"`` for each core import outside the core and errors."""
    def under(mod: str, pkgs: tuple[str, ...]) -> bool:
        return any(mod == p or mod.startswith(p + ".") for p in pkgs)

    return sorted(f"{mod} -> {dep}" for mod, deps in imports.items() if under(mod, CORE)
                  for dep in deps if dep != "streamem" and not under(dep, CORE_MAY_IMPORT))


def test_core_checker_finds_a_planted_import() -> None:
    planted = {"streamem.scoring.report": {"streamem.alerting.records", "streamem.errors"},
               "streamem.model.gmm": {"streamem.model._stats"},
               "streamem.sinks.base": {"streamem.alerting.records"}}
    assert _core_violations(planted) == ["streamem.scoring.report -> streamem.alerting.records"]


def test_core_imports_of_streamem_are_only_the_core_and_errors() -> None:
    # the library (Detector, KeyedDetector, OnlineGMM) must not depend on the runtime's
    # records, config or adapters: what the core produces, the outer layers import from it
    imports = {".".join(("streamem", *p.relative_to(PKG).with_suffix("").parts)):
               _all_streamem_imports(p) for p in PKG.rglob("*.py")}
    assert "streamem.scoring.explain" in imports["streamem.scoring.report"]  # sees real imports
    assert _core_violations(imports) == []


# the top level holds only what every stage shares; each stage is a package
TOP_LEVEL_MODULES = {"__init__.py", "__main__.py", "cli.py", "errors.py", "events.py",
                     "features.py", "logs.py"}


def test_top_level_holds_only_shared_modules() -> None:
    top = {p.name for p in PKG.glob("*.py")}
    assert top == TOP_LEVEL_MODULES, "put new modules in the package of their stage"
