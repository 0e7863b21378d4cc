"""``python -m bedrock_standin [--port 4000] [--answer-url URL] [--call-log-size N] [--seed S]``:
run the stand-in alone."""

from __future__ import annotations

import argparse
import threading

from .server import DEFAULT_CALL_LOG_SIZE, DEFAULT_FAULT_SEED, StandInServer


def main() -> None:
    parser = argparse.ArgumentParser(description="Offline Amazon Bedrock Runtime stand-in.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4000)
    parser.add_argument("--answer-url", help="OpenAI-compatible server for answers")
    parser.add_argument("--answer-model", help="model name on that server (default: its first)")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    parser.add_argument(
        "--call-log-size", type=int, default=DEFAULT_CALL_LOG_SIZE,
        help="calls kept for GET /_standin/calls (older ones are dropped and counted)",
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_FAULT_SEED, help="seed of probabilistic faults"
    )
    args = parser.parse_args()
    with StandInServer(
        args.host,
        args.port,
        args.answer_url,
        args.answer_model,
        args.verbose,
        call_log_size=args.call_log_size,
        seed=args.seed,
    ) as server:
        print(f"Bedrock stand-in on {server.url} (boto3: endpoint_url={server.url!r})", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("stopped")


if __name__ == "__main__":
    main()
