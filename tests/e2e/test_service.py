"""The shipped systemd unit passes `systemd-analyze verify`."""

import os
import re
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
UNIT = os.path.join(HERE, "..", "..", "systemd", "refit.service")


def test_unit_verifies(refit_bin, tmp_path):
    # The unit points at the installed binary; verify it against the one under test.
    with open(UNIT) as f:
        text = f.read()
    for directive in ("Type=notify", "WatchdogSec=", "Restart=on-failure", "StateDirectory=refit",
                      "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=", "PrivateTmp=yes",
                      "SupplementaryGroups=docker"):
        assert re.search(r"^%s" % re.escape(directive), text, re.M), "%s missing from the unit" % directive
    unit = tmp_path / "refit.service"
    unit.write_text(text.replace("/usr/local/bin/refit", refit_bin))
    p = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    complaints = [line for line in (p.stdout + p.stderr).splitlines() if "refit.service" in line]
    assert p.returncode == 0 and not complaints, p.stdout + p.stderr
