"""Runs the compiled Schematron XSLTs (XSLT 2.0) with saxonche and turns the SVRL into ``Issue``s.

Process and thread safety (see ``rules/README.md`` for the figures this design rests on):

* saxonche runs Saxon inside a GraalVM isolate. It has been reported to break in forked or
  multi-threaded workers, so the processor is created lazily, once per *process*: the state is keyed
  by ``os.getpid()`` and dropped in a forked child (``os.register_at_fork``), which builds its own.
  The parent's objects are kept referenced in the child (never deallocated there) so no finaliser
  ever calls into the parent's isolate from the child.
* Each stylesheet is compiled once per process (compiling the Factur-X EXTENDED one takes about a
  second) and cached. ``PyXsltExecutable`` carries mutable state (parameters, initial match
  selection), so every thread transforms with its own ``clone()`` of the compiled executable
  (cloning costs ~0.02 ms); compilation itself happens under a lock.
* The Factur-X profile Schematrons look up code lists with ``document('..._codedb.xml')`` for every
  coded value, which re-reads the code list file on every run. At compile time we rewrite those
  calls to a stylesheet parameter holding the code list parsed once per process (the files on disk
  are untouched): about 25 % faster for the EN16931 profile.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree

from invoicing.validation.report import Issue

logger = logging.getLogger(__name__)

RULES_DIR = Path(__file__).resolve().parent / "rules"
SVRL_NS = "http://purl.oclc.org/dsdl/svrl"
_CODEDB_PARAM = "scell-codedb"


@dataclass(frozen=True)
class Stylesheet:
    """A compiled-Schematron XSLT shipped in ``rules/``."""

    key: str
    path: Path
    source: str  # Issue.source of what it reports
    codedb: str | None = None  # file name the XSLT loads with document(), preloaded once per process


STYLESHEETS: dict[str, Stylesheet] = {
    sheet.key: sheet
    for sheet in (
        Stylesheet("en16931-cii", RULES_DIR / "en16931/EN16931-CII-validation.xslt", "en16931"),
        Stylesheet("en16931-ubl", RULES_DIR / "en16931/EN16931-UBL-validation.xslt", "en16931"),
        Stylesheet("br-fr-cii", RULES_DIR / "fr-ctc/BR-FR-Flux2-Schematron-CII.xslt", "br-fr"),
        Stylesheet("br-fr-ubl", RULES_DIR / "fr-ctc/BR-FR-Flux2-Schematron-UBL.xslt", "br-fr"),
        Stylesheet("br-fr-cdar", RULES_DIR / "fr-ctc/BR-FR-CDV-Schematron-CDAR.xslt", "cdar"),
        Stylesheet(
            "facturx-minimum",
            RULES_DIR / "facturx-lib/MINIMUM/Factur-X_1.09_MINIMUM.xsl",
            "facturx-profile",
            "FACTUR-X_MINIMUM_codedb.xml",
        ),
        Stylesheet(
            "facturx-basicwl",
            RULES_DIR / "fr-ctc/facturx/BASICWL/FACTUR-X_BASIC-WL.xslt",
            "facturx-profile",
            "FACTUR-X_BASIC-WL_codedb.xml",
        ),
        Stylesheet(
            "facturx-basic",
            RULES_DIR / "facturx-lib/BASIC/Factur-X_1.09_BASIC.xsl",
            "facturx-profile",
            "FACTUR-X_BASIC_codedb.xml",
        ),
        Stylesheet(
            "facturx-en16931",
            RULES_DIR / "fr-ctc/facturx/EN16931/FACTUR-X_EN16931.xslt",
            "facturx-profile",
            "FACTUR-X_EN16931_codedb.xml",
        ),
        Stylesheet(
            "facturx-extended",
            RULES_DIR / "fr-ctc/facturx/EXTENDED/Factur-X_EXTENDED.xslt",
            "facturx-profile",
            "Factur-X_EXTENDED_codedb.xml",
        ),
    )
}


class _ProcessState:
    """Everything saxonche-related that belongs to one process."""

    def __init__(self) -> None:
        from saxonche import PySaxonProcessor  # imported lazily: importing alone starts nothing

        self.pid = os.getpid()
        self.processor = PySaxonProcessor(license=False)
        self.xslt = self.processor.new_xslt30_processor()
        self.executables: dict[str, Any] = {}
        self.codedbs: dict[str, Any] = {}
        self.compile_seconds: dict[str, float] = {}
        self.lock = threading.Lock()

    def executable(self, sheet: Stylesheet) -> Any:
        """The compiled stylesheet, compiled on first use (under the lock: compile once)."""
        exe = self.executables.get(sheet.key)
        if exe is not None:
            return exe
        with self.lock:
            exe = self.executables.get(sheet.key)
            if exe is None:
                started = time.perf_counter()
                exe = self._compile(sheet)
                self.compile_seconds[sheet.key] = time.perf_counter() - started
                logger.info("compiled %s in %.3f s", sheet.key, self.compile_seconds[sheet.key])
                self.executables[sheet.key] = exe
        return exe

    def _compile(self, sheet: Stylesheet) -> Any:
        if sheet.codedb is None:
            return self.xslt.compile_stylesheet(stylesheet_file=str(sheet.path))
        text = sheet.path.read_text(encoding="utf-8")
        text = re.sub(r"document\(\s*'" + re.escape(sheet.codedb) + r"'\s*\)", "$" + _CODEDB_PARAM, text)
        opening = re.search(r"<xsl:stylesheet\b[^>]*>", text)
        if opening is None:  # pragma: no cover - the shipped files all have one
            raise RuntimeError(f"{sheet.path} is not an XSLT stylesheet")
        declaration = f'<xsl:param name="{_CODEDB_PARAM}" required="yes"/>'
        text = text[: opening.end()] + declaration + text[opening.end() :]
        exe = self.xslt.compile_stylesheet(stylesheet_text=text, base_uri=sheet.path.as_uri())
        self.codedbs[sheet.key] = self.processor.parse_xml(
            xml_file_name=str(sheet.path.parent / sheet.codedb)
        )
        return exe


_state: _ProcessState | None = None
_state_lock = threading.Lock()
_local = threading.local()
# Objects inherited from a parent process: kept alive in the child so their finalisers never run
# there (they would call into the parent's GraalVM isolate).
_inherited: list[Any] = []
# Measured with saxonche 13.1 (tests/invoicing/test_validation.py): in a process forked *after* its
# parent created a processor, saxonche only works from the thread that called fork(); the first call
# from any other thread kills the process with a segmentation fault inside GraalVM, whether the
# child reuses the parent's processor or creates a new one. A parent that merely imported saxonche is
# harmless. So in such a "tainted" child every other thread is refused (fail closed, no crash).
_fork_tainted = False
_fork_thread: int | None = None


class EngineUnavailable(RuntimeError):
    """saxonche cannot be used from this thread (see ``_fork_tainted``)."""


def _reset_after_fork() -> None:
    global _state, _state_lock, _local, _fork_tainted, _fork_thread
    if _state is not None or _fork_tainted:
        _fork_tainted = True
        _fork_thread = threading.get_ident()
    if _state is not None:
        _inherited.append(_state)
    _inherited.append(_local)
    _state = None
    # A thread of the parent may have held the lock when fork() happened; the child gets a fresh one.
    _state_lock = threading.Lock()
    _local = threading.local()


os.register_at_fork(after_in_child=_reset_after_fork)


def _process_state() -> _ProcessState:
    if _fork_tainted and threading.get_ident() != _fork_thread:
        raise EngineUnavailable(
            "saxonche was started in the parent of this forked process and can only run in the thread "
            "that forked. Start validation only after the worker process has started (warm_up() in "
            "gunicorn's post_fork / the Dramatiq process boot), never in the master process."
        )
    global _state
    state = _state
    if state is not None and state.pid == os.getpid():
        return state
    with _state_lock:
        # Second check: the pid test also covers a fork that register_at_fork would not see.
        if _state is None or _state.pid != os.getpid():
            if _state is not None:
                _inherited.append(_state)
            _state = _ProcessState()
        return _state


def _thread_executable(state: _ProcessState, sheet: Stylesheet) -> Any:
    """This thread's clone of the compiled stylesheet (clones keep transforms from sharing state)."""
    cache: dict[tuple[int, str], Any] | None = getattr(_local, "executables", None)
    if cache is None:
        cache = _local.executables = {}
    key = (state.pid, sheet.key)
    exe = cache.get(key)
    if exe is None:
        master = state.executable(sheet)
        with state.lock:
            exe = master.clone()
        codedb = state.codedbs.get(sheet.key)
        if codedb is not None:
            exe.set_parameter(_CODEDB_PARAM, codedb)
        cache[key] = exe
    return exe


