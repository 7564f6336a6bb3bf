"""The hook reference: every hookspec is typed and documented pytest-style (llm's check)."""

from __future__ import annotations

import inspect

import pluggy

from kernel_mgmt import hookspecs
from kernel_mgmt.discovery import HOOK_NAMES

SPECS = [getattr(hookspecs, name) for name in HOOK_NAMES]


def test_markers_use_the_project_name() -> None:
    assert isinstance(hookspecs.hookspec, pluggy.HookspecMarker)
    assert hookspecs.hookspec.project_name == hookspecs.hookimpl.project_name == "kernel_mgmt"
    pm = pluggy.PluginManager("kernel_mgmt")
    pm.add_hookspecs(hookspecs)
    assert sorted(n for n in dir(pm.hook) if not n.startswith("_")) == sorted(HOOK_NAMES)


def test_every_hook_is_documented_and_typed() -> None:
    for spec in SPECS:
        doc = inspect.getdoc(spec)
        assert doc and doc.splitlines()[0].endswith("."), spec.__name__
        assert ":returns:" in doc, spec.__name__
        sig = inspect.signature(spec)
        assert sig.return_annotation is not inspect.Signature.empty, spec.__name__
        for name, param in sig.parameters.items():
            assert f":param {name}:" in doc, (spec.__name__, name)
            assert param.annotation is not inspect.Parameter.empty, (spec.__name__, name)


def test_launch_is_firstresult() -> None:
    pm = pluggy.PluginManager("kernel_mgmt")
    pm.add_hookspecs(hookspecs)
    assert pm.hook.launch.spec.opts["firstresult"] is True
    assert pm.hook.find_kernels.spec.opts["firstresult"] is False


def test_find_kernels_documents_report_problem() -> None:
    """Providers report a skipped item with report_problem(); the hook reference says so."""
    from kernel_mgmt import discovery

    doc = " ".join(inspect.getdoc(hookspecs.find_kernels).split())
    assert "call ``kernel_mgmt.discovery.report_problem(message)``" in doc
    assert "listed as your provider's problem" in doc
    assert "logging.getLogger" not in doc
    assert callable(discovery.report_problem) and "report_problem" in discovery.__all__
    assert "problems_captured" in doc and callable(discovery.problems_captured)
    assert discovery.problems_captured() is False  # not inside a provider hook here
