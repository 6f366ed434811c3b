"""The quality report beside the audiobook: ``NAME.report.json`` and a readable ``NAME.report.html``.

The JSON extends poison.py's report of replaced sentences with, when ``--verify`` ran: per chapter its
duration, loudness, true peak and error rates, and the sentences retaken or still failing (text and
time in the file). The HTML is one self-contained page (inline CSS, no script): each failing or
retaken sentence has an ``<audio>`` element playing the output file from the sentence's time (a
media fragment ``#t=start,end``).
"""

from __future__ import annotations

import contextlib
import html
import json
import logging
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .model import ChapterMark, Plan
from .poison import Substitution, load_records, report_data, report_path
from .storage.base import Storage
from .verify import ChunkCheck, checks_prefix

log = logging.getLogger(__name__)


def html_path(output: Path) -> Path:
    return output.with_name(f"{output.stem}.report.html")


def load_checks(storage: Storage, plan: Plan) -> list[ChunkCheck]:
    """--verify's records of ``plan``'s chunks, in reading order (one listing of storage)."""
    return load_records(storage, plan, checks_prefix(plan.session), ChunkCheck.from_json, "verification")


@dataclass(frozen=True)
class ChapterMeasure:
    integrated: float  # LUFS
    true_peak: float  # dBTP


def _num(v: float, digits: int = 2) -> float | None:
    return round(v, digits) if math.isfinite(v) else None


def verify_data(
    plan: Plan,
    checks: Sequence[ChunkCheck],
    marks: Sequence[ChapterMark],
    measures: Sequence[ChapterMeasure | None],
    chunk_times: dict[str, tuple[float, float]],
) -> dict[str, Any]:
    """The report's --verify part. ``marks``/``measures``: per non-empty chapter of the plan, in order;
    ``chunk_times``: chunk id -> (start, seconds) in the output, for the sentences listed. Pure."""
    by_chapter: dict[int, list[ChunkCheck]] = {}
    for c in checks:
        by_chapter.setdefault(c.chapter, []).append(c)
    planned = [ch for ch in plan.chapters if ch.chunk_ids]
    chapters = []
    for i, ch in enumerate(planned):
        mine = by_chapter.get(ch.index, [])
        weight = sum(len(c.text) for c in mine) or 1
        mark = marks[i] if i < len(marks) else None
        measure = measures[i] if i < len(measures) else None
        chapters.append(
            {
                "chapter": ch.index + 1,
                "title": ch.title,
                "start": round(mark.start, 3) if mark else None,
                "duration": round(mark.end - mark.start, 3) if mark else None,
                "integrated_lufs": _num(measure.integrated) if measure else None,
                "true_peak_dbtp": _num(measure.true_peak) if measure else None,
                "sentences": len(ch.chunk_ids),
                "verified": len(mine),
                "wer": round(sum(c.verdict.wer * len(c.text) for c in mine) / weight, 4) if mine else None,
                "cer": round(sum(c.verdict.cer * len(c.text) for c in mine) / weight, 4) if mine else None,
                "retaken": sum(c.retaken and not c.failed for c in mine),  # fixed by a retake
                "failed": sum(c.failed for c in mine),
            }
        )
    titles = {ch.index: ch.title for ch in plan.chapters}

    def entry(c: ChunkCheck) -> dict[str, Any]:
        start, seconds = chunk_times.get(c.chunk_id, (None, None))
        return {
            "chapter": c.chapter + 1,
            "chapter_title": titles.get(c.chapter, ""),
            "index": c.index + 1,
            "chunk_id": c.chunk_id,
            "text": c.text,
            "heard": c.verdict.heard,
            "takes": c.takes,
            "kept_take": c.kept + 1,
            "wer": round(c.verdict.wer, 4),
            "cer": round(c.verdict.cer, 4),
            "problems": list(c.verdict.problems),
            "time": round(start, 3) if start is not None else None,
            "seconds": round(seconds, 3) if seconds is not None else None,
        }

    return {
        "verified": len(checks),
        "retaken": [entry(c) for c in checks if c.retaken and not c.failed],
        "failed": [entry(c) for c in checks if c.failed],
        "chapters": chapters,
    }


