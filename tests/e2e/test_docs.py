"""The manual page and the docs say what the code does (no Docker engine needed).

- man/refit.8 renders with groff -ww without a warning;
- every command `refit --help` lists, and every global option, is in the
  manual page's SYNOPSIS, COMMANDS and OPTIONS;
- every key of src/config.c's key table is in docs/configuration.md and in
  the manual page, and commented in config/refit.yml (the package's
  /etc/refit/refit.yml), which refit accepts with every line uncommented;
- every WATCHTOWER_* variable src/config.c reads is in
  docs/migrating-from-watchtower.md (marked as read, with the key it sets),
  and the doc marks no other WATCHTOWER_* variable as read.
"""

import os
import re
import shutil
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MAN = os.path.join(ROOT, "man", "refit.8")
CONFIG_C = os.path.join(ROOT, "src", "config.c")
CONFIG_YML = os.path.join(ROOT, "config", "refit.yml")
CONFIG_MD = os.path.join(ROOT, "docs", "configuration.md")
MIGRATING_MD = os.path.join(ROOT, "docs", "migrating-from-watchtower.md")
README = os.path.join(ROOT, "README.md")


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def need_groff():
    if not shutil.which("groff"):
        pytest.skip("groff not installed (Debian package groff-base)")


def render_man():
    """The manual page as plain text, on lines long enough not to be broken."""
    need_groff()
    p = subprocess.run(["groff", "-man", "-Tutf8", "-rLL=2000n", "-P-cbou", MAN],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    # groff may print U+2212 for \- and U+2010 for hyphens
    return p.stdout.replace("\u2212", "-").replace("\u2010", "-")


def sections(text):
    """{SECTION NAME: its text} of a rendered manual page."""
    out, name = {}, None
    for line in text.splitlines():
        if re.match(r"^[A-Z][A-Z ]+$", line):
            name = line.strip()
            out[name] = []
        elif name:
            out[name].append(line)
    return {k: "\n".join(v) for k, v in out.items()}


def config_keys():
    """Names in src/config.c's `keys[]` table."""
    src = read(CONFIG_C)
    m = re.search(r"static const struct key keys\[\]\s*=\s*\{(.*?)\n\};", src, re.S)
    assert m, "key table not found in src/config.c"
    keys = re.findall(r'\{\s*"([a-z_.]+)"\s*,\s*K_', m.group(1))
    assert len(keys) >= 10, keys
    return keys


WATCHTOWER_C = os.path.join(ROOT, "src", "watchtower.c")
SETTING = re.compile(r'\{ (?:NULL|"([a-z-]+)"), (?:0|\'.\'), (?:NULL|"([A-Z0-9_]+)"), WT_\w+, (A_\w+), '
                     r'(?:NULL|"([a-z_.]+)"), "')


def watchtower_settings():
    """(flag, variable, action, key) of every entry of src/watchtower.c's settings table."""
    found = SETTING.findall(read(WATCHTOWER_C))
    assert len(found) > 60, "settings table not found in src/watchtower.c"
    return found


def watchtower_env_table():
    """(variable, key) pairs of the settings that set a configuration key."""
    return [(env, key) for _, env, act, key in watchtower_settings() if env and act == "A_KEY"]


def watchtower_names_in_code():
    return sorted({env for _, env, _, _ in watchtower_settings() if env.startswith("WATCHTOWER_")})


def help_output(refit_bin):
    p = subprocess.run([refit_bin, "--help"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return p.stdout


def help_commands(refit_bin):
    """Command names from the `Commands:` block of `refit --help`."""
    text = help_output(refit_bin)
    block = re.search(r"^Commands:\n(.*?)\n\n", text, re.S | re.M)
    assert block, text
    cmds = []
    for line in block.group(1).splitlines():
        words = line.split()
        if words and words[0] == "refit":
            words = words[1:]
        if words:
            cmds.append(words[0])
    assert len(cmds) >= 5, text
    return cmds


def test_man_page_renders_without_warnings():
    need_groff()
    p = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", MAN],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and not p.stderr.strip(), p.stderr
    if shutil.which("man"):
        p = subprocess.run(["man", "-l", MAN], capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, MANPAGER="cat", PAGER="cat", MANWIDTH="80"))
        assert p.returncode == 0 and "REFIT(8)" in p.stdout, p.stderr


def test_man_page_has_every_section():
    sec = sections(render_man())
    for name in ("NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "OPTIONS", "LABELS", "CONFIGURATION",
                 "ENVIRONMENT", "FILES", "EXIT STATUS", "SIGNALS", "EXAMPLES", "SEE ALSO"):
        assert name in sec, "section %s missing; have %s" % (name, sorted(sec))


def test_man_page_lists_every_command(refit_bin):
    sec = sections(render_man())
    for cmd in help_commands(refit_bin):
        assert re.search(r"\b%s\b" % re.escape(cmd), sec["SYNOPSIS"]), "%s not in SYNOPSIS" % cmd
        assert re.search(r"^\s+%s\b" % re.escape(cmd), sec["COMMANDS"], re.M), \
            "%s has no entry in COMMANDS" % cmd


def test_man_page_lists_every_option(refit_bin):
    sec = sections(render_man())
    opts = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", help_output(refit_bin)))
    for cmd in help_commands(refit_bin):
        # watchtower's flags are Watchtower's: test_every_watchtower_flag_is_in_the_migration_doc
        if cmd not in ("help", "watchtower"):
            p = subprocess.run([refit_bin, cmd, "--help"], capture_output=True, text=True, timeout=30)
            assert p.returncode == 0, p.stderr
            opts |= set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", p.stdout))
    assert "--config" in opts and "--json" in opts, opts
    for opt in sorted(opts):
        assert re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(opt), sec["OPTIONS"]), "%s not in OPTIONS" % opt
        assert re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(opt), sec["SYNOPSIS"]), "%s not in SYNOPSIS" % opt


