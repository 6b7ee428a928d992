"""What the judging cost: per judge when several rule, and tokens, money and latency per
condition and role (SQL aggregation over the `call_costs` and `episode_verdicts` views)."""

from __future__ import annotations

from moot.analysis.load import Study
from moot.analysis.table import Table


def judges_table(study: Study) -> Table | None:
    """Every judge's own final verdicts, when a condition has more than one judge (a jury,
    agents answering each round, re-judging); None otherwise."""
    several = study.rows("SELECT count(DISTINCT judge) > 1 FROM verdicts")
    if not any(r[0][0] for r in several):
        return None
    rows = study.query(
        "SELECT condition, judge, min(model), count(*), sum(NOT valid),"
        " sum(valid AND correct IS NOT NULL), sum(correct) FROM episode_verdicts"
        " WHERE status = 'done' GROUP BY condition, judge ORDER BY condition, judge"
    )
    per_condition: dict[str, int] = {}
    for c, _ in rows:
        per_condition[c] = per_condition.get(c, 0) + 1
    if not any(n > 1 for n in per_condition.values()):
        return None
    t = Table(
        "judges",
        "Accuracy per judge",
        ["condition", "judge", "model", "episodes", "invalid", "accuracy"],
        note="Each judge's final verdict per episode (its last round).",
        formats={"invalid": "pct", "accuracy": "pct"},
    )
    order = {c: i for i, c in enumerate(study.conditions)}
    for c, (judge, model, n, invalid, scored, right) in sorted(rows, key=lambda r: order.get(r[0], 0)):
        t.rows.append([c, judge, model or "–", n, invalid / n, right / scored if scored else None])
    return t


COSTS = (
    "SELECT condition, role, count(*), sum(failed), sum(cached), sum(prompt_tokens),"
    " sum(completion_tokens), sum(cost), avg(latency_s), max(latency_s)"
    " FROM {source} GROUP BY condition, role ORDER BY condition, role"
)


def costs_table(study: Study) -> Table:
    rows = []
    for i, names in enumerate(study.names):
        # outside a sweep every call is the run's condition: no join needed (a scan of
        # model_calls, whose rows hold whole prompts, is most of the time here)
        cells = {c for d, c, _ in study.sources if d == i}
        sql = COSTS.format(
            source="call_costs" if cells != {None} else
            "(SELECT (SELECT name FROM runs ORDER BY started_at LIMIT 1) AS condition, role,"
            " prompt_tokens, completion_tokens, cost, latency_s, error IS NOT NULL AS failed, cached"
            " FROM model_calls)"
        )  # fmt: skip
        rows += [(names.get(r[0], r[0]), r[1:]) for r in study.rows(sql, db=i)]
    episodes = dict(study.query("SELECT condition, count(*) FROM episode_results GROUP BY condition"))
    t = Table(
        "costs",
        "Tokens, cost and latency by condition and role",
        ["condition", "role", "calls", "failed_calls", "cached", "prompt_tokens",
         "completion_tokens", "cost", "cost_per_episode", "latency_mean_s", "latency_max_s"],
        note="cost is what the providers reported (cached calls cost 0); latency per call, "
        "retries included; cost_per_episode over the condition's episodes.",
        formats={"cost": "num", "cost_per_episode": "num", "latency_mean_s": "num", "latency_max_s": "num"},
    )  # fmt: skip
    order = {c: i for i, c in enumerate(study.conditions)}
    for c, (role, calls, failed, cached, pt, ct, cost, lat, lat_max) in sorted(
        rows, key=lambda r: order.get(r[0], 0)
    ):
        n = episodes.get(c, (0,))[0]
        t.rows.append([
            c, role, calls, failed, cached, pt, ct, cost, cost / n if cost is not None and n else None,
            lat, lat_max,
        ])  # fmt: skip
    return t
