"""The package version and the User-Agent derived from it."""

from __future__ import annotations

import platform

__version__ = "0.1.0"

# Cloudflare's Browser Integrity Check in front of Kraken answers 403 to requests with no or an
# odd User-Agent (support note "Why am I getting a 403 error"); a versioned, descriptive one is
# both accepted and useful to Kraken support when they read their logs.
USER_AGENT = f"oms/{__version__} (Kraken order manager; Python {platform.python_version()})"
