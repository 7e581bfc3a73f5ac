"""The ``report`` command: a static HTML report of one experiment.

The report folder opens from ``file://`` with no server and no network.  It holds:

    index.html      the page, rendered from templates/index.html.j2 (jinja2, autoescaped)
    data.js         the trials, as one global variable (browsers block fetch() of
                    local JSON files under file://, but not a script beside the page)
    report.js       the page's own script: the trial table and the plots
    report.css      its style sheet
    plotly.min.js   plotly.js, copied from the installed Python ``plotly`` package

Running ``report`` again updates the folder in place.  Each file is replaced
atomically, assets first, then data.js, then index.html, so a browser that reloads
during a write reads whole files.  index.html names each file with a content hash
in its query string, so that a browser's cache never pairs it with old assets.
A page loaded just before data.js was replaced finds the newer data beside it:
both carry the time of their run, and the page then asks for a reload.
The data comes from the store through :func:`hpcsweep.collect.load_view`, which
writes nothing and never asks the scheduler.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import importlib.util
import logging
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from hpcsweep.atomic import write_bytes_atomic
from hpcsweep.collect import load_view
from hpcsweep.errors import EXIT_OK, HpcsweepError, StoreError, UsageError
from hpcsweep.report_data import DATA_VARIABLE, LogLinks, build_overview, build_page_data, encode_for_script
from hpcsweep.report_server import ServedSite, bind_server, serve
from hpcsweep.store import Store, command_name

logger = logging.getLogger(__name__)

TEMPLATE_NAME = "index.html.j2"
SITE_FILES = ("report.css", "report.js")
PLOTLY_FILE = "plotly.min.js"
DATA_FILE = "data.js"
INDEX_FILE = "index.html"
REPORT_FILES = frozenset({INDEX_FILE, DATA_FILE, PLOTLY_FILE, *SITE_FILES})
DATA_HEADER = "// Written by hpcsweep report: the trials shown by index.html.\n"


def run_report(store: Store, arguments: argparse.Namespace) -> int:
    """Write the report of ``arguments.name`` and, with ``--serve``, serve it on 127.0.0.1."""
    name = arguments.name
    experiment, trials = load_view(store, name)
    experiment_dir = store.experiment_dir(name)
    rerun = ["hpcsweep", "report", "-n", command_name(store, name)]
    if arguments.output:
        output_dir = Path(arguments.output).expanduser().absolute()
        rerun += ["--output", str(output_dir)]
    else:
        output_dir = experiment_dir / "report"

    # Bind before writing, so that a busy port fails at once and leaves nothing half done.
    site = ServedSite.for_report(output_dir, store.root, experiment_dir / "trials")
    server = bind_server(site, arguments.port) if arguments.serve else None
    try:
        index = write_report(experiment, trials, output_dir, store.root, experiment_dir, shlex.join(rerun))
    except BaseException:
        if server is not None:
            server.server_close()
        raise
    print(f"wrote the report of {len(trials)} trials of {name!r} to {output_dir}", file=sys.stderr)
    if server is None:
        sys.stdout.write(f"{index}\n")
        sys.stdout.flush()
        return EXIT_OK
    return serve(server, site)


# ----------------------------------------------------------------------- files


def write_report(
    experiment: dict[str, Any],
    trials: list[dict[str, Any]],
    output_dir: Path,
    store_root: Path,
    experiment_dir: Path,
    rerun_command: str,
) -> Path:
    """Write the report folder and return the path of its index.html.

    ``experiment_dir`` is the experiment's folder in the store under ``store_root``,
    and ``rerun_command`` the command that the page shows for a refresh.
    """
    generated_time = time.time()
    started = time.perf_counter()
    prepare_output_dir(output_dir)
    links = LogLinks(output_dir, store_root, experiment_dir)

    versions: dict[str, str] = {}
    site_dir = resource_dir("_site", "site")
    for file_name in SITE_FILES:
        versions[file_name] = _copy_if_changed(site_dir / file_name, output_dir / file_name)
    versions[PLOTLY_FILE] = _copy_if_changed(plotly_js_path(), output_dir / PLOTLY_FILE)

    data = build_page_data(experiment, trials, links, generated_time)
    # JSON.parse, unlike an object literal, keeps a key such as "__proto__" as data.
    data_text = f"{DATA_HEADER}window.{DATA_VARIABLE} = JSON.parse({encode_for_script(encode_for_script(data))});\n"
    versions[DATA_FILE] = _write_text(output_dir / DATA_FILE, data_text)

    overview = build_overview(experiment, trials, links, generated_time)
    urls = {file_name: f"{file_name}?v={version}" for file_name, version in versions.items()}
    html = render_template(TEMPLATE_NAME, overview=overview, urls=urls, rerun_command=rerun_command,
                           generated_time=repr(generated_time))
    _write_text(output_dir / INDEX_FILE, html)
    logger.info("report of %s written to %s in %.2f s", experiment["name"], output_dir,
                time.perf_counter() - started)
    return output_dir / INDEX_FILE


def prepare_output_dir(path: Path) -> None:
    """Create the report folder; raise :class:`UsageError` unless it is a writable report folder."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"report folder {path} is a file; give a folder path with --output DIR")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(
            f"cannot create the report folder {path}: {err.strerror}; choose a writable folder with --output DIR"
        ) from err
    if not os.access(path, os.W_OK | os.X_OK):
        raise UsageError(f"report folder {path} is not writable; choose a writable folder with --output DIR")

    # Refuse to mix the report into a folder of other files, whose index.html it would replace.
    others = sorted(entry.name for entry in os.scandir(path)
                    if entry.name not in REPORT_FILES and not entry.name.startswith("."))
    if others and not _holds_report(path):
        raise UsageError(
            f"report folder {path} already contains other files ({', '.join(others[:3])}) and no report; "
            f"choose a new or empty folder with --output DIR"
        )