def _engine_issue(key: str, message: str) -> Issue:
    return Issue(rule="SCELL-SCHEMATRON", message=message, flag="fatal", source=STYLESHEETS[key].source)


def run(keys: list[str], xml_text: str) -> list[Issue]:
    """Apply the stylesheets ``keys`` to one XML document and return the issues of their SVRL.

    ``xml_text`` must come from lxml's re-serialisation of an already checked tree (no DOCTYPE):
    Saxon's own parser is not trusted with raw input. The document is parsed once for all keys.
    Never raises: a stylesheet that cannot run is a fatal issue, because declaring a document valid
    without having checked it would be worse.
    """
    if not keys:
        return []
    try:
        state = _process_state()
        node = state.processor.parse_xml(xml_text=xml_text)
    except Exception as exc:  # EngineUnavailable, PySaxonApiError, isolate failure
        logger.exception("schematron engine unavailable")
        return [_engine_issue(key, f"The {key} rules could not be run: {exc}") for key in keys]
    issues: list[Issue] = []
    for key in keys:
        sheet = STYLESHEETS[key]
        try:
            svrl = _thread_executable(state, sheet).transform_to_string(xdm_node=node)
        except Exception as exc:
            logger.exception("schematron %s failed", key)
            issues.append(_engine_issue(key, f"The {key} rules could not be run: {exc}"))
            continue
        if not svrl:
            issues.append(_engine_issue(key, f"The {key} rules produced no report."))
            continue
        issues.extend(parse_svrl(svrl.encode("utf-8"), source=sheet.source))
    return issues


