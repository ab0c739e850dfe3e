"""EventBridge specifics: everything that knows PutEvents, v1 (`events`) and v2 (`eventbridgev2`).

`client` and `client_v2` build the boto3 clients (v2 behind a v1-shaped adapter), `v2` holds
v2's facts, `batching` splits entries into requests, `transport` makes one call and
`results` reads an answer entry by entry. `retry` is the one place that says what a failure
means: every request-level and entry-level code table, and the decisions built on them.
"""
