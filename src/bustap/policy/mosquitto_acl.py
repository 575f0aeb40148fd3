"""Mosquitto's ``acl_file`` (and the user names of its ``password_file``),
decided the way mosquitto 2.0 decides (src/security_default.c
``aclfile__parse``, ``acl__find_acls``, ``mosquitto_acl_check_default``;
src/security.c ``acl__check_dollar``).

What the broker does, surprises included:
- ``topic`` lines before any ``user`` line are for clients *without* a user
  name only; a named user gets only its own lines, and a user name with no
  lines gets nothing but the ``pattern`` lines;
- ``pattern`` lines apply to everyone, after the user's own lines: a user's
  allow is final even where a pattern denies;
- ``deny`` lines are checked before the others of the same list, so a deny
  wins within it;
- ``read`` is for receiving, ``write`` for publishing; no type (or a single
  word after ``topic``) means readwrite;
- publishing to ``$SYS/...`` is always denied (bridge state topics aside); a
  rule must itself start with ``$`` to match a ``$`` topic, so ``#`` never
  grants ``$SYS``;
- ``%c`` and ``%u`` in patterns are the client id and user name; a client
  whose id or user name contains ``+`` or ``#`` gets no pattern access;
- SUBSCRIBE is always granted (the default ACL has "FIXME - implement ACL
  subscription strings"): each message is then dropped unless the client
  may read its topic.

The password file is read for user names only: the hashes are never kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from ..topics import is_mqtt_filter_valid, mqtt_match, validate_mqtt_filter
from .model import Action, Breadth, Decision, Grant

READ = 1
WRITE = 2
DENY = 0
_ACCESS = {"read": READ, "write": WRITE, "readwrite": READ | WRITE, "deny": DENY}
_NAMES = {READ: "read", WRITE: "write", READ | WRITE: "readwrite", DENY: "deny"}


@dataclass(frozen=True)
class AclRule:
    access: int
    topic: str
    line: int
    user: str | None  # None: general rules (clients without a user name)
    pattern: bool = False

    @property
    def id(self) -> str:
        return f"acl:{self.line}"

    def text(self, file: str) -> str:
        kind = "pattern" if self.pattern else "topic"
        who = "" if self.pattern else (f"user {self.user}: " if self.user is not None
                                       else "general: ")
        return f"{who}{kind} {_NAMES[self.access]} {self.topic} ({file}:{self.line})"


def _read(path: str | Path, what: str) -> list[str]:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}", value=str(path)) from exc


def parse_acl(lines: list[str], name: str = "acl_file") -> list[AclRule]:
    """Rules in file order, with mosquitto's own parse errors."""
    rules: list[AclRule] = []
    user: str | None = None
    for no, raw in enumerate(lines, 1):
        line = raw.rstrip()
        if line.startswith("#"):
            continue
        words = line.split(" ")
        words = [w for w in words if w]
        if not words:
            continue
        head = words[0]
        rest = line.lstrip(" ")[len(head):].lstrip(" ")
        if head in ("topic", "pattern"):
            if not rest:
                raise ConfigError(f"{name}:{no}: empty topic", value=line)
            access_s, _, topic = rest.partition(" ")
            topic = topic.strip(" \t")
            if topic:
                access = _ACCESS.get(access_s)
                if access is None:
                    raise ConfigError(f"{name}:{no}: invalid topic access type {access_s!r}",
                                      value=access_s)
            else:
                topic, access = access_s, READ | WRITE
            if not is_mqtt_filter_valid(topic):
                raise ConfigError(f"{name}:{no}: invalid ACL topic {topic!r}", value=topic)
            rules.append(AclRule(access, topic, no, None if head == "pattern" else user,
                                 pattern=head == "pattern"))
        elif head == "user":
            if not rest.strip(" \t"):
                raise ConfigError(f"{name}:{no}: missing username", value=line)
            user = rest.strip(" \t")
        else:
            raise ConfigError(f"{name}:{no}: invalid line {line!r}", value=line)
    return rules


def password_users(path: str | Path) -> list[str]:
    """The user names of a mosquitto password file (``user:hash`` lines)."""
    users = []
    try:
        with Path(path).open(encoding="utf-8", errors="replace") as f:
            for line in f:  # line by line: only the part before ':' is kept
                if line.startswith("#") or ":" not in line:
                    continue
                name = line.split(":", 1)[0].strip(" \t")
                if name:
                    users.append(name)
    except OSError as exc:
        raise ConfigError(f"cannot read password_file {path}: {exc.strerror}",
                          value=str(path)) from exc
    return users


def _front_denies(rules: list[AclRule]) -> list[AclRule]:
    # add__acl puts each deny at the head of its list: last deny first.
    denies = [r for r in rules if r.access == DENY]
    return [*reversed(denies), *(r for r in rules if r.access != DENY)]


