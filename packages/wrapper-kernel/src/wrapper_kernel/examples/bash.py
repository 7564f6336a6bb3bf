"""A bash kernel on :class:`wrapper_kernel.repl.ReplKernel`.

* Output streams while a command runs; Ctrl-C (interrupt) stops the running command and
  leaves bash at its prompt; ``exit`` or a crash starts a new bash (the cell says so).
* A cell whose last command exits non-zero gets an error reply (``ename`` ``ExitStatus``).
  Turn that off with the class attribute ``status_errors = False`` or the environment
  variable ``WRAPPER_KERNEL_BASH_STATUS_ERRORS=0`` (in the kernelspec's ``env``).
* Completion from bash's ``compgen`` (commands, files, ``$variables``), inspection from
  ``help`` (builtins and keywords) and ``type`` (functions, aliases, programs).
* ``display`` shows an image piped into it (``cat plot.png | display``) and
  ``displayHTML`` shows HTML, as ``display_data``: each writes its input to a temporary file
  and prints one marker line, which the kernel replaces by the file's content.

``python -m wrapper_kernel.examples.bash install --user`` installs it as ``wrapper-bash``.
It reads ``~/.bashrc`` as an interactive bash does, then sets its own prompts.
"""

from __future__ import annotations

import contextlib
import os
import re
from typing import Any

from wrapper_kernel.repl import ReplKernel

#: Marker-line prefix that the display helpers print (after the kernel's marker).
_DISPLAY = ":display "

_HELPERS = r"""
__wk_show() {
  local f
  f=$(mktemp "${TMPDIR:-/tmp}/wrapper-bash.XXXXXXXX") || return 1
  cat > "$f"
  printf '%s%s %s\n' '{marker}' ':display '"$1" "$f"
}
display() { __wk_show "${1:-image}"; }
displayHTML() { __wk_show html; }
"""

_IMAGE_TYPES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)

#: Characters that end the word being completed (bash_kernel's choice: also after = and
#: quotes, so ``x=/et`` and ``"/et`` complete the path).
_WORD_BREAK = re.compile(r"[\t \n;|&()=\"'<>]")


