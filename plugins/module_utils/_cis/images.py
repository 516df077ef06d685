# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE to the strata.overlay2 collection. It may change
# without notice; do not import it from other collections.

"""CIS Docker Benchmark section 4, per image: its config (user, HEALTHCHECK, Env, build history) and what a
container of it would see, from the layers' file headers.

Headers come from one small reader per layout: a layer's tar-split (overlay2: every member's tar header,
without opening a file), or a walk of the layer's directory with ``lstat`` (the containerd image store's
snapshot ``fs/``, or an overlay2 layer whose tar-split is missing) where a whiteout is a 0/0 character device
and an opaque directory carries ``trusted.overlay.opaque``. Both give the same ``Header`` list, and one view
applies the layers bottom first (whiteouts and opaque directories hide what is below), per chain, so a layer
shared by many images is read once. 4.8 lists every setuid and setgid file the top of the image shows, with
the layer it comes from; 4.10 looks for secrets in ``Env``, in the history, and in files named like
credentials, confirmed by a bounded look at small files.
"""

from __future__ import annotations

import json
import posixpath
import re
import stat
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, List, Optional, Tuple

from ansible_collections.strata.overlay2.plugins.module_utils._cis.catalogue import Evidence, Verdict
from ansible_collections.strata.overlay2.plugins.module_utils._util.ids import hex_of
from ansible_collections.strata.overlay2.plugins.module_utils._util.parallel import map_chunks, split, worker_count
from ansible_collections.strata.overlay2.plugins.module_utils._util.safefs import SafeDir, describe_os_error, is_opaque
from ansible_collections.strata.overlay2.plugins.module_utils._store.model import Image, Layer, Store
from ansible_collections.strata.overlay2.plugins.module_utils._formats.tarsplit import FILE, TarSplitError, iter_entries

CONFIG_LIMIT = 16 << 20  # an image config larger than this is not read
UNREADABLE_IMAGES = ("image_config", "image_record")  # the store model's damaged records that hide an image
LAYERS_PER_WORKER = 500  # layers whose headers are worth a second process
PEEK_LIMIT = 64 << 10  # the bounded look at a file named like a credential
WHITEOUT, OPAQUE = ".wh.", ".wh..wh..opq"
REGULAR, DIRECTORY, OTHER = "file", "dir", "other"

SECRET_NAME = re.compile(r"(PASSW(OR)?D|SECRET|TOKEN|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIAL|AUTH_?KEY)",
                         re.IGNORECASE)
SECRET_VALUE = re.compile(r"(AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,}|"
                          r"glpat-[A-Za-z0-9_-]{20,}|xox[abprs]-[A-Za-z0-9-]{10,}|sk_live_[A-Za-z0-9]{16,}|"
                          r"-----BEGIN [A-Z ]*PRIVATE KEY-----)")
ASSIGNMENT = re.compile(r"(?:^|[\s|;&])(?:--)?([A-Za-z_][A-Za-z0-9_-]*)[= ]([^\s;&|]+)")
UPDATE = re.compile(r"\b(apt-get|apt|yum|dnf|apk|zypper|microdnf)\s+(-\S+\s+)*(update|makecache|refresh)\b")
INSTALL = re.compile(r"\b(install|upgrade|add|dist-upgrade)\b")
ADD = re.compile(r"(^|#\(nop\)\s*|\s)ADD\s")

# files named like credentials: (shell pattern on the base name, or on the path's end), and what confirms them
CREDENTIAL_FILES = (
    ("id_rsa", None), ("id_dsa", None), ("id_ecdsa", None), ("id_ed25519", None),
    (".git-credentials", None), (".netrc", None), (".pgpass", None), (".pypirc", rb"password"),
    (".npmrc", rb"_authToken|_auth\s*=|_password"), (".env", rb"(?im)^\s*[A-Z0-9_]*(PASSW|SECRET|TOKEN|KEY)"),
    (".dockercfg", rb'"auth"'), ("config.json", rb'"auth"\s*:\s*"[^"]'), ("credentials", rb"aws_secret_access_key"),
    ("*.pem", rb"PRIVATE KEY-----"), ("*.key", rb"PRIVATE KEY-----"), ("*.p12", None), ("*.pfx", None),
)
CREDENTIAL_DIRS = {"config.json": ".docker", "credentials": ".aws"}


