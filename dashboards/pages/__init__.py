"""The dashboard's pages besides the map: alerts, data health, exports, users.

Each module holds the page's data access (plain dataclasses), its pure action functions (what a
callback does, testable without a browser) and its Dash layout. Role and country-scope checks
happen in the action and data functions, on the server, whatever the page displays.
"""