def write_reports(
    output: Path,
    plan: Plan,
    subs: list[Substitution],
    checks: Sequence[ChunkCheck],
    *,
    marks: Sequence[ChapterMark] = (),
    measure: Callable[[ChapterMark], ChapterMeasure | None] | None = None,
    chunk_times: Callable[[Sequence[ChunkCheck]], dict[str, tuple[float, float]]] | None = None,
) -> Path | None:
    """``NAME.report.json`` (+ ``.html``) beside ``output``; None (and stale ones removed) when there is
    nothing to report (no substitution, no verification)."""
    path, page = report_path(output), html_path(output)
    if not subs and not checks:
        for stale in (path, page):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
        return None
    data = report_data(plan, subs, str(output))
    if checks:
        listed = [c for c in checks if c.retaken or c.failed]
        times = chunk_times(listed) if chunk_times is not None and listed else {}
        measures = [measure(m) if measure is not None else None for m in marks]
        data["verify"] = verify_data(plan, checks, marks, measures, times)
    _atomic_write(path, json.dumps(data, ensure_ascii=False, indent=2) + "\n")
    _atomic_write(page, render_html(data, output.name))
    return path


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _hms(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    t = int(seconds)
    return f"{t // 3600}:{t % 3600 // 60:02d}:{t % 60:02d}.{int((seconds - t) * 10)}"


def _cell(v: Any, fmt: str = "{}") -> str:
    return "—" if v is None else html.escape(fmt.format(v))


CSS = """
body{font:15px/1.45 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
h1{font-size:1.4rem}h2{font-size:1.15rem;margin-top:2rem}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #ddd;padding:.3rem .5rem;text-align:left}
th{background:#f4f4f4}td.n{text-align:right;font-variant-numeric:tabular-nums}
.bad{color:#a40000}.ok{color:#176117}.s{margin:1rem 0;padding:.6rem .8rem;border-left:4px solid #a40000;background:#fff6f6}
.s.r{border-color:#c98a00;background:#fffbef}.heard{color:#555}audio{width:100%;margin-top:.4rem}
"""


def render_html(data: dict[str, Any], audio_name: str) -> str:
    """The report as one self-contained HTML page (no script). Pure."""
    src = quote(audio_name)
    out = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Report: {html.escape(audio_name)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>Quality report: {html.escape(audio_name)}</h1>",
        f"<p>Voice: {html.escape(str(data.get('engine', '')))} {html.escape(str(data.get('voice', '')))}"
        f" · session {html.escape(str(data.get('session', '')))}</p>",
    ]
    verify = data.get("verify")
    if verify:
        failed, retaken = verify["failed"], verify["retaken"]
        status = "ok" if not failed else "bad"
        out.append(
            f'<p class="{status}">{verify["verified"]} sentences checked by speech recognition: '
            f"{len(retaken)} fixed by a retake, {len(failed)} still failing.</p>"
        )
        out.append("<h2>Chapters</h2><table><tr><th>#</th><th>title</th><th>start</th><th>duration</th>"
                   "<th>loudness (LUFS)</th><th>true peak (dBTP)</th><th>WER</th><th>CER</th>"
                   "<th>retaken</th><th>failed</th></tr>")  # fmt: skip
        for ch in verify["chapters"]:
            out.append(
                f'<tr><td class="n">{ch["chapter"]}</td><td>{html.escape(ch["title"])}</td>'
                f'<td class="n">{_hms(ch["start"])}</td><td class="n">{_hms(ch["duration"])}</td>'
                f'<td class="n">{_cell(ch["integrated_lufs"], "{:.1f}")}</td>'
                f'<td class="n">{_cell(ch["true_peak_dbtp"], "{:.1f}")}</td>'
                f'<td class="n">{_cell(ch["wer"], "{:.1%}")}</td><td class="n">{_cell(ch["cer"], "{:.1%}")}</td>'
                f'<td class="n">{ch["retaken"]}</td><td class="n {"bad" if ch["failed"] else ""}">{ch["failed"]}</td></tr>'
            )
        out.append("</table>")
        for title, items, cls in (("Still failing", failed, "s"), ("Fixed by a retake", retaken, "s r")):
            if not items:
                continue
            out.append(f"<h2>{title} ({len(items)})</h2>")
            for e in items:
                out.append(_sentence(e, src, cls))
    subs = data.get("substituted") or []
    if subs:
        out.append(f"<h2>Replaced because they crash the voice ({len(subs)})</h2><ul>")
        for s in subs:
            out.append(
                f"<li>chapter {s['chapter']}, sentence {s['index']}: {html.escape(s['text'])} "
                f"→ {html.escape(s['replacement'])} ({html.escape(s['reason'])})</li>"
            )
        out.append("</ul>")
    out.append("</body></html>\n")
    return "\n".join(out)


def _sentence(e: dict[str, Any], src: str, cls: str) -> str:
    where = f"chapter {e['chapter']}, sentence {e['index']}, at {_hms(e['time'])}"
    parts = [
        f'<div class="{cls}"><div><b>{html.escape(where)}</b> · {e["takes"]} take(s), '
        f"kept take {e['kept_take']} · WER {e['wer']:.0%}, CER {e['cer']:.0%}</div>",
        f"<div>{html.escape(e['text'])}</div>",
        f'<div class="heard">heard: «{html.escape(e["heard"])}»</div>',
    ]
    if e["problems"]:
        parts.append(f'<div class="bad">{html.escape("; ".join(e["problems"]))}</div>')
    if e["time"] is not None:
        start = max(0.0, e["time"] - 0.2)
        end = e["time"] + (e["seconds"] or 0.0) + 0.3
        parts.append(f'<audio controls preload="none" src="{src}#t={start:.2f},{end:.2f}"></audio>')
    parts.append("</div>")
    return "".join(parts)
