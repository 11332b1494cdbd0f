"""Messages prepared ahead are the messages Celery would have sent, on any broker."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import redis

from scheduler.celery_app import create_app
from scheduler.config import Settings
from scheduler.sender import Prepared, Sender
from tests.services import redis_db


def _app(broker_url: str, tmp_path: Path) -> Any:
    return create_app(
        Settings.from_env(
            {
                "SCHEDULER_BROKER_URL": broker_url,
                "SCHEDULER_DATABASE_URL": f"sqlite:///{tmp_path}/history.sqlite",
            }
        )
    )


def _publisher(app: Any, queue: str, task_id: str) -> Any:
    def publish(producer: Any) -> None:
        app.send_task(
            "jobs.demo.noop",
            args=[1],
            kwargs={"k": "v"},
            task_id=task_id,
            queue=queue,
            headers={"scheduler_job": "j", "scheduler_trigger": "schedule"},
            producer=producer,
        )

    return publish


def test_on_redis_the_message_is_built_ahead_and_sent_in_one_pipeline(tmp_path: Path) -> None:
    with redis_db() as url:
        queue = f"q-{uuid.uuid4().hex}"
        app = _app(url, tmp_path)
        client = redis.Redis.from_url(url)
        try:
            with app.connection_for_write() as connection:
                producer = app.amqp.Producer(connection)
                sender = Sender(app, lambda: producer)
                ids = [str(uuid.uuid4()) for _ in range(3)]
                prepared = [sender.prepare(i, _publisher(app, queue, i)) for i in ids]
                assert all(p.commands for p in prepared)
                assert client.llen(queue) == 0  # prepared, not sent
                assert sender.send(prepared, lambda item, producer: None) == ids
                # Then the same message the usual way, to compare.
                usual = str(uuid.uuid4())
                _publisher(app, queue, usual)(producer)
            raw = [json.loads(m) for m in reversed(client.lrange(queue, 0, -1))]
            assert [m["headers"]["id"] for m in raw] == [*ids, usual]
            for message in raw[:3]:
                for key in ("body", "content-type", "content-encoding"):
                    assert message[key] == raw[3][key]
                assert message["headers"]["task"] == "jobs.demo.noop"
                assert (
                    message["properties"]["delivery_info"] == raw[3]["properties"]["delivery_info"]
                )
        finally:
            client.close()
            app.close()


def test_other_brokers_publish_the_usual_way_when_due(tmp_path: Path) -> None:
    app = _app(f"sqla+sqlite:///{tmp_path}/broker.sqlite", tmp_path)
    with app.connection_for_write() as connection:
        producer = app.amqp.Producer(connection)
        sender = Sender(app, lambda: producer)
        prepared = sender.prepare("r1", _publisher(app, "celery", "r1"))
        assert prepared == Prepared("r1")
        published: list[str] = []
        sent = sender.send(
            [prepared, Prepared("r2")],
            lambda item, producer: published.append(item.run_id),
        )
    assert sent == published == ["r1", "r2"]
    app.close()


def test_on_redis_each_sender_notices_once_that_the_broker_lost_its_data(
    tmp_path: Path,
) -> None:
    with redis_db() as url:
        app = _app(url, tmp_path)
        client = redis.Redis.from_url(url)
        try:
            with app.connection_for_write() as first, app.connection_for_write() as second:
                one = Sender(app, lambda: app.amqp.Producer(first))
                two = Sender(app, lambda: app.amqp.Producer(second))
                assert one.lost_data()  # a new broker: nothing was sent through it yet
                assert not two.lost_data()  # the marker the first one set
                assert not one.lost_data()
                client.flushdb()
                assert two.lost_data()  # missing: set again, with a new value
                assert one.lost_data()  # a new value: another sender found it missing
                assert not one.lost_data() and not two.lost_data()
        finally:
            client.close()
            app.close()


def test_other_brokers_never_report_lost_data(tmp_path: Path) -> None:
    app = _app(f"sqla+sqlite:///{tmp_path}/broker.sqlite", tmp_path)
    with app.connection_for_write() as connection:
        assert not Sender(app, lambda: app.amqp.Producer(connection)).lost_data()
    app.close()
