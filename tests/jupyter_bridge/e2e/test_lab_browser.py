"""JupyterLab in a real browser: Playwright driving Debian's Chromium against ``jupyter lab``.

The launcher shows a conda environment's kernel card (listed by the bridge); clicking it opens
a notebook on that kernel; a cell prints the environment's ``sys.prefix``; the Kernel menu's
interrupt stops a ``time.sleep`` and its restart gives a fresh process that still runs code.
Screenshots of each step are saved under the test's tmp dir (``screens/``).

Playwright's own browser download cannot work here: ``/usr/bin/chromium`` comes from Debian
(``apt-get install -y chromium``, done by ``.ci/run`` and by ``scripts/setup.sh`` as root).
Under ``CI=true`` a missing browser fails the test; elsewhere it skips saying why.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import JupyterServer, JupyterWorld, by_type_id, require_bridge, type_id_of

pytestmark = pytest.mark.timeout(600)

CHROMIUM = Path("/usr/bin/chromium")
#: The flags that work on this machine's closed network (see the machine notes): no
#: background connections, no GPU, no first-run UI.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
#: Milliseconds for one Playwright step (a loaded 2-core CI machine builds Lab's page slowly).
STEP_MS = 120_000
REAL_ENV = "conda/realenv-python3"


def _browser_missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (requirements-test.txt)"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing: apt-get install -y chromium"
    return None


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A Chromium browser context with a fresh profile (module-scoped: one browser start)."""
    missing = _browser_missing()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser test cannot run under CI: {missing}")
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 900},
            timeout=STEP_MS,
        )
        context.set_default_timeout(STEP_MS)
        try:
            yield context
        finally:
            context.close()


@pytest.fixture(scope="module")
def lab(e2e_world: JupyterWorld) -> Iterator[JupyterServer]:
    require_bridge()
    s = JupyterServer(e2e_world, app="lab").start()
    try:
        yield s
    finally:
        s.stop()


class Screens:
    def __init__(self, page: Any, folder: Path) -> None:
        self.page = page
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.n = 0

    def shot(self, what: str) -> Path:
        self.n += 1
        path = self.folder / f"{self.n:02d}-{what}.png"
        self.page.screenshot(path=str(path))
        return path


def run_cell(page: Any, code: str) -> Any:
    """Type ``code`` into the notebook's last cell and run it (Shift+Enter); returns the cell.

    The cell is pinned by index: running it adds a new last cell below.
    """
    cells = page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell")
    cell = cells.nth(cells.count() - 1)
    editor = cell.locator(".cm-content")
    editor.click()
    page.keyboard.insert_text(code)
    page.keyboard.press("Shift+Enter")
    return cell


