"""Publishing due runs: prepared ahead of their tick, sent in one round trip when due.

Celery's `send_task` costs about half a millisecond of CPU per message (building the task
message, serialising it twice, routing) plus a broker round trip, so a thousand jobs due at
the same second were still being published a second later. Here the beat does that work
before the tick (`prepare`), and at the tick only the final broker commands go out.

On Redis, `prepare` runs the ordinary Celery/kombu publish path against a channel whose
publish batch records the final Redis commands instead of running them (kombu 5.7's
`Producer.batch` protocol: the transport hands each message's commands to the batch);
`send` replays them in one pipeline. On other transports (RabbitMQ, SQLite), and for runs
sent again after a failure, `send` publishes the usual way.

Task messages go to the queue's list whatever kombu's binding tables say: Celery publishes
to a direct queue through the default exchange, whose routing key is the list's name. The
tables matter only for publishes to a named exchange; those find no binding after Redis
loses its data, until a consumer or a producer declares the queue again.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

PIPELINE_CHUNK = 1000  # runs per pipeline round trip
# What kombu's Redis transport sends for a task message: LPUSH onto the queue (PEXPIRE with
# x-expires queues), and PUBLISH of the `task-sent` event when task_send_sent_event is on
# (that event then carries the time the message was prepared, not sent).
_REPLAYABLE = frozenset({"lpush", "pexpire", "publish"})
# Set once, never expired: the broker lost its data when it is gone (`Sender.lost_data`).
MARKER_KEY = "_scheduler.broker_marker"


@dataclass(slots=True)
class Prepared:
    """A run's message, ready to go: Redis commands, or None to publish it the usual way."""

    run_id: str
    commands: list[tuple[str, tuple[Any, ...]]] | None = None
    extra: Any = field(default=None, compare=False)


class _Recorder:
    """A kombu publish batch that keeps each message's final Redis commands."""

    def __init__(self, channel: Any) -> None:
        self.channel = channel
        self.commands: list[tuple[str, tuple[Any, ...]]] = []

    def publish(self, message: Any, **kwargs: Any) -> Any:
        return self.channel.basic_publish(message, _publish_batch=self, **kwargs)

    def add(self, name: str, *args: Any) -> None:
        self.commands.append((name, args))

    def take(self) -> list[tuple[str, tuple[Any, ...]]]:
        taken, self.commands = self.commands, []
        return taken

    def flush(self) -> None:
        pass

    def discard(self) -> None:
        self.commands = []

    def close(self) -> None:
        pass


class _RecordingChannel:
    """The real Redis channel, except that publish batches record instead of sending."""

    def __init__(self, channel: Any) -> None:
        self._channel = channel
        # The batch's channel must be the producer's (kombu checks it is the same object).
        self.recorder = _Recorder(self)

    def create_publish_batch(self, max_size: int) -> _Recorder:
        return self.recorder

    def __getattr__(self, name: str) -> Any:
        return getattr(self._channel, name)


class Sender:
    """Prepares and sends the messages of claimed runs through one beat's producer."""

    def __init__(self, app: Any, producer: Callable[[], Any]) -> None:
        self._app = app
        self._producer = producer
        self._recording: Any = None  # a Producer over a _RecordingChannel, when on Redis
        self._marker: bytes | None = None  # MARKER_KEY's value when this sender last looked

    def prepare(self, run_id: str, publish: Callable[[Any], None]) -> Prepared:
        """Run `publish(producer)` now, keeping its Redis commands to send later.

        Falls back to sending later through `publish` itself when the broker is not Redis
        or recording fails: preparing never loses a run, it only makes sending cheaper.
        """
        try:
            recording = self._recording_producer()
            if recording is not None:
                with recording.batch():
                    publish(recording)
                commands = recording.channel.recorder.take()
                if commands and all(name in _REPLAYABLE for name, _ in commands):
                    return Prepared(run_id, commands)
        except Exception:
            log.debug("could not prepare run %s; it will be published as usual", run_id)
            self._recording = None
        return Prepared(run_id)

    def send(
        self, items: Sequence[Prepared], publish: Callable[[Prepared, Any], None]
    ) -> list[str]:
        """Send prepared runs: recorded commands in pipelines, the others through `publish`.

        Returns the ids of the runs sent. A pipeline that fails leaves its runs unsent (some
        of its messages may be out: the caller sends them again, the worker drops copies).
        """
        sent: list[str] = []
        recorded = [item for item in items if item.commands is not None]
        for start in range(0, len(recorded), PIPELINE_CHUNK):
            chunk = recorded[start : start + PIPELINE_CHUNK]
            try:
                self._replay(chunk)
            except Exception:
                log.exception("could not send %d prepared runs; will retry", len(chunk))
                continue
            sent.extend(item.run_id for item in chunk)
        for item in items:
            if item.commands is not None:
                continue
            try:
                publish(item, self._producer())
            except Exception:
                log.exception("could not publish run %s; will retry", item.run_id)
                continue
            sent.append(item.run_id)
        return sent

    def lost_data(self) -> bool:
        """Whether the broker has lost its data since the last look: True, once, after that.

        A Redis restarted without persistence comes back empty, and so does a flushed one:
        the messages of runs sent but not started went with it, and nothing else tells (the
        client reconnects without a word). A key set once and never expired does: it is
        missing, or another beat that found it missing has set a new value. Missing at a
        beat's first look counts too: the broker is new, or lost its data while no beat
        watched. Always False on other brokers. Raises the broker's errors.
        """
        producer = self._producer()
        connection = producer.connection
        if connection is None or connection.transport.driver_type != "redis":
            return False
        channel = producer.channel
        with channel.conn_or_acquire() as client, client.pipeline(transaction=False) as pipe:
            pipe.set(MARKER_KEY, uuid.uuid4().hex, nx=True)
            pipe.get(MARKER_KEY)
            created, marker = pipe.execute()
        lost = bool(created) or (self._marker is not None and marker != self._marker)
        self._marker = marker
        if lost:
            # kombu remembers what it declared (the connection's declared entities, the
            # transport's bindings), and the Redis client reconnects under both: forget, so
            # that the next publish declares the queue, and its binding table, again.
            connection.declared_entities.clear()
            channel.connection.state.clear()
        return lost

    def _replay(self, items: Sequence[Prepared]) -> None:
        channel = self._producer().channel
        with channel.conn_or_acquire() as client, client.pipeline(transaction=False) as pipe:
            for item in items:
                for name, args in item.commands or ():
                    getattr(pipe, name)(*args)
            pipe.execute()

    def _recording_producer(self) -> Any:
        if self._recording is None:
            producer = self._producer()
            connection = producer.connection
            if connection is None or connection.transport.driver_type != "redis":
                return None
            if not getattr(connection.transport.implements, "batch_publish", False):
                return None
            self._recording = self._app.amqp.Producer(_RecordingChannel(producer.channel))
        return self._recording
