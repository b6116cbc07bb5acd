"""A build log as Markdown, in the section structure of the seed document
(shared/seed/service-discovery-build-log.md): title, **Date**, **Change Sets**, **Status**,
Overview, `## Phase N: <change set>` with `### Problem Statement`, `### Solution`,
`#### Components Created|Updated|Replaced|Deleted` (```json blocks), `## Deployment Notes`,
`## Technical Challenges & Solutions`, `## Lessons Learned`, `## Next Steps`.

Everything rendered here comes from the build log's snapshot, which is masked already.
"""

import difflib
import json
from datetime import datetime

STATUS_WORDS = {"completed": "Completed", "failed": "Failed", "partial": "Partially applied"}
SECTION = ("created", "Created"), ("updated", "Updated"), ("replaced", "Replaced"), ("deleted", "Deleted")


def _date(value):
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return f"{value:%B} {value.day}, {value:%Y}"


def _json(value):
    return "```json\n" + json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n```"


def _seconds(value):
    if value is None:
        return ""
    if value < 90:
        return f"{value:.0f} s"
    return f"{value / 60:.1f} min"


def _text(value, fallback="_Not described._"):
    value = (value or "").strip()
    return value if value else fallback


def is_text_change(change):
    old, new = change.get("old"), change.get("new")
    return isinstance(old, str) and isinstance(new, str) and ("\n" in old or "\n" in new)


def text_diff(old, new):
    """A long text (a template, a script) that changed, as a unified diff."""
    lines = difflib.unified_diff(old.splitlines(), new.splitlines(), "before", "after", n=2, lineterm="")
    return "```diff\n" + "\n".join(lines) + "\n```"


def _one_line(value):
    return " ".join((value or "").split())


def _component(number, item):
    lines = [f"**{number}. `{item['name']}`**", f"- **Schema:** {item['schema']}"]
    if item.get("reason"):
        lines.append(f"- **Reason:** {_one_line(item['reason'])}")
    outcome = item.get("outcome") or {}
    if outcome:
        words = outcome.get("words", "")
        if outcome.get("physical_id"):
            words += f" (`{outcome['physical_id']}`)"
        lines.append(f"- **Outcome:** {words}")
    lines.append("")
    if "properties" in item:
        label = "Properties" if item["op"] == "created" else "Properties before the delete"
        lines += [f"{label}:", _json(item["properties"])]
    elif item.get("changes"):
        texts = [c for c in item["changes"] if is_text_change(c)]
        values = {
            c["path"]: {"before": c["old"], "after": c["new"]} for c in item["changes"] if c not in texts
        }
        if values:
            lines += ["Key Changes:", _json(values)]
        for c in texts:
            lines += [f"Changes to `{c['path']}`:", text_diff(c["old"], c["new"])]
    elif item.get("follows"):
        lines.append("Its own properties did not change; the values it subscribes to moved.")
    else:
        lines.append("No property changed: the resource is recreated with the same properties.")
    return "\n".join(lines)


def _phase(number, phase):
    cs = phase["change_set"]
    out = [f"## Phase {number}: {cs['name']}", ""]
    out += ["### Problem Statement", _text(cs["problem"]), ""]
    out += ["### Solution", _text(cs["solution"]), ""]
    meta = [f"Change set #{cs['id']} by {cs['author']}, {cs['status']}"]
    for a in phase["applies"]:
        when = f", finished {_date(a['finished_at'])}" if a.get("finished_at") else ""
        meta.append(f"apply #{a['run']} {a['status']}{when}")
    out += ["_" + "; ".join(meta) + "._", ""]
    for op, title in SECTION:
        items = phase["components"][op]
        if not items:
            continue
        out += [f"#### Components {title}", ""]
        for i, item in enumerate(items, 1):
            out += [_component(i, item), ""]
    if phase["actions"]:
        out += [
            "#### Actions and Outcomes",
            "",
            "| Apply | Action | Status | Attempts | Duration | Error |",
            "|---|---|---|---|---|---|",
        ]
        for a in phase["actions"]:
            error = _one_line(a["error"]).replace("|", "\\|")
            out.append(
                f"| #{a['run']} | `{a['key']}` | {a['status']} | {a['attempts']} | {_seconds(a['duration_s'])} | {error} |"
            )
        out.append("")
    return "\n".join(out).rstrip()


def _deployment(d):
    head = f"### Deployment #{d['run']}: {d['pipeline']} ({d['status']})"
    lines = [head, ""]
    who = f" ({d['requested_by']})" if d["requested_by"] else ""
    trigger = f"after apply #{d['apply_run']}" if d["trigger"] == "apply" and d["apply_run"] else "by hand"
    when = f", {_date(d['finished_at'])}" if d.get("finished_at") else ""
    lines += [f"_Started {trigger}{who}{when}; took {_seconds(d['duration_s']) or 'n/a'}._", ""]
    if d.get("head_version") is not None:
        shipped = ", ".join(f"`{cs['name']}` (v{cs['merged_version']})" for cs in d.get("change_sets", []))
        lines += [f"Shipped HEAD v{d['head_version']}" + (f": {shipped}" if shipped else "") + ".", ""]
    for i, s in enumerate(d["stages"], 1):
        line = f"{i}. **{s['name']}** ({s['kind']}) - {s['status']}"
        if s["duration_s"] is not None:
            line += f" in {_seconds(s['duration_s'])}"
        if s["error"]:
            line += f": {_one_line(s['error'])}"
        elif s["summary"]:
            line += f": {_one_line(s['summary'])}"
        if s.get("decided_by"):
            line += f" (decided by {s['decided_by']})"
        lines.append(line)
    if d.get("rollback"):
        rb = d["rollback"]
        lines += ["", f"**Rollback:** {rb['status']}"]
        for service, task_definition in sorted(rb["services"].items()):
            lines.append(
                f"- `{service.rsplit('/', 1)[-1]}` back to `{(task_definition or '').rsplit('/', 1)[-1]}`"
            )
        if rb.get("error"):
            lines.append(f"- error: {rb['error']}")
    if d["error"]:
        lines += ["", f"**Error:** {_one_line(d['error'])}"]
    return "\n".join(lines)


def _challenge(number, c):
    lines = [
        f"### Challenge {number}: {c['title']}",
        f"**Where:** {c['where']}",
        f'**Error:** "{_one_line(c["error"])}"',
    ]
    r = c.get("resolution")
    if r is None:
        lines.append("**Solution:** Not resolved yet.")
    elif r["kind"] == "change_set":
        solution = _one_line(r["change_set"]["solution"])
        lines.append(
            f"**Solution:** Resolved by change set `{r['change_set']['name']}` (#{r['change_set']['id']}, apply "
            f"#{r['run']}, `{r['action']}` succeeded)" + (f": {solution}" if solution else "")
        )
    elif r["kind"] == "retry":
        lines.append(f"**Solution:** Resolved by retrying it (apply #{r['run']}, `{r['action']}` succeeded)")
    else:
        between = ", ".join(f"`{cs['name']}`" for cs in r["change_sets"])
        lines.append(
            f"**Solution:** Passed in deployment #{r['run']}"
            + (f", after change set(s) {between}" if between else "")
        )
    return "\n".join(lines)


def told_change_sets(data):
    """The change sets a build log tells about ({id, name}): its phases', or when it has
    none (a deployment run by hand), those its deployments shipped."""
    found = {p["change_set"]["id"]: p["change_set"]["name"] for p in data.get("phases", [])}
    if not found:
        for d in data.get("deployments", []):
            found.update((cs["id"], cs["name"]) for cs in d.get("change_sets", []))
    return [{"id": pk, "name": name} for pk, name in found.items()]


def shipped_head_version(data):
    heads = [d["head_version"] for d in data.get("deployments", []) if d.get("head_version") is not None]
    return max(heads) if heads else None


def render(log):
    data = log.data or {}
    phases, deployments, challenges = (
        data.get("phases", []),
        data.get("deployments", []),
        data.get("challenges", []),
    )
    out = [f"# {log.title} - Build Log", ""]
    out.append(f"**Date:** {_date(log.date)}")
    out.append("**Change Sets:**")
    out += [f"- `{cs['name']}`" for cs in told_change_sets(data)] or ["- (none)"]
    if shipped_head_version(data) is not None:
        out += ["", f"**HEAD Version:** v{shipped_head_version(data)}"]
    out += ["", f"**Status:** {STATUS_WORDS.get(log.status, log.status)}", "", "---", ""]
    out += ["## Overview", "", _text(log.overview, "_No overview yet._"), "", "---", ""]
    for i, phase in enumerate(phases, 1):
        out += [_phase(i, phase), "", "---", ""]
    out += ["## Deployment Notes", ""]
    if deployments:
        for d in deployments:
            out += [_deployment(d), ""]
    elif data.get("followed_by"):
        out += [
            f"- Deployment #{d['run']} of {d['pipeline']} followed this apply ({d['status']})."
            for d in data["followed_by"]
        ] + [""]
    else:
        out += ["_No deployment ran._", ""]
    out += ["---", "", "## Technical Challenges & Solutions", ""]
    if challenges:
        for i, c in enumerate(challenges, 1):
            out += [_challenge(i, c), ""]
    else:
        out += ["_No errors were met._", ""]
    out += ["---", "", "## Lessons Learned", "", _text(log.lessons, "_None recorded yet._"), ""]
    out += ["---", "", "## Next Steps", "", _text(log.next_steps, "_None recorded yet._"), "", "---", ""]
    out.append(
        "**Build completed successfully** ✅"
        if log.status == "completed"
        else f"**Build {STATUS_WORDS.get(log.status, log.status).lower()}** ❌"
    )
    return "\n".join(out) + "\n"


def filename(log):
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in log.title.lower()).strip("-")
    while "--" in safe:
        safe = safe.replace("--", "-")
    return f"build-log-{log.pk}-{safe[:60] or 'untitled'}.md"
