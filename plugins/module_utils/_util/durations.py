# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE to the strata.overlay2 collection. It may change
# without notice; do not import it from other collections.

"""Durations and times as the options and results of the collection write them: ``90m``, ``7d``;
``2026-12-07T10:00:00Z``."""

from __future__ import annotations

import datetime
import re
from typing import Any

UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def seconds(text: Any, option: str) -> float:
    """Seconds from a number of seconds or a number with a unit (``90m``, ``12h``, ``7d``, ``2w``); ValueError
    names ``option``."""
    match = re.match(r"\A\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*\Z", str(text))
    if not match:
        raise ValueError("%s must be a number of seconds or end in s, m, h, d or w; %r is not a duration"
                         % (option, text))
    return float(match.group(1)) * UNITS[match.group(2)]


def utc_time(text: Any) -> datetime.datetime:
    """An ISO 8601 time (``2026-12-07T10:00:00Z``; one without a zone is UTC); ValueError otherwise."""
    if not isinstance(text, str):
        raise ValueError("%r is not a time" % (text,))
    moment = datetime.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)
