"""kombu's `filesystem://` transport, made safe for several processes and given delay queues.

The embedded default runs every process of a step (relays, consumers, Celery, the services) on
kombu's filesystem transport. Its stock version has three races and one gap that show up as soon
as more than one process uses the folder:

* `_put` opens the message file under its final name, then locks it, then writes: a consumer
  listing the folder in between reads an empty or half-written file (a JSONDecodeError that kills
  the consumer). Here a message is written to a hidden temporary file and renamed into place, so
  a reader sees a whole message or none.
* `_get` claims a message with `shutil.move` to the system's temporary folder, a copy and a
  delete when that folder is on another file system: two consumers could both get it. Here the
  claim is one `os.rename` inside the broker folder, which exactly one process wins.
* `_queue_bind` creates an exchange's binding table with `open("wb")` after checking that it does
  not exist: two consumers starting together truncate each other's bindings. Here the file is
  opened without truncation and rewritten under its lock; an empty table reads as no bindings.
* RabbitMQ's queue arguments `x-message-ttl` and `x-dead-letter-exchange` are ignored, so the
  outbox's retry tiers and gap-wait queue (delay queues: TTL, then dead-letter back to the
  service's queue) would keep a message forever. Here a queue declared with both is recorded in
  the control folder, and a message published to it is written straight to its dead-letter
  destination with a due time `TTL` ahead; `_get` does not hand out a message before it is due.
  The result is what RabbitMQ does with such a queue, give or take one polling interval.

`install()` points the `filesystem` scheme at this transport; `service_kit.env` calls it for a
`filesystem://` broker, so every process of the stack (Celery, the outbox, the health checks)
uses it without a setting of its own.

Message files are named `<due: ms since the epoch, 13 digits>_<monotonic ns>_<uuid>.<queue>.msg`,
so a sorted listing is the delivery order, as in the stock transport.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from queue import Empty

import kombu.transport
from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

TRANSPORT_PATH = "service_kit.fs_transport:Transport"
# A negative answer ("this queue delays nothing") is trusted this long before the control folder
# is read again: another process may declare the queue after we first looked.
_UNKNOWN_QUEUE_RECHECK_S = 2.0


def install() -> None:
    """Make `filesystem://` URLs use this transport in this process (idempotent)."""
    if kombu.transport.TRANSPORT_ALIASES.get("filesystem") != TRANSPORT_PATH:
        kombu.transport.TRANSPORT_ALIASES["filesystem"] = TRANSPORT_PATH
        # get_transport_cls caches by name: drop a stock class resolved before install().
        kombu.transport._transport_cache.pop("filesystem", None)


def now_ms() -> int:
    return int(time.time() * 1000)


def message_name(queue: str, due_ms: int) -> str:
    """Return the file name of a message for `queue`, deliverable from `due_ms` on.

    Within one millisecond the machine's monotonic clock (in ns) keeps a publisher's order, so
    the events of one aggregate, published in sequence by one relay, are taken in sequence.
    """
    return f"{due_ms:013d}_{time.monotonic_ns():020d}_{uuid.uuid4().hex}.{queue}.msg"


def message_due_ms(name: str) -> int:
    """Return when the message file `name` becomes deliverable (0 if its name has no time)."""
    head = name.partition("_")[0]
    return int(head) if head.isdigit() else 0


def write_atomically(folder: str | Path, name: str, data: bytes) -> Path:
    """Write `data` to `folder/name` so that no reader can see the file incomplete."""
    final = Path(folder) / name
    # A leading dot: the stock transport and ours both skip it (it names no `<queue>.msg`).
    temporary = Path(folder) / f".{uuid.uuid4().hex}.tmp"
    try:
        with open(temporary, "wb", buffering=0) as handle:
            handle.write(data)
        os.replace(temporary, final)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise ChannelError(f"Cannot add file {str(final)!r} to directory") from exc
    return final


class Channel(filesystem.Channel):
    """The filesystem channel with atomic writes and claims, and TTL + dead-letter queues."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # queue -> (delay spec or None, when it was read): see _delay_of.
        self._delays: dict[str, tuple[dict | None, float]] = {}
        # queue -> message names listed last time, oldest first (refilled when used up).
        self._pending: dict[str, list[str]] = {}

    # ------------------------------------------------------------------ queue arguments
    def _queue_file(self, queue: str) -> Path:
        if not self._is_valid_exchange_name(queue) or not queue:
            raise ChannelError(f"Invalid queue name for the filesystem transport: {queue!r}")
        return self.control_folder / f"{queue}.queue"

    def queue_declare(self, queue=None, passive=False, arguments=None, **kwargs):
        """Declare the queue; remember its TTL and dead-letter target in the control folder."""
        result = super().queue_declare(queue, passive, arguments=arguments, **kwargs)
        arguments = arguments or {}
        if not passive and "x-message-ttl" in arguments and "x-dead-letter-exchange" in arguments:
            spec = {
                "ttl_ms": int(arguments["x-message-ttl"]),
                "exchange": arguments["x-dead-letter-exchange"] or "",
                "routing_key": arguments.get("x-dead-letter-routing-key"),
            }
            self.control_folder.mkdir(parents=True, exist_ok=True)
            file = self._queue_file(result.queue)
            write_atomically(file.parent, file.name, str_to_bytes(json.dumps(spec)))
            self._delays[result.queue] = (spec, time.monotonic())
        return result

    def _delay_of(self, queue: str) -> dict | None:
        """Return the TTL + dead-letter spec of `queue` if it is a delay queue, else None."""
        known = self._delays.get(queue)
        if known is not None and (
            known[0] is not None or time.monotonic() - known[1] < _UNKNOWN_QUEUE_RECHECK_S
        ):
            return known[0]
        try:
            spec = json.loads(self._queue_file(queue).read_text())
        except (FileNotFoundError, ChannelError, ValueError):
            spec = None
        self._delays[queue] = (spec, time.monotonic())
        return spec

    # ------------------------------------------------------------------ messages
    def _put(self, queue, payload, **kwargs):
        """Put `payload` onto `queue`; on a delay queue, onto its dead-letter target, due later."""
        due = now_ms()
        targets = [queue]
        spec = self._delay_of(queue)
        if spec is not None:
            due += spec["ttl_ms"]
            routing_key = spec["routing_key"] or payload["properties"]["delivery_info"].get(
                "routing_key", queue
            )
            targets = self._lookup(spec["exchange"], routing_key)
        data = str_to_bytes(dumps(payload))
        for target in targets:
            write_atomically(self.data_folder_out, message_name(target, due), data)

    def _get(self, queue):
        """Claim and return the oldest message of `queue` that is due; raise Empty if none."""
        wanted = f"{queue}.msg"
        pending = self._pending.get(queue) or []
        now = now_ms()
        if not pending or message_due_ms(pending[0]) > now:
            pending = sorted(
                name for name in os.listdir(self.data_folder_in) if name.partition(".")[2] == wanted
            )
        claim_folder = Path(self.processed_folder)
        claim_folder.mkdir(parents=True, exist_ok=True)
        while pending:
            name = pending[0]
            if message_due_ms(name) > now:
                break
            pending.pop(0)
            claimed = claim_folder / name
            try:
                # One rename: exactly one process wins a message, the others move on.
                os.rename(os.path.join(self.data_folder_in, name), claimed)
            except FileNotFoundError:
                continue
            try:
                payload = claimed.read_bytes()
                if not self.store_processed:
                    claimed.unlink()
            except OSError as exc:
                raise ChannelError(f"Cannot read file {str(claimed)!r} from queue.") from exc
            self._pending[queue] = pending
            return loads(bytes_to_str(payload))
        self._pending[queue] = pending
        raise Empty()

    def _size(self, queue):
        """Return how many messages of `queue` are waiting (delayed ones included)."""
        wanted = f"{queue}.msg"
        return sum(
            1 for name in os.listdir(self.data_folder_in) if name.partition(".")[2] == wanted
        )

    def _purge(self, queue):
        self._pending.pop(queue, None)
        return super()._purge(queue)

    # ------------------------------------------------------------------ bindings
    def get_table(self, exchange):
        """Return the bindings of `exchange`; a table still being created has none yet."""
        file = self._exchange_file(exchange)
        try:
            with file.open("rb") as handle:
                filesystem.lock(handle, filesystem.LOCK_SH)
                try:
                    raw = handle.read()
                finally:
                    filesystem.unlock(handle)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ChannelError(f"Cannot open {file}") from exc
        if not raw.strip():
            return []
        return [filesystem.exchange_queue_t(*q) for q in loads(bytes_to_str(raw))]

    def _queue_bind(self, exchange, routing_key, pattern, queue):
        """Add a binding to the exchange's table, creating it without truncating a rival's."""
        file = self._exchange_file(exchange)
        self.control_folder.mkdir(parents=True, exist_ok=True)
        entry = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        try:
            descriptor = os.open(file, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ChannelError(f"Cannot open {file}") from exc
        with os.fdopen(descriptor, "rb+", buffering=0) as handle:
            filesystem.lock(handle, filesystem.LOCK_EX)
            try:
                raw = handle.read()
                table = [filesystem.exchange_queue_t(*q) for q in loads(raw)] if raw.strip() else []
                if entry not in table:
                    table.insert(0, entry)
                    handle.seek(0)
                    handle.write(str_to_bytes(dumps(table)))
                    handle.truncate()
            finally:
                filesystem.unlock(handle)


class Transport(filesystem.Transport):
    """kombu's filesystem transport with the channel above."""

    Channel = Channel
