"""Downloads of the ``webwire`` command: the file name, never overwriting,
resuming with a Range request (RFC 9110 section 14) and the progress bar."""

from __future__ import annotations

import mimetypes
import os
import re
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote

import yarl

from ._args import UsageError

if TYPE_CHECKING:
    from webwire import Response

    from ._output import Printer

__all__ = [
    "DownloadError",
    "Plan",
    "content_range",
    "filename_from_disposition",
    "filename_from_url",
    "plan_download",
    "save",
    "unique_path",
]

_CONTENT_RANGE = re.compile(r"bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)\s*$", re.IGNORECASE)


class DownloadError(Exception):
    """A download cannot go on (a bad partial response, a refused range).

    Attributes:
        exit_status: The exit status to report.
    """

    def __init__(self, message: str, exit_status: int = 1) -> None:
        super().__init__(message)
        self.exit_status = exit_status


@dataclass
class Plan:
    """Where a download goes and from which byte.

    Attributes:
        path: Target file, or ``None`` until the response names it.
        offset: Bytes already in the file (``--continue``); a Range request
            asks for the rest.
        explicit: The path was given with ``-o`` (it may be overwritten).
    """

    path: Path | None
    offset: int = 0
    explicit: bool = False


def _safe_name(name: str) -> str | None:
    name = name.replace("\\", "/").rsplit("/", 1)[-1].strip().lstrip(".")
    name = "".join(char for char in name if char.isprintable())
    return name[:255] or None


def filename_from_disposition(value: str) -> str | None:
    """The file name of a ``Content-Disposition`` field (RFC 6266): the
    ``filename*`` parameter (RFC 8187) first, else ``filename``; any
    directory part and leading dots are removed.

    Args:
        value: The field value, for example ``attachment; filename="a.txt"``.

    Returns:
        A bare file name, or ``None``.
    """
    message = Message()
    message["content-disposition"] = value
    name = message.get_filename()
    return _safe_name(name) if name else None


def filename_from_url(url: str) -> str | None:
    """The last segment of a URL path, percent-decoded and made safe.

    Args:
        url: The URL.

    Returns:
        A bare file name, or ``None`` when the path ends with ``/``.
    """
    path = yarl.URL(url).raw_path
    return _safe_name(unquote(path.rsplit("/", 1)[-1]))


def unique_path(path: Path) -> Path:
    """``path``, or ``name-1.ext``, ``name-2.ext``... when it exists.

    Args:
        path: The wanted file.

    Returns:
        A path that does not exist yet.
    """
    if not path.exists():
        return path
    stem, suffix = path.stem, path.suffix
    number = 1
    while True:
        candidate = path.with_name(f"{stem}-{number}{suffix}")
        if not candidate.exists():
            return candidate
        number += 1


def content_range(value: str) -> tuple[int | None, int | None, int | None]:
    """Parse a ``Content-Range`` value (RFC 9110 section 14.4).

    Args:
        value: ``"bytes 10-99/100"`` or ``"bytes */100"``.

    Returns:
        ``(first, last, complete length)``, each ``None`` when absent or
        unknown; ``(None, None, None)`` when the value does not parse.
    """
    match = _CONTENT_RANGE.match(value.strip())
    if match is None:
        return None, None, None
    first, last, total = match.groups()
    return (
        int(first) if first is not None else None,
        int(last) if last is not None else None,
        int(total) if total not in (None, "*") else None,
    )


def plan_download(output: str | None, url: str, resume: bool) -> Plan:
    """Decide the target file before the request is sent.

    With ``--continue`` the file must be known beforehand: ``-o FILE``, or
    the last segment of the URL path.

    Args:
        output: ``-o FILE``, or ``None``.
        url: The request URL.
        resume: ``--continue`` was given.

    Returns:
        The plan; its ``offset`` is the size of an existing file to resume.

    Raises:
        UsageError: ``--continue`` without a file name.
    """
    if output is not None:
        path: Path | None = Path(output).expanduser()
        explicit = True
    elif resume:
        name = filename_from_url(url)
        if name is None:
            raise UsageError("--continue needs -o FILE when the URL path names no file")
        path = Path(name)
        explicit = True
    else:
        return Plan(None)
    offset = 0
    if resume and path is not None and path.is_file():
        offset = path.stat().st_size
    return Plan(path, offset, explicit)


