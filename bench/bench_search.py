"""Search over 100,000 messages in a real user database (SQLCipher, the client's
schema, pragmas and migrations; the FTS5 trigram index kept by its triggers).

Fills 100,000 texts — 80 % in 1:1 chats with 50 contacts, 20 % in 10 groups; 85 %
English-like sentences from a 5,000-word Zipf vocabulary, 15 % Chinese sentences
from 600 common characters — through the store functions the client uses (so the
index triggers run), in batches of 100 per transaction, and reports the insert rate
with and without the search index. Then times each kind of query (the client's
path: parse_query + search_messages, limit 50) --runs times, p50 and p99:
a common word, a rare word, a prefix, two words, Chinese of 2 characters (a LIKE
scan) and of 4 (trigram), one chat, and a 2-letter string found nowhere (the worst
case: a full scan).

    python bench/bench_search.py [--n 100000] [--runs 50]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from boxless.client import group_store as gs
from boxless.client import search_store as ss
from boxless.client import store as db
from boxless.client.search_query import parse_query
from boxless.crypto.olm_sessions import migration_files as crypto_migrations
from boxless.storage.userdb import KdfParams, UserDB, create_user_db, migration_files

CONTACTS = 50
GROUPS = 10
BATCH = 100
HANZI = (
    "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家"
    "学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经"
    "头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己话儿者"
    "向情部正名定女问力机给等几很业最间新什打便位因重被走电四第门相次东政海口使教西再平真听世气"
    "信北少关并内加化由却代军产入先山五太水万市眼体别处总才场师书比住员九笑性通目华报立马命张活"
    "难神数件安表原车白应路期叫死常提感金何更反合放做系计或司利受光王果亲界及今京务制解各任至清"
    "物台象记边共风战干接它许八特觉望直服毛林题建南度统色字请交爱让认算论百吃义科怎元社术结六功"
    "指思非流每青管夫连远资队跟带花快条院变联言权往展该领传近留红治决周保达办运武半候七必城父强"
    "步完革深区即求品士转量空甚众技轻程告江语英基派满式李息写呢识极令黄德收脸钱党倒未持取设始版"
    "双历越史商千片容研像找友孩站广改议形委早房音火际则首单据导影失拿网香似斯专石若兵弟谁校读志"
)


def words(n: int, rng: random.Random) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    out: set[str] = set()
    while len(out) < n:
        out.add("".join(rng.choice(letters) for _ in range(rng.randint(3, 9))))
    return sorted(out)


def open_db(path: Path, with_search: bool) -> UserDB:
    u = create_user_db(path, "bench search passphrase", KdfParams(1024, 1, 1))
    u.migrate("crypto", crypto_migrations())
    u.migrate("client", db.client_migrations())
    u.migrate("group_actions", migration_files("boxless.client", "migrations_group_actions"))
    if with_search:
        u.migrate("search", migration_files("boxless.client", "migrations_search"))
    return u


def fill(u: UserDB, n: int, seed: int) -> tuple[float, list[str], bytes, list[str]]:
    """Insert ``n`` texts; return (texts per second, the vocabulary by rank, a contact,
    the texts)."""
    rng = random.Random(seed)
    vocab = words(5000, rng)
    weights = [1 / (r + 1) for r in range(len(vocab))]
    contacts = [rng.randbytes(32) for _ in range(CONTACTS)]
    groups = [rng.randbytes(32) for _ in range(GROUPS)]
    with u.transaction() as cur:
        for k in contacts:
            cur.execute(
                "INSERT INTO client_contacts (identity_key, display_name, bundle, device_key,"
                " state, conversation_topic, added_at_ms, updated_at_ms)"
                " VALUES (?, 'c', x'', x'', 'accepted', 't', 0, 0)",
                (k,),
            )
        for g in groups:
            cur.execute(
                "INSERT INTO client_groups (group_id, sds_state, joined_at_ms) VALUES (?, '{}', 0)",
                (g,),
            )
    texts = []
    for _ in range(n):
        if rng.random() < 0.15:
            texts.append("".join(rng.choice(HANZI) for _ in range(rng.randint(6, 30))))
        else:
            texts.append(" ".join(rng.choices(vocab, weights, k=rng.randint(3, 25))))
    start = time.perf_counter()
    for base in range(0, n, BATCH):
        with u.transaction() as cur:
            for i in range(base, min(base + BATCH, n)):
                sent = 1_700_000_000_000 + i * 1000
                if i % 5 == 4:
                    gs.add_message(
                        cur,
                        gs.GroupMessageRow(
                            f"{i:064x}",
                            groups[i % GROUPS],
                            contacts[i % CONTACTS],
                            False,
                            i,
                            sent,
                            sent,
                            texts[i],
                            "received",
                        ),
                    )
                else:
                    db.add_message(
                        cur,
                        db.MessageRow(
                            i.to_bytes(16, "big"),
                            contacts[i % CONTACTS],
                            False,
                            i,
                            sent,
                            sent,
                            texts[i],
                            None,
                            False,
                            False,
                            "received",
                            {},
                        ),
                    )
    return n / (time.perf_counter() - start), vocab, contacts[0], texts


def timed(fn: Callable[[], int], runs: int) -> tuple[float, float, int]:
    fn()  # warm the page cache
    samples = []
    rows = 0
    for _ in range(runs):
        t = time.perf_counter()
        rows = fn()
        samples.append((time.perf_counter() - t) * 1000)
    samples.sort()
    return (
        statistics.median(samples),
        samples[min(len(samples) - 1, int(len(samples) * 0.99))],
        rows,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=50)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        plain = open_db(Path(tmp) / "plain.db", with_search=False)
        rate_plain, *_ = fill(plain, args.n, 1)
        plain.close()
        u = open_db(Path(tmp) / "user.db", with_search=True)
        rate, vocab, chat, texts = fill(u, args.n, 1)
        size = sum(f.stat().st_size for f in Path(tmp).glob("user.db*")) / 2**20
        print(
            f"{args.n} texts: insert {rate_plain:,.0f}/s without the index, {rate:,.0f}/s with"
            f" it; database {size:.0f} MiB (with index)"
        )
        rare = vocab[-1]
        zh = next(t for t in texts if not t.isascii() and len(t) > 10)
        cases = [
            ("common word", vocab[0], None),
            ("rare word", rare, None),
            ("prefix (3 letters)", vocab[1][:3], None),
            ("two words", f"{vocab[2]} {vocab[3]}", None),
            ("Chinese, 2 characters", zh[3:5], None),
            ("Chinese, 4 characters", zh[5:9], None),
            ("common word, one chat", vocab[0], chat),
            ("2 characters found nowhere", "q9", None),
            ("1 Chinese character", zh[0], None),
            ("1 letter, one chat (LIKE walk)", "q", chat),
        ]
        print(f"{'query':28} {'text':>22} {'p50 ms':>8} {'p99 ms':>8} {'rows':>5}")
        for label, text, in_chat in cases:
            q = parse_query(text)

            def run(q=q, in_chat=in_chat) -> int:
                with u.transaction() as cur:
                    kind = ss.DIRECT if in_chat else None
                    return len(ss.search_messages(cur, q, 50, kind, in_chat))

            p50, p99, rows = timed(run, args.runs)
            print(f"{label:28} {text!r:>22} {p50:8.2f} {p99:8.2f} {rows:5}")
        u.close()


if __name__ == "__main__":
    main()
