"""``python -m pipelines.cli``: the same as ``cardlake``."""

from pipelines.cli import app

if __name__ == "__main__":
    app()
