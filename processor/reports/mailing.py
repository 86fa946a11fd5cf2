"""Scheduled reports mailed as attachments (issue 15): a ``[[schedules]]`` entry with ``mail_to`` sends
the report it wrote, after writing it, through the first SMTP channel of ``[alerts]`` that has TLS (a
report holds patient data). The mail goes from the scheduler's thread, never the file loop's; a failure
is retried (``RETRY_WAITS_S``), then logged without the report's content; the report stays in the outbox.
Only the daemon that claimed the period writes, and mails, its report: once per period.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from processor.adapters.alert_channels import mail_file
from processor.logs import get_logger
from processor.reports.service import ReportOutcome
from processor.settings import ScheduleSettings, Settings

log = get_logger(__name__)
RETRY_WAITS_S = (5.0, 30.0)


def mail_report(
    settings: Settings,
    schedule: ScheduleSettings,
    written: ReportOutcome,
    pause: Callable[[float], object] = time.sleep,
) -> bool:
    """Mail the report ``written`` to the schedule's ``mail_to``; whether it went."""
    channel = settings.patient_mailer()
    if channel is None or not schedule.mail_to:
        return False
    report = Path(written.output)
    subject = f"wardbulk report {schedule.schedule_name}: {report.name}"
    text = (
        f"The {schedule.report} report of schedule {schedule.schedule_name}, {written.rows} rows, attached.\n"
    )
    for attempt, wait_s in enumerate((*RETRY_WAITS_S, None), start=1):
        try:
            mail_file(channel, schedule.mail_to, subject, text, report)
        except Exception as exc:  # the mail server's trouble: the report is in the outbox all the same
            if wait_s is None:
                log.warning(
                    "report_not_mailed",
                    schedule=schedule.schedule_name,
                    attempts=attempt,
                    error=type(exc).__name__,
                )
                return False
            pause(wait_s)
        else:
            log.info("report_mailed", schedule=schedule.schedule_name, operation_id=written.operation_id)
            return True
    return False
