"""Renders docs/grafana-dashboard.json's panels from real scrapes of a
shop's /metrics, without Grafana: drives traffic, scrapes several times,
evaluates each panel's PromQL on the scrapes (the subset the dashboard
uses: sum/min/max by, rate, increase, histogram_quantile, + and /) and
draws the panels with matplotlib.

    render.py SHOP_URL ADMIN_URL OUT.png

Run through scripts/dashboard.sh, which starts the shop.
"""

import json
import math
import random
import re
import sys
import threading
import time
import urllib.error
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json"
SCRAPES = 16
SCRAPE_EVERY = 3.0


# ---- the shop: traffic -------------------------------------------------

class Client:
    """One browser: its own cookie jar."""

    def __init__(self, base):
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(CookieJar()))

    def call(self, method, path, body=None, headers=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with self.opener.open(req, timeout=10) as res:
                return res.status
        except urllib.error.HTTPError as e:
            return e.code
        except OSError:
            return None


def traffic(shop, admin, stop):
    """Product reads (hits and misses), concurrent cart adds, sign-ups,
    log-ins and log-outs, bad cookies, and price changes on the admin
    listener, until `stop` is set."""
    run = f"{int(time.time())}"
    n = 0
    while not stop.is_set():
        n += 1
        reader = Client(shop)
        for _ in range(20):
            sku = random.choice(range(60)) if random.random() < 0.8 else random.randrange(400)
            reader.call("GET", f"/api/products/SKU-{sku:04d}")
        reader.call("GET", f"/api/products?page={random.randrange(10)}")
        # One cart, added to concurrently: conflicts and re-applies.
        cart = Client(shop)
        cart.call("POST", "/api/cart/items", {"sku": "SKU-0001"})
        adds = [threading.Thread(target=cart.call,
                                 args=("POST", "/api/cart/items", {"sku": f"SKU-{i:04d}"}))
                for i in range(2, 8)]
        for t in adds:
            t.start()
        for t in adds:
            t.join()
        cart.call("GET", "/api/cart")
        # An account: sign-up, log-out, log-in (a new session ID), a
        # read of what was just written (a causal token), log-out.
        user = Client(shop)
        email = f"dash-{run}-{n}@example.com"
        password = "correct horse battery staple"
        # (A cart add first: only a stored session gets a new ID.)
        user.call("POST", "/api/cart/items", {"sku": "SKU-0003"})
        user.call("POST", "/api/signup", {"email": email, "password": password, "name": "Dash"})
        user.call("GET", "/api/profile")
        user.call("POST", "/api/logout", {})
        user.call("POST", "/api/cart/items", {"sku": "SKU-0004"})
        user.call("POST", "/api/login", {"email": email, "password": password})
        user.call("POST", "/api/logout", {})
        # Cookies that start a fresh session.
        Client(shop).call("GET", "/api/cart", headers={"Cookie": "shop_session=not-a-session-id"})
        Client(shop).call("GET", "/api/cart", headers={"Cookie": "shop_session=AAAAAAAAAAAAAAAAAAAAAA"})
        # A price change: invalidations.
        if n % 3 == 0:
            sku = random.randrange(60)
            Client(admin).call("PUT", f"/products/SKU-{sku:04d}/price",
                               {"price_cents": 1000 + random.randrange(5000)})
        time.sleep(0.05)


# ---- scrapes ---------------------------------------------------------------

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def scrape(admin):
    with urllib.request.urlopen(admin + "/metrics", timeout=10) as res:
        text = res.read().decode()
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            raise ValueError(f"unreadable sample line {line!r}")
        labels = tuple(sorted(LABEL.findall(m.group(3) or "")))
        samples[(m.group(1), labels)] = float(m.group(4))
    return samples


# ---- PromQL, the dashboard's subset ---------------------------------------
# A value at one step is a dict {labels (sorted tuple): float}.

TOKEN = re.compile(r'\s*(?:(\d+\.?\d*)|([a-zA-Z_:][a-zA-Z0-9_:]*)|(\{[^}]*\})|(\[[^\]]*\])|(.))')


def tokens(expr):
    out = []
    pos = 0
    while pos < len(expr):
        m = TOKEN.match(expr, pos)
        if not m or m.end() == pos:
            break
        pos = m.end()
        num, name, sel, rng, ch = m.groups()
        if num is not None:
            out.append(("num", float(num)))
        elif name is not None:
            out.append(("name", name))
        elif sel is not None:
            out.append(("sel", sel))
        elif rng is not None:
            out.append(("range", rng))
        elif ch is not None and not ch.isspace():
            out.append(("op", ch))
    return out


class Parser:
    def __init__(self, expr):
        self.t = tokens(expr)
        self.i = 0

    def peek(self):
        return self.t[self.i] if self.i < len(self.t) else (None, None)

    def take(self, kind=None, value=None):
        tok = self.peek()
        if (kind and tok[0] != kind) or (value is not None and tok[1] != value):
            raise ValueError(f"expected {kind} {value}, got {tok}")
        self.i += 1
        return tok

    def expr(self):
        return self.binary("+", self.term)

    def term(self):
        return self.binary("/", self.atom)

    def binary(self, op, operand):
        """`operand (op operand)*`, left-associative."""
        left = operand()
        while self.peek() == ("op", op):
            self.take()
            left = (op, left, operand())
        return left

    def atom(self):
        kind, value = self.peek()
        if kind == "num":
            self.take()
            return ("num", value)
        if kind == "op" and value == "(":
            self.take()
            inner = self.expr()
            self.take("op", ")")
            return inner
        name = self.take("name")[1]
        if name in ("sum", "min", "max"):
            by = None
            if self.peek() == ("name", "by"):
                self.take()
                self.take("op", "(")
                by = []
                while self.peek() != ("op", ")"):
                    by.append(self.take("name")[1])
                    if self.peek() == ("op", ","):
                        self.take()
                self.take("op", ")")
            self.take("op", "(")
            inner = self.expr()
            self.take("op", ")")
            return ("agg", name, by, inner)
        if name in ("rate", "increase"):
            self.take("op", "(")
            inner = self.atom()
            self.take("op", ")")
            return (name, inner)
        if name == "histogram_quantile":
            self.take("op", "(")
            q = self.take("num")[1]
            self.take("op", ",")
            inner = self.expr()
            self.take("op", ")")
            return ("quantile", q, inner)
        matchers = []
        if self.peek()[0] == "sel":
            body = self.take()[1][1:-1]
            matchers = re.findall(r'([a-zA-Z_]+)\s*(=~|=)\s*"([^"]*)"', body)
        if self.peek()[0] == "range":
            self.take()
        return ("sel", name, matchers)


def select(samples, name, matchers):
    out = {}
    for (n, labels), v in samples.items():
        if n != name:
            continue
        d = dict(labels)
        ok = True
        for k, op, want in matchers:
            # `$instance` is one target here: every value matches.
            if "$" in want:
                continue
            have = d.get(k, "")
            ok = ok and (have == want if op == "=" else re.fullmatch(want, have) is not None)
        if ok:
            out[labels] = v
    return out


def evaluate(node, scrapes, i, times):
    """The value of `node` at step `i` (rates over scrape i-1 .. i)."""
    kind = node[0]
    if kind == "num":
        return node[1]
    if kind == "sel":
        return select(scrapes[i], node[1], node[2])
    if kind in ("rate", "increase"):
        now = evaluate(node[1], scrapes, i, times)
        before = evaluate(node[1], scrapes, i - 1, times)
        dt = times[i] - times[i - 1]
        out = {}
        for labels, v in now.items():
            delta = v - before.get(labels, 0.0)
            if delta < 0:  # a counter reset
                delta = v
            out[labels] = delta / dt if kind == "rate" else delta
        return out
    if kind == "agg":
        _, op, by, inner = node
        vec = evaluate(inner, scrapes, i, times)
        groups = {}
        for labels, v in vec.items():
            key = tuple((k, val) for k, val in labels if by is not None and k in by)
            groups.setdefault(key, []).append(v)
        f = {"sum": sum, "min": min, "max": max}[op]
        return {k: f(vs) for k, vs in groups.items()}
    if kind == "quantile":
        _, q, inner = node
        vec = evaluate(inner, scrapes, i, times)
        series = {}
        for labels, v in vec.items():
            d = dict(labels)
            le = float(d.pop("le"))
            series.setdefault(tuple(sorted(d.items())), []).append((le, v))
        return {k: quantile(q, sorted(b)) for k, b in series.items()}
    if kind in ("+", "/"):
        a = evaluate(node[1], scrapes, i, times)
        b = evaluate(node[2], scrapes, i, times)
        out = {}
        for labels, va in a.items():
            if labels in b:
                vb = b[labels]
                if kind == "+":
                    out[labels] = va + vb
                elif vb != 0:
                    out[labels] = va / vb
        return out
    raise ValueError(node)


def quantile(q, buckets):
    """Prometheus's histogram_quantile: linear within the bucket."""
    total = buckets[-1][1]
    if total == 0:
        return math.nan
    rank = q * total
    prev_le, prev_count = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if math.isinf(le):
                return prev_le
            return prev_le + (le - prev_le) * (rank - prev_count) / max(count - prev_count, 1e-12)
        prev_le, prev_count = le, count
    return prev_le


def legend(fmt, labels):
    d = dict(labels)
    text = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: d.get(m.group(1), ""), fmt or "")
    return " ".join(text.split()) or "value"


