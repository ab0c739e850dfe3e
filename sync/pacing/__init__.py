"""Generic pacing: how fast and how often to send, with no EventBridge code.

`lane` (one lane's pacing decisions in one object, shared with the fleet simulator, and where
a (re)connecting lane starts), `backoff` (full-jitter delays), `window` (AIMD requests in
flight), `ratelimit` (the SDKs' adaptive token bucket, counted in entries), `timeouts` (read
timeout and request size against a slow endpoint) and `link` (online/offline/misconfigured,
probe pacing). They see outcomes ("answered", "throttled", "failed"), never codes, and import
nothing from `sync.eventbridge` or botocore: which code means what is decided in
`sync.eventbridge.retry`.
"""