@dataclass(frozen=True)
class Header:
    path: str  # absolute in the image, e.g. /usr/bin/passwd
    kind: str  # file | dir | other
    mode: int  # the permission bits, setuid/setgid/sticky included
    uid: int
    gid: int
    size: int


# -- one reader per layout ---------------------------------------------------------------------------------
def _clean(name: str) -> str:
    """A member name as an absolute path in the image: ``./a/b/``, ``a/b`` and ``/a/b`` are ``/a/b``."""
    while name.startswith("./"):
        name = name[2:]
    name = name.strip("/")
    return "/" if name in ("", ".") else "/" + name


def _octal(field_bytes: bytes) -> int:
    text = field_bytes.split(b"\0", 1)[0].strip()
    return int(text, 8) if text else 0


def tar_split_headers(stream) -> List[Header]:
    """Every member's header from a tar-split stream: the header block is the last 512 bytes of the raw
    segments before each file entry."""
    headers = []
    tail = b""
    for entry in iter_entries(stream):
        if entry.type != FILE:
            tail = (tail + (entry.payload or b""))[-512:]
            continue
        block = tail[-512:]
        if len(block) < 512 or block[257:262] != b"ustar":
            raise TarSplitError("the raw header before %s is not a tar header" % (entry.name,))
        try:
            mode, uid, gid = _octal(block[100:108]), _octal(block[108:116]), _octal(block[116:124])
        except ValueError as exc:
            raise TarSplitError("the header of %s has a field that is not octal" % (entry.name,)) from exc
        flag = block[156:157]
        path = _clean(entry.name or "")
        if posixpath.basename(path).startswith(WHITEOUT):  # a marker, as the walk gives it, not a file
            headers.append(Header(path, OTHER, 0, 0, 0, 0))
        else:
            kind = REGULAR if flag in (b"0", b"\0", b"7", b"1") else DIRECTORY if flag == b"5" else OTHER
            headers.append(Header(path, kind, stat.S_IMODE(mode), uid, gid, entry.size))
        tail = b""
    return headers


def walked_headers(root: SafeDir) -> List[Header]:
    """Headers of a layer directory as tar would list them: a 0/0 character device is a whiteout
    (``.wh.<name>``), a directory with the opaque xattr gets an ``.wh..wh..opq`` entry. Symlinks are not
    followed."""
    headers: List[Header] = []
    stack = [("", root)]
    while stack:
        prefix, directory = stack.pop()
        try:
            for entry in directory.entries():
                info = entry.stat(follow_symlinks=False)
                path = prefix + "/" + entry.name
                if stat.S_ISCHR(info.st_mode) and info.st_rdev == 0:
                    headers.append(Header(prefix + "/" + WHITEOUT + entry.name, OTHER, 0, 0, 0, 0))
                elif stat.S_ISDIR(info.st_mode):
                    headers.append(Header(path, DIRECTORY, stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid, 0))
                    child = directory.subdir(entry.name)
                    if is_opaque(child.fd):
                        headers.append(Header(path + "/" + OPAQUE, OTHER, 0, 0, 0, 0))
                    stack.append((path, child))
                else:
                    kind = REGULAR if stat.S_ISREG(info.st_mode) else OTHER
                    headers.append(Header(path, kind, stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid,
                                          info.st_size))
        finally:
            if directory is not root:
                directory.close()
    return headers