_BRACKET_ID = re.compile(r"^\s*\[([A-Za-z0-9._/-]+)\]")


def _flag(element: etree._Element) -> str:
    """Severity of one SVRL entry (see report.py for why unflagged entries are errors)."""
    flag = (element.get("flag") or element.get("role") or "").strip().lower()
    if flag in ("fatal", "error", "warning"):
        return flag
    if flag in ("info", "information", "informational"):
        return "warning"
    return "error"


def parse_svrl(svrl: bytes, *, source: str) -> list[Issue]:
    """Every ``svrl:failed-assert`` and ``svrl:successful-report`` as an ``Issue``.

    Rule id: ``@id``, except for the Factur-X ``FX-SCH-*`` numbers, replaced by the ``[BR-xx]`` prefix
    of their message; without ``@id`` that prefix too (the Factur-X EXTENDED file has no ids); failing
    that a generic ``FX-PROFILE`` id (the profile "marked as not used in the given context" reports).
    """
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
    root = etree.fromstring(svrl, parser)
    issues: list[Issue] = []
    for element in root.iter(f"{{{SVRL_NS}}}failed-assert", f"{{{SVRL_NS}}}successful-report"):
        text_el = element.find(f"{{{SVRL_NS}}}text")
        message = " ".join("".join(text_el.itertext()).split()) if text_el is not None else ""
        rule = (element.get("id") or "").strip()
        match = _BRACKET_ID.match(message)
        if rule.startswith("FX-SCH-") and match:
            # The Factur-X profile files number their asserts (FX-SCH-A-000015) but restate the
            # EN 16931 rule in the message ("[BR-06]-..."): report the rule everyone knows, keep
            # the Factur-X number for tracing.
            message = f"{message} ({rule})"
            rule = match.group(1)
        elif not rule:
            rule = match.group(1) if match else "FX-PROFILE"
        issues.append(
            Issue(
                rule=rule,
                message=message,
                flag=_flag(element),
                location=element.get("location", ""),
                source=source,
            )
        )
    return issues


def warm_up(keys: list[str] | None = None) -> dict[str, float]:
    """Compile every stylesheet now (call it once a worker process has started) and return the
    compile time in seconds of each one compiled by this call or before in this process."""
    state = _process_state()
    for key in keys or list(STYLESHEETS):
        state.executable(STYLESHEETS[key])
    return dict(state.compile_seconds)