def _is_subset(inner: str, outer: str) -> bool:
    """Is every topic matching filter ``inner`` matched by filter ``outer``?"""
    a, b = inner.split("/"), outer.split("/")
    for i, lvl in enumerate(b):
        if lvl == "#":
            return not (i == 0 and a[0].startswith("$"))
        if i >= len(a):
            return False
        if a[i] == "#":
            return False
        if lvl == "+":
            if i == 0 and a[0].startswith("$"):
                return False
            continue
        if lvl != a[i]:
            return False
    return len(a) == len(b)


def _overlap(x: str, y: str) -> bool:
    """Can one topic match both filters?"""
    a, b = x.split("/"), y.split("/")
    for i in range(max(len(a), len(b))):
        p = a[i] if i < len(a) else None
        q = b[i] if i < len(b) else None
        if p == "#" or q == "#":
            return True
        if p is None or q is None:
            return False
        if p != q and "+" not in (p, q):
            return False
    return True


class MosquittoPolicy:
    protocol = "mqtt"

    def __init__(self, path: str, rules: list[AclRule], *, known_users: list[str] | None,
                 allow_anonymous: bool | None, warnings: list[str] | None = None) -> None:
        self.path = path
        self.name = Path(path).name
        self.rules = rules
        self.known_users = known_users
        self.allow_anonymous = allow_anonymous
        self.warnings = warnings or []
        self._general = _front_denies([r for r in rules if not r.pattern and r.user is None])
        self._by_user: dict[str, list[AclRule]] = {}
        for r in rules:
            if not r.pattern and r.user is not None:
                self._by_user.setdefault(r.user, []).append(r)
        self._by_user = {u: _front_denies(rs) for u, rs in self._by_user.items()}
        self._patterns = _front_denies([r for r in rules if r.pattern])

    @classmethod
    def load(cls, path: str | Path, *, password_file: str | Path | None = None
             ) -> MosquittoPolicy:
        """``path`` is an acl_file, or a mosquitto.conf naming one."""
        lines = _read(path, "acl_file")
        allow_anonymous: bool | None = None
        conf = _conf_settings(lines)
        acl_path = Path(path)
        if conf is not None:
            base = Path(path).parent
            if "acl_file" not in conf:
                raise ConfigError(f"{path}: a mosquitto.conf without acl_file", value=str(path))
            acl_path = base / conf["acl_file"]
            lines = _read(acl_path, "acl_file")
            if password_file is None and "password_file" in conf:
                password_file = base / conf["password_file"]
            allow_anonymous = conf.get("allow_anonymous", "false") == "true"
        users = password_users(password_file) if password_file is not None else None
        return cls(str(acl_path), parse_acl(lines, acl_path.name), known_users=users,
                   allow_anonymous=allow_anonymous)

    def users(self) -> list[str]:
        names = list(self.known_users or [])
        names += [u for u in self._by_user if u not in names]
        return names

    def knows(self, user: str) -> bool:
        if self.known_users is not None:
            return user in self.known_users
        return user in self._by_user

    def explain(self, user: str | None, action: Action, subject: str, *,
                client_id: str | None = None) -> Decision:
        validate_mqtt_filter(subject)
        wildcard = any(lvl in ("+", "#") for lvl in subject.split("/"))
        if action is Action.PUBLISH and wildcard:
            raise ConfigError(f"invalid MQTT topic {subject!r}: a publish topic has no "
                              "wildcards", value=subject)
        if user is None and self.allow_anonymous is False:
            return Decision(False, "allow_anonymous false",
                            "clients without a user name are refused at CONNECT")
        if user is not None and self.known_users is not None and user not in self.known_users:
            return Decision(False, "password_file",
                            f"{user!r} is not in the password file: CONNECT is refused")
        if action is Action.PUBLISH:
            if subject.startswith("$SYS"):
                if not mqtt_match("$SYS/broker/connection/+/state", subject):
                    return Decision(False, "$SYS (built in)",
                                    "mosquitto refuses every client publish to $SYS")
            elif subject.startswith("$share"):
                return Decision(False, "$share (built in)", "$share is not a topic name")
        access = WRITE if action is Action.PUBLISH else READ
        d = self._check(user, client_id, subject, access, wildcard)
        if action is Action.SUBSCRIBE and not d.allowed:
            d = Decision(False, d.rule, d.reason + "; mosquitto still grants the SUBSCRIBE "
                         "(SUBACK) and drops each message at delivery", grant=d.grant)
        return d

    def _lists(self, user: str | None) -> list[AclRule] | None:
        if user is None:
            return self._general or None
        return self._by_user.get(user)

    def _check(self, user: str | None, client_id: str | None, topic: str, access: int,
               wildcard: bool) -> Decision:
        who = f"user {user!r}" if user is not None else "a client without a user name"
        own = self._lists(user)
        if own is None and not self._patterns:
            return Decision(False, None, f"{who} has no ACL lines and there are no patterns: "
                            "everything is denied")
        for r in own or []:
            d = self._try(r, r.topic, topic, access, wildcard)
            if d is not None:
                return d
        if self._patterns:
            for name, value in (("user name", user), ("client id", client_id)):
                if value and any(c in value for c in "+#"):
                    return Decision(False, None, f"the {name} {value!r} contains '+' or '#': "
                                    "mosquitto denies it every pattern")
        notes = []
        for r in self._patterns:
            if "%u" in r.topic and user is None:
                continue
            if "%c" in r.topic and client_id is None:
                notes.append(f"{r.topic} needs --client-id")
                continue
            t = r.topic.replace("%c", client_id or "")
            if user is not None:
                t = t.replace("%u", user)
            if not is_mqtt_filter_valid(t):
                continue
            d = self._try(r, t, topic, access, wildcard)
            if d is not None:
                return d
        what = "read" if access == READ else "write"
        reason = f"no ACL line lets {who} {what} {topic!r}"
        if user is not None and own is None:
            reason += f" ({user!r} has no user section: only patterns apply to it)"
        elif user is not None and any(r.access & access and mqtt_match(r.topic, topic)
                                      for r in self._general):
            reason += " (the general lines before any 'user' apply to anonymous clients only)"
        if notes:
            reason += "; not checked: " + ", ".join(notes)
        return Decision(False, None, reason)

    def _try(self, r: AclRule, flt: str, topic: str, access: int, wildcard: bool
             ) -> Decision | None:
        # If the topic starts with '$', the rule must too (security_default.c).
        if topic.startswith("$") and not flt.startswith("$"):
            return None
        rule = r.text(self.name)
        if wildcard:
            # A filter: every message it may bring is allowed only if one rule
            # covers the filter whole; an overlapping deny takes some away.
            if r.access == DENY and _overlap(flt, topic):
                return Decision(False, rule, "a deny line covers part of this filter")
            if r.access & access and _is_subset(topic, flt):
                return Decision(True, rule, f"allowed by {rule}", grant=r.id)
            return None
        if not mqtt_match(flt, topic):
            return None
        if r.access == DENY:
            return Decision(False, rule, "a deny line matches: deny lines are checked first")
        if r.access & access:
            return Decision(True, rule, f"allowed by {rule}", grant=r.id)
        return None

    def grants(self) -> list[Grant]:
        out = []
        for r in self.rules:
            if r.access == DENY:
                continue
            action = {READ: Action.SUBSCRIBE, WRITE: Action.PUBLISH}.get(r.access)
            who = "pattern" if r.pattern else (r.user if r.user is not None else "anonymous")
            users = () if r.pattern else ((r.user,) if r.user is not None else ())
            out.append(Grant(r.id, who, action, r.topic, r.text(self.name), users))
        return out

    def breadth(self) -> list[Breadth]:
        out = []
        for r in self.rules:
            if r.access == DENY:
                continue
            who = "pattern" if r.pattern else (r.user if r.user is not None else "anonymous")
            levels = r.topic.split("/")
            if r.topic == "#":
                why = "'#' is every topic (but $SYS)"
            elif levels[0] in ("+", "#") and not r.pattern:
                why = "a leading wildcard spans every topic tree"
            elif r.topic.startswith("$SYS") and r.access & WRITE:
                why = "write on $SYS (mosquitto refuses it anyway)"
            else:
                continue
            out.append(Breadth(who, f"{_NAMES[r.access]} {r.topic}", r.text(self.name), why))
        if self.allow_anonymous and self._general:
            out.append(Breadth("anonymous", "connect without a user name", "allow_anonymous true",
                               "clients without credentials get the general lines"))
        return out


def _conf_settings(lines: list[str]) -> dict[str, str] | None:
    """``acl_file``, ``password_file``, ``allow_anonymous`` of a mosquitto.conf;
    None when the lines are an ACL file."""
    out: dict[str, str] = {}
    for line in lines:
        words = line.split()
        if len(words) >= 2 and words[0] in ("acl_file", "password_file", "allow_anonymous"):
            out[words[0]] = line.split(None, 1)[1].strip()
        elif words and words[0] in ("listener", "persistence", "log_dest", "log_type",
                                    "port", "include_dir"):
            out.setdefault("_conf", "1")
    if "acl_file" in out or "_conf" in out:
        out.pop("_conf", None)
        return out
    return None
