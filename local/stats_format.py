"""`wanctl stats` as lines for a person: each figure, its target, and whether it meets it."""

from __future__ import annotations

from shared.core.domain import JsonObject
from shared.core.errors import JsonValue

# (key, label, how to show the value)
_FIGURES = (
    ("success_rate", "generation success rate", "percent"),
    ("avg_completion_s", "average completion time", "seconds"),
    ("p95_completion_s", "p95 completion time", "seconds"),
    ("webhook_delivery_rate", "webhook delivery rate", "percent"),
    ("credit_accuracy", "credit accuracy", "percent"),
)


def _show(value: JsonValue, unit: str) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "n/a"
    if unit == "percent":
        return f"{value * 100:.1f}%"
    return f"{value:.1f} s"


def _verdict(met: JsonValue) -> str:
    if met is None:
        return "no data"
    return "ok" if met else "MISSED"


def _section(stats: JsonObject, key: str) -> JsonObject:
    value = stats.get(key)
    return value if isinstance(value, dict) else {}


def format_stats(stats: JsonObject) -> list[str]:
    lines = [f"since {stats.get('since')} until {stats.get('until')}"]
    for key, label, unit in _FIGURES:
        figure = _section(stats, key)
        target = f"{figure.get('op')} {_show(figure.get('target'), unit)}"
        lines.append(
            f"  {label:<26} {_show(figure.get('value'), unit):>9}   target {target:<10} "
            f"{_verdict(figure.get('met'))}"
        )
    gens = _section(stats, "generations")
    by = _section(gens, "finished_by")
    lines.append(
        f"  generations finished       {gens.get('finished')} (completed {gens.get('completed')},"
        f" failed {gens.get('failed')}, canceled {gens.get('canceled')});"
        f" outcome by webhook {by.get('webhook')}, poll {by.get('poll')}, sweep {by.get('sweep')}"
    )
    refunds = _section(stats, "refunds")
    lines.append(
        f"  refunds                    {refunds.get('count')} ({refunds.get('credits')} credits)"
    )
    credits = _section(stats, "credits")
    lines.append(
        f"  credits                    spent {credits.get('spent')},"
        f" bought {credits.get('bought')} (taken back {credits.get('taken_back')}),"
        f" granted {credits.get('granted')}"
    )
    provider = _section(stats, "provider")
    budget = provider.get("daily_budget_usd")
    guard = "no budget set" if budget is None else f"budget {budget} USD/24 h"
    if provider.get("budget_exhausted"):
        guard += " EXHAUSTED: creates are refused"
    lines.append(
        f"  provider spend (estimated) {provider.get('spend_usd')} USD"
        f" ({provider.get('predict_time_s')} s); last 24 h {provider.get('spend_last_24h_usd')}"
        f" USD, {guard}"
    )
    revenue, margin = _section(stats, "revenue"), _section(stats, "margin")
    other = revenue.get("other_currencies")
    lines.append(
        f"  revenue                    {revenue.get('value')} USD from {revenue.get('purchases')}"
        f" purchases (paid {revenue.get('gross')}, refunded {revenue.get('refunded')},"
        f" disputes lost {revenue.get('disputes_lost')}; open disputes"
        f" {revenue.get('disputes_open')} at risk)" + (f"; not in USD: {other}" if other else "")
    )
    lines.append(
        f"  margin (estimated)         {margin.get('value')} USD (revenue - provider spend)"
    )
    return lines