def test_man_page_exit_status_matches_help(refit_bin):
    sec = sections(render_man())
    codes = re.findall(r"(\d) [a-z]", re.search(r"Exit codes:(.*)", help_output(refit_bin), re.S).group(1))
    assert codes == ["0", "1", "2", "3"], codes
    tags = re.findall(r"^\s+(\d)(?:\s|$)", sec["EXIT STATUS"], re.M)
    assert tags == codes, sec["EXIT STATUS"]


def test_every_config_key_documented():
    doc = read(CONFIG_MD)
    man = render_man() if shutil.which("groff") else None
    for key in config_keys():
        assert "`%s`" % key in doc, "key %s is not in docs/configuration.md" % key
        if man is not None:
            assert re.search(r"(?<![\w.])%s(?![\w])" % re.escape(key), sections(man)["CONFIGURATION"]), \
                "key %s is not in the manual page's CONFIGURATION" % key


def uncommented_example(tmp_path):
    """config/refit.yml with its commented keys and list items uncommented,
    the files it names made under tmp_path and named there instead."""
    lines = []
    for line in read(CONFIG_YML).splitlines():
        m = re.match(r"^# ( *)([a-z][a-z0-9_.-]*:.*|- .*)$", line)
        if m:
            lines.append(m.group(1) + m.group(2))
    text = "\n".join(lines) + "\n"
    for path in sorted(set(re.findall(r"/etc/refit/[\w.-]+", text))):
        local = tmp_path / os.path.basename(path)
        local.write_text("0123456789abcdef0123456789abcdef\n" if "token" in path else "")
        text = text.replace(path, str(local))
    return text.replace("/var/lib/refit", str(tmp_path / "state"))


def test_every_config_key_is_in_the_example_configuration():
    """The package's conffile has every key, commented, under its section."""
    text = "\n".join(line for line in read(CONFIG_YML).splitlines() if line.startswith("#"))
    for key in config_keys():
        section, _, name = key.rpartition(".")
        if section:
            m = re.search(r"^# %s:.*\n((?:#  +.*\n?)+)" % re.escape(section), text + "\n", re.M)
            assert m, "section %s: is not in config/refit.yml" % section
            body = m.group(1)
        else:
            body = text
        assert re.search(r"^# %s%s:" % ("  " if section else "", re.escape(name)), body, re.M), \
            "key %s is not commented in config/refit.yml" % key


def test_the_example_configuration_uncommented_is_accepted(refit_bin, tmp_path):
    conf = tmp_path / "refit.yml"
    conf.write_text(uncommented_example(tmp_path))
    # an engine that is not there: a configuration refit accepts gets as far
    # as the engine (exit 3); a refused one exits 2 first
    p = subprocess.run([refit_bin, "--config", str(conf), "--docker-host", "unix://%s" % (tmp_path / "none"),
                        "status"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 3, (p.returncode, p.stderr, conf.read_text())


def migration_rows():
    """{WATCHTOWER_NAME: (first cell, second cell)} from the doc's tables."""
    rows = {}
    for line in read(MIGRATING_MD).splitlines():
        if not line.startswith("| "):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2:
            continue
        for name in re.findall(r"`(WATCHTOWER_[A-Z0-9_]+)`", cells[0]):
            rows.setdefault(name, (cells[0], cells[1]))
    return rows


def test_every_watchtower_variable_in_the_code_is_in_the_migration_doc():
    doc = read(MIGRATING_MD)
    rows = migration_rows()
    names = watchtower_names_in_code()
    assert "WATCHTOWER_POLL_INTERVAL" in names, names
    for name in names:
        assert name in doc, "%s (read by src/watchtower.c) is not in docs/migrating-from-watchtower.md" % name
        assert name in rows, "%s has no row in the variable table" % name
    for _, env, act, _ in watchtower_settings():
        if env.startswith("WATCHTOWER_"):
            want = "**warning**" if act == "A_WARN" else "**read**"
            assert rows[env][1].startswith(want), "%s: the code says %s, the doc says: %s" % (
                env, act, rows[env][1])


def test_every_watchtower_flag_is_in_the_migration_doc():
    doc = read(MIGRATING_MD)
    for flag, _, act, _ in watchtower_settings():
        if flag and act not in ("A_HELP", "A_CONFIG") and flag not in ("state-dir", "docker-host"):
            assert "`--%s`" % flag in doc, "--%s is not in docs/migrating-from-watchtower.md" % flag


def test_migration_doc_marks_as_read_only_what_the_code_reads():
    names = set(watchtower_names_in_code())
    for name, (_, refit) in migration_rows().items():
        if refit.startswith("**read**"):
            assert name in names, "the doc says refit reads %s, src/watchtower.c does not" % name


def test_migration_doc_names_the_key_each_variable_sets():
    rows = migration_rows()
    for var, key in watchtower_env_table():
        if var.startswith("WATCHTOWER_"):
            assert var in rows, "%s has no row in the variable table" % var
            assert "`%s`" % key in rows[var][1], "%s sets %s; the doc says: %s" % (var, key, rows[var][1])


def test_the_man_page_points_at_the_watchtower_table():
    # the table of every flag and variable is `refit watchtower --help` and the migration doc
    sec = sections(render_man())
    assert "refit watchtower --help" in sec["ENVIRONMENT"], sec["ENVIRONMENT"]
    assert "migrating-from-watchtower" in sec["ENVIRONMENT"], sec["ENVIRONMENT"]


def test_readme_links_the_migration_doc():
    assert "docs/migrating-from-watchtower.md" in read(README)
