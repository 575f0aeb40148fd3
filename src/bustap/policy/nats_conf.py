"""nats-server authorization from a config file, decided the way the server
decides (server/opts.go ``parseUserPermissions``, client.go
``setPermissions``, ``pubAllowedFullCheck``, ``canSubscribeInternal``).

What the server does, surprises included:
- a user without permissions (and no ``default_permissions``) may publish
  and subscribe to everything;
- an empty allow list (``publish: []``, ``allow: []``) is no allow list at
  all: every subject is allowed (2.9 and 2.15 alike);
- allow is checked first, then deny; a matching deny always wins;
- a subscription is matched as a *literal* string against the lists: allow
  ``foo.*`` admits ``SUB foo.>`` (the allow ``*`` matches the token ``>``),
  allow ``foo.bar`` does not admit ``SUB foo.*``, and deny ``foo.baz`` does
  not stop ``SUB foo.*`` (the message on foo.baz is dropped at delivery);
- ``allow_responses`` without a publish allow list turns publishing off
  except for replies to requests received;
- ``certificate_clients`` with ``client_name`` (seed 002) is BOSH's
  extension of nats-server: a TLS client whose certificate CN is
  ``<id>.<client_name>`` gets that entry's permissions with ``_CLIENT_ID``
  replaced by ``<id>``. Stock nats-server refuses the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..topics import is_nats_subject_valid, nats_match, validate_nats_subject
from ._conf_syntax import Block, load_conf
from .model import Action, Breadth, Decision, Grant

CLIENT_ID_TOKEN = "_CLIENT_ID"
GLOBAL_ACCOUNT = "$G"


@dataclass(frozen=True)
class Entry:
    """One subject in an allow or deny list (``queue`` for ``"subj queue"``)."""

    subject: str
    queue: str | None
    line: int
    file: str


@dataclass
class SubjectPerms:
    """``allow`` is None when there is no allow list (everything allowed);
    ``written_empty`` remembers an allow list that was written empty."""

    allow: list[Entry] | None = None
    deny: list[Entry] = field(default_factory=list)
    written_empty: bool = False


@dataclass
class Responses:
    max_msgs: int = 1
    expires: str = "2m"


@dataclass
class Permissions:
    name: str  # how to call the block: a variable name, or where it is written
    line: int
    publish: SubjectPerms | None = None
    subscribe: SubjectPerms | None = None
    responses: Responses | None = None
    pub_off_by_responses: bool = False


@dataclass
class NatsUser:
    name: str
    account: str
    permissions: Permissions | None
    line: int
    kind: str = "user"  # user | nkey | certificate_client

    def templated(self) -> bool:
        return self.kind == "certificate_client"


def _text(value: Any, what: str, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ConfigError(f"{where}: {what} must be a string, not {value!r}", value=value)
    return str(value)


def _line(value: Any, default: int) -> int:
    return int(getattr(value, "line", default) or default)


def _subjects(value: Any, where: str, file: str, line: int, queue_ok: bool) -> list[Entry]:
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        text = _text(item, "a subject", where)
        parts = text.split()
        queue = None
        if not is_nats_subject_valid(text):
            if not (queue_ok and len(parts) == 2 and all(is_nats_subject_valid(p)
                                                          for p in parts)):
                raise ConfigError(f"{where}: {text!r} is not a valid subject", value=text)
            text, queue = parts
        out.append(Entry(text, queue, _line(item, line), getattr(item, "file", file)))
    return out


def _subject_perms(value: Any, where: str, file: str, line: int, queue_ok: bool
                   ) -> SubjectPerms | None:
    if isinstance(value, Block):
        if not value:
            return None  # parseSubjectPermission: an empty map is no permission at all
        perms = SubjectPerms()
        for key, v in value.items():
            k = key.lower()
            if k == "allow":
                entries = _subjects(v, f"{where}.allow", file, line, queue_ok)
                perms.allow = entries or None
                perms.written_empty = not entries
            elif k == "deny":
                perms.deny = _subjects(v, f"{where}.deny", file, line, queue_ok)
        return perms
    entries = _subjects(value, where, file, line, queue_ok)
    return SubjectPerms(allow=entries or None, written_empty=not entries)


def _permissions(value: Any, name: str) -> Permissions:
    if not isinstance(value, Block):
        raise ConfigError(f"{name}: permissions must be a map, not {value!r}", value=value)
    if value.var:
        name = value.var
    perms = Permissions(name=name, line=value.line)
    for key, v in value.items():
        k = key.lower()
        if k in ("pub", "publish", "import"):
            perms.publish = _subject_perms(v, f"{name}.{key}", value.file, value.line, False)
        elif k in ("sub", "subscribe", "export"):
            perms.subscribe = _subject_perms(v, f"{name}.{key}", value.file, value.line, True)
        elif k in ("allow_responses", "publish_allow_responses"):
            if isinstance(v, bool):
                perms.responses = Responses() if v else None
            elif isinstance(v, Block):
                resp = Responses()
                for rk, rv in v.items():
                    if rk.lower() in ("max", "max_msgs", "max_messages", "max_responses") \
                            and isinstance(rv, int) and rv != 0:
                        resp.max_msgs = rv
                    elif rk.lower() in ("expires", "expiration", "ttl") and str(rv) not in (
                            "0", "0s"):
                        resp.expires = str(rv)
                perms.responses = resp
            else:
                raise ConfigError(f"{name}.{key}: expected a boolean or a map, not {v!r}",
                                  value=v)
    if perms.responses is not None:
        if perms.publish is None:
            perms.publish = SubjectPerms()
        if perms.publish.allow is None:
            perms.pub_off_by_responses = True
    return perms


class NatsPolicy:
    """The users of a nats-server config and what each may do."""

    protocol = "nats"

    def __init__(self, path: str, users: list[NatsUser], *, auth_required: bool,
                 no_auth_user: str | None, warnings: list[str]) -> None:
        self.path = path
        self.name = Path(path).name
        self._users = users
        self.auth_required = auth_required
        self.no_auth_user = no_auth_user
        self.warnings = warnings

    # --- loading ------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path) -> NatsPolicy:
        return cls.from_conf(load_conf(path), str(path))

    @classmethod
    def from_conf(cls, conf: Block, path: str) -> NatsPolicy:
        users: list[NatsUser] = []
        warnings: list[str] = []
        auth_required = False
        keys = {k.lower(): k for k in conf}
        auth = conf.get(keys.get("authorization", ""))
        if isinstance(auth, Block):
            auth_required = cls._authorization(auth, users, warnings)
        accounts = conf.get(keys.get("accounts", ""))
        if isinstance(accounts, Block):
            for acc_name, acc in accounts.items():
                if not isinstance(acc, Block):
                    continue
                acc_keys = {k.lower(): k for k in acc}
                default = acc.get(acc_keys.get("default_permissions", ""))
                default_perms = (_permissions(default, f"accounts.{acc_name}."
                                              "default_permissions")
                                 if default is not None else None)
                raw = acc.get(acc_keys.get("users", ""))
                if isinstance(raw, list):
                    auth_required = True
                    cls._user_list(raw, acc_name, default_perms, users, f"accounts.{acc_name}")
        no_auth = conf.get(keys.get("no_auth_user", ""))
        return cls(path, users, auth_required=auth_required,
                   no_auth_user=str(no_auth) if no_auth else None, warnings=warnings)

    @classmethod
    def _authorization(cls, auth: Block, users: list[NatsUser], warnings: list[str]) -> bool:
        keys = {k.lower(): k for k in auth}
        default = None
        for k in ("default_permission", "default_permissions", "permissions"):
            if k in keys:
                default = _permissions(auth[keys[k]], "authorization.default_permissions")
        required = False
        if "user" in keys or "username" in keys or "token" in keys:
            required = True
            name = auth.get(keys.get("user", keys.get("username", "")))
            if name is not None:
                users.append(NatsUser(str(name), GLOBAL_ACCOUNT, None, _line(name, auth.line)))
            elif "token" in keys:
                # A token client sends no user name: it is the "user" without one.
                users.append(NatsUser("", GLOBAL_ACCOUNT, None, auth.line, kind="token"))
        raw = auth.get(keys.get("users", ""))
        if isinstance(raw, list):
            required = True
            cls._user_list(raw, GLOBAL_ACCOUNT, default, users, "authorization.users")
        certs = auth.get(keys.get("certificate_clients", ""))
        if isinstance(certs, list):
            required = True
            warnings.append("certificate_clients is BOSH's extension of nats-server "
                            "(client certificate CN <id>.<client_name>, _CLIENT_ID = <id>); "
                            "stock nats-server refuses it as an unknown field")
            for i, item in enumerate(certs):
                if not isinstance(item, Block):
                    raise ConfigError(f"certificate_clients[{i}] must be a map", value=i)
                ik = {k.lower(): k for k in item}
                name = item.get(ik.get("client_name", ""))
                if name is None:
                    raise ConfigError(f"certificate_clients[{i}] has no client_name", value=i)
                raw_perms = item.get(ik.get("permissions", ""))
                perms = (_permissions(raw_perms, f"certificate_clients[{name}].permissions")
                         if raw_perms is not None else default)
                users.append(NatsUser(str(name), GLOBAL_ACCOUNT, perms,
                                      _line(name, item.line), kind="certificate_client"))
        return required

    @classmethod
    def _user_list(cls, raw: list[Any], account: str, default: Permissions | None,
                   users: list[NatsUser], where: str) -> None:
        for i, item in enumerate(raw):
            if not isinstance(item, Block):
                raise ConfigError(f"{where}[{i}] must be a map, not a {type(item).__name__}",
                                  value=i)
            ik = {k.lower(): k for k in item}
            name = item.get(ik.get("user", ik.get("username", "")))
            kind = "user"
            if name is None and "nkey" in ik:
                name, kind = item[ik["nkey"]], "nkey"
            if name is None:
                raise ConfigError(f"{where}[{i}]: user entry requires a user", value=i)
            pk = ik.get("permissions", ik.get("permission", ik.get("authorization")))
            perms = None
            if pk is not None:
                perms = _permissions(item[pk], f"{where}[{name}].permissions")
            users.append(NatsUser(str(name), account, perms or default,
                                  _line(name, item.line), kind=kind))

    # --- questions ------------------------------------------------------------------

    def users(self) -> list[str]:
        return [u.name for u in self._users if u.kind != "token"]

    def find(self, user: str | None) -> tuple[NatsUser | None, str | None]:
        """The user entry for an identity and, for a certificate client, its id."""
        if user is None:
            if self.no_auth_user is None:
                return next(((u, None) for u in self._users if u.kind == "token"),
                            (None, None))
            user = self.no_auth_user
        for u in self._users:
            if not u.templated() and u.name == user:
                return u, None
        for u in self._users:
            if u.templated():
                if user == u.name:
                    return u, None
                if user.endswith("." + u.name):
                    return u, user[:-len(u.name) - 1]
        return None, None

    def knows(self, user: str) -> bool:
        return self.find(user)[0] is not None

    def explain(self, user: str | None, action: Action, subject: str, *,
                client_id: str | None = None) -> Decision:
        validate_nats_subject(subject, wildcards=action is Action.SUBSCRIBE)
        if not self.auth_required:
            return Decision(True, None, f"{self.name} requires no authentication: every "
                            "client may publish and subscribe to everything")
        entry, cid = self.find(user)
        who = user if user is not None else "a client without credentials"
        if entry is None:
            if user is None:
                return Decision(False, None, "the server requires credentials: a client "
                                "without them is refused (Authorization Violation)")
            return Decision(False, None, f"{user!r} is not a user in {self.name}: the server "
                            "refuses the connection (Authorization Violation)")
        if entry.account != GLOBAL_ACCOUNT:
            who += f" (account {entry.account}: it sees only that account's subjects)"
        perms = entry.permissions
        if perms is None:
            return Decision(True, None, f"{who} has no permissions: nats-server allows every "
                            "publish and subscribe", grant=f"{entry.name}:all")
        side = perms.publish if action is Action.PUBLISH else perms.subscribe
        label = f"{perms.name}.{action.value}"
        if side is None or (side.allow is None and not side.deny):
            if action is Action.PUBLISH and perms.pub_off_by_responses:
                return Decision(False, f"{perms.name}.allow_responses",
                                "allow_responses without a publish allow list: only replies "
                                "to requests received may be published")
            extra = (f" ({label} is an empty list: nats-server treats it as no list)"
                     if side is not None and side.written_empty else "")
            return Decision(True, None, f"{perms.name} has no {action.value} allow or deny "
                            f"list: every subject is allowed{extra}",
                            grant=f"{perms.name}:{action.value}:all")
        grant = None
        rule = None
        if side.allow is not None:
            hit = self._first(side.allow, subject, cid)
            if hit is None:
                if action is Action.PUBLISH and perms.responses is not None:
                    return Decision(False, f"{label}.allow", "no allow entry matches; only a "
                                    "reply to a request received would pass (allow_responses)")
                return Decision(False, f"{label}.allow",
                                f"no entry of {label} allow matches {subject!r}",
                                note=self._spoof(entry, side.allow, subject, cid))
            rule = self._rule(label, "allow", hit)
            grant = self._grant_id(perms, action, hit)
        deny = self._first(side.deny, subject, cid)
        if deny is not None:
            return Decision(False, self._rule(label, "deny", deny),
                            "a deny entry matches: deny wins over allow")
        if rule is None:
            return Decision(True, None, f"{label} has only a deny list and none of it matches "
                            f"{subject!r}", grant=f"{perms.name}:{action.value}:all")
        reason = f"allowed by {rule}"
        if action is Action.SUBSCRIBE:
            narrower = [d.subject for d in side.deny if d.queue is None and
                        _collide(self._subst(d.subject, cid), subject)]
            if narrower:
                reason += ("; messages on " + ", ".join(narrower) +
                           " are dropped at delivery (deny)")
            if any(t in (">", "*") for t in subject.split(".")):
                reason += " (the subscription is matched as a literal subject)"
        return Decision(True, rule, reason, grant=grant)

    @staticmethod
    def _subst(subject: str, cid: str | None) -> str:
        return subject.replace(CLIENT_ID_TOKEN, cid) if cid else subject

    def _first(self, entries: list[Entry], subject: str, cid: str | None) -> Entry | None:
        for e in entries:
            # Queue-qualified entries only concern queue subscriptions.
            if e.queue is None and nats_match(self._subst(e.subject, cid), subject):
                return e
        return None

    def _rule(self, label: str, kind: str, e: Entry) -> str:
        return f'{label}.{kind} "{e.subject}" ({e.file}:{e.line})'

    @staticmethod
    def _grant_id(perms: Permissions, action: Action, e: Entry) -> str:
        return f"{perms.name}:{action.value}:{e.subject}:{e.line}"

    def _spoof(self, user: NatsUser, allow: list[Entry], subject: str, cid: str | None
               ) -> str | None:
        """An entry written for ``_CLIENT_ID`` matches with another id: the
        client acts in another client's name (a spoofed heartbeat)."""
        if not cid:
            return None
        for e in allow:
            if CLIENT_ID_TOKEN in e.subject:
                pat = e.subject.split(".")
                toks = subject.split(".")
                if len(pat) != len(toks):
                    continue
                other = None
                ok = True
                for p, t in zip(pat, toks, strict=True):
                    if p == CLIENT_ID_TOKEN:
                        other = t
                    elif p not in ("*", t):
                        ok = False
                if ok and other and other != cid:
                    return f"{cid} acts as {other}: {subject} is {other}'s subject"
        return None

    def grants(self) -> list[Grant]:
        out: dict[str, Grant] = {}
        holders: dict[str, list[str]] = {}
        for u in self._users:
            p = u.permissions
            if p is None:
                continue
            holders.setdefault(p.name, []).append(u.name)
        for u in self._users:
            p = u.permissions
            if p is None:
                continue
            for action, side in ((Action.PUBLISH, p.publish), (Action.SUBSCRIBE, p.subscribe)):
                if side is None or side.allow is None:
                    continue
                for e in side.allow:
                    gid = self._grant_id(p, action, e)
                    if gid not in out:
                        out[gid] = Grant(gid, p.name, action, e.subject,
                                         self._rule(f"{p.name}.{action.value}", "allow", e),
                                         tuple(holders[p.name]))
        return list(out.values())

    def breadth(self) -> list[Breadth]:
        out: list[Breadth] = []
        seen: set[tuple[str, str, str]] = set()

        def add(b: Breadth) -> None:
            key = (b.who, b.what, b.rule)
            if key not in seen:
                seen.add(key)
                out.append(b)

        for u in self._users:
            p = u.permissions
            if p is None:
                add(Breadth(u.name, "publish and subscribe >", f"{self.name}:{u.line}",
                            "no permissions: the user may do everything"))
                continue
            for action, side in ((Action.PUBLISH, p.publish), (Action.SUBSCRIBE, p.subscribe)):
                label = f"{p.name}.{action.value}"
                if action is Action.PUBLISH and p.pub_off_by_responses:
                    continue
                if side is None or side.allow is None:
                    why = ("written as an empty list, which nats-server treats as allow-all"
                           if side is not None and side.written_empty else
                           f"no {action.value} allow list: every subject is allowed")
                    add(Breadth(p.name, f"{action.value} >", f"{label} ({self.name}:{p.line})",
                                why))
                    continue
                for e in side.allow:
                    broad = _too_broad(action, e.subject)
                    if broad:
                        add(Breadth(p.name, f'{action.value} "{e.subject}"',
                                    self._rule(label, "allow", e), broad))
            r = p.responses
            if r is not None and (r.max_msgs < 0 or r.expires.startswith("-")):
                add(Breadth(p.name, "allow_responses", f"{p.name}.allow_responses",
                            "negative max or expires: replies without limit"))
        return out


def _too_broad(action: Action, subject: str) -> str | None:
    if subject == ">":
        return "'>' is every subject"
    if subject == "_INBOX.>":
        return "'_INBOX.>' sees or forges every reply of every requester"
    toks = subject.split(".")
    if toks[0] in ("*", ">"):
        return "a leading wildcard spans every subject tree"
    if action is Action.SUBSCRIBE and toks[-1] == "*":
        return (f"a subscribe allow ending in '*' also admits SUB {'.'.join(toks[:-1])}.> "
                "(matched as a literal subject)")
    return None


def _collide(a: str, b: str) -> bool:
    """Can one subject match both patterns?"""
    ta, tb = a.split("."), b.split(".")
    for i in range(max(len(ta), len(tb))):
        x = ta[i] if i < len(ta) else None
        y = tb[i] if i < len(tb) else None
        if x == ">" or y == ">":
            return (x is not None) and (y is not None)
        if x is None or y is None:
            return False
        if x != y and "*" not in (x, y):
            return False
    return True