class LayerFiles:
    """Where a layer's files are, and their headers: one implementation per store, chosen by its backend."""

    def directory(self, layer: Layer) -> Optional[str]:
        """The directory that holds the layer's files, or None when the store records none."""
        raise NotImplementedError

    def headers(self, layer: Layer) -> Tuple[List[Header], Optional[str]]:
        """The layer's headers, and what could not be read (None when all was)."""
        return self.walked(layer, None)

    def scans(self, layers: List[Layer]) -> List["LayerScan"]:
        return [scan(*self.headers(layer)) for layer in layers]

    def walked(self, layer: Layer, problem: Optional[str]) -> Tuple[List[Header], Optional[str]]:
        """The headers of the layer's directory, walked with ``lstat``."""
        directory = self.directory(layer)
        if directory is None:
            return [], "layer %s has no directory on disk" % layer.chain_id
        try:
            with SafeDir.open(directory) as root:
                return walked_headers(root), problem
        except OSError as exc:
            return [], "%s: %s" % (directory, describe_os_error(exc))

    def peek(self, layer: Layer, path: str, limit: int = PEEK_LIMIT) -> Optional[bytes]:
        """The first bytes of a small regular file in the layer, never following a symlink; None otherwise."""
        parts = [p for p in path.split("/") if p]
        directory = self.directory(layer)
        if directory is None:
            return None
        try:
            with SafeDir.open(directory) as root:
                with root.subdir(*parts[:-1]) as parent:
                    return parent.read_bytes(parts[-1], limit)
        except (OSError, ValueError):
            return None


# -- the view of an image ----------------------------------------------------------------------------------
@dataclass
class Seen:
    header: Header
    chain_id: str  # the layer it comes from


View = Dict[str, Seen]


def interesting(header: Header) -> bool:
    return header.kind == REGULAR and (bool(header.mode & (stat.S_ISUID | stat.S_ISGID)) or
                                       credential_rule(header.path) is not None)


_EXACT = {pattern: (pattern, confirm) for pattern, confirm in CREDENTIAL_FILES if not pattern.startswith("*")}
_SUFFIXES = {pattern[1:]: (pattern, confirm) for pattern, confirm in CREDENTIAL_FILES if pattern.startswith("*")}


def credential_rule(path: str) -> Optional[Tuple[str, Optional[bytes]]]:
    """The credential pattern a file's name matches (and what must confirm it), or None."""
    base = path[path.rfind("/") + 1:]
    rule = _EXACT.get(base)
    if rule is None:
        dot = base.rfind(".")
        rule = _SUFFIXES.get(base[dot:]) if dot > 0 else None
    if rule is not None and CREDENTIAL_DIRS.get(rule[0], None) not in (None, posixpath.basename(posixpath.dirname(path))):
        return None
    return rule


@dataclass
class LayerScan:
    """What one layer's headers say for the view, reduced to what it needs (and small to pass between
    processes): every path it names, split into directories and the rest (whiteout markers included), and
    its interesting files (setuid, setgid, named like credentials)."""

    dirs: List[str]
    others: List[str]
    interesting: List[Header]
    problem: Optional[str]


def scan(headers: List[Header], problem: Optional[str]) -> LayerScan:
    dirs, others, found = [], [], []
    for header in headers:
        (dirs if header.kind == DIRECTORY else others).append(header.path)
        if interesting(header):
            found.append(header)
    return LayerScan(dirs, others, found, problem)


def _ancestors(path: str) -> Iterator[str]:
    while True:
        path = posixpath.dirname(path)
        if path == "/":
            return
        yield path


def apply_layer(below: View, layer: LayerScan, chain_id: str) -> View:
    """What the image shows after one more layer: its whiteouts and opaque directories hide what is below,
    its entries replace what is below (a non-directory also hides what was below it)."""
    view = dict(below)
    if view:
        holding = {a for path in view for a in _ancestors(path)}  # directories with something below them in view

        def hide(prefix: str, itself: bool) -> None:
            if not (itself and prefix in view) and prefix not in holding:
                return
            for path in [p for p, seen in view.items() if seen.chain_id != chain_id]:
                if (itself and path == prefix) or path.startswith(prefix + "/"):
                    del view[path]

        for path in layer.others:
            base = path[path.rfind("/") + 1:]
            if base == OPAQUE:
                hide(posixpath.dirname(path), itself=False)
            elif base.startswith(WHITEOUT):
                hide(posixpath.join(posixpath.dirname(path), base[len(WHITEOUT):]), itself=True)
            else:
                hide(path, itself=True)
        for path in layer.dirs:
            if path in view:  # a directory in place of a file below
                del view[path]
    for header in layer.interesting:
        view[header.path] = Seen(header, chain_id)
    return view


