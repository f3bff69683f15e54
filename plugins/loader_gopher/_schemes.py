"""The schemes the Gopher plugin serves, in a module that imports nothing.

Registering the plugin (every command does) imports the hook module, ``_plugin``,
and through it only this.  The URL parser takes the schemes from here too: taken
from ``_plugin``, they closed an import circle (``_plugin`` loads the handler,
the handler ``_urls``, ``_urls`` ``_plugin``) that import-linter now forbids.
"""

__all__ = ["SCHEMES"]

#: ``gopher`` and ``gophers`` (Gopher over TLS, a common, unregistered convention).
SCHEMES = ("gopher", "gophers")
