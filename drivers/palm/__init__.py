"""Palm-identity scanners: the generic device class, the Amazon One adapter, its simulator."""
