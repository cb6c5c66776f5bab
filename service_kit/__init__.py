"""Django building blocks shared by every half of the system (monolith and extracted services).

It holds what each HTTP process must do the same way: configuration from the environment,
`/healthz` and `/readyz`, the JSON error contract, and bearer-token authentication. It never
imports a half (``monolith`` or ``extracted``); import-linter checks that in CI.
"""
