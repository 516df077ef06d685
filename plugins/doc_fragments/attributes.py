# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """Attributes shared by the collection's modules, documented once."""

    DOCUMENTATION = r"""
options: {}
"""

    # every module of the collection: data_root can be set once with module_defaults
    ACTIONGROUP_STORAGE = r"""
options: {}
attributes:
  action_group:
    support: full
    description: Part of the C(strata.overlay2.storage) group for C(module_defaults).
    membership:
      - strata.overlay2.storage
"""

    # modules that only read the store
    READ_ONLY = r"""
options: {}
attributes:
  check_mode:
    support: full
    description: The module never changes anything.
  diff_mode:
    support: none
    description: Nothing changes, so there is no difference to show.
"""
