"""``[notifications]``: caregiver notifications e-mailed by wardbulk itself (issue 15).

Off by default: the notifications CSV is then the only delivery, for the hospital's messaging system.
With ``email = true``, each notification to a caregiver who has an e-mail address is sent through the
first SMTP channel of ``[alerts]`` that has TLS (the message names the patient), after the file's
commit, by the daemon's courier (``processor/notifying.py``); the CSV still lists it, with the status
``email_pending`` so that the messaging system does not send it a second time.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class NotificationSettings(BaseModel):
    """``[notifications]``: whether wardbulk e-mails caregivers, and how long a notification may wait."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    email: bool = False
    # A notification not sent within this many hours (the mail server was down) is recorded as failed
    # ("expired") rather than sent late: news of an admission days old does more harm than good.
    max_age_hours: float = Field(default=24.0, gt=0)
    # Tries of one notification that met a temporary refusal (an SMTP 4xx) before it is failed.
    max_attempts: int = Field(default=5, ge=1, le=100)
    # Who the message is from, in its closing line (e.g. the hospital's or the ward's name).
    signature: str = Field(default="The ward team", min_length=1, max_length=200)
