"""shoutrrr's smtp://, matrix://, Discord, telegram://, pushover:// and
teams:// (Power Automate) URLs, and Watchtower's legacy
notification settings (SPEC.md: Notifications, Watchtower compatibility;
docs/migrating-from-watchtower.md), end to end: a Watchtower invocation
(`refit --run-once NAME` with WATCHTOWER_* variables) updates a real
container from a real registry, and a local receiver checks the exact
request the service's real API takes.

The receivers: an SMTP server written here (EHLO, STARTTLS with an
openssl-made certificate, AUTH PLAIN, MAIL, RCPT, DATA), a Matrix client
API (login, join, PUT m.room.message) and HTTPS hooks standing in for
hooks.slack.com, discord.com, a Teams connector, api.telegram.org,
api.pushover.net and a Power Automate workflow host.  A fixed host reaches
the receiver through REFIT_TEST_NOTIFY_CONNECT_TO, its certificate checked
against REFIT_TEST_NOTIFY_CA (the test-only variables of notify-send.c).
"""

import base64
import email
import email.policy
import json
import os
import re
import socket
import ssl
import threading
import urllib.parse

import pytest

from harness import HTTPReceiver, TLSMaterial, digest_only
from swaptools import inspect, stale_pair

WT_ENABLE = "com.centurylinklabs.watchtower.enable"
FAST = "min_uptime: 1\nhealth_timeout: 15\nstop_timeout: 3\n"
HOOK_HOSTS = ("hooks.slack.com", "discord.com", "acme.webhook.office.com", "api.telegram.org",
              "api.pushover.net", "prod-00.westeurope.logic.azure.com")
TEAMS_HOOK = ("https://acme.webhook.office.com/webhookb2/11111111-2222-4333-8444-555555555555@"
              "66666666-7777-4888-9999-000000000000/IncomingWebhook/abcdef0123456789abcdef0123456789/"
              "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee")


# --------------------------------------------------------------------------
# receivers

class SMTPReceiver:
    """An SMTP server on 127.0.0.1 that records every mail: {"tls", "auth",
    "ehlo", "mail_from", "rcpt", "data"}.  STARTTLS is offered when TLS (a
    TLSMaterial) is given; AUTH PLAIN only over TLS unless auth_in_clear;
    credentials other than USER/PASSWORD are refused (535)."""

    def __init__(self, tls=None, user="wt-user", password="pw:s3cret", auth_in_clear=False):
        self.ctx = None
        if tls:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(tls.server_crt, tls.server_key)
        self.user, self.password, self.auth_in_clear = user, password, auth_in_clear
        self.mails, self.sessions = [], []
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        self.sock.settimeout(0.2)
        while not self.stopped.is_set():
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._session, args=(c,), daemon=True).start()

    def _session(self, conn):
        conn.settimeout(20)
        state = {"tls": False, "auth": None, "ehlo": [], "commands": []}
        with self.lock:
            self.sessions.append(state)
        f = conn.makefile("rb")

        def say(line):
            conn.sendall(line.encode() + b"\r\n")

        def line():
            raw = f.readline(4096)
            if not raw:
                raise EOFError
            return raw.decode("utf-8", "replace").rstrip("\r\n")
        try:
            say("220 refit-test ESMTP")
            mail = None
            while True:
                cmd = line()
                verb = cmd.split(" ", 1)[0].upper()
                state["commands"].append(verb if verb == "AUTH" else cmd)
                if verb in ("EHLO", "HELO"):
                    state["ehlo"].append(cmd.split(" ", 1)[1] if " " in cmd else "")
                    caps = ["refit-test"]
                    if self.ctx and not state["tls"]:
                        caps.append("STARTTLS")
                    if state["tls"] or self.auth_in_clear:
                        caps.append("AUTH PLAIN")
                    caps.append("8BITMIME")
                    for c in caps[:-1]:
                        say("250-" + c)
                    say("250 " + caps[-1])
                elif verb == "STARTTLS" and self.ctx and not state["tls"]:
                    say("220 ready to start TLS")
                    conn = self.ctx.wrap_socket(conn, server_side=True)
                    f = conn.makefile("rb")
                    state["tls"] = True
                elif verb == "AUTH":
                    parts = cmd.split(" ")
                    if len(parts) < 2 or parts[1].upper() != "PLAIN" or \
                            not (state["tls"] or self.auth_in_clear):
                        say("504 unsupported")
                        continue
                    if len(parts) == 2:
                        say("334 ")
                        parts.append(line())
                    got = base64.b64decode(parts[2]).split(b"\0")
                    if got[1:] == [self.user.encode(), self.password.encode()]:
                        state["auth"] = (got[1].decode(), got[2].decode())
                        say("235 2.7.0 authenticated")
                    else:
                        say("535 5.7.8 bad credentials")
                elif verb == "MAIL":
                    mail = {"tls": state["tls"], "auth": state["auth"], "ehlo": list(state["ehlo"]),
                            "mail_from": re.match(r"MAIL FROM:\s*<([^>]*)>", cmd, re.I).group(1), "rcpt": []}
                    say("250 2.1.0 ok")
                elif verb == "RCPT":
                    mail["rcpt"].append(re.match(r"RCPT TO:\s*<([^>]*)>", cmd, re.I).group(1))
                    say("250 2.1.5 ok")
                elif verb == "DATA":
                    say("354 end with <CRLF>.<CRLF>")
                    data = []
                    while True:
                        raw = f.readline(65536)
                        if not raw or raw == b".\r\n":
                            break
                        data.append(raw[1:] if raw.startswith(b"..") else raw)
                    mail["data"] = b"".join(data)
                    with self.lock:
                        self.mails.append(mail)
                    say("250 2.0.0 queued")
                elif verb in ("RSET", "NOOP"):
                    say("250 ok")
                elif verb == "QUIT":
                    say("221 bye")
                    return
                else:
                    say("502 5.5.2 not implemented")
        except (EOFError, OSError, ssl.SSLError):
            pass
        finally:
            conn.close()

    def got(self):
        with self.lock:
            return list(self.mails)

    def stop(self):
        self.stopped.set()
        self.sock.close()


