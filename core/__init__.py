"""Cross-cutting pieces every layer may use: settings, auth, limits, metrics, log context, task sets."""
