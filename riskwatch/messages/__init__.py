"""Alert messages: one payload rendered into subject, text, HTML and a short SMS form.

Templates exist in English, French, Spanish and Arabic (:mod:`riskwatch.messages.locales`),
chosen by the payload's ``language`` (the expert's). See :func:`render_notification`.
"""

from riskwatch.messages.locales import SUPPORTED_LANGUAGES
from riskwatch.messages.render import RenderedMessage, render_notification, top_severity
from riskwatch.messages.sms import SmsLength, fit_sms, sms_length

__all__ = [
    "SUPPORTED_LANGUAGES",
    "RenderedMessage",
    "SmsLength",
    "fit_sms",
    "render_notification",
    "sms_length",
    "top_severity",
]
