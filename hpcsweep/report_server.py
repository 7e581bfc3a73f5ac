"""Serving a report folder over HTTP on 127.0.0.1 only, for ssh port forwarding.

Other users of a shared login node can connect to a loopback port too, so the
server shows only the report and the trials' logs, never the rest of the store.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import sys
from dataclasses import dataclass
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

from hpcsweep.errors import EXIT_OK, UsageError
from hpcsweep.report_data import STDERR_FILE, STDOUT_FILE, is_inside

logger = logging.getLogger(__name__)

SERVE_HOST = "127.0.0.1"


@dataclass(frozen=True)
class ServedSite:
    """The files that ``--serve`` shows: the report folder and the trials' logs that it links to.

    The HTTP root is the deepest folder that contains both the report folder and
    the experiment's ``trials/`` folder, so that the report's relative log links
    work over HTTP as they do under file://.  Below that root only the report's
    files and the ``stdout.log`` and ``stderr.log`` of trials are served.
    """

    root_dir: Path
    report_dir: Path
    trials_dir: Path

    @classmethod
    def for_report(cls, report_dir: Path, store_root: Path, trials_dir: Path) -> ServedSite:
        if is_inside(report_dir, store_root):
            root_dir = Path(os.path.commonpath([report_dir, trials_dir]))
        else:
            root_dir = report_dir  # the log links are file:// URLs, which no HTTP page may open
        return cls(root_dir, report_dir, trials_dir)

    def url_path(self) -> str:
        relative = Path(os.path.relpath(self.report_dir, self.root_dir)).as_posix()
        return "/" if relative == "." else "/" + quote(relative) + "/"

    def serves(self, path: Path) -> bool:
        path = Path(os.path.normpath(path))
        if is_inside(path, self.report_dir):
            return True
        return path.name in (STDOUT_FILE, STDERR_FILE) and is_inside(path, self.trials_dir)


class _ReportRequestHandler(SimpleHTTPRequestHandler):
    """A request handler that serves a :class:`ServedSite`.

    Every response carries ``Cache-Control: no-cache``, so browsers revalidate and
    a reload shows a rewritten report.
    """

    # Browsers show text/plain in the tab; the default type of .log files makes them download it.
    extensions_map = dict(SimpleHTTPRequestHandler.extensions_map, **{".log": "text/plain; charset=utf-8"})

    def __init__(self, *args: Any, site: ServedSite, **kwargs: Any) -> None:
        self.site = site
        super().__init__(*args, directory=str(site.root_dir), **kwargs)

    def send_head(self) -> Any:
        if self.path == "/favicon.ico":
            # Browsers request it beside every log file they show: reply that there is none.
            self.send_response(HTTPStatus.NO_CONTENT)
            self.end_headers()
            return None
        if not self.site.serves(Path(self.translate_path(self.path))):
            self.send_error(HTTPStatus.NOT_FOUND, "not part of the report")
            return None
        return super().send_head()

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)


def bind_server(site: ServedSite, port: int) -> ThreadingHTTPServer:
    """Bind an HTTP server for ``site`` to 127.0.0.1:``port`` (0 picks a free port)."""
    if not 0 <= port <= 65535:
        raise UsageError(f"--port {port}: a port is a number from 1 to 65535 (0 picks a free one)")
    handler = functools.partial(_ReportRequestHandler, site=site)
    try:
        return ThreadingHTTPServer((SERVE_HOST, port), handler)
    except OSError as err:
        if err.errno == errno.EADDRINUSE:
            raise UsageError(f"port {port} on {SERVE_HOST} is in use; choose another with --port N") from err
        raise UsageError(
            f"cannot serve on {SERVE_HOST}:{port}: {err.strerror}; choose another port with --port N"
        ) from err


def serve(server: ThreadingHTTPServer, site: ServedSite) -> int:
    """Serve until interrupted (Ctrl-C) or shut down; print the report's URL on stdout first."""
    port = server.server_address[1]
    host = SERVE_HOST
    url = f"http://{host}:{port}{site.url_path()}"
    sys.stdout.write(f"{url}\n")
    sys.stdout.flush()
    print(f"serving {site.report_dir} at {url} on this host only; from your machine, forward it with "
          f"ssh -L {port}:{host}:{port} HOST; press Ctrl-C to stop", file=sys.stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped serving the report", file=sys.stderr)
    finally:
        server.server_close()
    return EXIT_OK
