"""The card reader: parsing (tracks, EMV TLV, PAN), the serial driver and its simulator.

Parsing modules import nothing heavy; the drivers (`serial_reader`, `simulated_reader`) are
imported lazily through `drivers.registry`, so `drivers.card` stays importable without pyserial.
"""
