#!/usr/bin/env python3
"""Which tables and indexes a SQLite workload's commits write, from a copy of its WAL.

Usage: wal-pages.py DB_COPY WAL_COPY [COMMITS]

Copy `bench.db` and `bench.db-wal` while a load runs (for example `kopilka bench --db
sqlite:/tmp/w/bench.db`, then `cp` both files mid-run), then run this on the copies. It
reads each frame's page number from the WAL (frames of the current WAL only, up to the
last commit), names each page's owner with SQLite's `dbstat` table (pages past the
copied database's end are "new pages": rows appended since the last checkpoint), and
prints frames per commit by owner over the last COMMITS commits (default 60).
docs/benchmarks-history.md, "Which pages a batch changes", shows its output.
"""
import collections
import sqlite3
import struct
import sys


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    db_path, wal_path = sys.argv[1], sys.argv[2]
    last = int(sys.argv[3]) if len(sys.argv) > 3 else 60
    wal = open(wal_path, "rb").read()
    if len(wal) < 32:
        sys.exit("the WAL is empty")
    _magic, _version, page_size, _ckpt, salt1, salt2, _c1, _c2 = struct.unpack(">IIIIIIII", wal[:32])
    off, frames, commits = 32, [], []
    while off + 24 + page_size <= len(wal):
        page, commit_size, s1, s2 = struct.unpack(">IIII", wal[off:off + 16])
        if (s1, s2) != (salt1, salt2):
            break
        frames.append(page)
        if commit_size:
            commits.append(frames)
            frames = []
        off += 24 + page_size
    if not commits:
        sys.exit("no commit in the WAL")
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    owner = {page: name for name, page in db.execute("SELECT name, pageno FROM dbstat")}
    window = commits[-last:]
    count = collections.Counter(owner.get(p, "new pages") for c in window for p in c)
    n = len(window)
    print(f"page size {page_size}; {len(commits)} commits in the WAL, the last {n} counted")
    for name, frames_of in count.most_common():
        print(f"{frames_of / n:8.1f}  {name}")
    print(f"{sum(len(c) for c in window) / n:8.1f}  frames per commit")


if __name__ == "__main__":
    main()