def _name_for(response: Response) -> Path:
    disposition = response.headers.get("Content-Disposition")
    name = filename_from_disposition(disposition) if disposition else None
    if name is None:
        name = filename_from_url(str(response.url))
    if name is None:
        media = response.headers.get("Content-Type", "").split(";", 1)[0].strip()
        name = "index" + (mimetypes.guess_extension(media) or "" if media else "")
    return unique_path(Path(name))


def _total(response: Response) -> int | None:
    if response.headers.get("Content-Encoding", "identity").lower() != "identity":
        return None
    try:
        total = int(response.headers.get("Content-Length", ""))
    except ValueError:
        return None
    return total if total >= 0 else None


def save(printer: Printer, response: Response, plan: Plan, show_progress: bool) -> Path | None:
    """Write the body of ``response`` to the planned file.

    A 206 appends to the partial file when its ``Content-Range`` starts at
    the planned offset; a 200 to a Range request (the server ignored it)
    rewrites the file from the start; a 416 whose complete length equals
    the file size means the file is already complete (RFC 9110 sections
    14.2, 15.3.7, 15.5.17). An interrupted transfer leaves the partial file
    in place for ``--continue``.

    Args:
        printer: Where notes and the progress bar go.
        response: The final response, not read yet.
        plan: The target and offset.
        show_progress: Draw a progress bar (on a terminal).

    Returns:
        The file written, or ``None`` when it was already complete.

    Raises:
        DownloadError: A 206 for another range, or a 416 for a file that is
            not complete.
        OSError: The file cannot be written.
    """
    status = response.status_code
    offset = plan.offset
    if status == 416 and offset > 0:
        _, _, complete = content_range(response.headers.get("Content-Range", ""))
        if complete == offset:
            printer.note(f"{plan.path} is already complete ({offset} bytes)", style="green")
            return None
        raise DownloadError(
            f"the server cannot resume {plan.path} at byte {offset} (416 Range Not Satisfiable)",
            4,
        )
    mode = "wb"
    if status == 206:
        first, _, complete = content_range(response.headers.get("Content-Range", ""))
        if offset == 0 or first != offset:
            raise DownloadError(
                f"the server sent a part starting at byte {first}, not at byte {offset}"
            )
        mode = "ab"
        total = complete
    else:
        if offset > 0:
            printer.note(
                f"the server does not resume downloads; {plan.path} is downloaded from the start"
            )
            offset = 0
        total = _total(response)
    path = plan.path if plan.path is not None else _name_for(response)
    return _write(printer, response, path, mode, offset, total, show_progress, plan.explicit)


def _write(
    printer: Printer,
    response: Response,
    path: Path,
    mode: str,
    offset: int,
    total: int | None,
    show_progress: bool,
    explicit: bool,
) -> Path:
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=printer.err_console,
        transient=False,
        disable=not show_progress,
    )
    # Exclusive creation of a derived name: a file appearing meanwhile is
    # never overwritten.
    file = open(path, "xb" if mode == "wb" and not explicit else mode)  # noqa: SIM115
    received = 0
    try:
        with file, progress:
            task = progress.add_task(path.name, total=total, completed=offset)
            for chunk in response.iter_bytes():
                file.write(chunk)
                received += len(chunk)
                progress.update(task, completed=offset + received)
    except BaseException:
        if offset + received == 0:
            try:
                os.remove(path)
            except OSError:
                pass
        else:
            printer.error(
                f"webwire: incomplete download: {offset + received} bytes in {path}; "
                "resume with --continue"
            )
        raise
    what = f"{received} bytes" if offset == 0 else f"{received} more bytes ({offset + received})"
    printer.note(f"Saved {what} to {path}", style="green")
    return path
