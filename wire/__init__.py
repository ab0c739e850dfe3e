"""The terminal <-> cloud contract: what travels on the wire, written once for both sides.

The terminal (`posd`, `sync`) builds events with it and the cloud consumer (`cloud`) reads
them with it; docs/event-format.md describes the same for consumers written elsewhere.

- `envelope`: sealing a record (AES-256-GCM), its associated data and the hash chain;
- `keys`: the wrapped data key an event carries and the unwrapping protocol;
- `events`: the Detail of a record's event and of the side events (alarms, checkpoints),
  built and read side by side;
- `opening`: opening one delivered record (sealed identity, unwrap, decrypt);
- `masking`: PAN Luhn check and masking, credential masking (what may ever be shown);
- `errors`: the contract's errors; `posd`'s and the consumer's derive from `WireError`.

It imports only the standard library and `cryptography` (an architecture test holds it to
that), so the terminal and the cloud can each ship it without the other.
"""
