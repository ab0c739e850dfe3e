"""The cloud side: the reference consumer a store chain deploys to receive posd's events.

`cloud.handler.lambda_handler` is the Lambda entry point (SQS event source, partial batch
responses); `cloud/template.yaml` deploys it with the bus, queues, tables, keys and roles.
The deployment package holds this package with the contract, `wire` (pure Python), and their
dependencies `cryptography`, `boto3` and `structlog`: never `posd`, `sync` or `drivers`
(tests/test_architecture.py holds every file to that, and a test keeps the demo, the
emulator, the daemon and device libraries out of the handler's import graph).
"""
