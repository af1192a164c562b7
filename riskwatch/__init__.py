"""riskwatch: crisis displacement trafficking-risk monitoring.

The engine package. It never imports ``dashboards``; only the CLI's ``serve`` and ``demo``
commands load the web app, lazily.
"""

__version__ = "0.1.0"
