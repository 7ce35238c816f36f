"""Privacy: nothing that could carry a secret or identify a person leaves unscrubbed.

``Scrubber`` is the entry point; ``Rule`` is how users add patterns; ``KINDS`` lists
the built-in marker kinds (``[EMAIL]``, ``[TOKEN]``, ...). What each rule catches
and leaves alone is documented in the module that implements it: ``_secrets``
(keys and tokens), ``_keyvalue`` (``key=value`` forms), ``_personal`` (emails,
numbers, addresses), ``_urls``, ``_paths``, ``_checks`` (thresholds), and
``_structure``/``_payload`` (values and events).
"""

from __future__ import annotations

from errwire._privacy._markers import KINDS
from errwire._privacy._rules import Rule
from errwire._privacy._scrubber import Scrubber

__all__ = ["KINDS", "Rule", "Scrubber"]
