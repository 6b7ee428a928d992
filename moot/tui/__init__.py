"""The terminal UI: the live view, replay, and people's seats. It reads the store; only
`moot join` and `moot judge` write a person's answers."""
