"""What survives: a kill -9 mid-stream, an upgrade from schema v1, and a
database from the future (refused, untouched). Plus: the migrated schema is
the one schema.py describes."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from pathlib import Path

from tests.rpc.shared import private_wizd
from tests.support.daemon import Conn
from wizd.store import schema
from wizd.store.migrations import LATEST, migrate


def all_messages(c: Conn, conversation_id: str) -> list[dict]:
    out: list[dict] = []
    while True:
        page = c.call("message.list", conversation_id=conversation_id,
                      after_seq=out[-1]["seq"] if out else 0, limit=1000)["messages"]
        if not page:
            return out
        out.extend(page)


def test_kill_9_mid_stream_loses_no_acknowledged_message(tmp_path: Path) -> None:
    w = private_wizd(tmp_path / "w")
    try:
        w.start()
        with w.connect() as c:
            project = c.call("project.create", name="p")
            conversation = c.call("channel.create", project_id=project["id"], name="c")["id"]
        acked: dict[str, dict] = {}
        with w.connect() as c:
            def pump() -> None:
                try:
                    for i in range(5000):
                        c.send({"jsonrpc": "2.0", "id": i, "method": "message.send", "params": {
                            "conversation_id": conversation, "content": f"msg {i}"}})
                except OSError:
                    pass  # the daemon died under us: expected

            sender = threading.Thread(target=pump)
            sender.start()
            try:
                while len(acked) < 50:
                    resp = c.read()
                    acked[f"msg {resp['id']}"] = resp["result"]["message"]
                assert w.kill() == -9  # SIGKILL while requests are in flight
            finally:
                sender.join(20)
        w.start()
        with w.connect() as c:
            stored = {m["content"]: m for m in all_messages(c, conversation)}
        assert len(stored) < 5000, "the kill came too late to test anything"
        for content, message in acked.items():
            assert stored[content] == message  # same id, seq, everything
        seqs = [m["seq"] for m in stored.values()]
        assert len(seqs) == len(set(seqs))
        assert set(stored) <= {f"msg {i}" for i in range(5000)}
    finally:
        w.close()
    conn = sqlite3.connect(w.db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()


def _v1_database(path: Path) -> None:
    path.parent.mkdir(parents=True, mode=0o700)
    migrate(path, upto=1)
    conn = sqlite3.connect(path)
    with conn:
        conn.executescript("""
        INSERT INTO users VALUES ('u-human', 'alice', 'human', 1, 1, NULL);
        INSERT INTO users VALUES ('u-bot', 'bot', 'agent', 2, 2, NULL);
        INSERT INTO llm_providers VALUES ('p-1', 'legacy', 'openai', 'http://127.0.0.1:9/v1',
            'sk-legacy', NULL, 'gpt-old', 1, 3, 3, NULL);
        INSERT INTO agents VALUES ('a-1', 'u-bot', 'bot', 'helper', 'story', 'goal', 'prompt',
            'p-1', NULL, 0.7, NULL, NULL, 'inactive', 4, 4, NULL);
        INSERT INTO dm_conversations VALUES ('dm-1', 'old dm', 5, 5, NULL);
        INSERT INTO dm_participants VALUES ('dm-1', 'u-human', 5);
        INSERT INTO dm_participants VALUES ('dm-1', 'u-bot', 5);
        INSERT INTO projects VALUES ('pr-1', 'old project', NULL, 6, 6, NULL);
        INSERT INTO project_channels VALUES ('ch-1', 'pr-1', 'general', 6, 6, NULL);
        INSERT INTO messages (id, source_type, source_id, author_id, content, kind, reply_to,
            created_at, updated_at) VALUES
            ('m-1', 'dm', 'dm-1', 'u-human', 'hello bot', 'text', NULL, 7, 7),
            ('m-2', 'dm', 'dm-1', 'u-bot', 'hello alice', 'text', 'm-1', 8, 8),
            ('m-3', 'channel', 'ch-1', 'u-human', 'anyone?', 'text', NULL, 9, 9);
        INSERT INTO jobs (id, name, data, opts, priority, status, progress, attempts,
            max_attempts, created_at, updated_at, finished_on) VALUES
            ('j-1', 'response_generator', '{"agent_id": "a-1"}', '{}', 0, 'completed', 100, 1,
             3, 7, 8, 8);
        """)
    conn.close()


def test_schema_v1_database_is_upgraded_with_its_rows(tmp_path: Path) -> None:
    w = private_wizd(tmp_path / "w")
    _v1_database(w.db)
    try:
        w.start()
        with w.connect() as c:
            me = c.call("user.me")
            assert (me["id"], me["name"], me["created_at"]) == ("u-human", "alice", 1)
            assert [u["id"] for u in c.call("user.list")["users"]] == ["u-human", "u-bot"]
            # The old provider is kept (and stays default); no built-in one is added.
            [legacy] = c.call("provider.list")["providers"]
            assert (legacy["name"], legacy["is_default"], legacy["has_api_key"]) == (
                "legacy", True, True)
            bot = c.call("agent.get", name="bot")
            assert (bot["id"], bot["status"], bot["temperature"], bot["provider_id"]) == (
                "a-1", "inactive", 0.7, "p-1")
            dm = c.call("dm.get", id="dm-1")
            assert (dm["name"], dm["participants"]) == ("old dm", ["u-human", "u-bot"])
            history = c.call("message.list", conversation_id="dm-1")["messages"]
            assert [(m["seq"], m["id"], m["content"], m["reply_to"]) for m in history] == [
                (1, "m-1", "hello bot", None), (2, "m-2", "hello alice", "m-1")]
            assert c.call("channel.list", project_id="old project")["conversations"][0][
                "id"] == "ch-1"
            new = c.call("message.send", conversation_id="ch-1", content="after the upgrade")
            assert new["message"]["seq"] == 4  # seq continues after the old rows
        assert w.stop() == 0
    finally:
        w.close()
    assert w.db.with_name("wiz.db.before-v2").exists()  # the copy kept before upgrading
    conn = sqlite3.connect(w.db)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == LATEST
        job = conn.execute("SELECT status, data, run_at FROM jobs WHERE id = 'j-1'").fetchone()
        assert job == ("completed", '{"agent_id": "a-1"}', 0)
    finally:
        conn.close()


def test_database_from_a_newer_wizd_is_refused_untouched(tmp_path: Path) -> None:
    w = private_wizd(tmp_path / "w")
    w.db.parent.mkdir(parents=True, mode=0o700)
    conn = sqlite3.connect(w.db)
    with conn:
        conn.execute("CREATE TABLE future (x TEXT)")
        conn.execute("INSERT INTO future VALUES ('from the future')")
        conn.execute("PRAGMA user_version = 99")
    conn.close()
    before = hashlib.sha256(w.db.read_bytes()).hexdigest()
    w.start(wait=False)
    assert w.proc is not None
    code = w.proc.wait(timeout=30)
    w.proc = None
    assert code != 0
    log = w.log_text()
    assert "schema version 99" in log and "newer than this wizd" in log
    assert "Traceback" not in log
    assert hashlib.sha256(w.db.read_bytes()).hexdigest() == before
    assert not w.socket.exists()


def test_migrated_schema_matches_schema_py(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    assert migrate(path) == (0, LATEST)
    conn = sqlite3.connect(path)
    try:
        # FTS5 tables (and their shadow tables) are made by migrations only.
        tables = {r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'sqlite_sequence'"
            " AND name NOT LIKE 'messages\\_fts%' ESCAPE '\\'")}
        assert tables == set(schema.metadata.tables)
        for name, table in schema.metadata.tables.items():
            info = {r[1]: r for r in conn.execute(f"PRAGMA table_info({name})")}
            assert list(info) == [col.name for col in table.columns], name
            for col in table.columns:
                _cid, _name, _type, notnull, _default, pk = info[col.name]
                assert bool(pk) == col.primary_key, (name, col.name)
                if not col.primary_key:  # SQLite lets a non-integer key hold NULL; we never do
                    assert bool(notnull) == (not col.nullable), (name, col.name)
            fks = {(r[3], r[2], r[4]) for r in conn.execute(f"PRAGMA foreign_key_list({name})")}
            expected = {(fk.parent.name, fk.column.table.name, fk.column.name)
                        for fk in table.foreign_keys}
            assert fks == expected, name
        # Upgrading step by step gives the same schema as creating at once.
        stepwise = tmp_path / "stepwise.db"
        for version in range(1, LATEST + 1):
            migrate(stepwise, upto=version)
        other = sqlite3.connect(stepwise)
        try:
            query = "SELECT type, name, sql FROM sqlite_master"
            assert sorted(json.dumps(r) for r in other.execute(query)) == sorted(
                json.dumps(r) for r in conn.execute(query))
        finally:
            other.close()
    finally:
        conn.close()
