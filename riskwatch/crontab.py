"""Cron expressions as people write them, for APScheduler 3.x.

APScheduler 3's ``CronTrigger.from_crontab`` numbers weekdays from Monday = 0, while crontab
(and every cron expression in riskwatch's files: ``"0 6 * * 1"`` is *Monday* 06:00) numbers them
from Sunday = 0 (7 is Sunday too). :func:`crontab_trigger` reads the weekday field the crontab
way and hands APScheduler weekday *names*, which mean the same in both.
"""

from __future__ import annotations

from datetime import tzinfo

from apscheduler.triggers.cron import CronTrigger

# crontab weekday number -> APScheduler name (0 and 7 are Sunday)
_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _weekday(token: str) -> int:
    text = token.strip().lower()
    if text[:3] in _NAMES and text.isalpha():
        return _NAMES.index(text[:3])
    number = int(text)
    if not 0 <= number <= 7:
        raise ValueError(f"weekday {token!r} is not 0-7 (0 and 7: Sunday) or a name")
    return number % 7


def crontab_weekdays(field: str) -> str:
    """The weekday field of a crontab expression as APScheduler weekday names (or ``*``)."""
    if field.strip() == "*":
        return "*"
    days: set[int] = set()
    for part in field.split(","):
        span, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"step {step_text!r} must be 1 or more")
        if span == "*":
            first, last = 0, 6
        elif "-" in span:
            start, _, end = span.partition("-")
            first, last = _weekday(start), 7 if end.strip() == "7" else _weekday(end)
            if last < first:
                raise ValueError(f"weekday range {span!r} runs backwards")
        else:
            first = _weekday(span)
            last = first if not step_text else 6
        days.update(day % 7 for day in range(first, last + 1, step))
    return ",".join(_NAMES[day] for day in sorted(days))


def crontab_trigger(expression: str, timezone: tzinfo | str) -> CronTrigger:
    """A CronTrigger for a five-field crontab expression, weekdays read the crontab way."""
    values = expression.split()
    if len(values) != 5:
        raise ValueError(f"wrong number of fields; got {len(values)}, expected 5")
    minute, hour, day, month, weekday = values
    return CronTrigger(minute=minute, hour=hour, day=day, month=month,
                       day_of_week=crontab_weekdays(weekday), timezone=timezone)