# --------------------------------------------------------------------------
# fixtures and helpers

@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return TLSMaterial(str(tmp_path_factory.mktemp("notify-tls")), names=HOOK_HOSTS)


@pytest.fixture(scope="module")
def base(image_factory, plain_registry):
    repo = image_factory.unique_repo("wt-notify-base")
    return image_factory.make_many([{"registry": plain_registry, "repo": repo, "tag": t}
                                    for t in ("v1", "v2")])


@pytest.fixture
def receivers():
    made = []
    yield made
    for r in made:
        r.stop()


@pytest.fixture
def hooks(tls, receivers):
    """The HTTPS receiver that hooks.slack.com, discord.com and the Teams host reach."""
    rx = HTTPReceiver(tls)
    receivers.append(rx)
    return rx


def short(digest):
    return digest_only(digest).split(":", 1)[1][:12]


def stale(containers, labels, image_factory, plain_registry, base, hint):
    """A running container whose tag has a newer image: (name, v1, v2)."""
    v1, v2 = stale_pair(image_factory, plain_registry, base[0], base[1], hint)
    name = containers.run(v1, labels=labels({WT_ENABLE: "true"}), hint=hint)
    return name, v1, v2


def run_once(refit, name, env, tls=None, hooks=None):
    """`refit --run-once NAME` with Watchtower's variables ENV (certificates
    checked against TLS's CA; the hook hosts sent to HOOKS); it updated NAME."""
    cfg = refit.write_config("state_dir: %s\n%s" % (refit.state_dir, FAST))
    e = dict(env)
    if tls:
        e["REFIT_TEST_NOTIFY_CA"] = tls.ca_pem
    if hooks:
        e["REFIT_TEST_NOTIFY_CONNECT_TO"] = " ".join("%s:443:127.0.0.1:%d" % (h, hooks.port) for h in HOOK_HOSTS)
    r = refit.run("--run-once", "--config", cfg, name, env=e, timeout=150)
    assert r.rc == 0, r.describe()
    assert "updated" in r.stdout and name in r.stdout, r.describe()
    return r


def line_of(name, v1, v2):
    return "- %s: updated %s -> %s" % (name, short(v1.digest), short(v2.digest))


def parse_mail(m):
    return email.message_from_bytes(m["data"], policy=email.policy.compat32)


# --------------------------------------------------------------------------
# smtp://

