# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE to the strata.overlay2 collection. It may change
# without notice; do not import it from other collections.

"""The one store interface: what modules and shared code ask of a store, whatever its kind.

One backend per store kind implements it (``_backends.overlay2``, ``_backends.containerd``), binding the store's
model and layout (``_store``) to its side of facts, verification, orphan classification and the CIS image
reads; ``_backends.registry`` picks the backend once, from the store that was read. Nobody else asks which
kind of store it is.

A backend imports what reading its store and shaping its facts need; verification, the usage walk, the prune's
owners and the CIS reads are imported by the method that is asked for them. Under Ansible a module's code is
compiled at every run, so a module compiles only the features it uses (``overlay2_facts`` never compiles the
verifier); its payload still carries them, as Ansible bundles every import it finds, wherever it stands.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Dict, List, Optional, Sequence, Tuple, Type

try:
    from typing import Protocol
except ImportError:  # Python 3.7 managed nodes
    Protocol = object  # type: ignore[assignment]

from ansible_collections.strata.overlay2.plugins.module_utils._orphans.model import BuildKitCache, Orphan
from ansible_collections.strata.overlay2.plugins.module_utils._store.model import DamagedRecord, Image, Store

if TYPE_CHECKING:  # named in signatures only: a backend imports a feature's code when it is asked for
    from ansible_collections.strata.overlay2.plugins.module_utils._cis.images import LayerFiles
    from ansible_collections.strata.overlay2.plugins.module_utils._orphans.prune import Daemon
    from ansible_collections.strata.overlay2.plugins.module_utils._usage.model import Claims

Facts = Dict[str, Any]


class Classification(Protocol):
    """What every store's orphan classification gives its callers (each store's adds what only it has)."""

    orphans: List[Orphan]
    buildkit: BuildKitCache
    blocking: List[DamagedRecord]

    def facts(self) -> Facts:
        """The facts' ``orphans`` section."""


class VerifyReport(Protocol):
    """What every store's verification gives its callers."""

    @property
    def ok(self) -> bool:
        """Every layer and record checked is intact."""

    def as_dict(self) -> Facts:
        """The module's result."""


class StoreBackend(abc.ABC):
    """A store of one kind, read: its facts, its verification, its orphans and the reads the CIS image
    checks need. Every path of the store is built by its model (``store``), never by a caller."""

    kind: ClassVar[str]  # the facts' ``store``: overlay2 | containerd
    model: ClassVar[Type[Store]]  # the model its reader fills
    orphan_kinds: ClassVar[Tuple[str, ...]]  # what its classification can find
    store_paths: ClassVar[Tuple[str, ...]]  # where a store of this kind keeps its data below a data-root

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- facts and verification ----------------------------------------------------------------------------
    @abc.abstractmethod
    def facts(self, container_sizes: bool, orphans: bool, usage: Optional[Callable[[Any], Facts]] = None,
              layer_list: bool = True) -> Facts:
        """The facts of the store (``orphans``: with the classification's section, else None there; ``usage``:
        with ``usage``, measured from the same classification; ``layer_list`` false: ``layers`` is None, not
        shaped, as nothing else in the facts needs it)."""

    @abc.abstractmethod
    def verify(self, images: Optional[Sequence[str]], layers: Optional[Sequence[str]], content: bool,
               workers: Optional[int]) -> VerifyReport:
        """The verification of the images and layers chosen (all when both are None)."""

    # -- orphans and the prune -----------------------------------------------------------------------------
    @abc.abstractmethod
    def classify(self) -> Classification:
        """Every orphan of the store, and what keeps the rest."""

    # -- where the disk went -------------------------------------------------------------------------------
    @abc.abstractmethod
    def usage_claims(self, classification: Classification, sharing: Dict[str, str], data_root: Claims) -> List[Claims]:
        """Add the store's claims to the data-root's (``_usage``); return the claims of roots of its own."""

    @property
    @abc.abstractmethod
    def prune_root(self) -> str:
        """The directory an orphan's ``parts`` are relative to."""

    @abc.abstractmethod
    def prune_owners(self) -> List[Daemon]:
        """The running processes besides dockerd that own what the prune may remove."""

    @abc.abstractmethod
    def layer_dir_count(self) -> int:
        """How many layer directories the store has now: a prune never removes the last one."""

    # -- the CIS image checks ------------------------------------------------------------------------------
    @abc.abstractmethod
    def layer_files(self) -> LayerFiles:
        """Where each layer's files are, and their headers."""

    @abc.abstractmethod
    def image_config(self, image: Image) -> Tuple[Optional[dict], Optional[str]]:
        """The image's config document, or None and why it could not be read."""
