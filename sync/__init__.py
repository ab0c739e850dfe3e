"""Delivery of the journal's outbox to Amazon EventBridge (`sync` never imports `posd`).

A map of the package:

- `engine`: the driver (lease, batch, send, settle); `settings`, `status`, `errors`,
  `timestamps`, `sources` (the client source for the configured API) and `side_events`
  (alarms and checkpoints in their own lane) sit beside it; `outbox` is the journal's
  contract and `events` the event schema.
- `eventbridge/`: everything that knows PutEvents, v1 and v2: clients, batching, the call
  (`transport`), result reading (`results`) and `retry`.
- `pacing/`: generic pacing with no EventBridge code: backoff, AIMD window, rate limiter,
  read-timeout adaptation, link state.

Where do I change retries? In `sync.eventbridge.retry`: every request- and entry-level code
table, and the functions that turn a failure into retry, quarantine, misconfigured or
link-down, and when a retried record is due again. How fast things go again is `pacing/`.
"""