def test_smtp_url_starttls_auth_plain_one_mail_per_recipient(refit, containers, labels, image_factory,
                                                             plain_registry, base, tls, receivers):
    """smtp:// with encryption=ExplicitTLS: STARTTLS (the certificate
    checked), then AUTH PLAIN with the URL's credentials, then one mail per
    recipient: MAIL FROM the fromaddress, RCPT TO that recipient, the From
    header with fromname, To, Subject, and the pass's lines as the body.  A
    server without STARTTLS gets nothing: not the mail, not the password."""
    name, v1, v2 = stale(containers, labels, image_factory, plain_registry, base, "wt-smtp")
    rx = SMTPReceiver(tls)
    receivers.append(rx)
    url = ("smtp://wt-user:pw%%3As3cret@127.0.0.1:%d/?fromaddress=refit%%2Bwt@example.com"
           "&toaddresses=ops@example.com,dev@example.com&fromname=Refit+Bot&subject=Deploys+on+web"
           "&auth=Plain&encryption=ExplicitTLS&clienthost=client.example" % rx.port)
    r = run_once(refit, name, {"WATCHTOWER_NOTIFICATION_URL": url}, tls)
    assert inspect(name)["Image"] == v2.id, r.describe()
    mails = rx.got()
    assert len(mails) == 2, (mails, rx.sessions, r.describe())
    for m, to in zip(sorted(mails, key=lambda m: m["rcpt"]), ["dev@example.com", "ops@example.com"]):
        assert m["tls"] and m["auth"] == ("wt-user", "pw:s3cret"), m
        assert m["ehlo"] == ["client.example", "client.example"], m  # again after STARTTLS
        assert m["mail_from"] == "refit+wt@example.com" and m["rcpt"] == [to], m
        msg = parse_mail(m)
        assert msg["From"] == "Refit Bot <refit+wt@example.com>", msg["From"]
        assert msg["To"] == to and msg["Subject"] == "Deploys on web", dict(msg)
        assert msg["Content-Type"] == 'text/plain; charset="UTF-8"', dict(msg)
        assert msg["Date"], dict(msg)
        body = msg.get_payload()
        assert line_of(name, v1, v2) in body.splitlines(), body
    assert "pw:s3cret" not in r.stderr and "pw%3As3cret" not in r.stderr, r.describe()
    assert "notification sent to smtp 127.0.0.1:%d" % rx.port in r.stderr, r.describe()

    # no STARTTLS offered: ExplicitTLS refuses to go on in clear
    name2, _, _ = stale(containers, labels, image_factory, plain_registry, base, "wt-smtp-clear")
    clear = SMTPReceiver(None, auth_in_clear=True)
    receivers.append(clear)
    r = run_once(refit, name2, {"WATCHTOWER_NOTIFICATION_URL": url.replace(str(rx.port), str(clear.port))}, tls)
    assert clear.got() == [], clear.got()
    assert all(s["auth"] is None for s in clear.sessions), clear.sessions
    assert "AUTH" not in [c for s in clear.sessions for c in s["commands"]], clear.sessions
    assert "notification to smtp 127.0.0.1:%d failed" % clear.port in r.stderr, r.describe()


