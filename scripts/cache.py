"""Purge the response cache: every entry, or one category's.

    python scripts/cache.py purge --table TABLE [--category NAME] [--region R]
    python scripts/cache.py purge --table local-router-cache --endpoint-url http://127.0.0.1:PORT

Changing the answer configuration (system prompt, max tokens, temperature, a category's answer
targets) needs no purge: the key's version hash changes, and the old entries expire by their TTL.
A purge is for the rest: an answer found wrong, a changed fact, a category's cache turned off for
good. The table is the stack's cache table (``CACHE_TABLE_NAME`` of the router function);
``--endpoint-url`` reaches another DynamoDB (the local run prints its URL). Purging needs
``dynamodb:Scan`` and ``dynamodb:BatchWriteItem`` on the table: your credentials, not the
function's (which may only get, put and query). It prints how many items it deleted (an answer
and, for a semantic category, its candidate: two items).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

import cli

BATCH = 25  # BatchWriteItem's limit
RETRIES = 8


def purge(client: Any, table: str, category: str | None = None) -> int:
    """Delete every item of the cache table, or a category's; returns how many were deleted."""
    deleted = 0
    batch: list[dict[str, Any]] = []
    for item in _scan(client, table, category):
        batch.append({"DeleteRequest": {"Key": {"pk": item["pk"], "sk": item["sk"]}}})
        if len(batch) == BATCH:
            deleted += _delete(client, table, batch)
            batch = []
    if batch:
        deleted += _delete(client, table, batch)
    return deleted


def _scan(client: Any, table: str, category: str | None) -> Iterator[dict[str, Any]]:
    kwargs: dict[str, Any] = {"TableName": table, "ProjectionExpression": "pk, sk"}
    if category is not None:
        kwargs |= {
            "FilterExpression": "category = :c",
            "ExpressionAttributeValues": {":c": {"S": category}},
        }
    for page in client.get_paginator("scan").paginate(**kwargs):
        yield from page.get("Items", [])


def _delete(client: Any, table: str, batch: list[dict[str, Any]]) -> int:
    pending = {table: batch}
    for attempt in range(RETRIES):
        pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
        if not pending:
            return len(batch)
        time.sleep(0.05 * 2**attempt)  # DynamoDB asks for back-off on unprocessed items
    raise RuntimeError("DynamoDB kept items unprocessed; run the purge again")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("purge",), help="purge: delete cached answers")
    parser.add_argument("--table", required=True, help="the stack's cache table name")
    parser.add_argument("--category", help="delete this category's entries only (default: all)")
    parser.add_argument("--region", help="AWS region of the table")
    parser.add_argument("--profile", help="AWS profile to use")
    parser.add_argument("--endpoint-url", help="another DynamoDB endpoint (e.g. the local run's)")
    return parser.parse_args(argv)


def client_for(args: argparse.Namespace) -> Any:
    import boto3

    session = boto3.Session(profile_name=args.profile, region_name=args.region)
    return session.client("dynamodb", endpoint_url=args.endpoint_url)


def main(argv: Sequence[str] | None = None, client: Any | None = None) -> int:
    args = parse_args(argv)
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        deleted = purge(client or client_for(args), args.table, args.category)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        print(f"error: cannot purge {args.table}: {error.get('Code')}", file=sys.stderr)
        return 1
    except (BotoCoreError, RuntimeError) as exc:
        return cli.error(exc)
    scope = f"category {args.category!r}" if args.category else "every category"
    print(f"deleted {deleted} items of {scope} from {args.table}")
    return 0


if __name__ == "__main__":
    cli.run(main)