@dataclass
class Views:
    """The view at the top of each chain, built once per layer; the layers' headers are read by as many
    processes as they are worth, beforehand (``read``)."""

    files: LayerFiles
    views: Dict[str, View] = field(default_factory=dict)
    scans: Dict[str, LayerScan] = field(default_factory=dict)
    problems: Dict[str, str] = field(default_factory=dict)  # chain id -> what could not be read

    def read(self, layers: List[Layer]) -> None:
        """Read the headers of ``layers`` not read yet, shared among processes on a large store."""
        wanted = sorted({layer.chain_id: layer for layer in layers if layer.chain_id not in self.scans}.values(),
                        key=lambda layer: layer.chain_id)
        shares = split(wanted, worker_count(len(wanted), LAYERS_PER_WORKER))
        for share, found in zip(shares, map_chunks(self.files.scans,
                                                   shares)):
            for layer, layer_scan in zip(share, found):
                self.scans[layer.chain_id] = layer_scan

    def of(self, layers: List[Layer]) -> View:
        view: View = {}
        for layer in layers:
            cached = self.views.get(layer.chain_id)
            if cached is None:
                if layer.chain_id not in self.scans:
                    self.read([layer])
                layer_scan = self.scans[layer.chain_id]
                if layer_scan.problem:
                    self.problems[layer.chain_id] = layer_scan.problem
                cached = self.views[layer.chain_id] = apply_layer(view, layer_scan, layer.chain_id)
            view = cached
        return view


# -- the images ----------------------------------------------------------------------------------------------
@dataclass
class ImageFacts:
    image: Optional[Image]  # None: an image the store model could not read (its config or record is damaged)
    target: str
    names: Tuple[str, ...]
    config: Optional[dict]
    problem: Optional[str]  # why the config could not be read
    layers: List[Layer]

    @property
    def settings(self) -> dict:
        inner = (self.config or {}).get("config") or (self.config or {}).get("Config") or {}
        return inner if isinstance(inner, dict) else {}

    @property
    def history(self) -> List[dict]:
        raw = (self.config or {}).get("history") or []
        return [item for item in raw if isinstance(item, dict)] if isinstance(raw, list) else []


def read_config_file(path: str) -> Tuple[Optional[dict], Optional[str]]:
    """An image config read from its file, or None and why it could not be read."""
    try:
        with SafeDir.open(posixpath.dirname(path)) as directory:
            value = json.loads(directory.read_bytes(posixpath.basename(path), CONFIG_LIMIT).decode("utf-8"))
    except OSError as exc:
        return None, "%s: %s" % (path, describe_os_error(exc))
    except (ValueError, UnicodeDecodeError) as exc:
        return None, "%s is not a JSON image config: %s" % (path, exc)
    if not isinstance(value, dict):
        return None, "%s is not a JSON object" % path
    return value, None


def image_facts(store: Store, read_config: Callable[[Image], Tuple[Optional[dict], Optional[str]]]) -> List[ImageFacts]:
    """Every image with its config (``read_config``: the store backend's), and those the store could not read."""
    facts = []
    for image_id in sorted(store.images):
        image = store.images[image_id]
        tags = sorted(image.tags or image.names)
        short = hex_of(image.id)[:12] if image.id.startswith("sha256:") else image.id
        names = tuple(tags + list(image.digests) + [image.id, short])
        config, problem = read_config(image)
        layers = store.image_layers(image) or []
        facts.append(ImageFacts(image, tags[0] if tags else short, names, config, problem, layers))
    for record in store.damaged:  # images the store model could not read are judged as unreadable, not skipped
        if record.code in UNREADABLE_IMAGES:
            name = record.path.rsplit("/", 1)[-1][:12]
            facts.append(ImageFacts(None, name, (name, record.path), None, record.message, []))
    return facts