def test_legacy_email_variables(refit, containers, labels, image_factory, plain_registry, base, tls,
                                receivers, tmp_path):
    """WATCHTOWER_NOTIFICATIONS=email with the EMAIL_* variables (the
    password from a file, as Watchtower reads it): STARTTLS when offered,
    AUTH PLAIN, From "Watchtower <FROM>", the subject "[TAG] Watchtower
    updates on HOST".  With SERVER_TLS_SKIP_VERIFY, as in Watchtower, no
    STARTTLS at all even when offered, and no AUTH without a user."""
    name, v1, v2 = stale(containers, labels, image_factory, plain_registry, base, "wt-email")
    rx = SMTPReceiver(tls)
    receivers.append(rx)
    pw = tmp_path / "smtp-password"
    pw.write_text("pw:s3cret\n")
    env = {"WATCHTOWER_NOTIFICATIONS": "email",
           "WATCHTOWER_NOTIFICATION_EMAIL_FROM": "watchtower@example.com",
           "WATCHTOWER_NOTIFICATION_EMAIL_TO": "ops@example.com",
           "WATCHTOWER_NOTIFICATION_EMAIL_SERVER": "127.0.0.1",
           "WATCHTOWER_NOTIFICATION_EMAIL_SERVER_PORT": str(rx.port),
           "WATCHTOWER_NOTIFICATION_EMAIL_SERVER_USER": "wt-user",
           "WATCHTOWER_NOTIFICATION_EMAIL_SERVER_PASSWORD": str(pw),
           "WATCHTOWER_NOTIFICATION_EMAIL_SUBJECTTAG": "prod",
           "WATCHTOWER_NOTIFICATIONS_HOSTNAME": "web1.example"}
    r = run_once(refit, name, env, tls)
    mails = rx.got()
    assert len(mails) == 1, (rx.sessions, r.describe())
    m = mails[0]
    assert m["tls"] and m["auth"] == ("wt-user", "pw:s3cret"), m
    assert m["ehlo"][0] == "localhost", m  # shoutrrr's clienthost
    assert m["mail_from"] == "watchtower@example.com" and m["rcpt"] == ["ops@example.com"], m
    msg = parse_mail(m)
    assert msg["From"] == "Watchtower <watchtower@example.com>" and msg["To"] == "ops@example.com", dict(msg)
    assert msg["Subject"] == "[prod] Watchtower updates on web1.example", dict(msg)
    assert line_of(name, v1, v2) in msg.get_payload().splitlines(), msg.get_payload()
    assert "not a Watchtower variable" not in r.stderr and "not honoured" not in r.stderr, r.describe()

    name2, _, _ = stale(containers, labels, image_factory, plain_registry, base, "wt-email-skip")
    rx2 = SMTPReceiver(tls)
    receivers.append(rx2)
    env2 = {k: v for k, v in env.items() if "USER" not in k and "PASSWORD" not in k}
    env2.update({"WATCHTOWER_NOTIFICATION_EMAIL_SERVER_PORT": str(rx2.port),
                 "WATCHTOWER_NOTIFICATION_EMAIL_SERVER_TLS_SKIP_VERIFY": "true"})
    run_once(refit, name2, env2, tls)
    mails = rx2.got()
    assert len(mails) == 1 and not mails[0]["tls"] and mails[0]["auth"] is None, (mails, rx2.sessions)
    assert "STARTTLS" not in [c for s in rx2.sessions for c in s["commands"]], rx2.sessions


# --------------------------------------------------------------------------
# matrix://

def matrix_server(receivers, token="syt_refit_TOKEN"):
    rooms = {"#ops:m.example": "!resolved:m.example", "!direct:m.example": "!direct:m.example"}

    def answer(req):
        path = urllib.parse.urlsplit(req["path"]).path
        if path == "/_matrix/client/r0/login" and req["method"] == "POST":
            return 200, {"access_token": token, "user_id": "@bot:m.example", "device_id": "DEV1"}
        if req["headers"].get("Authorization") != "Bearer " + token:
            return 401, {"errcode": "M_MISSING_TOKEN", "error": "no token"}
        if path.startswith("/_matrix/client/r0/join/") and req["method"] == "POST":
            room = urllib.parse.unquote(path[len("/_matrix/client/r0/join/"):])
            return (200, {"room_id": rooms[room]}) if room in rooms else (404, {"errcode": "M_NOT_FOUND"})
        if "/send/m.room.message/" in path and req["method"] == "PUT":
            return 200, {"event_id": "$ev%d" % len(req["body"])}
        if path == "/_matrix/client/r0/logout" and req["method"] == "POST":
            return 200, {}
        return 404, {"errcode": "M_UNRECOGNIZED"}
    rx = HTTPReceiver(None, answer)
    receivers.append(rx)
    return rx


