#!/usr/bin/env python3
"""Seeds a stentor database (SQLite file or PostgreSQL URL) for bench/social.sh.

Accounts get sessions whose tokens are `bench-ID` (the server stores their SHA-256), so the
load generator can act as each of them without signing in. The same SQL runs on both
backends: `series(a, b)` and `sha(x)` are spelled for each.

  social_seed.py DB accounts FIRST COUNT
  social_seed.py DB timeline READER FIRST_AUTHOR AUTHORS POSTS_EACH FOLLOWED LARGE
  social_seed.py DB followers HOST FIRST COUNT LISTENED
  social_seed.py DB follows FIRST_USER USERS FIRST_HOST HOSTS EACH
"""
import hashlib
import sqlite3
import subprocess
import sys
import time

db, what, args = sys.argv[1], sys.argv[2], [int(a) for a in sys.argv[3:]]
pg = db.startswith("postgres")


def series(a, b):
    if pg:
        return f"generate_series({a}, {b}) AS g(i)"
    return f"(WITH RECURSIVE s(i) AS (SELECT {a} UNION ALL SELECT i + 1 FROM s WHERE i < {b}) SELECT i FROM s) AS g"


def sha(x):
    return f"encode(sha256(convert_to({x}, 'UTF8')), 'hex')" if pg else f"sha256hex({x})"


def run(statements):
    t0 = time.time()
    if pg:
        script = "BEGIN;\n" + ";\n".join(statements) + ";\nCOMMIT;\n"
        subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", db], input=script.encode(), check=True)
    else:
        conn = sqlite3.connect(db.removeprefix("sqlite://"))
        conn.create_function("sha256hex", 1, lambda s: hashlib.sha256(s.encode()).hexdigest(), deterministic=True)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        for s in statements:
            conn.execute(s)
        conn.commit()
        conn.close()
    print(f"seeded {what} in {time.time() - t0:.1f} s", file=sys.stderr)


def accounts(first, count):
    last = first + count - 1
    token = sha("'bench-' || i")
    return [
        f"INSERT INTO users (id, handle, password_hash, created_at) SELECT i, 'b' || i, '-', 0 FROM {series(first, last)}",
        f"INSERT INTO sessions (token_hash, user_id, expires_at) SELECT {token}, i, 4102444800 FROM {series(first, last)}",
    ] + ([f"SELECT setval(pg_get_serial_sequence('users', 'id'), (SELECT max(id) FROM users))"] if pg else [])


if what == "accounts":
    first, count = args
    run(accounts(first, count))
elif what == "timeline":
    reader, first, authors, each, followed, large = args
    last = first + authors - 1
    posts = authors * each
    stmts = accounts(first, authors)
    # Posts: `each` per author, interleaved in time (id order) as if written over days.
    stmts.append(
        f"INSERT INTO posts (author_id, text, created_at) SELECT {first} + (i % {authors}), "
        f"'post number ' || i, 1700000000 + i FROM {series(0, posts - 1)}"
    )
    stmts.append(
        f"INSERT INTO user_stats (user_id, posts) SELECT i, {each} FROM {series(first, last)}"
    )
    # The reader follows the first `followed` authors; the first `large` of them are large
    # (merged at read time), the rest were fanned out into the reader's timeline.
    stmts.append(
        f"INSERT INTO follows (follower_id, followee_id, created_at) SELECT {reader}, i, 0 FROM {series(first, first + followed - 1)}"
    )
    stmts.append(
        f"UPDATE user_stats SET followers = CASE WHEN user_id < {first + large} THEN 50000 ELSE 1 END "
        f"WHERE user_id BETWEEN {first} AND {first + followed - 1}"
    )
    stmts.append(
        f"INSERT INTO timeline (user_id, post_id) SELECT {reader}, p.id FROM posts p "
        f"WHERE p.author_id BETWEEN {first + large} AND {first + followed - 1}"
    )
    stmts.append(
        f"INSERT INTO user_stats (user_id, following) VALUES ({reader}, {followed}) "
        f"ON CONFLICT (user_id) DO UPDATE SET following = excluded.following"
    )
    if pg:
        stmts.append("ANALYZE")
    run(stmts)
elif what == "followers":
    host, first, count, listened = args
    last = first + count - 1
    stmts = [
        f"INSERT INTO users (id, handle, password_hash, created_at) SELECT i, 'f' || i, '-', 0 FROM {series(first, last)}",
        f"INSERT INTO follows (follower_id, followee_id, created_at) SELECT i, {host}, 0 FROM {series(first, last)}",
        f"INSERT INTO user_stats (user_id, followers) VALUES ({host}, {count}) "
        f"ON CONFLICT (user_id) DO UPDATE SET followers = excluded.followers",
        f"INSERT INTO listens (user_id, host_id, last_at) SELECT i, {host}, 1700000000 + i FROM {series(first, first + listened - 1)}",
    ] + ([f"SELECT setval(pg_get_serial_sequence('users', 'id'), (SELECT max(id) FROM users))", "ANALYZE"] if pg else [])
    run(stmts)
elif what == "follows":
    first, users, host0, hosts, each = args
    last = first + users - 1
    stmts = accounts(host0, hosts) + accounts(first, 1)
    for k in range(each):
        stmts.append(
            f"INSERT INTO follows (follower_id, followee_id, created_at) SELECT i, {host0} + ((i * 7 + {k * 131}) % {hosts}), 0 "
            f"FROM {series(first, last)} WHERE true ON CONFLICT DO NOTHING"
        )
    stmts.append(
        f"INSERT INTO user_stats (user_id, followers) SELECT followee_id, count(*) FROM follows "
        f"WHERE followee_id BETWEEN {host0} AND {host0 + hosts - 1} GROUP BY followee_id "
        f"ON CONFLICT (user_id) DO UPDATE SET followers = excluded.followers"
    )
    if pg:
        stmts.append("ANALYZE")
    run(stmts)
else:
    sys.exit(f"unknown: {what}")
