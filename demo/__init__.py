"""What the demo (`make demo`, `python -m demo`), the tests and the benchmarks need and a
terminal never runs: the local AWS stand-ins (`demo.localaws`: moto's server, a local
EventBridge v2 endpoint), the backend's side (a bus routed to a queue, the cloud consumer fed
from it), the development-config builder and the demo pipeline itself.

It sits beside the product, not inside it: it imports both the terminal (`posd`) and the cloud
side (`cloud`), no shipped package imports it, and the posd wheel does not hold it
(tests/test_architecture.py checks both).
"""