def test_matrix_login_join_and_send(refit, containers, labels, image_factory, plain_registry, base, receivers):
    """matrix://USER:PASSWORD@HOST/?rooms=!ID,ALIAS&disableTLS=yes: POST
    /login with m.login.password, then per room POST /join/ROOM (an alias
    resolves to its ID) and PUT /rooms/ID/send/m.room.message/TXN with
    {"msgtype":"m.text","body":...} and the login's token as a Bearer; the
    device is logged out at the end; the password is never logged."""
    name, v1, v2 = stale(containers, labels, image_factory, plain_registry, base, "wt-matrix")
    rx = matrix_server(receivers)
    url = ("matrix://bot:pa%%24%%24word@127.0.0.1:%d/?rooms=!direct:m.example,ops:m.example"
           "&disableTLS=yes&title=Deploys" % rx.port)
    r = run_once(refit, name, {"WATCHTOWER_NOTIFICATION_URL": url})
    reqs = rx.got()
    assert [(q["method"], urllib.parse.urlsplit(q["path"]).path) for q in reqs][:1] == \
        [("POST", "/_matrix/client/r0/login")], reqs
    login = json.loads(reqs[0]["body"])
    assert login == {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "bot"},
                     "password": "pa$$word"}, login
    joins = [q["path"] for q in reqs if q["method"] == "POST" and "/join/" in q["path"]]
    assert joins == ["/_matrix/client/r0/join/!direct:m.example", "/_matrix/client/r0/join/%23ops:m.example"], reqs
    sends = [q for q in reqs if q["method"] == "PUT"]
    assert len(sends) == 2, reqs
    txns = []
    for q, room in zip(sends, ["!direct:m.example", "!resolved:m.example"]):
        m = re.fullmatch(r"/_matrix/client/r0/rooms/%s/send/m\.room\.message/([A-Za-z0-9._-]+)" % re.escape(room),
                         q["path"])
        assert m, q["path"]
        txns.append(m.group(1))
        assert q["headers"].get("Authorization") == "Bearer syt_refit_TOKEN", q["headers"]
        assert q["headers"].get("Content-Type") == "application/json", q["headers"]
        body = json.loads(q["body"])
        assert set(body) == {"msgtype", "body"} and body["msgtype"] == "m.text", body
        lines = body["body"].splitlines()
        assert lines[0] == "Deploys" and line_of(name, v1, v2) in lines, body
    assert len(set(txns)) == 2, txns
    assert [q["path"] for q in reqs][-1] == "/_matrix/client/r0/logout", reqs
    assert "pa$$word" not in r.stderr and "syt_refit_TOKEN" not in r.stderr, r.describe()
    assert "notification sent to matrix 127.0.0.1:%d" % rx.port in r.stderr, r.describe()


# --------------------------------------------------------------------------
# Discord, and the legacy Slack, Teams and Gotify settings

def test_discord_url_parameters(refit, containers, labels, image_factory, plain_registry, base, tls, hooks):
    """discord://TOKEN@ID with username, avatar, title, color, splitlines=no
    and thread_id: POST https://discord.com/api/webhooks/ID/TOKEN?thread_id=
    with one embed (title, the lines, the colour), username and avatar_url."""
    name, v1, v2 = stale(containers, labels, image_factory, plain_registry, base, "wt-discord")
    url = ("discord://tokTOKEN@123456789?username=Refit&avatar=https%3A%2F%2Fexample.com%2Fa.png"
           "&title=Deploys&color=0xff0000&splitlines=no&thread_id=987654321")
    r = run_once(refit, name, {"WATCHTOWER_NOTIFICATION_URL": url}, tls, hooks)
    reqs = hooks.got()
    assert len(reqs) == 1, (reqs, r.describe())
    q = reqs[0]
    assert q["method"] == "POST" and q["host"] == "discord.com", q
    assert q["path"] == "/api/webhooks/123456789/tokTOKEN?thread_id=987654321", q["path"]
    body = json.loads(q["body"])
    assert body["username"] == "Refit" and body["avatar_url"] == "https://example.com/a.png", body
    assert len(body["embeds"]) == 1, body
    embed = body["embeds"][0]
    assert embed["title"] == "Deploys" and embed["color"] == 0xff0000, embed
    assert line_of(name, v1, v2) in embed["description"].splitlines(), embed
    assert "tokTOKEN" not in r.stderr, r.describe()


LEGACY = {
    "slack": ({"WATCHTOWER_NOTIFICATIONS": "slack",
               "WATCHTOWER_NOTIFICATION_SLACK_HOOK_URL": "https://hooks.slack.com/services/T0ABC/B0DEF/XxSecretXx",
               "WATCHTOWER_NOTIFICATION_SLACK_IDENTIFIER": "wt-bot",
               "WATCHTOWER_NOTIFICATION_SLACK_ICON_EMOJI": ":whale:"},
              "hooks.slack.com", "/services/T0ABC/B0DEF/XxSecretXx"),
    "slack-discord": ({"WATCHTOWER_NOTIFICATIONS": "slack",
                       "WATCHTOWER_NOTIFICATION_SLACK_HOOK_URL":
                           "https://discord.com/api/webhooks/55501/dTokenSecret/slack",
                       "WATCHTOWER_NOTIFICATION_SLACK_IDENTIFIER": "wt-bot"},
                      "discord.com", "/api/webhooks/55501/dTokenSecret"),
    "msteams": ({"WATCHTOWER_NOTIFICATIONS": "msteams",
                 "WATCHTOWER_NOTIFICATION_MSTEAMS_HOOK_URL": TEAMS_HOOK,
                 "WATCHTOWER_NOTIFICATION_MSTEAMS_USE_LOG_DATA": "true"},
                "acme.webhook.office.com", TEAMS_HOOK.split("acme.webhook.office.com", 1)[1]),
    "gotify": ({"WATCHTOWER_NOTIFICATIONS": "gotify",
                "WATCHTOWER_NOTIFICATION_GOTIFY_URL": "http://127.0.0.1:PORT/gotify/",
                "WATCHTOWER_NOTIFICATION_GOTIFY_TOKEN": "AgotSecret"},
               "127.0.0.1:PORT", "/gotify/message"),
}


