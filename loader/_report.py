"""``--report FILE.html``: a page load's waterfall, one self-contained HTML file.

Built from a HAR log (:func:`loader.har.har_from`), so what the report shows is what
the HAR says.  No script, font or image is fetched: the styles are inline and the
bars are plain boxes positioned in percent, so a thousand rows stay light (rows off
screen are skipped by ``content-visibility``).  Below 700 px wide the columns fold:
each row puts its bar under its name.

Per page: totals (requests, failures, bytes, time, and whether the load was bound by
latency or by bandwidth), the waterfall (one row per request in start order, bars
split by phase, kind and provenance, failures marked with their cause) and the lanes
(per host, one line per connection: how the per-host limit spread the requests).
"""

from __future__ import annotations

import datetime
import html
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = ["render_report", "write_report"]

#: Drawn segments, in bar order (``connect`` drawn without its ``ssl`` part).
PHASES = ("blocked", "dns", "connect", "ssl", "send", "wait", "receive")
_EXPLAINED = {
    "blocked": "waiting for a connection slot (per-host and total limits), or a retry's backoff",
    "dns": "name resolution",
    "connect": "TCP connection",
    "ssl": "TLS handshake",
    "send": "sending the request",
    "wait": "waiting for the first byte (server time + round trip)",
    "receive": "receiving the body",
}
_LATENCY = ("dns", "connect", "send", "wait")
#: Bytes a second while receiving below which a receive-heavy load is not called bandwidth-bound.
_BANDWIDTH_FLOOR = 1 << 20