# -- the controls ------------------------------------------------------------------------------------------
@dataclass
class Images:
    """The inputs of section 4."""

    facts: List[ImageFacts]
    views: Views


def _per_image(judge: Callable[[ImageFacts], List[Evidence]], passed: Callable[[ImageFacts], str],
               code: str) -> Callable[[Images], Verdict]:
    def check(images: Images) -> Verdict:
        failing, passing = [], []
        for facts in images.facts:
            if facts.config is None:
                failing.append(Evidence(facts.target, "the image config cannot be read: %s" % facts.problem,
                                        "unreadable", facts.names))
                continue
            found = judge(facts)
            failing.extend(found)
            if not found:
                passing.append(Evidence(facts.target, passed(facts), code, facts.names))
        return Verdict.of(failing, passing)
    return check


def root_user(facts: ImageFacts) -> List[Evidence]:
    user = str(facts.settings.get("User") or "")
    name = user.split(":", 1)[0]
    if name in ("", "root", "0"):
        return [Evidence(facts.target, "runs as %s" % (repr(user) if user else "root (no USER)"), "root_user",
                         facts.names)]
    return []


def no_healthcheck(facts: ImageFacts) -> List[Evidence]:
    check = facts.settings.get("Healthcheck")
    test = check.get("Test") if isinstance(check, dict) else None
    if not test or test == ["NONE"]:
        return [Evidence(facts.target, "no HEALTHCHECK" if not test else "HEALTHCHECK NONE", "no_healthcheck",
                         facts.names)]
    return []


def update_alone(facts: ImageFacts) -> List[Evidence]:
    found = []
    for step in facts.history:
        command = str(step.get("created_by") or "")
        if UPDATE.search(command) and not INSTALL.search(command):
            found.append(Evidence(facts.target, "an update without an install in one step: %s" % _short(command),
                                  "update_alone", facts.names))
    return found


def add_used(facts: ImageFacts) -> List[Evidence]:
    found = []
    for index, step in enumerate(facts.history):
        command = str(step.get("created_by") or "")
        if index == 0 and re.search(r"ADD file:[0-9a-f]+ in /\s*$", command):
            continue  # the base image's root file system
        if ADD.search(command):
            found.append(Evidence(facts.target, "ADD in the build: %s" % _short(command), "add_instruction",
                                  facts.names))
    return found


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def _redacted(value: str) -> str:
    return "a value of %d characters (not shown)" % len(value)


def secrets_in_config(facts: ImageFacts) -> List[Evidence]:
    found = []
    env = facts.settings.get("Env") or []
    for item in env if isinstance(env, list) else []:
        name, _sep, value = str(item).partition("=")
        if value and ((SECRET_NAME.search(name) and not name.upper().endswith("_FILE")) or SECRET_VALUE.search(value)):
            found.append(Evidence(facts.target, "Env %s holds %s" % (name, _redacted(value)), "secret_in_env",
                                  facts.names))
    for index, step in enumerate(facts.history):
        command = str(step.get("created_by") or "")
        for match in ASSIGNMENT.finditer(command):
            name, value = match.group(1), match.group(2)
            if SECRET_NAME.search(name) and not value.startswith("$") and not name.upper().endswith("_FILE"):
                found.append(Evidence(facts.target, "history step %d sets %s to %s" % (index, name, _redacted(value)),
                                      "secret_in_history", facts.names))
        if SECRET_VALUE.search(command):
            found.append(Evidence(facts.target, "history step %d holds a token or key" % index,
                                  "secret_in_history", facts.names))
    return found