@pytest.mark.parametrize("kind", sorted(LEGACY))
def test_legacy_hook_variables(kind, refit, containers, labels, image_factory, plain_registry, base, tls, hooks,
                               receivers, tmp_path):
    """Each legacy service's variables, as Watchtower makes them into a
    shoutrrr URL, reach that service's API: Slack's webhook (botname,
    #406170, icon, the title), a Discord hook given as Slack's (username,
    colour 0x406170), the Teams connector (a MessageCard), Gotify (its token
    in X-Gotify-Key, read from a file).  The title is "[TAG] Watchtower
    updates on HOST"; no variable is one refit does not know."""
    env, host, path = LEGACY[kind]
    env = dict(env)
    plain = None
    if kind == "gotify":
        plain = HTTPReceiver(None)
        receivers.append(plain)
        env["WATCHTOWER_NOTIFICATION_GOTIFY_URL"] = env["WATCHTOWER_NOTIFICATION_GOTIFY_URL"].replace(
            "PORT", str(plain.port))
        host = host.replace("PORT", str(plain.port))
        tokfile = tmp_path / "gotify-token"
        tokfile.write_text("AgotSecret\n")
        env["WATCHTOWER_NOTIFICATION_GOTIFY_TOKEN"] = str(tokfile)
    env["WATCHTOWER_NOTIFICATION_TITLE_TAG"] = "prod"
    env["WATCHTOWER_NOTIFICATIONS_HOSTNAME"] = "web1.example"
    title = "[prod] Watchtower updates on web1.example"
    name, v1, v2 = stale(containers, labels, image_factory, plain_registry, base, "wt-legacy-" + kind)
    r = run_once(refit, name, env, tls, hooks)
    reqs = (plain or hooks).got()
    assert len(reqs) == 1, (reqs, r.describe())
    q = reqs[0]
    assert q["method"] == "POST" and q["host"] == host and q["path"] == path, q
    body = json.loads(q["body"])
    want = line_of(name, v1, v2)
    if kind == "slack":
        assert body["text"] == title and body["username"] == "wt-bot" and body["icon_emoji"] == ":whale:", body
        assert [a["color"] for a in body["attachments"]] == ["#406170"] * len(body["attachments"]), body
        assert want in [a["text"] for a in body["attachments"]], body
    elif kind == "slack-discord":
        assert body["username"] == "wt-bot", body
        assert body["embeds"][0]["title"] == title, body
        assert all(e["color"] == 0x406170 for e in body["embeds"]), body
        assert want in [e["description"] for e in body["embeds"]], body
    elif kind == "msteams":
        assert body["@type"] == "MessageCard" and body["title"] == title and body["themeColor"] == "406170", body
        assert want in body["text"].splitlines(), body
    else:
        assert q["headers"].get("X-Gotify-Key") == "AgotSecret", q["headers"]
        assert body["title"] == title and want in body["message"].splitlines(), body
    assert "not a Watchtower variable" not in r.stderr, r.describe()
    for secret in ("XxSecretXx", "dTokenSecret", "AgotSecret", "abcdef0123456789abcdef0123456789"):
        assert secret not in r.stderr, r.describe()


# --------------------------------------------------------------------------
# telegram://, pushover:// and teams:// (a Power Automate workflow)

WORKFLOW = ("https://prod-00.westeurope.logic.azure.com:443/workflows/0a1b2c3d4e5f/triggers/manual/paths/invoke"
            "?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=WfSigSecret")
