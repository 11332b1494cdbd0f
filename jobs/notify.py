"""Announcement jobs."""

from __future__ import annotations

import logging

from celery import shared_task

log = logging.getLogger(__name__)


@shared_task(name="jobs.notify.announce")
def announce(message: str = "hello") -> str:
    """Log an announcement (a stand-in for sending mail) and return it."""
    log.info("announcement: %s", message)
    return message
