"""``KernelFinderSpecManager``: jupyter_client's KernelSpecManager over every provider.

jupyter_server awaits ``get_all_specs`` when it returns a coroutine (its ``/api/kernelspecs``
handler uses ``ensure_async``), so the listing runs the providers in worker threads and never
blocks the server's event loop. ``get_kernel_spec`` stays synchronous: jupyter_client's
KernelManager calls it so (``KernelManager.kernel_spec``), as do nbclient and the server's
``/api/kernelspecs/<name>`` handler (through ``ensure_async``, which passes plain values on).
It answers from the last listing and lists again (blocking, bounded by ``provider_wait``)
only for a name it has not seen.
"""

from __future__ import annotations

import threading
from typing import Any

from jupyter_client.kernelspec import KernelSpec, KernelSpecManager, NoSuchKernel
from traitlets import Bool, Float, Unicode

from .table import Entry, Table, build_table

__all__ = ["KernelFinderSpecManager"]


class KernelFinderSpecManager(KernelSpecManager):
    """Lists every kernel_mgmt provider's kernel types as kernelspecs naming ``kernel-mgmt``.

    Enabled for jupyter_server by installing ``kernel-mgmt-jupyter`` (its
    ``jupyter_server_config.d`` file sets ``ServerApp.kernel_spec_manager_class``).
    """

    provider_wait = Float(
        2.0,
        config=True,
        help="Seconds a listing waits for each provider before using that provider's last "
        "answer (none on the first listing); a provider still running keeps running and "
        "its kernels appear on a later listing.",
    )
    conda_display_format = Unicode(
        "{display_name} [conda env:{env}]",
        config=True,
        help="Display name of conda environments' kernels: {display_name} is the "
        "kernelspec's, {env} the environment's name (its path when ambiguous). Empty keeps "
        "the conda provider's own ('Python 3 (conda: ml)').",
    )
    list_aliases = Bool(
        False,
        config=True,
        help="Also list each kernel under the other names it answers to: a conda kernel's "
        "canonical name (conda__<env>-<kernel>) and older nb_conda_kernels names "
        "(conda-root-<kernel>), so that JupyterLab opens notebooks saved with those without "
        "asking; such kernels then appear more than once in the launcher. Off: the names "
        "still work (sessions, REST, nbclient), they are just not listed.",
    )
    native_alias = Bool(
        True,
        config=True,
        help="When no kernelspec folder is named 'python3', let 'python3' mean "
        "pyimport/kernel (jupyter_client makes up the same from ipykernel).",
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._table = Table()
        self._table_lock = threading.Lock()
        self._config_error: str | None = None

    def _broken_config(self, error: Exception) -> None:
        """kernel_mgmt's config file is bad: say so (once); callers fall back to folders."""
        message = str(error)
        if message != self._config_error:
            self._config_error = message
            self.log.error(
                "kernel_mgmt_jupyter: %s; only kernelspec folders are listed until it is fixed",
                message,
            )

    # -- listing ----------------------------------------------------------------------------

    def _finders(self) -> Any:
        from .finders import shared

        return shared()

    def _update(self, listing: Any) -> Table:
        with self._table_lock:
            table = build_table(
                listing.records,
                previous=self._table,
                conda_format=self.conda_display_format or None,
                native_alias=self.native_alias,
            )
            old_notes = set(self._table.notes)
            self._table = table
        for note in table.notes:
            if note not in old_notes:
                self.log.warning("kernel_mgmt_jupyter: %s", note)
        for pid in listing.late:
            self.log.debug("kernel_mgmt_jupyter: provider %r had not answered in time", pid)
        return table

    def _allowed(self, name: str) -> bool:
        allowed = self.allowed_kernelspecs
        return not allowed or name in allowed

    def refresh(self) -> Table:
        """List again now (blocking, at most ``provider_wait`` seconds); returns the table."""
        return self._update(self._finders().list_sync(self.provider_wait))

    async def refresh_async(self) -> Table:
        """List again without blocking the running event loop; returns the table."""
        return self._update(await self._finders().list_async(self.provider_wait))

    def _model(self, entry: Entry, base_url: str | None, name: str | None = None) -> dict[str, Any]:
        model: dict[str, Any] = {"resource_dir": entry.resource_dir, "spec": entry.spec}
        if base_url is not None:
            # jupyter_server takes a dict with name/spec/resources as the finished REST model
            # (as it does for gateway kernelspecs), so no per-spec folder scan per request.
            model["name"] = name or entry.name
            model["resources"] = entry.resources(base_url)
        return model

    def _models(self, table: Table, base_url: str | None) -> dict[str, Any]:
        models = {
            name: self._model(entry, base_url)
            for name, entry in table.entries.items()
            if self._allowed(name)
        }
        if self.list_aliases:
            for alias, name in table.aliases.items():
                if name in models and alias not in models and self._allowed(alias):
                    models[alias] = self._model(table.entries[name], base_url, alias)
        return models

    async def get_all_specs(self) -> dict[str, Any]:  # type: ignore[override]
        """``{name: {"resource_dir", "spec"}}`` for every kernel type (a coroutine).

        Under jupyter_server (whose ``base_url`` the parent app has) each value is also the
        REST model (``name``, ``resources``).
        """
        from kernel_mgmt.config import ConfigError

        try:
            table = await self.refresh_async()
        except ConfigError as e:
            self._broken_config(e)
            return super().get_all_specs()
        base_url = getattr(self.parent, "base_url", None)
        return self._models(table, base_url if isinstance(base_url, str) else None)

    def get_all_specs_sync(self) -> dict[str, Any]:
        """:meth:`get_all_specs` for synchronous callers (blocks while providers run)."""
        from kernel_mgmt.config import ConfigError

        try:
            return self._models(self.refresh(), None)
        except ConfigError as e:
            self._broken_config(e)
            return super().get_all_specs()

    def find_kernel_specs(self) -> dict[str, str]:
        """``{name: resource_dir}`` for every kernel type (synchronous; lists now)."""
        from kernel_mgmt.config import ConfigError

        try:
            table = self.refresh()
        except ConfigError as e:
            self._broken_config(e)
            return super().find_kernel_specs()
        return {n: e.resource_dir for n, e in table.entries.items() if self._allowed(n)}

    # -- one kernel -------------------------------------------------------------------------

    def entry(self, kernel_name: str) -> Entry | None:
        """The entry for a name, an alias or a type id, listing again if unseen."""
        entry = self._table.lookup(kernel_name)
        if entry is None:
            entry = self.refresh().lookup(kernel_name)
        if entry is not None and not (self._allowed(entry.name) or self._allowed(kernel_name)):
            return None
        return entry

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        """The :class:`KernelSpec` for a listed name, an alias or a type id.

        :raises jupyter_client.kernelspec.NoSuchKernel: no kernel type answers to it.
        """
        from kernel_mgmt.config import ConfigError

        try:
            entry = self.entry(kernel_name)
        except ConfigError as e:
            self._broken_config(e)
            return super().get_kernel_spec(kernel_name)
        if entry is None:
            raise NoSuchKernel(kernel_name)
        return KernelSpec(resource_dir=entry.resource_dir, name=entry.name, **entry.spec)

    def type_id(self, kernel_name: str) -> str:
        """The kernel type id behind a Jupyter kernel name.

        :raises jupyter_client.kernelspec.NoSuchKernel: no kernel type answers to it.
        """
        entry = self.entry(kernel_name)
        if entry is None:
            raise NoSuchKernel(kernel_name)
        return entry.type_id
