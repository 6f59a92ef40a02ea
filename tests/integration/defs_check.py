#!/usr/bin/python3
# Definitions files for test_defs.sh and what a client sees of them, with pika.
#
# usage: defs_check.py write KIND FILE [PASSWORD]   a definitions file (KIND below)
#        defs_check.py same FILE1 FILE2              the same definitions, whatever the order
#        defs_check.py exported FILE                 an export holds what main's file defined
#        defs_check.py client HOST PORT USER PASSWORD CHECK [ARG]
# Each check prints "ok: WHAT" or "FAIL: WHAT: WHY" and exits 1 on a failure.
#
# KIND:
#   main     tachyon's own: a user with RabbitMQ's SHA-256 hash, vhosts "/" and "dev",
#            permissions, a topic permission, a policy (max-length 2 on ^lim\.), exchanges of
#            every type with an alternate exchange, queues with arguments, bindings (a headers
#            one with arguments), an MQTT ACL rule
#   tighter  the policy "lim" again with max-length 1, and "to-dead" that gives q.unrouted
#            max-length 1 and a dead-letter exchange it did not have (for a live import)
#   rabbit   what RabbitMQ 3.12's export looks like: rabbit_version, parameters,
#            global_parameters, a user whose password_hash is rabbit_password_hashing_sha256
#            with tags as a string, vhost metadata, queue "type" and x-queue-type
#   bad      a vhost and a queue that can be declared, then a queue with an argument of the
#            wrong type: the import stops there, naming it
# CHECK (pika BlockingConnection on vhost "/"):
#   route          main's exchanges route to main's queues (direct, topic, headers, the
#                  alternate exchange), each message read back with basic.get
#   maxlen N       5 messages published to orders/job: lim.jobs holds the last N
#   client_policy  a queue the client declares (lim.client) takes the policy: 4 in, 2 stay
#   count Q N      queue Q holds N messages ready
#   fill Q N       publish N messages to queue Q (default exchange)
#   login          this user logs in and opens a channel
#   refused        this user cannot log in (403)
#   rabbit         the rabbit file's exchange routes to its queue
import base64
import hashlib
import json
import os
import sys
import time

PASSWORD = "s3cret p@ss"


def out(ok, what, why=""):
    print(f"ok: {what}" if ok else f"FAIL: {what}: {why}", flush=True)
    if not ok:
        sys.exit(1)


def rabbit_hash(password, algo=hashlib.sha256):
    salt = os.urandom(4)
    return base64.b64encode(salt + algo(salt + password.encode()).digest()).decode()


