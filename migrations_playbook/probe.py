"""Ask an HTTP process whether it is ready: `python -m migrations_playbook.probe URL`.

The runner calls `probe()` while it waits for `/readyz`; compose.yaml's healthchecks run this
module, so a container needs no curl. Exit status 0 means the URL answered 200.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request


def probe(url: str, *, timeout: float = 2.0) -> tuple[int | None, str]:
    """Return the status and the start of the body of GET `url`, or (None, why it failed)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (http only)
            return response.status, response.read(300).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(300).decode("utf-8", "replace")
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return None, f"{exc.__class__.__name__}: {reason}"


def main(argv: list[str] | None = None) -> int:
    """Print the answer of GET URL; exit 0 when it is 200, 1 otherwise."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m migrations_playbook.probe URL", file=sys.stderr)
        return 2
    status, body = probe(args[0])
    print(f"{status or 'no answer'} {body}".strip())
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
