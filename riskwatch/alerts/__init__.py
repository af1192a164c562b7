"""The alert engine (issue 7): rules, evaluation, lifecycle, routing, outbox, acknowledgement.

The flow of one evaluation (:func:`riskwatch.alerts.evaluate.evaluate_alerts`):

1. :mod:`~riskwatch.alerts.rules` reads ``alerts.toml`` (rules, thresholds, lifecycle timings);
2. :mod:`~riskwatch.alerts.conditions` turns the latest score run (scores, hotspots, surges) and
   source freshness into *conditions*: per rule and area, whether an alert opens and whether a
   firing one still holds;
3. :mod:`~riskwatch.alerts.lifecycle` applies them to the ``Alert`` rows (fingerprint
   ``rule:pcode``, firing/resolved, hysteresis, review mode);
4. :mod:`~riskwatch.alerts.outbox` routes firing alerts to the experts deployed over them
   (:mod:`~riskwatch.alerts.routing`), applies inhibition, silences, cool-down and the repeat
   interval, groups by country/admin1 and writes ``Notification`` rows - all in the same
   transaction as the alert changes and their ``AlertDecision`` rows.

Delivery (channels, rendering, dispatch) is :mod:`riskwatch.dispatch`'s job; it reads the
notifications this package writes.
"""

from __future__ import annotations

from riskwatch.errors import RiskwatchError


class AlertNotFound(RiskwatchError):
    """No alert with this id (exit code 1)."""


class AlertRefused(RiskwatchError):
    """The action is not allowed in the alert's current state (exit code 1)."""
