"""The cloud side: the reference consumer a store chain deploys to receive posd's events.

`cloud.handler.lambda_handler` is the Lambda entry point (SQS event source, partial batch
responses); `cloud/template.yaml` deploys it with the bus, queues, tables, keys and roles.
The deployment package holds this package and `posd` (pure Python plus `cryptography`).
"""