_CSS = """
:root{--blocked:#b8bcc6;--dns:#16a3c7;--connect:#f0a030;--ssl:#a259d9;--send:#9acd32;--wait:#2f9e44;
--receive:#2d6fd0;--bad:#d62839;--ink:#1f2430;--muted:#5f6675;--line:#e3e6ec;--bg:#fff;--band:#f6f7f9}
*{box-sizing:border-box}
body{margin:0;font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);background:var(--bg)}
header,section{padding:12px 20px}
h1{font-size:20px;margin:0 0 4px}
h2{font-size:17px;margin:18px 0 8px;word-break:break-all}
h3{font-size:15px;margin:16px 0 6px}
.muted{color:var(--muted)}
.totals{display:flex;flex-wrap:wrap;gap:10px;margin:10px 0}
.total{background:var(--band);border:1px solid var(--line);border-radius:8px;padding:8px 12px;min-width:120px}
.total b{display:block;font-size:18px}
.failures{overflow-wrap:anywhere;padding-left:1.2em}
.verdict{margin:6px 0 10px;padding:8px 12px;border-left:4px solid var(--wait);background:var(--band)}
.legend{display:flex;flex-wrap:wrap;gap:6px 14px;margin:8px 0 12px;font-size:13px}
.legend span{display:inline-flex;align-items:center;gap:5px}
.sw{width:12px;height:12px;border-radius:2px;display:inline-block}
.p-blocked{background:var(--blocked)}.p-dns{background:var(--dns)}.p-connect{background:var(--connect)}
.p-ssl{background:var(--ssl)}.p-send{background:var(--send)}.p-wait{background:var(--wait)}
.p-receive{background:var(--receive)}
.wf{border-top:1px solid var(--line)}
.row{display:grid;grid-template-columns:3.2em minmax(0,2.2fr) minmax(0,1.3fr) 3.6em 5em 5em minmax(0,4fr);
gap:0 8px;align-items:center;padding:3px 0;border-bottom:1px solid var(--line);
content-visibility:auto;contain-intrinsic-size:auto 26px}
.row.head{font-weight:600;font-size:12px;color:var(--muted);content-visibility:visible;position:sticky;top:0;background:var(--bg);z-index:1}
.row:nth-child(even):not(.head){background:var(--band)}
.num{text-align:right;font-variant-numeric:tabular-nums}
.name{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.name small,.why small{color:var(--muted)}
.why{overflow:hidden;text-overflow:ellipsis;white-space:nowrap;font-size:12px}
.track{position:relative;height:14px}
.bar{position:absolute;top:0;height:14px;display:flex;min-width:1px}
.bar i{display:block;height:100%}
.failed .name,.failed .status{color:var(--bad);font-weight:600}
.failed .track{outline:1px dashed var(--bad);outline-offset:1px}
.err{grid-column:2/-1;color:var(--bad);font-size:12px;white-space:normal;word-break:break-word;padding:1px 0 3px}
.axis{position:relative;height:14px;font-size:11px;color:var(--muted)}
.axis span{position:absolute;transform:translateX(-50%);white-space:nowrap}
.axis span:first-child{transform:none}
.lanes .host{margin:12px 0 4px;font-weight:600;word-break:break-all}
.lane{display:grid;grid-template-columns:9em minmax(0,1fr);gap:8px;align-items:center;padding:2px 0}
.lane .track{background:var(--band);height:16px}
.lane .bar{height:16px;border-right:1px solid var(--bg)}
footer{padding:12px 20px 24px;font-size:12px;color:var(--muted)}
@media (max-width:700px){
header,section{padding:10px 12px}
.row{grid-template-columns:3.4em minmax(0,1fr) 4.6em;grid-template-areas:"st nm tm" "wh wh wh" "tr tr tr"}
.row>.idx,.row>.size{display:none}
.row>.status{grid-area:st}.row>.name{grid-area:nm}.row>.time{grid-area:tm}.row>.why{grid-area:wh}
.row>.track{grid-area:tr;margin:2px 0}
.row.head>.why,.row.head>.track{display:none}
.err{grid-column:1/-1}
.lane{grid-template-columns:1fr}
.total{min-width:0;flex:1 1 40%}
}
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _epoch(stamp: str) -> float:
    try:
        return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def _ms_text(ms: float) -> str:
    if ms == 0:
        return "0"
    if ms >= 10_000:
        return f"{ms / 1000:.1f} s"
    if ms >= 1000:
        return f"{ms / 1000:.2f} s"
    return f"{ms:.1f} ms" if ms < 100 else f"{ms:.0f} ms"


def _bytes_text(n: int) -> str:
    if n < 0:
        return "–"
    if n < 1024:
        return f"{n} B"
    if n < 1 << 20:
        return f"{n / 1024:.1f} KiB"
    return f"{n / (1 << 20):.1f} MiB"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _size(entry: Mapping[str, Any]) -> int:
    response = entry["response"]
    body = int(response.get("bodySize", -1))
    return body if body >= 0 else int(response["content"].get("size", 0))


def _segments(timings: Mapping[str, float]) -> list[tuple[str, float]]:
    parts = []
    for name in PHASES:
        value = timings.get(name, -1)
        if name == "connect" and value >= 0 and timings.get("ssl", -1) > 0:
            value -= timings["ssl"]  # HAR counts TLS inside connect; drawn once, as ssl
        if value > 0:
            parts.append((name, value))
    return parts


def _bar(left: float, width: float, timings: Mapping[str, float], total: float, title: str) -> str:
    inner = "".join(
        f'<i class="p-{name}" style="width:{value / total * 100:.3f}%"></i>'
        for name, value in _segments(timings)
    ) if total > 0 else ""
    return f'<div class="bar" style="left:{left:.3f}%;width:{max(width, 0.15):.3f}%" title="{_e(title)}">{inner}</div>'


def _title(entry: Mapping[str, Any]) -> str:
    timings = entry["timings"]
    parts = [f"{name} {timings[name]:.1f} ms" for name in PHASES if timings.get(name, -1) >= 0]
    return f"{entry['request']['url']}\n{_ms_text(entry['time'])}: " + ", ".join(parts)


def _short(url: str) -> tuple[str, str]:
    try:
        parts = urlsplit(url)
    except ValueError:
        return url, ""
    name = parts.path.rstrip("/").rpartition("/")[2] or parts.path or "/"
    if parts.query:
        name += "?" + parts.query
    return name, f"{parts.scheme}://{parts.netloc}"


def _axis(span: float) -> str:
    step = 1.0
    for candidate in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 20_000, 60_000):
        step = candidate
        if span / candidate <= 6:
            break
    ticks: list[str] = []
    at = 0.0
    while at <= span * 0.92 and len(ticks) < 12:  # a label at the very end would overflow
        ticks.append(f'<span style="left:{at / span * 100:.2f}%">{_ms_text(at)}</span>')
        at += step
    return f'<div class="axis">{"".join(ticks)}</div>'


def _verdict(entries: list[Mapping[str, Any]], span: float, total_bytes: int) -> str:
    latency = sum(max(e["timings"].get(k, -1), 0) for e in entries for k in _LATENCY)
    receive = sum(max(e["timings"].get("receive", 0), 0) for e in entries)
    blocked = sum(max(e["timings"].get("blocked", -1), 0) for e in entries)
    busy = latency + receive
    if busy <= 0:
        return '<p class="verdict">Nothing crossed the network (every request completed from memory or data: URLs).</p>'
    share = latency / busy * 100
    rate = total_bytes / (span / 1000) if span > 0 else 0
    receiving = total_bytes / (receive / 1000) if receive > 0 else 0
    if latency >= receive:
        kind = "latency"
    elif receiving >= _BANDWIDTH_FLOOR:
        kind = "bandwidth"
    else:  # long receives of little data: a busy client or server, not a full link
        kind = f"receiving, though slowly ({_bytes_text(int(receiving))}/s while receiving: a busy client or server)"
    return (
        f'<p class="verdict"><b>Bound by {kind}.</b> Of the requests\' network time, {share:.0f}% went to '
        f"round trips (name lookups, connecting, sending, waiting for the first byte) and {100 - share:.0f}% "
        f"to receiving bodies; {_bytes_text(total_bytes)} in {_ms_text(span)} is {_bytes_text(int(rate))}/s. "
        f"Requests waited {_ms_text(blocked)} in all for a connection slot.</p>"
    )


def _rows(entries: list[Mapping[str, Any]], t0: float, span: float) -> str:
    out = [
        '<div class="row head"><span class="idx num">#</span><span class="name">Resource</span>'
        '<span class="why">Kind · found by</span><span class="status num">Status</span>'
        '<span class="size num">Size</span><span class="time num">Time</span>'
        f'<div class="track">{_axis(span)}</div></div>'
    ]
    for n, entry in enumerate(entries, 1):
        url = entry["request"]["url"]
        name, host = _short(url)
        start = (_epoch(entry["startedDateTime"]) - t0) * 1000
        error = entry.get("_error")
        status = entry["response"]["status"] or ("✕" if error else "–")
        why = _e(entry.get("_kind") or "")
        if entry.get("_found_by"):
            why += f' <small>· {_e(entry["_found_by"])}</small>'
        if entry.get("_redirected_from"):
            why += ' <small>· redirected</small>'
        if entry.get("_attempt", 1) > 1:
            why += f' <small>· attempt {entry["_attempt"]}</small>'
        if entry.get("_synchronous"):
            why += f' <small>· from {_e(entry.get("_origin", "cache"))}</small>'
        out.append(
            f'<div class="row{" failed" if error else ""}" data-url="{_e(url)}">'
            f'<span class="idx num muted">{n}</span>'
            f'<span class="name" title="{_e(url)}">{_e(name)} <small>{_e(host)}</small></span>'
            f'<span class="why">{why}</span><span class="status num">{_e(status)}</span>'
            f'<span class="size num">{_bytes_text(_size(entry))}</span>'
            f'<span class="time num">{_ms_text(entry["time"])}</span>'
            f'<div class="track">{_bar(start / span * 100, entry["time"] / span * 100, entry["timings"], entry["time"], _title(entry))}</div>'
        )
        if error:
            out.append(f'<div class="err">✕ {_e(error)}</div>')
        out.append("</div>")
    return "".join(out)


def _lanes(entries: list[Mapping[str, Any]], t0: float, span: float) -> str:
    hosts: dict[str, dict[str, list[Mapping[str, Any]]]] = {}
    for entry in entries:
        host = _short(entry["request"]["url"])[1]
        hosts.setdefault(host, {}).setdefault(entry.get("connection", ""), []).append(entry)
    out = []
    for host, lanes in hosts.items():
        count = sum(len(v) for v in lanes.values())
        opened = len([c for c in lanes if c])
        peak = _peak([e for v in lanes.values() for e in v], t0)
        waited = sum(max(e["timings"].get("blocked", 0), 0) for v in lanes.values() for e in v)
        out.append(
            f'<div class="host">{_e(host)} <span class="muted">— {_plural(count, "request")} on {opened} '
            f'connection{"s" if opened != 1 else ""}, at most {peak} at once, {_ms_text(waited)} waiting for a slot</span></div>'
        )
        for connection, items in lanes.items():
            label = f"connection {connection}" if connection else "no connection"
            bars = "".join(
                _bar((_epoch(e["startedDateTime"]) - t0) * 1000 / span * 100, e["time"] / span * 100,
                     e["timings"], e["time"], _title(e))
                for e in items
            )
            out.append(f'<div class="lane"><span class="muted">{_e(label)} · {len(items)}</span><div class="track">{bars}</div></div>')
    return "".join(out)


def _peak(entries: list[Mapping[str, Any]], t0: float) -> int:
    """Most requests of one host past their ``blocked`` part at the same moment."""
    edges = []
    for e in entries:
        start = (_epoch(e["startedDateTime"]) - t0) * 1000 + max(e["timings"].get("blocked", 0), 0)
        end = (_epoch(e["startedDateTime"]) - t0) * 1000 + e["time"]
        if end > start:
            edges += [(start, 1), (end, -1)]
    peak = current = 0
    for _, step in sorted(edges, key=lambda x: (x[0], x[1])):
        current += step
        peak = max(peak, current)
    return peak


def _page(title: str, entries: list[Mapping[str, Any]], timings: Mapping[str, float] | None) -> str:
    if not entries:
        return f"<section><h2>{_e(title)}</h2><p class='muted'>No requests recorded.</p></section>"
    t0 = min(_epoch(e["startedDateTime"]) for e in entries)
    end = max(_epoch(e["startedDateTime"]) * 1000 + e["time"] for e in entries) - t0 * 1000
    span = max(end, (timings or {}).get("onLoad", 0) or 0, 1.0)
    failed = [e for e in entries if e.get("_error")]
    total_bytes = sum(max(_size(e), 0) for e in entries)
    hosts = len({_short(e["request"]["url"])[1] for e in entries})
    cards = [
        ("requests", f"{len(entries)}", f"{len(failed)} failed" if failed else "none failed"),
        ("transferred", _bytes_text(total_bytes), "response bodies"),
        ("time", _ms_text(span), "first request to last byte"),
        ("hosts", f"{hosts}", "origins contacted"),
    ]
    if timings and timings.get("onContentLoad", -1) >= 0:
        cards.append(("document", _ms_text(timings["onContentLoad"]), "the page itself"))
    totals = "".join(
        f'<div class="total"><span class="muted">{_e(k)}</span><b>{_e(v)}</b><span class="muted">{_e(n)}</span></div>'
        for k, v, n in cards
    )
    legend = "".join(f'<span title="{_e(_EXPLAINED[p])}"><i class="sw p-{p}"></i>{p}</span>' for p in PHASES)
    failures = ""
    if failed:
        items = "".join(f"<li>{_e(e['_error'])}</li>" for e in failed[:50])  # the error names its URL
        more = f"<li>… and {len(failed) - 50} more</li>" if len(failed) > 50 else ""
        failures = f"<h3>Failures</h3><ul class='failures'>{items}{more}</ul>"
    return (
        f"<section><h2>{_e(title)}</h2><div class='totals'>{totals}</div>{_verdict(entries, span, total_bytes)}"
        f"{failures}<h3>Waterfall</h3><div class='legend'>{legend}</div>"
        f"<div class='wf'>{_rows(entries, t0, span)}</div>"
        f"<h3>Lanes: one line per connection, per host</h3><div class='lanes'>{_lanes(entries, t0, span)}</div></section>"
    )


def render_report(har: Mapping[str, Any]) -> str:
    """The report of a HAR log (as :func:`loader.har.har_from` builds it) as one HTML document."""
    log = har["log"]
    entries: list[Mapping[str, Any]] = list(log.get("entries", ()))
    pages = list(log.get("pages", ()))
    sections = []
    listed = set()
    for page in pages:
        listed.add(page["id"])
        mine = [e for e in entries if e.get("pageref") == page["id"]]
        sections.append(_page(page["title"], mine, page.get("pageTimings")))
    others = [e for e in entries if e.get("pageref") not in listed]
    if others:
        sections.append(_page("Requests outside any page", others, None))
    creator = log.get("creator", {})
    heading = pages[0]["title"] if len(pages) == 1 else f"{len(pages)} pages"
    legend_text = "; ".join(f"<b>{p}</b>: {_e(t)}" for p, t in _EXPLAINED.items())
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        f"<title>Load: {_e(heading)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>Page load</h1><div class='muted'>{_e(heading)} · "
        f"{_e(creator.get('name', ''))} {_e(creator.get('version', ''))}</div></header>"
        + "".join(sections)
        + f"<footer>{legend_text}. Rows are in start order; a request redirected or retried has one row "
        "per exchange. Hover a bar for its phases.</footer></body></html>"
    )


def write_report(path: str | Path, har: Mapping[str, Any]) -> Path:
    """Write the report of ``har`` to ``path`` atomically."""
    from ._saving import write_file

    target = Path(path)
    return write_file(str(target), target, render_report(har).encode("utf-8"))