def kernel_menu(page: Any, item: str) -> None:
    """Open the menu bar's Kernel menu and choose ``item`` (its label, as Lab shows it)."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Kernel$")).click()
    # Exact label, an ellipsis allowed ("Restart Kernel…", not "Restart Kernel and ...").
    label = re.compile(rf"^{re.escape(item)}\u2026?$")
    page.locator(".lm-Menu-itemLabel", has_text=label).click()


def kernel_idle(page: Any) -> Any:
    """The status bar's kernel item once a kernel (not "No Kernel") is idle: "<name> | Idle".

    (The toolbar's execution indicator says idle before any kernel is there.)
    """
    return page.get_by_role("button", name=re.compile(r"^(?!No Kernel).+ \| Idle$"))


def wait_idle(page: Any) -> None:
    kernel_idle(page).wait_for()


def test_launcher_conda_kernel_runs_interrupts_and_restarts(
    lab: JupyterServer, e2e_world: JupyterWorld, chromium: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=STEP_MS)
    specs = lab.kernelspecs()
    ids = by_type_id(specs)
    assert REAL_ENV in ids, sorted(specs["kernelspecs"])
    display = specs["kernelspecs"][ids[REAL_ENV]]["spec"]["display_name"]
    prefix = str(e2e_world.env_prefix("realenv"))

    page = chromium.new_page()
    screens = Screens(page, tmp_path / "screens")
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(f"{lab.url}/lab?token={lab.token}", wait_until="domcontentloaded")
        card = page.locator(
            '.jp-Launcher .jp-LauncherCard[data-category="Notebook"]',
            has=page.locator(".jp-LauncherCard-label", has_text=display),
        )
        expect(card).to_be_visible()
        screens.shot("launcher")

        card.click()
        expect(page.locator(".jp-NotebookPanel .jp-Notebook")).to_be_visible()
        # The notebook's toolbar names the kernel it started, and the kernel becomes idle.
        expect(page.locator(".jp-NotebookPanel .jp-KernelName").first).to_have_text(display)
        wait_idle(page)
        (kernel,) = lab.ok("GET", "/api/kernels")
        assert kernel["name"] == ids[REAL_ENV]
        screens.shot("notebook-open")

        cell = run_cell(page, "import os, sys; print(sys.prefix); print('pid', os.getpid())")
        output = cell.locator(".jp-OutputArea-output")
        expect(output).to_contain_text(prefix)
        pid_before = re.search(r"pid (\d+)", output.inner_text()).group(1)
        screens.shot("sys-prefix")

        # "wo" + "ke": the traceback shows the source line, the output must not show "woke".
        cell = run_cell(
            page, "import time; print('sleeping', flush=True); time.sleep(60); print('wo' + 'ke')"
        )
        expect(cell.locator(".jp-OutputArea-output").first).to_contain_text("sleeping")
        screens.shot("sleeping")
        kernel_menu(page, "Interrupt Kernel")
        expect(cell.locator(".jp-OutputArea")).to_contain_text("KeyboardInterrupt")
        expect(cell.locator(".jp-OutputArea")).not_to_contain_text("woke")
        wait_idle(page)
        screens.shot("interrupted")

        kernel_menu(page, "Restart Kernel")
        dialog = page.locator(".jp-Dialog")
        expect(dialog).to_be_visible()
        dialog.locator("button.jp-mod-accept").click()
        expect(dialog).to_have_count(0)
        wait_idle(page)
        screens.shot("restarted")

        cell = run_cell(page, "import os, sys; print('after', os.getpid(), sys.prefix)")
        output = cell.locator(".jp-OutputArea-output")
        expect(output).to_contain_text("after ")
        expect(output).to_contain_text(prefix)
        pid_after = re.search(r"after (\d+)", output.inner_text()).group(1)
        assert pid_after != pid_before
        (after,) = lab.ok("GET", "/api/kernels")
        assert after["id"] == kernel["id"], "a restart keeps the kernel id"
        screens.shot("after-restart")
    except Exception:
        screens.shot("failure")
        raise
    finally:
        page.close()
    assert not errors, errors


def saved_notebook(folder: Path, filename: str, kernelspec: dict[str, str]) -> Path:
    """A notebook as another Jupyter saved it: one code cell, ``metadata.kernelspec`` given."""
    nb = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "id": "c0",
                "metadata": {},
                "outputs": [],
                "source": "import sys; print('prefix', sys.prefix)",
            }
        ],
        "metadata": {"kernelspec": kernelspec, "language_info": {"name": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path = folder / filename
    path.write_text(json.dumps(nb))
    return path


@pytest.mark.parametrize(
    ("kernelspec", "expected"),
    [
        # Saved under nb_conda_kernels: its name for the realenv environment's python3.
        (
            {
                "name": "conda-env-realenv-py",
                "display_name": "Python [conda env:realenv]",
                "language": "python",
            },
            "realenv",
        ),
        # Saved with the stock kernel: spec/python3 keeps its name.
        (
            {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
            "sys.prefix",
        ),
    ],
    ids=["nb_conda_kernels-name", "python3"],
)
def test_saved_notebook_opens_on_its_kernel(
    lab: JupyterServer,
    e2e_world: JupyterWorld,
    chromium: Any,
    tmp_path: Path,
    kernelspec: dict[str, str],
    expected: str,
) -> None:
    """Opening a saved notebook starts the kernel its metadata names, without asking."""
    from playwright.sync_api import expect

    expect.set_options(timeout=STEP_MS)
    prefix = str(e2e_world.env_prefix("realenv")) if expected == "realenv" else sys.prefix
    filename = f"saved-{kernelspec['name']}.ipynb"
    saved_notebook(e2e_world.notebooks, filename, kernelspec)
    page = chromium.new_page()
    screens = Screens(page, tmp_path / "screens")
    workspace = f"e2e-{kernelspec['name']}"
    try:
        # A workspace of its own, reset: only this notebook is open.
        page.goto(
            f"{lab.url}/lab/workspaces/{workspace}/tree/{filename}?reset&token={lab.token}",
            wait_until="domcontentloaded",
        )
        # Either the kernel starts (idle) or Lab asks which kernel to use (a dialog).
        dialog = page.locator(".jp-Dialog")
        expect(kernel_idle(page).or_(dialog).first).to_be_visible()
        screens.shot("opened")
        assert dialog.count() == 0, (
            f"JupyterLab asked for a kernel for a notebook saved with kernelspec "
            f"{kernelspec['name']!r}: {dialog.first.inner_text()!r}"
        )
        cells = page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell")
        cells.first.locator(".cm-content").click()
        page.keyboard.press("Shift+Enter")
        expect(cells.first.locator(".jp-OutputArea-output")).to_contain_text(f"prefix {prefix}")
        screens.shot("ran")
        sessions = lab.ok("GET", "/api/sessions")
        (session,) = [s for s in sessions if s["path"] == filename]
        model = lab.ok("GET", f"/api/kernelspecs/{session['kernel']['name']}")
        assert type_id_of(model) == (REAL_ENV if expected == "realenv" else "spec/python3")
    except Exception:
        screens.shot("failure")
        raise
    finally:
        page.close()
        for s in lab.ok("GET", "/api/sessions"):
            lab.request("DELETE", f"/api/sessions/{s['id']}", timeout=60)