def _holds_report(path: Path) -> bool:
    try:
        with open(path / DATA_FILE, encoding="utf-8") as handle:
            return handle.readline() == DATA_HEADER
    except (OSError, UnicodeDecodeError):
        return False


def _content_version(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


def _write_text(path: Path, text: str) -> str:
    data = text.encode("utf-8")
    _write_bytes(path, data)
    return _content_version(data)


def _write_bytes(path: Path, data: bytes) -> None:
    try:
        write_bytes_atomic(path, data)
        # The atomic write creates files that only their owner may read.  A report is
        # meant to be shared and served, so it gets the usual mode of new files.
        os.chmod(path, _new_file_mode())
    except OSError as err:
        raise StoreError(f"cannot write {path}: {err.strerror}; free space or choose another --output DIR") from err


@functools.cache
def _new_file_mode() -> int:
    # Reading the umask means setting it; this runs once, before any thread starts.
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def _copy_if_changed(source: Path, target: Path) -> str:
    """Copy ``source`` to ``target`` unless it already has the same content; return its version."""
    data = source.read_bytes()
    try:
        unchanged = target.stat().st_size == len(data) and target.read_bytes() == data
    except OSError:
        unchanged = False
    if not unchanged:
        _write_bytes(target, data)
    return _content_version(data)


# ------------------------------------------------------------------- resources


def resource_dir(installed_name: str, source_name: str) -> Path:
    """Return a folder of the report's resources.

    An installed wheel ships ``templates/`` and ``site/`` inside the package as
    ``hpcsweep/_templates`` and ``hpcsweep/_site``; a source checkout, editable
    installs included, has them beside the package.
    """
    package_dir = Path(__file__).resolve().parent
    for candidate in (package_dir / installed_name, package_dir.parent / source_name):
        if candidate.is_dir():
            return candidate
    raise HpcsweepError(
        f"the report resources {source_name}/ are missing (looked in {package_dir / installed_name} "
        f"and {package_dir.parent / source_name}); reinstall hpcsweep"
    )


def plotly_js_path() -> Path:
    """Return the plotly.min.js file of the installed Python ``plotly`` package."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise HpcsweepError("the report needs plotly.js from the Python package plotly; "
                         "install it with: pip install 'hpcsweep[report]'")
    path = Path(list(spec.submodule_search_locations)[0]) / "package_data" / PLOTLY_FILE
    if not path.is_file():
        raise HpcsweepError(f"plotly.js is missing from the plotly package ({path} not found); "
                         f"reinstall it with: pip install --force-reinstall plotly")
    return path


def render_template(template_name: str, **context: Any) -> str:
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(resource_dir("_templates", "templates")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    return environment.get_template(template_name).render(**context)
