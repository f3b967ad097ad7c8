#!/usr/bin/env python3
"""Real SQLite databases for sealbak's tests and demo (Python's sqlite3 module, the system library).

  make DB ROWS [--wal] [--blob BYTES]   notes/tags/events tables, an FTS5 table, user_version 7, application_id
  write DB STOP                         inserts rows into events, one transaction each, until the file STOP exists;
                                        prints "ready" after the first 50, and at the end how many it wrote
  hold DB read|write                    keeps DB open (write: inside BEGIN IMMEDIATE); prints "holding" and waits
                                        for standard input to close
  wal DB ROWS                           adds ROWS notes in WAL mode and exits without a checkpoint: DB-wal keeps them
  state DB                              the content of every table (from a private copy of DB and DB-wal)
  corrupt DB                            overwrites the middle of a table page (the header stays valid)
  count DB TABLE                        count(*)
"""
import hashlib
import os
import shutil
import sqlite3
import sys
import tempfile


def make(db, rows, wal=False, blob=0):
    os.makedirs(os.path.dirname(os.path.abspath(db)), exist_ok=True)
    c = sqlite3.connect(db)
    if wal:
        c.execute("PRAGMA journal_mode=WAL")
    c.executescript("""
        CREATE TABLE notes(id INTEGER PRIMARY KEY, title TEXT NOT NULL, body TEXT, data BLOB);
        CREATE TABLE tags(note_id INTEGER REFERENCES notes(id), tag TEXT, PRIMARY KEY(note_id, tag)) WITHOUT ROWID;
        CREATE TABLE events(id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT, what TEXT);
        CREATE VIRTUAL TABLE notes_fts USING fts5(title, body);
        CREATE INDEX notes_title ON notes(title);
        PRAGMA user_version = 7;
        PRAGMA application_id = 1397899596;
    """)
    c.execute('CREATE TABLE "odd ""name"""(x)')
    payload = os.urandom(blob) if blob else None
    for i in range(rows):
        c.execute("INSERT INTO notes(title, body, data) VALUES (?, ?, ?)", (f"note {i} ✓", "body " * (i % 7), payload))
        c.execute("INSERT INTO tags VALUES (?, ?)", (i + 1, ["a", "b", "c"][i % 3]))
        c.execute("INSERT INTO notes_fts(title, body) VALUES (?, ?)", (f"note {i}", "body"))
    c.execute("INSERT INTO \"odd \"\"name\"\"\" VALUES (1)")
    c.commit()
    c.close()


def write(db, stop):
    c = sqlite3.connect(db, timeout=30, isolation_level=None)
    n = 0
    while not os.path.exists(stop):
        c.execute("BEGIN IMMEDIATE")
        c.execute("INSERT INTO events(at, what) VALUES (datetime('now'), ?)", (f"event {n}",))
        c.execute("COMMIT")
        n += 1
        if n == 50:
            print("ready", flush=True)
    print(n)


def hold(db, mode):
    c = sqlite3.connect(db, isolation_level=None)
    c.execute("SELECT count(*) FROM sqlite_schema").fetchall()
    if mode == "write":
        c.execute("BEGIN IMMEDIATE")
    print("holding", flush=True)
    sys.stdin.read()


def wal(db, rows):
    c = sqlite3.connect(db, isolation_level=None)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("PRAGMA wal_autocheckpoint=0")
    for i in range(rows):
        c.execute("INSERT INTO notes(title, body) VALUES (?, ?)", (f"after the backup {i}", "only in the -wal"))
    sys.stdout.flush()
    os._exit(0)  # no close: no checkpoint, DB-wal keeps the rows


def state(db):
    if not os.path.exists(db):
        print("absent")
        return
    d = tempfile.mkdtemp()
    try:
        shutil.copy(db, d + "/x.db")
        if os.path.exists(db + "-wal"):
            shutil.copy(db + "-wal", d + "/x.db-wal")
        c = sqlite3.connect(d + "/x.db")
        print("integrity", c.execute("PRAGMA integrity_check").fetchone()[0])
        print("user_version", c.execute("PRAGMA user_version").fetchone()[0])
        for (name,) in c.execute("SELECT name FROM sqlite_schema WHERE type='table' ORDER BY name").fetchall():
            q = '"' + name.replace('"', '""') + '"'
            rows = sorted(repr(r) for r in c.execute(f"SELECT * FROM {q}").fetchall())
            print(name, len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16])
        c.close()
    finally:
        shutil.rmtree(d)


def corrupt(db):
    c = sqlite3.connect(db)
    page = c.execute("PRAGMA page_size").fetchone()[0]
    root = c.execute("SELECT rootpage FROM sqlite_schema WHERE name='notes'").fetchone()[0]
    c.close()
    with open(db, "r+b") as f:
        # A table b-tree page whose cell pointers and cell content are garbage.
        f.seek((root - 1) * page + 8)
        f.write(b"\xff\x13" * (page // 4))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "make":
        blob = int(args[args.index("--blob") + 1]) if "--blob" in args else 0
        make(args[0], int(args[1]), wal="--wal" in args, blob=blob)
    elif cmd == "write":
        write(*args)
    elif cmd == "hold":
        hold(*args)
    elif cmd == "wal":
        wal(args[0], int(args[1]))
    elif cmd == "state":
        state(args[0])
    elif cmd == "corrupt":
        corrupt(args[0])
    elif cmd == "count":
        c = sqlite3.connect(args[0])
        print(c.execute(f'SELECT count(*) FROM "{args[1]}"').fetchone()[0])
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