SERVICES = {
    # Telegram's Bot API: one sendMessage per chat, the title bold in HTML; it answers {"ok":true}
    "telegram": ("telegram://123456:TgBotSecret@telegram?chats=@deploys,-1001234567890:42"
                 "&notification=no&preview=no&title=Deploys",
                 "api.telegram.org", "/bot123456:TgBotSecret/sendMessage", {"ok": True, "result": {}},
                 ("TgBotSecret",)),
    # Pushover's messages API: a form with token, user, message, title, device, priority
    "pushover": ("pushover://shoutrrr:aPoTokenSecret0@uPoUserKey1/?devices=phone,tablet&priority=1&title=Deploys",
                 "api.pushover.net", "/1/messages.json", {"status": 1, "request": "5042853c"},
                 ("aPoTokenSecret0", "uPoUserKey1")),
    # a Teams workflow (Power Automate): an Adaptive Card in a "message" to the URL given as host=
    "teams": ("teams://?host=%s&title=Deploys&color=good" % urllib.parse.quote(WORKFLOW, safe=""),
              "prod-00.westeurope.logic.azure.com", WORKFLOW.split(":443", 1)[1], {},
              ("WfSigSecret",)),
}


@pytest.mark.parametrize("kind", sorted(SERVICES))
def test_chat_services_get_their_apis_request(kind, refit, containers, labels, image_factory, plain_registry,
                                              base, tls, receivers):
    """One update reaches each service's real API as that API takes it:
    Telegram's sendMessage once per chat (chat_id, message_thread_id,
    parse_mode HTML with the title bold, no preview, silent), Pushover's
    form (token, user, message, title, device list, priority), a Teams
    workflow's Adaptive Card (the title a bold TextBlock, one TextBlock per
    line). The secrets never reach the log."""
    url, host, path, answer, secrets = SERVICES[kind]
    rx = HTTPReceiver(tls, answer=lambda req: (200, answer))
    receivers.append(rx)
    name, v1, v2 = stale(containers, labels, image_factory, plain_registry, base, "wt-" + kind)
    r = run_once(refit, name, {"WATCHTOWER_NOTIFICATION_URL": url}, tls, rx)
    reqs = rx.got()
    want = line_of(name, v1, v2)
    assert all(q["method"] == "POST" and q["host"] == host and q["path"] == path for q in reqs), reqs
    if kind == "telegram":
        assert len(reqs) == 2, (reqs, r.describe())
        bodies = [json.loads(q["body"]) for q in reqs]
        assert [b["chat_id"] for b in bodies] == ["@deploys", "-1001234567890"], bodies
        assert "message_thread_id" not in bodies[0] and bodies[1]["message_thread_id"] == 42, bodies
        for b in bodies:
            assert b["parse_mode"] == "HTML" and b["disable_web_page_preview"] is True, b
            assert b["disable_notification"] is True, b
            lines = b["text"].splitlines()
            assert lines[0] == "<b>Deploys</b>" and want.replace(">", "&gt;") in lines, b
        assert all(q["headers"].get("Content-Type") == "application/json" for q in reqs), reqs
    elif kind == "pushover":
        assert len(reqs) == 1, (reqs, r.describe())
        q = reqs[0]
        assert q["headers"].get("Content-Type") == "application/x-www-form-urlencoded", q["headers"]
        form = urllib.parse.parse_qs(q["body"].decode(), strict_parsing=True)
        assert form["token"] == ["aPoTokenSecret0"] and form["user"] == ["uPoUserKey1"], form
        assert form["title"] == ["Deploys"] and form["device"] == ["phone,tablet"], form
        assert form["priority"] == ["1"], form
        assert want in form["message"][0].splitlines(), form
    else:
        assert len(reqs) == 1, (reqs, r.describe())
        body = json.loads(reqs[0]["body"])
        assert body["type"] == "message" and len(body["attachments"]) == 1, body
        att = body["attachments"][0]
        assert att["contentType"] == "application/vnd.microsoft.card.adaptive", att
        card = att["content"]
        assert card["type"] == "AdaptiveCard" and card["version"] == "1.2", card
        blocks = card["body"]
        assert blocks[0]["text"] == "Deploys" and blocks[0]["weight"] == "Bolder", blocks
        assert blocks[0]["color"] == "good", blocks
        assert want in [b["text"] for b in blocks[1:]], blocks
    assert "notification sent to %s" % kind in r.stderr, r.describe()
    for secret in secrets:
        assert secret not in r.stderr, r.describe()
