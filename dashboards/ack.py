"""``/ack/<token>``: acknowledge alerts from the link in an alert message, without logging in.

The signed token (:mod:`riskwatch.ack_tokens`) is the credential: it names the alerts and the
expert and expires. This is the one route outside the session gate (CONTRACTS.md, "Web
routes"); it refuses, with a 403 page, any token that is altered, truncated, signed with
another key or expired, for GET and POST alike.

GET shows the alerts' summary and the feedback buttons; POST (a plain form with a CSRF token
bound to the browser's cookie, so another site cannot post it) records one acknowledgement per
alert through :func:`riskwatch.alerts.ack.acknowledge` (``via="link"``). A second POST finds
them acknowledged and says so. The page holds no personal data: area, rule and timing only.
"""

from __future__ import annotations

import html

from flask import Flask, Response, request
from sqlmodel import Session

from dashboards.auth import (
    ACK_PREFIX,
    STYLESHEET_PATH,
    form_csrf_ok,
    form_csrf_token,
    web_context,
)
from dashboards.data import AlertSummary, alert_summaries
from riskwatch.ack_tokens import AckTokenError, verify_ack_token
from riskwatch.alerts import AlertNotFound, AlertRefused
from riskwatch.alerts.queries import acknowledged_alert_ids
from riskwatch.db.models import Alert, Expert
from riskwatch.errors import RiskwatchError
from riskwatch.timeutil import iso_utc

FEEDBACK_BUTTONS = (
    ("useful", "Useful"),
    ("not_useful", "Not useful"),
    ("false_alarm", "False alarm"),
)
ALREADY_TEXT = "already acknowledged"


def _page(title: str, body: str, status: int = 200) -> Response:
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<title>{html.escape(title)} - riskwatch</title>
<link rel="stylesheet" href="{STYLESHEET_PATH}">
</head>
<body class="login-body">
<main class="login-box ack-box">
<h1 class="brand">riskwatch</h1>
<h2>{html.escape(title)}</h2>
{body}
</main>
</body>
</html>
"""
    return Response(page, status=status, mimetype="text/html")


def _refused(message: str) -> Response:
    return _page(
        "Link not valid",
        f'<p class="login-error" role="alert">{html.escape(message)}'
        "</p><p>Log in to the dashboard to acknowledge the alert there.</p>",
        403,
    )


def _summary_list(summaries: list[AlertSummary]) -> str:
    items = "".join(
        f"<li><strong>{html.escape(s.area_name)}</strong> ({html.escape(s.pcode)}): "
        f"{html.escape(s.summary)} — {html.escape(s.rule)}, {html.escape(s.severity)}, "
        f"{html.escape(s.state)} since {html.escape(iso_utc(s.first_seen))}</li>"
        for s in summaries
    )
    return f'<ul class="ack-alerts">{items}</ul>'


def ack_view(token: str) -> Response:
    """GET: the alerts and the feedback form; POST: record the acknowledgement once."""
    context = web_context()
    try:
        claim = verify_ack_token(context.settings, token)
    except AckTokenError as exc:
        return _refused(str(exc))
    with Session(context.engine) as session:
        alerts = [a for a in (session.get(Alert, i) for i in claim.alert_ids) if a is not None]
        if not alerts:
            return _refused("the alerts of this link no longer exist")
        summaries = alert_summaries(session, alerts)
        ids = [int(a.id or 0) for a in alerts]
        done = acknowledged_alert_ids(session, ids, claim.expert_id)
        expert = session.get(Expert, claim.expert_id) if claim.expert_id is not None else None
        actor = expert.name if expert is not None else "acknowledgement link"
    listing = _summary_list(summaries)
    if request.method == "GET":
        if len(done) == len(ids):
            return _page(
                "Alerts " + ALREADY_TEXT,
                f"<p>These alerts were {ALREADY_TEXT}. Thank you.</p>{listing}",
            )
        buttons = "".join(
            f'<button type="submit" name="feedback" value="{value}">{label}</button>'
            for value, label in FEEDBACK_BUTTONS
        )
        form = (
            f'<form method="post" action="{html.escape(request.path)}">'
            f'<input type="hidden" name="csrf_token" value="{html.escape(form_csrf_token())}">'
            '<label for="comment">Comment (optional)</label>'
            '<textarea id="comment" name="comment" maxlength="2000" rows="3"></textarea>'
            f'<p>Was this alert useful?</p><div class="ack-buttons">{buttons}</div></form>'
        )
        return _page(f"Acknowledge {len(ids)} alert(s)", listing + form)

    if not form_csrf_ok(request.form.get("csrf_token")):
        return _page(
            "Form expired",
            '<p class="login-error" role="alert">The form expired or '
            "came from another page. Open the link again.</p>",
            400,
        )
    feedback = request.form.get("feedback") or None
    if feedback not in (None, *(value for value, _ in FEEDBACK_BUTTONS)):
        return _page("Unknown feedback", "<p>Choose one of the buttons.</p>", 400)
    comment = (request.form.get("comment") or "").strip()[:2000] or None
    from riskwatch.alerts.ack import acknowledge

    recorded, already = 0, len(done)
    for alert_id in ids:
        if alert_id in done:
            continue
        try:
            acknowledge(
                context.engine,
                alert_id,
                expert_id=claim.expert_id,
                feedback=feedback,
                comment=comment,
                via="link",
                actor=actor,
            )
            recorded += 1
        except AlertRefused:
            already += 1  # acknowledged meanwhile (a double tap)
        except (AlertNotFound, RiskwatchError) as exc:
            return _page("Not recorded", f"<p>{html.escape(str(exc))}</p>", 400)
    if recorded == 0:
        return _page(
            "Alerts " + ALREADY_TEXT,
            f"<p>These alerts were {ALREADY_TEXT}; nothing changed.</p>{listing}",
        )
    return _page(
        "Thank you",
        f"<p>Recorded: {recorded} alert(s) acknowledged"
        f"{f', {already} {ALREADY_TEXT}' if already else ''}.</p>{listing}",
    )


def install_ack(server: Flask) -> None:
    """Register ``/ack/<token>`` (GET and POST)."""
    server.add_url_rule(ACK_PREFIX + "<token>", "ack", ack_view, methods=["GET", "POST"])
