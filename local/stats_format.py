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


def _row(label: str, text: str) -> str:
    """A line of the table: the label in its own column, so every figure starts at one place."""
    return f"  {label:<26} {text}"


def format_stats(stats: JsonObject) -> list[str]:
    lines = [f"since {stats.get('since')} until {stats.get('until')}"]
    for key, label, unit in _FIGURES:
        figure = _section(stats, key)
        shown = _show(figure.get("value"), unit)
        target = f"{figure.get('op')} {_show(figure.get('target'), unit)}"
        lines.append(_row(label, f"{shown:>9}   target {target:<10} {_verdict(figure.get('met'))}"))
    gens = _section(stats, "generations")
    by = _section(gens, "finished_by")
    finished = (
        f"{gens.get('finished')} (completed {gens.get('completed')}, failed {gens.get('failed')},"
        f" canceled {gens.get('canceled')}); outcome by webhook {by.get('webhook')},"
        f" poll {by.get('poll')}, sweep {by.get('sweep')}"
    )
    lines.append(_row("generations finished", finished))
    refunds = _section(stats, "refunds")
    lines.append(_row("refunds", f"{refunds.get('count')} ({refunds.get('credits')} credits)"))
    credits = _section(stats, "credits")
    spent = (
        f"spent {credits.get('spent')}, bought {credits.get('bought')}"
        f" (taken back {credits.get('taken_back')}), granted {credits.get('granted')}"
    )
    lines.append(_row("credits", spent))
    provider = _section(stats, "provider")
    budget = provider.get("daily_budget_usd")
    guard = "no budget set" if budget is None else f"budget {budget} USD/24 h"
    if provider.get("budget_exhausted"):
        guard += " EXHAUSTED: creates are refused"
    spend = (
        f"{provider.get('spend_usd')} USD ({provider.get('predict_time_s')} s);"
        f" last 24 h {provider.get('spend_last_24h_usd')} USD, {guard}"
    )
    lines.append(_row("provider spend (estimated)", spend))
    revenue, margin = _section(stats, "revenue"), _section(stats, "margin")
    other = revenue.get("other_currencies")
    earned = (
        f"{revenue.get('value')} USD from {revenue.get('purchases')} purchases"
        f" (paid {revenue.get('gross')}, refunded {revenue.get('refunded')},"
        f" disputes lost {revenue.get('disputes_lost')};"
        f" open disputes {revenue.get('disputes_open')} at risk)"
    )
    lines.append(_row("revenue", earned + (f"; not in USD: {other}" if other else "")))
    lines.append(
        _row("margin (estimated)", f"{margin.get('value')} USD (revenue - provider spend)")
    )
    return lines
