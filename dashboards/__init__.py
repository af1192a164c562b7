"""The riskwatch dashboard: a Dash app on a Flask server, behind a login.

Only the CLI's ``serve`` and ``demo`` commands import this package (lazily); the engine in
``riskwatch`` never does. Entry points: :func:`dashboards.app.create_app` and
:func:`dashboards.serve.serve`.
"""
