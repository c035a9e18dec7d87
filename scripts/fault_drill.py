"""Fault drill: `hybrid-scorer extract --llm openai:gpt-4o-mini` against the strict OpenAI stand-in
(tests/standins.py) with a share of injected faults, then a rerun after the endpoint recovers.

Prints what the closing note of issue 11 quotes: posts assessed, faults served by kind, attempts,
out-of-range values kept, and how many requests the rerun sent. Runs on the synthetic test posts (no
data file needed). Usage: python scripts/fault_drill.py [--posts 40] [--share 0.3]"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hybrid_scorer.cli import main as cli
from tests.conftest import synthetic_frame
from tests.standins import OpenAIStandIn, fault_plan, running

RATINGS = ["question_clarity", "novelty", "predicted_interest"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--posts", type=int, default=40)
    parser.add_argument("--share", type=float, default=0.3, help="share of posts whose first request faults")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp())
    csv = work / "posts.csv"
    frame = synthetic_frame(max(args.posts * 2, 150))
    frame.to_csv(csv, index=False)
    doomed = str(frame["title"].iloc[7])  # one post fails on every request, to show what a rerun sends
    os.environ.update(
        OPENAI_API_KEY="sk-drill",
        HYBRID_SCORER_EMBEDDING_MODEL="text-embedding-3-small",
        HYBRID_SCORER_LLM_TIMEOUT_S="0.5",
    )
    command = ["extract", "--data", str(csv), "--llm", "openai:gpt-4o-mini", "--limit", str(args.posts), "-q"]
    command += ["--cache-dir", str(work / "cache"), "--out", str(work / "ex")]
    with running(OpenAIStandIn(fault_plan(args.share, persistent={doomed}), stall_s=1.0, retry_after_s=0)) as server:
        os.environ["OPENAI_BASE_URL"] = server.url + "/v1"
        code = cli(command)
        table = pd.read_csv(work / "ex" / "assessments.csv")
        first_requests = server.traffic.paths["/v1/chat/completions"]
        server.plan = None
        rerun_code = cli(command)
        rerun_requests = server.traffic.paths["/v1/chat/completions"] - first_requests
    assessed = table["failure"].isna()
    out_of_range = int((~table.loc[assessed, RATINGS].isin(range(1, 6))).sum().sum())
    print(f"\nfault drill: {args.posts} posts, {args.share:.0%} with a fault on their first request, 1 always failing")
    print(f"  faults served (chat and embedding requests): {dict(server.traffic.faults)}")
    print(f"  chat requests: {first_requests} for {args.posts} posts (retries and re-asks included); exit code {code}")
    print(f"  assessed: {int(assessed.sum())}/{args.posts}; failures: {table['failure'].value_counts().to_dict()}")
    print(f"  out-of-range values kept: {out_of_range}")
    print(f"  rerun after recovery: {rerun_requests} chat request(s) sent (exit code {rerun_code})")


if __name__ == "__main__":
    main()