def _bash_version() -> str:
    import subprocess  # here, not at start-up

    try:
        out = subprocess.run(
            ["bash", "-c", "echo $BASH_VERSION"], capture_output=True, text=True, timeout=5
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.strip()


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


class BashKernel(ReplKernel):
    implementation = "wrapper-bash"
    language = "bash"
    language_info = {
        "name": "bash",
        "mimetype": "text/x-sh",
        "file_extension": ".sh",
        "codemirror_mode": "shell",
        "pygments_lexer": "bash",
    }
    banner = "bash, driven by wrapper_kernel.repl"
    display_name = "Bash (wrapper_kernel)"
    kernel_name = "wrapper-bash"

    repl_command = ["bash", "--noediting", "-i"]
    # \[\] prints nothing in a prompt but keeps `env` output from looking like one; $? makes
    # every prompt report the exit status of the command before it.
    ps1 = r"{marker}\[\]$?>"
    ps2 = r"{marker}\[\]+"
    ps1_regex = r"{marker}(?P<status>\d+)>"
    ps2_regex = r"{marker}\+"
    prompt_change = "shopt -s promptvars; PS1='{ps1}' PS2='{ps2}' PS0=''; unset PROMPT_COMMAND"
    init_commands = (
        "export PAGER=cat GIT_PAGER=cat MANPAGER=cat; HISTFILE=",
        _HELPERS.strip(),
    )

    #: A cell whose last command exits non-zero is an error.
    status_errors = True

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        env = os.environ.get("WRAPPER_KERNEL_BASH_STATUS_ERRORS", "").strip().lower()
        self._status_errors = self.status_errors if not env else env not in ("0", "false", "no")
        self._version: str | None = None

    @property
    def language_version(self) -> str:  # type: ignore[override]
        if self._version is None:
            self._version = _bash_version()
        return self._version

    def check_result(self, statuses: list[int | None]) -> dict[str, Any] | None:
        status = statuses[-1] if statuses else None
        if self._status_errors and status:
            return self.error_reply("ExitStatus", f"the last command exited with status {status}")
        return None

    def do_is_complete(self, code: str) -> dict[str, Any]:
        """bash's own parser, never running anything: ``bash -n`` reads the code; "unexpected
        end of file" is where an interactive bash would show its continuation prompt."""
        import subprocess

        if code.rstrip("\n").endswith("\\"):
            return {"status": "incomplete", "indent": ""}
        try:
            done = subprocess.run(
                [self.repl_command[0], "-n"], input=code, capture_output=True, text=True, timeout=5
            )
        except (OSError, subprocess.SubprocessError):
            return {"status": "unknown"}
        err = done.stderr
        if "unexpected end of file" in err or "unexpected EOF" in err or "here-document" in err:
            return {"status": "incomplete", "indent": ""}
        return {"status": "complete" if done.returncode == 0 else "invalid"}

    # -- rich output ------------------------------------------------------------------------------

    def process_output(self, text: str) -> None:
        tag = self.marker + _DISPLAY
        if tag not in text:
            self.send_stream(text)
            return
        plain: list[str] = []
        for line in text.splitlines(keepends=True):
            if not line.startswith(tag):
                plain.append(line)
                continue
            if plain:
                self.send_stream("".join(plain))
                plain = []
            kind, _, path = line[len(tag) :].rstrip("\n").partition(" ")
            self._show_file(kind, path)
        if plain:
            self.send_stream("".join(plain))

    def _show_file(self, kind: str, path: str) -> None:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            self.send_stream(f"display: cannot read {path}: {e}\n", "stderr")
            return
        finally:
            tmp = os.environ.get("TMPDIR", "/tmp")
            if os.path.basename(path).startswith("wrapper-bash.") and path.startswith(tmp):
                with contextlib.suppress(OSError):
                    os.unlink(path)
        if kind == "html":
            self.display({"text/html": data.decode("utf-8", "replace")})
            return
        mime = next((m for magic, m in _IMAGE_TYPES if data.startswith(magic)), None)
        if mime is None and data.lstrip()[:5] in (b"<svg ", b"<?xml"):
            self.display({"image/svg+xml": data.decode("utf-8", "replace")})
            return
        if mime is None:
            self.send_stream(
                f"display: the input is not a PNG, JPEG, GIF or SVG image ({len(data)} bytes)\n",
                "stderr",
            )
            return
        import base64

        self.display(
            {mime: base64.b64encode(data).decode("ascii"), "text/plain": f"<{mime} image>"}
        )

    # -- completion and inspection ------------------------------------------------------------

    def _compgen(self, *args: str) -> list[str]:
        out = self.run_command("compgen " + " ".join(args) + " 2>/dev/null", timeout=5)
        return [line for line in out.split("\n") if line]

    def do_complete(self, code: str, cursor_pos: int) -> dict[str, Any]:
        before = code[:cursor_pos]
        parts = _WORD_BREAK.split(before)
        word = parts[-1]
        start = cursor_pos - len(word)
        head = before[:start].rstrip()
        first_word = not head or head[-1] in ";|&(" or head.endswith(("then", "do", "else"))
        matches: list[str]
        if word.startswith("$"):
            name = word[1:].lstrip("{")
            prefix = word[: len(word) - len(name)]
            found = self._compgen("-A variable", "--", _quote(name))
            matches = [prefix + v for v in found]
        else:
            matches = []
            if first_word and "/" not in word:
                matches += self._compgen("-c", "--", _quote(word))
            dirs = set(self._compgen("-d", "--", _quote(word)))
            for f in self._compgen("-f", "--", _quote(word)):
                matches.append(f + "/" if f in dirs else f)
        unique = sorted(dict.fromkeys(m for m in matches if m.startswith(word)))
        return {
            "status": "ok",
            "matches": unique,
            "cursor_start": start,
            "cursor_end": cursor_pos,
            "metadata": {},
        }

    def do_inspect(self, code: str, cursor_pos: int, detail_level: int = 0) -> dict[str, Any]:
        words = list(re.finditer(r"[\w.:+-]+", code))
        word = next(
            (m.group() for m in words if m.start() <= cursor_pos <= m.end()),
            words[-1].group() if words else "",
        )
        found = {"status": "ok", "data": {}, "metadata": {}, "found": False}
        if not word:
            return found
        kind = self.run_command(f"type -t -- {_quote(word)} 2>/dev/null", timeout=5).strip()
        if not kind:
            return found
        if kind in ("builtin", "keyword"):
            text = self.run_command(f"help -- {_quote(word)} 2>&1", timeout=5)
        else:
            text = self.run_command(f"type -- {_quote(word)} 2>&1", timeout=5)
        if not text.strip():
            return found
        return {"status": "ok", "data": {"text/plain": text}, "metadata": {}, "found": True}


if __name__ == "__main__":
    BashKernel.launch_instance()
