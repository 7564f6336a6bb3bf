"""report_note: a provider's state that is not a problem (shown, never logged)."""

from __future__ import annotations

import logging

import pytest

from kernel_mgmt.cli import main
from kernel_mgmt.discovery import KernelFinder, KernelProviderBase, report_note


class Unconfigured(KernelProviderBase):
    id = "quiet"

    def find_kernels(self):
        report_note("not configured: set quiet.url")
        return []

    async def launch(self, name, cwd=None, launch_params=None):
        raise NotImplementedError


class Configured(KernelProviderBase):
    id = "loud"

    def find_kernels(self):
        report_note("serving from http://example")
        yield "k", {"display_name": "K", "language": "k"}

    async def launch(self, name, cwd=None, launch_params=None):
        raise NotImplementedError


def test_note_is_not_a_problem(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    finder = KernelFinder([Unconfigured(), Configured()])
    assert [k for k, _ in finder.find_kernels()] == ["loud/k"]
    infos = {i.id: i for i in finder.providers}
    assert infos["quiet"].note == "not configured: set quiet.url"
    assert infos["quiet"].status == "ok" and infos["quiet"].problems == []
    assert infos["loud"].to_dict()["note"] == "serving from http://example"
    assert finder.problems == []
    assert "not configured" not in caplog.text


def test_note_outside_a_finder_is_ignored(caplog: pytest.LogCaptureFixture) -> None:
    report_note("nobody listens")
    assert "nobody listens" not in caplog.text


def test_providers_table_shows_the_note(monkeypatch, capsys) -> None:
    monkeypatch.setattr(
        "kernel_mgmt.discovery.KernelFinder.from_entrypoints",
        classmethod(lambda cls, *a, **k: KernelFinder([Unconfigured()])),
    )
    assert main(["providers"]) == 0
    row = next(r for r in capsys.readouterr().out.splitlines() if r.startswith("quiet"))
    assert "ok" in row and "not configured: set quiet.url" in row