def _names_with(facts: ImageFacts, path: str) -> Tuple[str, ...]:
    return facts.names + tuple("%s:%s" % (name, path) for name in facts.names)


def setuid_files(images: Images) -> Verdict:
    failing, passing = [], []
    images.views.read([layer for facts in images.facts for layer in facts.layers])
    for facts in images.facts:
        if facts.image is None:
            failing.append(Evidence(facts.target, "the image cannot be read: %s" % facts.problem, "unreadable",
                                    facts.names))
            continue
        view = images.views.of(facts.layers)
        found = []
        for path in sorted(view):
            header = view[path].header
            bits = [name for bit, name in ((stat.S_ISUID, "setuid"), (stat.S_ISGID, "setgid")) if header.mode & bit]
            if bits:
                found.append(Evidence(facts.target, "%s: %s (mode %04o, uid %d, gid %d) from layer %s" % (
                    path, "+".join(bits), header.mode, header.uid, header.gid, view[path].chain_id),
                    bits[0] if len(bits) == 1 else "setuid_setgid", _names_with(facts, path)))
        failing.extend(found)
        failing.extend(_unread(images, facts))
        if not found:
            passing.append(Evidence(facts.target, "no setuid or setgid file", "none_found", facts.names))
    return Verdict.of(failing, passing)


def _unread(images: Images, facts: ImageFacts) -> List[Evidence]:
    return [Evidence(facts.target, "layer headers not read: %s" % images.views.problems[layer.chain_id],
                     "unreadable", facts.names)
            for layer in facts.layers if layer.chain_id in images.views.problems
            and "walked instead" not in images.views.problems[layer.chain_id]]


def secrets(images: Images) -> Verdict:
    failing, passing = [], []
    layers = {layer.chain_id: layer for facts in images.facts for layer in facts.layers}
    images.views.read(list(layers.values()))
    for facts in images.facts:
        found = secrets_in_config(facts) if facts.config is not None else [
            Evidence(facts.target, "the image config cannot be read: %s" % facts.problem, "unreadable", facts.names)]
        view = images.views.of(facts.layers)
        for path in sorted(view):
            rule = credential_rule(path)
            if rule is None:
                continue
            pattern, confirm = rule
            seen = view[path]
            if confirm is not None:
                content = images.views.files.peek(layers[seen.chain_id], path)
                if content is None or not re.search(confirm, content):
                    continue
            found.append(Evidence(facts.target, "%s: a file named like a credential (%s)%s, from layer %s" % (
                path, pattern, ", its content confirms it" if confirm is not None else "", seen.chain_id),
                "secret_file", _names_with(facts, path)))
        failing.extend(found)
        if not found:
            passing.append(Evidence(facts.target, "no secret found in Env, history or files", "none_found",
                                    facts.names))
    return Verdict.of(failing, passing)


CHECKS: Dict[str, Callable[[Images], Verdict]] = {
    "4.1": _per_image(root_user, lambda f: "runs as %s" % f.settings.get("User"), "user"),
    "4.6": _per_image(no_healthcheck, lambda f: "HEALTHCHECK %s" % " ".join(
        str(t) for t in (f.settings.get("Healthcheck") or {}).get("Test") or []), "healthcheck"),
    "4.7": _per_image(update_alone, lambda f: "no update alone in %d build steps" % len(f.history), "history"),
    "4.8": setuid_files,
    "4.9": _per_image(add_used, lambda f: "no ADD in %d build steps" % len(f.history), "history"),
    "4.10": secrets,
}

MANUAL_REASONS = {
    "4.2": "whether a base image is trusted is a decision about its source",
    "4.3": "which packages are needed depends on the application",
    "4.4": "scanning for vulnerabilities needs a vulnerability database",
    "4.5": "content trust is set in the clients' environment (DOCKER_CONTENT_TRUST), not in the store",
    "4.11": "package verification happens when the image is built",
    "4.12": "signatures are checked where artifacts are pulled",
}
