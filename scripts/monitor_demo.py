"""Drive the deployed predictor like traffic would, then print `hybrid-scorer monitor`.

Sends N posts from 2022 (a shifted slice of the training mix: only recent posts) through
`hybrid_scorer.predict`, logging to a fresh file, and summarizes that log against the model's training
reference. Needs `make run` first. Usage: python scripts/monitor_demo.py [--data CSV] [-n 200]
(DISCUSSION quotes `python scripts/monitor_demo.py > reports/monitor_demo.txt`)"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from hybrid_scorer.config import MonitorThresholds, get_settings
from hybrid_scorer.data import prepare_posts
from hybrid_scorer.monitoring import monitor_report
from hybrid_scorer.serving import Predictor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="CSV (default: $ASKSCIENCE_CSV or data/askscience_data.csv)")
    parser.add_argument("-n", type=int, default=200)
    args = parser.parse_args()
    settings = get_settings(data_path=args.data)
    posts, _ = prepare_posts(settings.data_path)
    recent = posts[posts["created_utc"].dt.year == 2022].sample(args.n, random_state=3)
    log_path = Path(tempfile.mkdtemp()) / "predictions.jsonl"
    predictor = Predictor(settings=settings, log_path=log_path)
    for title, body, flair, created in zip(
        recent["title"], recent["body"], recent["flair"], recent["created_utc"], strict=True
    ):
        predictor.predict({"title": title, "body": body, "flair": flair, "created_utc": created.isoformat()})
    predictor.close()  # the log's writer thread writes its last lines before the monitor reads them
    text, _ = monitor_report(log_path, settings.model_dir, MonitorThresholds())
    print(text.replace(str(log_path.parent), "$TMPDIR"))  # a new directory each run: the report stays the same


if __name__ == "__main__":
    main()
