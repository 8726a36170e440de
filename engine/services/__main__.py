"""``python -m engine.services up|down|status`` (what ``scripts/services.sh`` runs)."""

from __future__ import annotations

from engine.cli.services import app

if __name__ == "__main__":
    app(prog_name="services")