def main_defs(password):
    return {
        "users": [
            {"name": "op", "password_hash": rabbit_hash(password),
             "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": ["administrator"]},
            {"name": "viewer", "password_hash": rabbit_hash("view", hashlib.sha512),
             "hashing_algorithm": "rabbit_password_hashing_sha512", "tags": "monitoring"},
        ],
        "vhosts": [{"name": "/"}, {"name": "dev"}],
        "permissions": [
            {"user": "op", "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"},
            {"user": "op", "vhost": "dev", "configure": ".*", "write": ".*", "read": ".*"},
            {"user": "viewer", "vhost": "/", "configure": "", "write": "", "read": "^q\\."},
        ],
        "topic_permissions": [
            {"user": "viewer", "vhost": "/", "exchange": "events", "write": "", "read": "^evt\\."},
        ],
        "policies": [
            {"vhost": "/", "name": "lim", "pattern": "^lim\\.", "apply-to": "queues",
             "definition": {"max-length": 2}, "priority": 1},
            {"vhost": "dev", "name": "ttl \"quoted\"", "pattern": ".*", "apply-to": "all",
             "definition": {"message-ttl": 60000}, "priority": 0},
        ],
        "exchanges": [
            {"name": "orders", "vhost": "/", "type": "direct", "durable": True,
             "auto_delete": False, "internal": False, "arguments": {}},
            {"name": "events", "vhost": "/", "type": "topic", "durable": True,
             "auto_delete": False, "internal": False,
             "arguments": {"alternate-exchange": "unrouted"}},
            {"name": "unrouted", "vhost": "/", "type": "fanout", "durable": True,
             "auto_delete": False, "internal": False, "arguments": {}},
            {"name": "hx", "vhost": "/", "type": "headers", "durable": False,
             "auto_delete": False, "internal": False, "arguments": {}},
            {"name": "dev.x", "vhost": "dev", "type": "fanout", "durable": True,
             "auto_delete": False, "internal": True, "arguments": {}},
        ],
        "queues": [
            {"name": "q.orders", "vhost": "/", "durable": True, "auto_delete": False,
             "arguments": {"x-message-ttl": 60000, "x-max-priority": 5}},
            {"name": "q.events", "vhost": "/", "durable": True, "auto_delete": False,
             "arguments": {"x-overflow": "reject-publish", "x-max-length": 100}},
            {"name": "q.unrouted", "vhost": "/", "durable": True, "auto_delete": False,
             "arguments": {}},
            {"name": "q.hx", "vhost": "/", "durable": False, "auto_delete": False,
             "arguments": {"x-single-active-consumer": True}},
            {"name": "lim.jobs", "vhost": "/", "durable": True, "auto_delete": False,
             "arguments": {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dead"}},
            {"name": "dead", "vhost": "/", "durable": True, "auto_delete": False,
             "arguments": {}},
            {"name": "weird \"name\"\\ é", "vhost": "/", "durable": True, "auto_delete": False,
             "arguments": {}},
            {"name": "dq", "vhost": "dev", "durable": True, "auto_delete": False,
             "arguments": {"x-expires": 3600000}},
        ],
        "bindings": [
            {"source": "orders", "vhost": "/", "destination": "q.orders",
             "destination_type": "queue", "routing_key": "new", "arguments": {}},
            {"source": "orders", "vhost": "/", "destination": "lim.jobs",
             "destination_type": "queue", "routing_key": "job", "arguments": {}},
            {"source": "events", "vhost": "/", "destination": "q.events",
             "destination_type": "queue", "routing_key": "evt.#", "arguments": {}},
            {"source": "unrouted", "vhost": "/", "destination": "q.unrouted",
             "destination_type": "queue", "routing_key": "", "arguments": {}},
            {"source": "hx", "vhost": "/", "destination": "q.hx", "destination_type": "queue",
             "routing_key": "", "arguments": {"x-match": "all", "kind": "pdf", "pages": 3}},
            {"source": "dev.x", "vhost": "dev", "destination": "dq",
             "destination_type": "queue", "routing_key": "", "arguments": {}},
            {"source": "orders", "vhost": "/", "destination": "events",
             "destination_type": "exchange", "routing_key": "evt", "arguments": {}},
        ],
        "mqtt_acls": [{"user": "", "pattern": "sensors/#", "access": "readwrite"}],
    }


def tighter_defs():
    return {
        "policies": [
            {"vhost": "/", "name": "lim", "pattern": "^lim\\.", "apply-to": "queues",
             "definition": {"max-length": 1}, "priority": 1},
            {"vhost": "/", "name": "to-dead", "pattern": "^q\\.unrouted$", "apply-to": "all",
             "definition": {"max-length": 1, "dead-letter-exchange": "",
                            "dead-letter-routing-key": "dead"}, "priority": 0},
        ],
    }


def rabbit_defs(password):
    return {
        "rabbit_version": "3.12.4",
        "rabbitmq_version": "3.12.4",
        "product_name": "RabbitMQ",
        "product_version": "3.12.4",
        "users": [
            {"name": "rabbit", "password_hash": rabbit_hash(password),
             "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": "administrator",
             "limits": {}},
        ],
        "vhosts": [
            {"name": "/", "description": "Default virtual host", "tags": [],
             "metadata": {"description": "Default virtual host", "tags": []}},
        ],
        "permissions": [
            {"user": "rabbit", "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"},
        ],
        "topic_permissions": [],
        "parameters": [
            {"value": {"uri": "amqp://elsewhere"}, "vhost": "/", "component": "federation-upstream",
             "name": "up"},
        ],
        "global_parameters": [
            {"name": "internal_cluster_id", "value": "rabbitmq-cluster-id-abc"},
            {"name": "cluster_name", "value": "rabbit@host"},
        ],
        "policies": [
            {"vhost": "/", "name": "expiry", "pattern": "^rq\\.", "apply-to": "queues",
             "definition": {"message-ttl": 3600000, "overflow": "drop-head",
                            "queue-mode": "lazy"}, "priority": 0},
            # RabbitMQ's mirroring: nothing of it here; skipped key by key, then whole
            {"vhost": "/", "name": "ha-all", "pattern": ".*", "apply-to": "queues",
             "definition": {"ha-mode": "all", "ha-sync-mode": "automatic"}, "priority": 1},
        ],
        "queues": [
            {"name": "rq.inbox", "vhost": "/", "durable": True, "auto_delete": False,
             "type": "classic", "arguments": {"x-queue-type": "classic"}},
        ],
        "exchanges": [
            {"name": "rx", "vhost": "/", "type": "topic", "durable": True, "auto_delete": False,
             "internal": False, "arguments": {}},
        ],
        "bindings": [
            {"source": "rx", "vhost": "/", "destination": "rq.inbox",
             "destination_type": "queue", "routing_key": "mail.*", "arguments": {}},
        ],
    }


def bad_defs():
    return {
        "vhosts": [{"name": "partial"}],
        "queues": [
            {"name": "bad.first", "vhost": "/", "durable": True, "auto_delete": False,
             "arguments": {}},
            {"name": "bad.second", "vhost": "/", "durable": True, "auto_delete": False,
             "arguments": {"x-max-length": "ten"}},
            {"name": "bad.third", "vhost": "/", "durable": True, "auto_delete": False,
             "arguments": {}},
        ],
    }


def write(kind, path, password):
    defs = {"main": lambda: main_defs(password), "tighter": tighter_defs,
            "rabbit": lambda: rabbit_defs(password), "bad": bad_defs}[kind]()
    with open(path, "w") as f:
        json.dump(defs, f, indent=1, ensure_ascii=False)


def canonical(d):
    """The definitions with every list sorted: order never matters in a definitions file."""
    if isinstance(d, dict):
        return {k: canonical(v) for k, v in d.items()}
    if isinstance(d, list):
        return sorted((canonical(v) for v in d), key=lambda v: json.dumps(v, sort_keys=True))
    return d


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def same(a, b):
    da, db = canonical(load(a)), canonical(load(b))
    if da == db:
        out(True, f"{os.path.basename(a)} and {os.path.basename(b)} define the same")
        return
    diff = [k for k in sorted(set(da) | set(db)) if da.get(k) != db.get(k)]
    out(False, f"{a} vs {b}", f"sections differ: {diff}: "
        + "; ".join(f"{k}: {json.dumps(da.get(k))[:300]} != {json.dumps(db.get(k))[:300]}"
                    for k in diff[:2]))


def exported(path):
    d = load(path)
    want = main_defs("x")
    users = {u["name"]: u for u in d.get("users", [])}
    out(set(users) == {"op", "viewer"}, "export: users op and viewer", f"{sorted(users)}")
    out(users["op"]["hashing_algorithm"] == "rabbit_password_hashing_sha256" and
        users["viewer"]["hashing_algorithm"] == "rabbit_password_hashing_sha512",
        "export: RabbitMQ hashes keep their algorithm", json.dumps(list(users.values())))
    out(users["op"]["tags"] == ["administrator"] and users["viewer"]["tags"] == ["monitoring"],
        "export: tags as lists", json.dumps(list(users.values())))
    out(sorted(v["name"] for v in d["vhosts"]) == ["/", "dev"], "export: vhosts",
        json.dumps(d["vhosts"]))
    perms = canonical(d["permissions"])
    out(perms == canonical(want["permissions"]), "export: permissions", json.dumps(perms))
    out(canonical(d["topic_permissions"]) == canonical(want["topic_permissions"]),
        "export: topic permissions", json.dumps(d["topic_permissions"]))
    pols = {p["name"]: p for p in d["policies"]}
    out(pols.get("lim", {}).get("definition") == {"max-length": 2} and
        pols["lim"]["apply-to"] == "queues" and pols["lim"]["priority"] == 1 and
        pols.get('ttl "quoted"', {}).get("vhost") == "dev",
        "export: policies (a name with quotes escaped)", json.dumps(d["policies"]))
    xs = {(x["vhost"], x["name"]): x for x in d["exchanges"]}
    out(not any(n.startswith("amq.") or n == "" for _, n in xs),
        "export: no built-in exchange", f"{sorted(xs)}")
    out(set(xs) == {(x["vhost"], x["name"]) for x in want["exchanges"]},
        "export: every exchange", f"{sorted(xs)}")
    out(xs[("/", "events")]["arguments"] == {"alternate-exchange": "unrouted"} and
        xs[("/", "events")]["type"] == "topic" and xs[("dev", "dev.x")]["internal"] is True and
        xs[("/", "hx")]["durable"] is False, "export: exchange types, flags, alternate exchange",
        json.dumps(list(xs.values())))
    qs = {(q["vhost"], q["name"]): q for q in d["queues"]}
    wq = {(q["vhost"], q["name"]): q for q in want["queues"]}
    out(set(qs) == set(wq), "export: every queue (a name with quotes, backslash, UTF-8)",
        f"{sorted(qs)}")
    for k, q in wq.items():
        out(qs[k]["arguments"] == q["arguments"] and qs[k]["durable"] == q["durable"],
            f"export: queue {k[1]} keeps its arguments", json.dumps(qs[k]))
    bs = canonical(d["bindings"])
    out(bs == canonical(want["bindings"]), "export: bindings (headers arguments included)",
        json.dumps(bs))
    out(d.get("mqtt_acls") == want["mqtt_acls"], "export: MQTT ACLs", json.dumps(d.get("mqtt_acls")))


def client(host, port, user, password, check, args):
    import pika
    import pika.exceptions as pex

    params = pika.ConnectionParameters(host, int(port), "/", pika.PlainCredentials(user, password),
                                       connection_attempts=1, socket_timeout=5,
                                       blocked_connection_timeout=5)
    if check == "refused":
        try:
            pika.BlockingConnection(params).close()
        except (pex.ProbableAccessDeniedError, pex.ProbableAuthenticationError) as e:
            out(True, f"{user} refused ({e})")
            return
        out(False, f"{user} refused", "logged in")
    conn = pika.BlockingConnection(params)
    ch = conn.channel()
    ch.confirm_delivery()

    def get(q):
        for _ in range(50):
            m = ch.basic_get(q, auto_ack=True)
            if m[0]:
                return m[2]
            time.sleep(0.05)
        return None

    def count(q):
        return ch.queue_declare(q, passive=True).method.message_count

    if check == "login":
        out(True, f"{user} logs in")
    elif check == "route":
        ch.basic_publish("orders", "new", b"order-1")
        out(get("q.orders") == b"order-1", "orders/new -> q.orders (direct)")
        ch.basic_publish("events", "evt.a.b", b"event-1")
        out(get("q.events") == b"event-1", "events/evt.a.b -> q.events (topic)")
        ch.basic_publish("events", "other", b"stray")
        out(get("q.unrouted") == b"stray", "events/other -> unrouted -> q.unrouted (alternate)")
        ch.basic_publish("orders", "evt", b"via-x2x")
        out(get("q.events") == b"via-x2x", "orders/evt -> events -> q.events (exchange binding)")
        props = pika.BasicProperties(headers={"kind": "pdf", "pages": 3})
        ch.basic_publish("hx", "", b"doc", properties=props)
        out(get("q.hx") == b"doc", "hx kind=pdf pages=3 -> q.hx (headers, x-match all)")
        props = pika.BasicProperties(headers={"kind": "pdf", "pages": 4})
        ch.basic_publish("hx", "", b"nodoc", properties=props)
        out(get("q.hx") is None, "hx kind=pdf pages=4 -> nowhere")
        ch.basic_publish("", 'weird "name"\\ é', b"odd")
        out(get('weird "name"\\ é') == b"odd", "default exchange -> the oddly named queue")
    elif check == "maxlen":
        n = int(args[0])
        for i in range(5):
            ch.basic_publish("orders", "job", b"job-%d" % i)
        got = [get("lim.jobs") for _ in range(n + 1)]
        want = [b"job-%d" % i for i in range(5 - n, 5)] + [None]
        out(got == want, f"lim.jobs holds the last {n} of 5 (policy max-length {n})", f"{got}")
    elif check == "count":
        q, n = args[0], int(args[1])
        c = count(q)
        out(c == n, f"{q} holds {n}", f"{c}")
    elif check == "fill":
        q, n = args[0], int(args[1])
        for i in range(n):
            ch.basic_publish("", q, b"fill-%d" % i)
        out(True, f"{n} published to {q}")
    elif check == "client_policy":
        ch.queue_declare("lim.client", durable=False, exclusive=False)
        for i in range(4):
            ch.basic_publish("", "lim.client", b"c-%d" % i)
        c = count("lim.client")
        ch.queue_delete("lim.client")
        out(c == 2, "a client's queue lim.client takes the policy: 2 of 4 stay", f"{c}")
    elif check == "rabbit":
        ch.basic_publish("rx", "mail.new", b"you've got mail")
        out(get("rq.inbox") == b"you've got mail", "rabbit file: rx/mail.new -> rq.inbox")
    else:
        out(False, check, "unknown check")
    conn.close()


def main(argv):
    if argv[0] == "write":
        write(argv[1], argv[2], argv[3] if len(argv) > 3 else PASSWORD)
    elif argv[0] == "same":
        same(argv[1], argv[2])
    elif argv[0] == "exported":
        exported(argv[1])
    elif argv[0] == "client":
        client(*argv[1:6], argv[6:])
    else:
        sys.exit(f"unknown command {argv[0]}")


if __name__ == "__main__":
    main(sys.argv[1:])
