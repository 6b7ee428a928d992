"""The transcript types every layer shares: the events a run is made of (`events`: messages,
model calls, verdicts, one `Totals`, the one visibility rule) and checked quotes (`quotes`).
They import nothing of moot's but a call's request (a plain value): the engine makes them,
the store keeps them, the TUI and analysis read them."""
