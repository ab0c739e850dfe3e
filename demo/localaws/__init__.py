"""Local stand-ins for AWS over HTTP on loopback: moto's server (KMS, EventBridge v1, SQS,
DynamoDB) and a local EventBridge v2 endpoint, which moto does not emulate. Real boto3 clients
talk to them as they talk to AWS. Their dependencies (moto, cbor2) are in the `demo` and `dev`
extras only."""
