"""codebox's AWS resources on LocalStack (or moto): the task queue and its dead-letter
queue with a redrive policy, the webhook queue (a Lambda `commit` hands webhooks on
through it), the five DynamoDB tables with their indexes and TTL, the
blob bucket, and the two secrets. The same tables, indexes and attributes as
infra/template.yaml.

LocalStack runs it as a ready hook (localstack/init/ready.d, mounted by the compose
profile `aws`); the tests run it against moto. Idempotent. Prints the environment the
gateway and the worker need, one KEY=VALUE per line.

Environment:
  AWS_ENDPOINT_URL            default http://localhost:4566 (LocalStack inside its container)
  CODEBOX_PREFIX              resource name prefix, default "codebox"
  CODEBOX_VISIBILITY_SECS     the queue's visibility timeout, default 60
  CODEBOX_MAX_RECEIVES        receives before SQS moves a message to the DLQ, default 3
  JWT_SECRET, WORKER_TOKEN, WEBHOOK_SECRET
                              the secrets' values; random when unset
"""

import json
import os
import secrets
import sys

import boto3
from botocore.exceptions import ClientError

ENDPOINT = os.environ.get("AWS_ENDPOINT_URL") or "http://localhost:4566"
REGION = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or "us-east-1"
PREFIX = os.environ.get("CODEBOX_PREFIX") or "codebox"
VISIBILITY = int(os.environ.get("CODEBOX_VISIBILITY_SECS") or 60)
MAX_RECEIVES = int(os.environ.get("CODEBOX_MAX_RECEIVES") or 3)


def client(service):
    return boto3.client(
        service,
        endpoint_url=ENDPOINT,
        region_name=REGION,
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID") or "test",
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY") or "test",
    )


def queues():
    sqs = client("sqs")
    dlq_url = sqs.create_queue(
        QueueName=f"{PREFIX}-tasks-dead",
        Attributes={"MessageRetentionPeriod": "1209600"},
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    url = sqs.create_queue(QueueName=f"{PREFIX}-tasks")["QueueUrl"]
    sqs.set_queue_attributes(
        QueueUrl=url,
        Attributes={
            "VisibilityTimeout": str(VISIBILITY),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVES)}
            ),
        },
    )
    return url, dlq_url


def webhook_queue():
    """Where a Lambda `commit` hands ended tasks' webhooks to the `webhooks` function."""
    sqs = client("sqs")
    return sqs.create_queue(
        QueueName=f"{PREFIX}-webhooks",
        Attributes={"VisibilityTimeout": "360", "MessageRetentionPeriod": "86400"},
    )["QueueUrl"]


# What a task list reads besides the keys (adapters/src/aws/dynamodb/codec.rs, summary_of).
TASK_SUMMARY = ["kind", "status", "created_at_ms", "started_at_ms", "finished_at_ms", "expires_at_epoch"]


def table(ddb, name, key, attributes, indexes=(), ttl=None):
    spec = {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": key, "KeyType": "HASH"}],
        "AttributeDefinitions": [
            {"AttributeName": a, "AttributeType": "S"} if isinstance(a, str)
            else {"AttributeName": a[0], "AttributeType": a[1]}
            for a in attributes
        ],
    }
    if indexes:
        spec["GlobalSecondaryIndexes"] = [
            {
                "IndexName": index,
                "KeySchema": [{"AttributeName": hash_key, "KeyType": "HASH"}]
                + ([{"AttributeName": range_key, "KeyType": "RANGE"}] if range_key else []),
                "Projection": (
                    {"ProjectionType": "ALL"} if not extra
                    else {"ProjectionType": extra[0]} if isinstance(extra[0], str)
                    else {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(extra[0])}
                ),
            }
            for index, hash_key, range_key, *extra in indexes
        ]
    try:
        ddb.create_table(**spec)
        ddb.get_waiter("table_exists").wait(TableName=name)
    except ClientError as e:
        if e.response["Error"]["Code"] != "ResourceInUseException":
            raise
    if ttl:
        ddb.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl},
        )
    return name


def tables():
    ddb = client("dynamodb")
    return {
        "USERS_TABLE": table(
            ddb, f"{PREFIX}-users", "username", ["username", "id"], [("by-id", "id", None)]
        ),
        "TASKS_TABLE": table(
            ddb,
            f"{PREFIX}-tasks",
            "id",
            ["id", "owner", "list_key", "outbox", ("created_at_ms", "N")],
            # Lists read the summary only (infra/template.yaml projects the same); the
            # outbox index holds only tasks not yet known to be queued.
            [
                ("by-owner", "owner", "list_key", TASK_SUMMARY),
                ("by-outbox", "outbox", "created_at_ms", "KEYS_ONLY"),
            ],
            ttl="expires_at_epoch",
        ),
        "SESSIONS_TABLE": table(
            ddb, f"{PREFIX}-sessions", "jti", ["jti"], ttl="expires_at_epoch"
        ),
        "IDEMPOTENCY_TABLE": table(
            ddb, f"{PREFIX}-idempotency", "owner_key", ["owner_key"], ttl="expires_at_epoch"
        ),
        "LIMITS_TABLE": table(
            ddb, f"{PREFIX}-limits", "key", ["key"], ttl="expires_at_epoch"
        ),
    }


def bucket():
    s3 = client("s3")
    name = f"{PREFIX}-blobs"
    try:
        if REGION == "us-east-1":
            s3.create_bucket(Bucket=name)
        else:
            s3.create_bucket(
                Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION}
            )
    except ClientError as e:
        if e.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    s3.put_public_access_block(
        Bucket=name,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_lifecycle_configuration(
        Bucket=name,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "expire-blobs",
                    "Status": "Enabled",
                    "Filter": {"Prefix": ""},
                    "Expiration": {"Days": 7},
                }
            ]
        },
    )
    return name


def secret(name, value):
    sm = client("secretsmanager")
    try:
        return sm.create_secret(Name=name, SecretString=value)["ARN"]
    except ClientError as e:
        if e.response["Error"]["Code"] != "ResourceExistsException":
            raise
        return sm.describe_secret(SecretId=name)["ARN"]


def main():
    url, dlq_url = queues()
    env = {
        **tables(),
        "TASK_QUEUE_URL": url,
        "TASK_DLQ_URL": dlq_url,
        "WEBHOOK_QUEUE_URL": webhook_queue(),
        "BLOB_BUCKET": bucket(),
        "JWT_SECRET_ARN": secret(
            f"{PREFIX}/jwt-secret", os.environ.get("JWT_SECRET") or secrets.token_urlsafe(48)
        ),
        "WORKER_TOKEN_ARN": secret(
            f"{PREFIX}/worker-token",
            os.environ.get("WORKER_TOKEN") or secrets.token_urlsafe(32),
        ),
        "WEBHOOK_SECRET_ARN": secret(
            f"{PREFIX}/webhook-secret",
            os.environ.get("WEBHOOK_SECRET") or secrets.token_urlsafe(48),
        ),
    }
    for k, v in env.items():
        print(f"{k}={v}")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # one plain line, not a traceback
        print(f"codebox init: {e}", file=sys.stderr)
        sys.exit(1)