# ---- drawing ---------------------------------------------------------------

def render(scrapes, times, out):
    dashboard = json.loads(DASHBOARD.read_text())
    panels = dashboard["panels"]
    cols = 3
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(7 * cols, 3.6 * rows))
    t0 = times[0]
    for ax, panel in zip(axes.flat, panels):
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "")
        lines = 0
        for target in panel.get("targets", []):
            tree = Parser(target["expr"]).expr()
            series = {}
            for i in range(1, len(scrapes)):
                for labels, v in evaluate(tree, scrapes, i, times).items():
                    series.setdefault(labels, []).append((times[i] - t0, v))
            for labels, points in sorted(series.items()):
                xs, ys = zip(*points)
                if unit == "percentunit":
                    ys = [y * 100 for y in ys]
                ax.plot(xs, ys, marker=".", linewidth=1.2,
                        label=legend(target.get("legendFormat"), labels))
                lines += 1
        ax.set_title(panel["title"], fontsize=10)
        ax.set_xlabel("seconds into the run", fontsize=8)
        ax.set_ylabel({"s": "seconds", "reqps": "req/s", "ops": "per second",
                       "percentunit": "%", "bytes": "bytes"}.get(unit, ""), fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if lines:
            ax.legend(fontsize=6, loc="upper left", ncol=2)
        else:
            ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", color="grey")
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(f"{dashboard.get('title', 'dashboard')}: rendered by scripts/dashboard.sh "
                 f"from {len(scrapes)} scrapes of a running shop (not Grafana)", fontsize=12)
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    fig.savefig(out, dpi=80)


def main():
    shop, admin, out = sys.argv[1:4]
    stop = threading.Event()
    workers = [threading.Thread(target=traffic, args=(shop, admin, stop)) for _ in range(3)]
    for w in workers:
        w.start()
    scrapes, times = [], []
    try:
        for _ in range(SCRAPES):
            scrapes.append(scrape(admin))
            times.append(time.time())
            time.sleep(SCRAPE_EVERY)
    finally:
        stop.set()
        for w in workers:
            w.join()
    render(scrapes, times, out)
    print(f"dashboard.sh: {out} from {len(scrapes)} scrapes")


if __name__ == "__main__":
    main()
