"""`hourglass config` writes the agent's config.json with the device's own checks (firmware/agent_config.py, run
here on CPython); the same module's load() is what the board runs at boot (test_agent.py: on the virtual board)."""
from __future__ import annotations

import json

from hourglass import cli


def test_config_written_and_checked(tmp_path, capsys):
    out = tmp_path / "config.json"
    assert cli.main(["config", "--out", str(out), "device=hg-7", "wifi.ssid=lab", "wifi.password=s3cret-pw",
                     'controller=["192.0.2.1",5683]', "poll=600", "--show"]) == 0
    cfg = json.loads(out.read_text())
    assert cfg == {"device": "hg-7", "wifi": {"ssid": "lab", "password": "s3cret-pw"},
                   "controller": ["192.0.2.1", 5683], "poll": 600}
    shown = capsys.readouterr().out
    assert "s3cret-pw" not in shown and '"password": "***"' in shown
    # members are added to what is there
    assert cli.main(["config", "--out", str(out), "log=debug"]) == 0
    assert json.loads(out.read_text())["device"] == "hg-7"


def test_config_refuses_what_the_board_would_refuse(tmp_path, capsys):
    out = tmp_path / "config.json"
    for bad, needle in (("poll=-1", "poll=-1 is not valid"), ("port=70000", "port=70000"),
                        ("colour=blue", "colour is unknown"), ("sensor.kind=laser", "sensor.kind='laser'"),
                        ("noequals", "is not KEY=VALUE")):
        assert cli.main(["config", "--out", str(out), bad]) == 1
        assert needle in capsys.readouterr().err, bad
    assert not out.exists()
    assert cli.main(["config", "device=x"]) == 1
    assert "--board BOARD or --out FILE" in capsys.readouterr().err
