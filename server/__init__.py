"""The aiohttp application: settings, auth, REST routes and the wiring of shared resources."""

__version__ = "0.1.0"
