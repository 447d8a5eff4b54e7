"""``medops monitor traffic``: what was recorded, as a table and as JSON (``n_exchanges``, ``exchanges``)."""

from __future__ import annotations

from datetime import timedelta

from conftest import REPO
from medops.store.exchanges import insert_exchanges
from medops.store.repository import Store
from medops.store.schema import utcnow


def test_traffic_json_counts_the_window_and_lists_the_newest(cli):
    store = Store.open(str(cli.db))
    now = utcnow()
    rows = [
        {
            "source": "gateway",
            "route": "/v1/chat/completions",
            "model": "m",
            "status": 200,
            "latency_s": 0.1 * i,
            "created_at": now - timedelta(minutes=i),
            "department": "ER",
            "arm": "candidate" if i % 2 else "primary",
        }
        for i in range(5)
    ]
    rows.append(
        {"source": "ingest", "route": "/v1/chat/completions", "model": "old", "created_at": now - timedelta(hours=3)}
    )
    insert_exchanges(store, rows)

    document = cli.run("monitor", "traffic", "--json", check=True).json()
    assert document["n_exchanges"] == 5
    assert [e["latency_s"] for e in document["exchanges"]] == [0.0, 0.1, 0.2, 0.30000000000000004, 0.4]
    assert document["exchanges"][1]["arm"] == "candidate" and document["exchanges"][0]["department"] == "ER"

    wider = cli.run("monitor", "traffic", "--since", "4h", "--json", "--limit", "2", check=True).json()
    assert wider["n_exchanges"] == 6 and len(wider["exchanges"]) == 2

    table = cli.run("monitor", "traffic", "--since", "30s", check=True)
    assert "1 exchanges" in table.stdout and "ER" in table.stdout

    bad = cli.run("monitor", "traffic", "--since", "yesterday")
    assert bad.returncode == 2 and "--since" in bad.stderr


def test_traffic_and_check_say_which_arms_they_count_and_the_docs_policy_runs_without_webhooks(cli):
    store = Store.open(str(cli.db))
    now = utcnow()
    arms = ["primary"] * 3 + ["shadow"] * 2 + ["candidate"]
    insert_exchanges(
        store,
        [
            {
                "source": "gateway",
                "route": "/v1/chat/completions",
                "model": "m",
                "status": 200,
                "arm": arm,
                "created_at": now - timedelta(minutes=i + 1),
            }
            for i, arm in enumerate(arms)
        ],
    )
    traffic = cli.run("monitor", "traffic", check=True).stdout
    assert "6 exchanges of every arm (candidate 1, primary 3, shadow 2)" in traffic
    document = cli.run("monitor", "traffic", "--json", check=True).json()
    assert document["arms"] == "all" and document["n_by_arm"] == {"candidate": 1, "primary": 3, "shadow": 2}

    env = {"MEDOPS_ALERT_WEBHOOK": "", "MEDOPS_SLACK_WEBHOOK": ""}
    checked = cli.run("monitor", "check", "--policy", str(REPO / "docs" / "monitor.yaml"), env=env)
    assert checked.returncode in (0, 1), checked.stderr  # alerts or none, never a usage error
    first = checked.stdout.splitlines()[0]
    assert first.startswith("exchange rules count arm primary") and "`monitor traffic` counts every arm" in first
    assert "3 exchanges in the last 1h" in checked.stdout  # the primary arm's, not all 6
    as_json = cli.run("monitor", "check", "--policy", str(REPO / "docs" / "monitor.yaml"), "--json", env=env)
    assert as_json.json()["arms"].startswith("arm primary")
